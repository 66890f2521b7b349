//! HTTP/1 over the engine's local unix socket, for the calls bollard does not make the way
//! Helvetia needs them (a build served by Helvetia's own session, one-shot stats over reused
//! connections, the session's upgrade): connecting, the `Host` header, and an error answer
//! turned into an [`EngineError`].

use std::path::Path;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Incoming;
use hyper::header::HOST;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

use super::{EngineError, Result};

/// The `Host` header of requests over the unix socket: HTTP/1.1 requires one, and the engine
/// ignores its value (the docker CLI sends the same placeholder).
pub(super) const SOCKET_HOST: &str = "docker";

/// Error bodies are short JSON messages; anything longer is cut rather than buffered.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// A connection to the engine's unix socket.
pub(super) async fn connect(socket: &Path) -> Result<UnixStream> {
    UnixStream::connect(socket)
        .await
        .map_err(|e| unreachable(socket, &e))
}

pub(super) fn unreachable(socket: &Path, error: &dyn std::fmt::Display) -> EngineError {
    EngineError::Unreachable(format!("{}: {error}", socket.display()))
}

/// The engine's explanation in an error response: its JSON `message`, else the body as text.
pub(super) async fn error_message(response: Response<Incoming>) -> String {
    #[derive(serde::Deserialize)]
    struct Message {
        message: String,
    }
    match Limited::new(response.into_body(), MAX_ERROR_BODY)
        .collect()
        .await
    {
        Ok(body) => {
            let body = body.to_bytes();
            match serde_json::from_slice::<Message>(&body) {
                Ok(json) => json.message,
                Err(_) => String::from_utf8_lossy(&body).trim().to_owned(),
            }
        }
        Err(error) => format!("(unreadable response: {error})"),
    }
}

/// `response` if it succeeded; otherwise the engine's explanation, as not found (404) or an
/// API error.
pub(super) async fn check_status(response: Response<Incoming>) -> Result<Response<Incoming>> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let message = error_message(response).await;
    Err(match status {
        StatusCode::NOT_FOUND => EngineError::NotFound(message),
        _ => EngineError::Api(message),
    })
}

/// Sends one bodiless request to the engine at `socket` and reads its JSON answer (at most
/// `max_body` bytes), for the calls whose answer bollard reads in a newer API's shape than
/// this engine's.
pub(super) async fn json<T: serde::de::DeserializeOwned>(
    socket: &Path,
    method: Method,
    path_and_query: &str,
    max_body: usize,
) -> Result<T> {
    let request = Request::builder()
        .method(method)
        .uri(path_and_query)
        .header(HOST, SOCKET_HOST)
        .body(Empty::<Bytes>::new())
        .map_err(|e| EngineError::Api(format!("the request {path_and_query}: {e}")))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(connect(socket).await?))
            .await
            .map_err(|e| unreachable(socket, &e))?;
    let connection = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(connection));
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| unreachable(socket, &e))?;
    let body = Limited::new(check_status(response).await?.into_body(), max_body)
        .collect()
        .await
        .map_err(|e| EngineError::Unreachable(format!("reading {path_and_query}: {e}")))?
        .to_bytes();
    drop(connection);
    serde_json::from_slice(&body)
        .map_err(|e| EngineError::Api(format!("unreadable answer to {path_and_query}: {e}")))
}
