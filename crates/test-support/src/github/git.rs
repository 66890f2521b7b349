//! Git's smart HTTP protocol at `{web}/{owner}/{repo}.git/…`, read-only, served by `git
//! http-backend` as a CGI program (an argument vector and environment, never a shell). A private
//! repository wants Basic `x-access-token:<installation token>` with an unexpired token of an
//! installation that grants it, as GitHub does; a public one also serves anonymous clones.

use std::process::Stdio;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tokio::io::AsyncWriteExt;

use super::state::Shared;

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route("/{owner}/{repo}/info/refs", get(info_refs))
        .route("/{owner}/{repo}/git-upload-pack", post(upload_pack))
}

/// Why a git request is refused.
enum Refused {
    NotFound,
    /// Asks git for credentials, as GitHub does.
    AuthenticationRequired,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::NotFound => (StatusCode::NOT_FOUND, "Repository not found.\n").into_response(),
            Refused::AuthenticationRequired => (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Basic realm=\"GitHub\"")],
                "Invalid username or token.\n",
            )
                .into_response(),
        }
    }
}

/// The `(user, password)` of a Basic `Authorization` header.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// The bare repository behind `owner/repo(.git)` when the request may read it.
fn authorize(
    shared: &Shared,
    owner: &str,
    repo: &str,
    headers: &HeaderMap,
) -> Result<std::path::PathBuf, Refused> {
    let name = repo.strip_suffix(".git").unwrap_or(repo);
    let state = shared.lock();
    let found = state.installations.iter().find_map(|installation| {
        let repo = installation
            .repos
            .iter()
            .find(|r| installation.account.login == owner && r.name == name)?;
        Some((installation.id, repo))
    });
    let (installation_id, repo) = found.ok_or(Refused::NotFound)?;
    let dir = repo.dir.clone().ok_or(Refused::NotFound)?;
    let granted = match basic_credentials(headers) {
        Some((user, password)) => {
            let token = state.token_installation(&password);
            let grants = token.is_some_and(|t| {
                t.installation_id == installation_id
                    && t.repositories
                        .as_ref()
                        .is_none_or(|names| names.iter().any(|n| n == name))
            });
            if user != "x-access-token" || !grants {
                return Err(Refused::AuthenticationRequired);
            }
            true
        }
        None => false,
    };
    if repo.private && !granted {
        return Err(Refused::AuthenticationRequired);
    }
    Ok(dir)
}

async fn info_refs(
    State(shared): State<Shared>,
    Path((owner, repo)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let query = query.unwrap_or_default();
    if query != "service=git-upload-pack" {
        // Pushing (git-receive-pack) and git's "dumb" protocol are not served.
        return (StatusCode::FORBIDDEN, "Only git-upload-pack is served.\n").into_response();
    }
    match authorize(&shared, &owner, &repo, &headers) {
        Ok(dir) => {
            http_backend(
                &dir,
                Method::GET,
                "info/refs",
                &query,
                &headers,
                Bytes::new(),
            )
            .await
        }
        Err(refused) => refused.into_response(),
    }
}

async fn upload_pack(
    State(shared): State<Shared>,
    Path((owner, repo)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match authorize(&shared, &owner, &repo, &headers) {
        Ok(dir) => http_backend(&dir, Method::POST, "git-upload-pack", "", &headers, body).await,
        Err(refused) => refused.into_response(),
    }
}

/// Runs `git http-backend` for `dir`'s `path` and turns its CGI answer into a response.
async fn http_backend(
    dir: &std::path::Path,
    method: Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let (Some(root), Some(name)) = (dir.parent(), dir.file_name()) else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "bad repository path").into_response();
    };
    let header = |name: HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let mut command = tokio::process::Command::new("git");
    command
        .arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", format!("/{}/{path}", name.to_string_lossy()))
        .env("REQUEST_METHOD", method.as_str())
        .env("QUERY_STRING", query)
        .env("CONTENT_TYPE", header(header::CONTENT_TYPE))
        .env("CONTENT_LENGTH", body.len().to_string())
        // git gzips its requests; http-backend inflates them when told.
        .env("HTTP_CONTENT_ENCODING", header(header::CONTENT_ENCODING))
        .env(
            "GIT_PROTOCOL",
            header(HeaderName::from_static("git-protocol")),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, format!("git: {error}")).into_response();
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        // Written alongside reading the answer, so that neither pipe fills up and blocks. A
        // failed write means git stopped reading; its own answer says why.
        tokio::spawn(async move { stdin.write_all(&body).await.ok() });
    }
    let output = match child.wait_with_output().await {
        Ok(output) => output,
        Err(error) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, format!("git: {error}")).into_response();
        }
    };
    cgi_response(&output.stdout).unwrap_or_else(|| {
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        (StatusCode::INTERNAL_SERVER_ERROR, stderr).into_response()
    })
}

/// A CGI program's output (headers, a blank line, the body) as a response.
fn cgi_response(output: &[u8]) -> Option<Response> {
    let (head, body) = [&b"\r\n\r\n"[..], b"\n\n"].iter().find_map(|separator| {
        let at = output
            .windows(separator.len())
            .position(|w| w == *separator)?;
        Some((&output[..at], &output[at + separator.len()..]))
    })?;
    let mut response = Response::new(Body::from(body.to_vec()));
    for line in std::str::from_utf8(head).ok()?.lines() {
        let (name, value) = line.split_once(':')?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split(' ').next()?.parse().ok()?;
            *response.status_mut() = StatusCode::from_u16(code).ok()?;
        } else {
            response.headers_mut().append(
                HeaderName::from_bytes(name.as_bytes()).ok()?,
                HeaderValue::from_str(value).ok()?,
            );
        }
    }
    Some(response)
}
