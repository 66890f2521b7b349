//! GitHub's HTTP API as Helvetia's GitHub App uses it: the manifest conversion that creates the
//! App, and installation tokens minted with the App's JWT ([`jwt`]) and cached ([`tokens`]).
//!
//! Every request resolves GitHub's host through [`Outbound`] and connects only to the checked
//! addresses, redirects off. The base URLs are settings, so GitHub Enterprise Server works.

pub mod jwt;
pub mod tokens;

use std::sync::Arc;
use std::time::Duration;

use helvetia_core::checks::{ReportedCheckRun, ReportedStatus};
use helvetia_core::commit_status::CommitStatus;
use jiff::Timestamp;
use reqwest::Method;
use serde::Deserialize;
use url::Url;

use crate::outbound::{Outbound, OutboundError};

/// How long one request to GitHub may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum GitHubError {
    #[error("the GitHub App's private key is unusable: {0}")]
    InvalidKey(String),
    #[error(transparent)]
    Outbound(#[from] OutboundError),
    #[error("GitHub could not be reached: {0}")]
    Unreachable(String),
    /// GitHub answered with an error status; `message` is GitHub's own, never a credential.
    #[error("GitHub answered {status}: {message}")]
    Status { status: u16, message: String },
    #[error("GitHub's answer could not be read: {0}")]
    Answer(String),
}

impl GitHubError {
    /// Whether GitHub refused the credential (a token or JWT it no longer accepts).
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, GitHubError::Status { status: 401, .. })
    }
}

/// Where GitHub is: its web pages (github.com) and its REST API (api.github.com); on GitHub
/// Enterprise Server, `https://HOST` and `https://HOST/api/v3`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubUrls {
    pub web: Url,
    pub api: Url,
}

impl Default for GitHubUrls {
    fn default() -> GitHubUrls {
        GitHubUrls {
            web: Url::parse("https://github.com").expect("a valid URL"),
            api: Url::parse("https://api.github.com").expect("a valid URL"),
        }
    }
}

impl GitHubUrls {
    /// A web or API base URL as a setting: http(s), with a host, without credentials, query
    /// or fragment.
    pub fn parse_base(text: &str) -> Result<Url, String> {
        let url = Url::parse(text).map_err(|e| format!("`{text}` is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https")
            || url.host_str().is_none()
            || url.query().is_some()
            || url.fragment().is_some()
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return Err(format!(
                "`{text}` must be an http(s) URL without credentials, query or fragment"
            ));
        }
        Ok(url)
    }

    /// `path` (starting with `/`) under the web URL.
    pub fn web_url(&self, path: &str) -> String {
        format!("{}{path}", self.web.as_str().trim_end_matches('/'))
    }

    /// `path` (starting with `/`) under the API URL.
    pub fn api_url(&self, path: &str) -> String {
        format!("{}{path}", self.api.as_str().trim_end_matches('/'))
    }
}

/// What GitHub answers the manifest conversion: the new App and its credentials.
#[derive(Clone, Deserialize)]
pub struct ManifestConversion {
    pub id: i64,
    pub slug: Option<String>,
    pub client_id: String,
    pub client_secret: String,
    pub webhook_secret: Option<String>,
    pub pem: String,
}

impl std::fmt::Debug for ManifestConversion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManifestConversion")
            .field("id", &self.id)
            .field("slug", &self.slug)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// An installation's access token and when GitHub stops taking it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct InstallationToken {
    pub token: String,
    pub expires_at: Timestamp,
}

impl std::fmt::Debug for InstallationToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstallationToken")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// GitHub's REST API, reached through the outbound policy.
#[derive(Debug, Clone)]
pub struct GitHubApi {
    urls: GitHubUrls,
    outbound: Arc<Outbound>,
}

impl GitHubApi {
    pub fn new(urls: GitHubUrls, outbound: Arc<Outbound>) -> GitHubApi {
        // reqwest verifies GitHub's certificate with the process's rustls provider; the binary
        // installs ring at start, and so does this for a server embedded elsewhere (tests).
        let _ = rustls::crypto::ring::default_provider().install_default();
        GitHubApi { urls, outbound }
    }

    pub fn urls(&self) -> &GitHubUrls {
        &self.urls
    }

    /// Turns the code GitHub handed back at the end of the manifest flow into the App.
    pub async fn convert_manifest(&self, code: &str) -> Result<ManifestConversion, GitHubError> {
        let code: String = url::form_urlencoded::byte_serialize(code.as_bytes()).collect();
        let url = self
            .urls
            .api_url(&format!("/app-manifests/{code}/conversions"));
        self.send(Method::POST, &url, None, None).await
    }

