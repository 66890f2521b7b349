//! A small HTTP client for the Helvetia API: bearer authentication, the API's contract types
//! (`helvetia_api_types`) in and out, and API errors turned into one readable line.
//!
//! Every answer is read into the type the CLI expects, and must carry every field of it: an
//! answer of another shape (a server of another version, a renamed field) is an error that
//! says what is missing, never a blank in a table.

use anyhow::{Context, anyhow, bail};
use reqwest::header::{ETAG, HeaderMap, IF_MATCH};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::GlobalArgs;
use crate::credentials::Credentials;

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    server: String,
    token: String,
}

/// An answer the CLI understood: the typed body, and the JSON as the server sent it (what
/// `--json` prints).
pub struct Answer<T> {
    pub body: T,
    pub json: Value,
}

impl Client {
    /// A client for the server and token given by flags or environment, falling back to what
    /// `helvetia login` saved.
    pub fn from_args(global: &GlobalArgs) -> anyhow::Result<Client> {
        let saved = Credentials::load()?;
        let server = global
            .server
            .clone()
            .or_else(|| saved.as_ref().map(|c| c.server.clone()))
            .context(
                "no server configured: run `helvetia login --server URL` or set HELVETIA_SERVER",
            )?;
        let token = global
            .token
            .clone()
            .or_else(|| saved.map(|c| c.token))
            .context("no token configured: run `helvetia login` or set HELVETIA_TOKEN")?;
        Client::new(&server, &token)
    }

    pub fn new(server: &str, token: &str) -> anyhow::Result<Client> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("helvetia-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the HTTP client")?;
        Ok(Client {
            http,
            server: server.trim_end_matches('/').to_owned(),
            token: token.trim().to_owned(),
        })
    }

    /// A client without a credential, for the few public routes (starting a device login).
    pub fn anonymous(server: &str) -> anyhow::Result<Client> {
        Client::new(server, "")
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    pub async fn get<T: DeserializeOwned + Serialize>(
        &self,
        path: &str,
    ) -> anyhow::Result<Answer<T>> {
        self.json(Method::GET, path, None::<&()>).await
    }

    pub async fn post<T: DeserializeOwned + Serialize>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> anyhow::Result<Answer<T>> {
        self.json(Method::POST, path, Some(body)).await
    }

    pub async fn put<T: DeserializeOwned + Serialize>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> anyhow::Result<Answer<T>> {
        self.json(Method::PUT, path, Some(body)).await
    }

    pub async fn patch<T: DeserializeOwned + Serialize>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> anyhow::Result<Answer<T>> {
        self.json(Method::PATCH, path, Some(body)).await
    }

    /// Changes what `path` names only as it is now: `If-Match` carries the `ETag` of a read
    /// made just before, so a change someone made in between is refused (412) rather than
    /// silently overwritten or overwriting theirs.
    pub async fn patch_current<T: DeserializeOwned + Serialize>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> anyhow::Result<Answer<T>> {
        let (headers, _) = self.execute(self.request(Method::GET, path)).await?;
        let etag = headers.get(ETAG).with_context(|| {
            format!(
                "the server's answer to GET {path} has no ETag (is the server as new as the CLI?)"
            )
        })?;
        let request = self
            .request(Method::PATCH, path)
            .header(IF_MATCH, etag)
            .json(body);
        let (_, bytes) = self.execute(request).await?;
        answer(&format!("PATCH {path}"), &bytes)
    }

    pub async fn delete<T: DeserializeOwned + Serialize>(
        &self,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> anyhow::Result<Answer<T>> {
        self.json(Method::DELETE, path, body).await
    }

    /// A plain-text answer (an export, say).
    pub async fn get_text(&self, path: &str) -> anyhow::Result<String> {
        let bytes = self.send(Method::GET, path, None::<&()>).await?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// A request builder with authentication, for streaming endpoints.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.server));
        if self.token.is_empty() {
            return request;
        }
        request.bearer_auth(&self.token)
    }

    async fn json<T: DeserializeOwned + Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> anyhow::Result<Answer<T>> {
        let what = format!("{method} {path}");
        let bytes = self.send(method, path, body).await?;
        answer(&what, &bytes)
    }

    /// Sends a request; the body of a successful answer, or the API's error as an error.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> anyhow::Result<bytes::Bytes> {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request.json(body);
        }
        Ok(self.execute(request).await?.1)
    }

    /// Sends `request`; the headers and body of a successful answer, or the API's error as an
    /// error.
    async fn execute(
        &self,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<(HeaderMap, bytes::Bytes)> {
        let response = request.send().await.map_err(|e| {
            anyhow!(
                "cannot reach the Helvetia server at {}: {}",
                self.server,
                root_cause(&e)
            )
        })?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .bytes()
            .await
            .context("reading the server's answer")?;
        if status.is_success() {
            return Ok((headers, bytes));
        }
        bail!(describe_error(status, &bytes))
    }
}

/// The answer to `what` (`METHOD path`), read as a `T` (see [`understand`]).
fn answer<T: DeserializeOwned + Serialize>(what: &str, bytes: &[u8]) -> anyhow::Result<Answer<T>> {
    let json = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(bytes)
            .with_context(|| format!("the server's answer to {what} is not JSON"))?
    };
    let body = understand(&json).map_err(|why| {
        anyhow!(
            "the server answered {what} with a body this CLI does not understand: {why} \
             (is the CLI as new as the server?)"
        )
    })?;
    Ok(Answer { body, json })
}

