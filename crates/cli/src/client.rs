//! A small HTTP client for the Helvetia API: bearer authentication, JSON in and out, and API
//! errors turned into one readable line.

use anyhow::{Context, anyhow, bail};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::GlobalArgs;
use crate::credentials::Credentials;

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    server: String,
    token: String,
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

    pub fn server(&self) -> &str {
        &self.server
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> anyhow::Result<Value> {
        self.send(Method::DELETE, path, None).await
    }

    pub async fn request_json(
        &self,
        method: Method,
        path: &str,
        body: &Value,
    ) -> anyhow::Result<Value> {
        self.send(method, path, Some(body)).await
    }

    /// A plain-text answer (an export, say).
    pub async fn get_text(&self, path: &str) -> anyhow::Result<String> {
        let response = self.request(Method::GET, path).send().await.map_err(|e| {
            anyhow!(
                "cannot reach the Helvetia server at {}: {}",
                self.server,
                root_cause(&e)
            )
        })?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .context("reading the server's answer")?;
        if status.is_success() {
            return Ok(String::from_utf8_lossy(&bytes).into_owned());
        }
        bail!(describe_error(status, &bytes))
    }

    /// A request builder with authentication, for streaming endpoints.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.server))
            .bearer_auth(&self.token)
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| {
            anyhow!(
                "cannot reach the Helvetia server at {}: {}",
                self.server,
                root_cause(&e)
            )
        })?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .context("reading the server's answer")?;
        if status.is_success() {
            if bytes.is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_slice(&bytes).context("the server's answer is not JSON");
        }
        bail!(describe_error(status, &bytes))
    }
}

/// One line for a failed API call: the API's message, plus each field error.
fn describe_error(status: StatusCode, body: &[u8]) -> String {
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