    /// Mints a token of `installation` with the App's JWT.
    pub async fn installation_token(
        &self,
        app_jwt: &str,
        installation: i64,
    ) -> Result<InstallationToken, GitHubError> {
        let url = self
            .urls
            .api_url(&format!("/app/installations/{installation}/access_tokens"));
        self.send(Method::POST, &url, Some(app_jwt), None).await
    }

    /// Sets `status` on commit `sha` of `repository` (`owner/name`) with an installation token.
    pub async fn create_commit_status(
        &self,
        installation_token: &str,
        repository: &str,
        sha: &str,
        status: &CommitStatus,
    ) -> Result<(), GitHubError> {
        let url = self
            .urls
            .api_url(&format!("/repos/{repository}/statuses/{sha}"));
        let body = serde_json::to_value(status).map_err(|e| GitHubError::Answer(e.to_string()))?;
        let _: serde::de::IgnoredAny = self
            .send(Method::POST, &url, Some(installation_token), Some(&body))
            .await?;
        Ok(())
    }

    /// Writes the comment `body` on issue or pull request `number` of `repository`: edits
    /// comment `existing` in place when given, else creates one. Answers the comment's id.
    pub async fn upsert_issue_comment(
        &self,
        installation_token: &str,
        repository: &str,
        number: u64,
        existing: Option<i64>,
        body: &str,
    ) -> Result<i64, GitHubError> {
        #[derive(Deserialize)]
        struct Comment {
            id: i64,
        }
        let (method, path) = match existing {
            Some(id) => (
                Method::PATCH,
                format!("/repos/{repository}/issues/comments/{id}"),
            ),
            None => (
                Method::POST,
                format!("/repos/{repository}/issues/{number}/comments"),
            ),
        };
        let url = self.urls.api_url(&path);
        let body = serde_json::json!({ "body": body });
        let comment: Comment = self
            .send(method, &url, Some(installation_token), Some(&body))
            .await?;
        Ok(comment.id)
    }

    /// What CI reports on commit `sha` of `repository` (`owner/name`): the newest status of
    /// each context and the check runs (the first 100 of each: more is not a CI).
    pub async fn commit_checks(
        &self,
        installation_token: &str,
        repository: &str,
        sha: &str,
    ) -> Result<(Vec<ReportedStatus>, Vec<ReportedCheckRun>), GitHubError> {
        #[derive(Deserialize)]
        struct Combined {
            statuses: Vec<ReportedStatus>,
        }
        #[derive(Deserialize)]
        struct Runs {
            check_runs: Vec<ReportedCheckRun>,
        }
        let commit = format!("/repos/{repository}/commits/{sha}");
        let statuses = self.urls.api_url(&format!("{commit}/status?per_page=100"));
        let runs = self
            .urls
            .api_url(&format!("{commit}/check-runs?per_page=100"));
        let token = Some(installation_token);
        let combined: Combined = self.send(Method::GET, &statuses, token, None).await?;
        let runs: Runs = self.send(Method::GET, &runs, token, None).await?;
        Ok((combined.statuses, runs.check_runs))
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        url: &str,
        bearer: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> Result<T, GitHubError> {
        let client = self.client(url).await?;
        let mut request = client
            .request(method, url)
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .header("User-Agent", "helvetia");
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        // reqwest's errors name the URL only, which holds no credential.
        let response = request
            .send()
            .await
            .map_err(|e| GitHubError::Unreachable(e.without_url().to_string()))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| GitHubError::Unreachable(e.without_url().to_string()))?;
        if !status.is_success() {
            #[derive(Deserialize)]
            struct Message {
                message: String,
            }
            let message = serde_json::from_slice::<Message>(&body)
                .map(|m| m.message)
                .unwrap_or_else(|_| "no message".into());
            return Err(GitHubError::Status {
                status: status.as_u16(),
                message,
            });
        }
        serde_json::from_slice(&body).map_err(|e| GitHubError::Answer(e.to_string()))
    }

    /// A client that connects only to the addresses the outbound policy checked for `url`'s
    /// host, and follows no redirect.
    async fn client(&self, url: &str) -> Result<reqwest::Client, GitHubError> {
        let parsed = Url::parse(url).map_err(|e| GitHubError::Unreachable(e.to_string()))?;
        Ok(self.outbound.http_client(&parsed, REQUEST_TIMEOUT).await?)
    }
}