/// Reads `json` as a `T` that must find every one of its fields in it, also those a `T` may
/// leave empty (`null`): a field renamed on the server is then missing rather than read as
/// empty. Extra fields (a newer server's additions) are ignored.
pub fn understand<T: DeserializeOwned + Serialize>(json: &Value) -> Result<T, String> {
    let body = T::deserialize(json).map_err(|e| e.to_string())?;
    let expected = serde_json::to_value(&body).map_err(|e| e.to_string())?;
    match first_missing(&expected, json, "") {
        Some(field) => Err(format!("missing field `{field}`")),
        None => Ok(body),
    }
}

/// The path of the first field of `expected` that `got` lacks, at any depth.
fn first_missing(expected: &Value, got: &Value, at: &str) -> Option<String> {
    match (expected, got) {
        (Value::Object(expected), Value::Object(got)) => {
            expected.iter().find_map(|(key, value)| {
                let path = if at.is_empty() {
                    key.clone()
                } else {
                    format!("{at}.{key}")
                };
                match got.get(key) {
                    None => Some(path),
                    Some(inner) => first_missing(value, inner, &path),
                }
            })
        }
        (Value::Array(expected), Value::Array(got)) => expected
            .iter()
            .zip(got)
            .enumerate()
            .find_map(|(index, (expected, got))| {
                first_missing(expected, got, &format!("{at}[{index}]"))
            }),
        _ => None,
    }
}

/// One line for a failed API call: the API's message, plus each field error.
pub fn describe_error(status: StatusCode, body: &[u8]) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error"));
    let message = error
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("the server answered {status}"));
    let fields = error
        .and_then(|e| e.get("fields"))
        .and_then(Value::as_object)
        .map(|fields| {
            fields
                .iter()
                .map(|(field, problem)| format!("{field} {}", problem.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    if fields.is_empty() {
        message
    } else {
        fields.join("; ")
    }
}

fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use helvetia_api_types::{Deployment, ServiceView};
    use serde_json::json;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::{Client, understand};

    /// A server that answers every request with an `ETag` and `{}`, and sends each request's
    /// head (request line and headers, lower-cased) to the test.
    async fn recording_server() -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (heads, received) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let heads = heads.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buffer = [0; 4096];
                    loop {
                        let read = socket.read(&mut buffer).await.unwrap();
                        request.extend_from_slice(&buffer[..read]);
                        let text = String::from_utf8_lossy(&request).to_lowercase();
                        let Some((head, body)) = text.split_once("\r\n\r\n") else {
                            continue;
                        };
                        let length = head
                            .lines()
                            .find_map(|line| line.strip_prefix("content-length:"))
                            .map_or(0, |n| n.trim().parse().unwrap());
                        if body.len() < length {
                            continue;
                        }
                        heads.send(head.to_owned()).unwrap();
                        let answer = "HTTP/1.1 200 OK\r\netag: \"1-7\"\r\n\
                                      content-type: application/json\r\n\
                                      content-length: 2\r\n\r\n{}";
                        socket.write_all(answer.as_bytes()).await.unwrap();
                        request.clear();
                    }
                });
            }
        });
        (format!("http://{address}"), received)
    }

    #[tokio::test]
    async fn a_change_of_a_service_carries_the_etag_of_the_read_before_it() {
        // The binary installs the TLS provider at start; a client cannot be built without one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (server, mut heads) = recording_server().await;
        let client = Client::new(&server, "token").unwrap();
        let path = "/api/v1/projects/demo/services/web";
        client
            .patch_current::<serde_json::Value>(path, &json!({"branch": "main"}))
            .await
            .unwrap();
        let read = heads.recv().await.unwrap();
        assert!(read.starts_with(&format!("get {path} ")), "{read}");
        let change = heads.recv().await.unwrap();
        assert!(change.starts_with(&format!("patch {path} ")), "{change}");
        assert!(change.contains("\r\nif-match: \"1-7\""), "{change}");
    }

    fn deployment() -> serde_json::Value {
        json!({
            "id": 7, "project": "demo", "service": "web", "kind": "build", "cause": "deploy",
            "status": "live", "status_reason": null, "git_ref": "main",
            "requested_commit": null, "commit_sha": "abc", "commit_message": "m",
            "commit_author": "a", "image": "i", "image_digest": null, "source_deployment_id": null,
            "created_by": "token:1(admin)", "created_at": "2026-11-28T10:00:00Z",
            "updated_at": "2026-11-28T10:00:00Z", "finished_at": null
        })
    }

    #[test]
    fn a_complete_answer_is_understood() {
        let deployment: Deployment = understand(&deployment()).unwrap();
        assert_eq!(deployment.id, 7);
    }

    #[test]
    fn a_renamed_field_that_may_be_empty_is_missing_not_empty() {
        let mut renamed = deployment();
        let reason = renamed["status_reason"].take();
        renamed.as_object_mut().unwrap().remove("status_reason");
        renamed["reason"] = reason;
        let error = understand::<Deployment>(&renamed).unwrap_err();
        assert_eq!(error, "missing field `status_reason`");
    }

    #[test]
    fn a_missing_nested_field_is_named_by_its_path() {
        let mut service = json!({
            "id": 1, "project": "demo", "name": "web", "repo": "r", "branch": "main",
            "dockerfile": "Dockerfile", "context": ".", "port": 8080,
            "runtime": serde_json::to_value(helvetia_api_types::RuntimeSettings::default()).unwrap(),
            "image": null, "registry_user": null,
            "url": "http://web.demo.localhost", "github": null, "created_at": "2026-11-28T10:00:00Z",
            "updated_at": "2026-11-28T10:00:00Z"
        });
        service["runtime"]["health"]
            .as_object_mut()
            .unwrap()
            .remove("tcp");
        let error = understand::<ServiceView>(&service).unwrap_err();
        assert_eq!(error, "missing field `runtime.health.tcp`");
    }
}
