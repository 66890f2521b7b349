//! HTTP/1 over the engine's local unix socket, for the calls bollard does not make the way
//! Helvetia needs them (a build served by Helvetia's own session, one-shot stats over reused
//! connections, the session's upgrade): connecting, the `Host` header, and an error answer
//! turned into an [`EngineError`].

use std::path::Path;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Response, StatusCode};
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
