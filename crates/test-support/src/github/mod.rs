//! A fake GitHub for tests: one axum server on a loopback port playing both github.com
//! ([`FakeGitHub::web_url`]) and its REST API ([`FakeGitHub::api_url`], GitHub Enterprise's
//! `/api/v3` layout), speaking the documented formats Helvetia relies on (collected in the
//! shared GITHUB.md). Tests start it in-process with [`FakeGitHub::start`]; browser tests run
//! the `fake-github` binary. Read `state` first, then one module per surface: `app` (manifest
//! flow, App JWTs, installation tokens), `oauth` (user authorization), `api` (users,
//! installations, repositories), `git` (clones), `writes` (statuses, check runs, comments)
//! and `webhooks`; `control` is what tests set up, in-process or over HTTP.

mod api;
mod app;
mod control;
mod git;
mod oauth;
mod state;
mod webhooks;
mod writes;

use std::path::PathBuf;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub use state::SeenRequest;
use state::{Shared, WrittenKind};
pub use webhooks::signature;

/// The values GitHub hands back when an App is created, as the manifest conversion returns them.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct AppCredentials {
    pub id: i64,
    pub slug: String,
    pub client_id: String,
    pub client_secret: String,
    pub webhook_secret: String,
    /// The App's private key, PKCS#1 PEM (`-----BEGIN RSA PRIVATE KEY-----`), as GitHub's.
    pub pem: String,
}

impl AppCredentials {
    /// The body of Helvetia's `PUT /api/v1/github/app`: these values entered by hand.
    pub fn manual_entry(&self) -> Value {
        json!({
            "app_id": self.id,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "private_key": self.pem,
            "webhook_secret": self.webhook_secret,
        })
    }
}

/// A running fake GitHub; stops when dropped.
pub struct FakeGitHub {
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeGitHub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeGitHub {
    /// Starts on a free loopback port.
    pub async fn start() -> FakeGitHub {
        Self::start_on(0).await
    }

    /// Starts on `port` of 127.0.0.1 (0 for a free one).
    pub async fn start_on(port: u16) -> FakeGitHub {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("binding the fake GitHub's port");
        let address = listener.local_addr().expect("a bound address");
        let shared = Shared::new(format!("http://{address}"));
        let router = router(shared.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .await
                .expect("the fake GitHub serves");
        });
        FakeGitHub { shared, task }
    }

    /// The github.com role, e.g. `http://127.0.0.1:PORT`.
    pub fn web_url(&self) -> String {
        self.shared.web_url.clone()
    }

    /// The api.github.com role, e.g. `http://127.0.0.1:PORT/api/v3`.
    pub fn api_url(&self) -> String {
        self.shared.api_url()
    }

    /// Registers a GitHub user (a member of `orgs`, created as needed); returns its id.
    pub fn add_user(&self, login: &str, email: &str, orgs: &[&str]) -> i64 {
        self.shared.add_user(login, email, orgs)
    }

    /// Signs the browser in to GitHub as `login`: authorizations from now on approve as them.
    /// Panics when there is no such user.
    pub fn sign_in_as(&self, login: &str) {
        assert!(
            self.shared.sign_in_as(login),
            "no fake GitHub user {login}: add_user first"
        );
    }

    /// Creates an App directly, as if someone had entered its values by hand (the manifest
    /// flow creates one through the web instead).
    pub async fn create_app(&self, name: &str) -> AppCredentials {
        app::create(&self.shared, app::Manifest::named(name), None).await
    }

    /// An installation of the App on `account` (a user's login or an organization, created as
    /// needed) granting `repos`: name, the bare repository to serve (None: metadata only) and
    /// whether it is private. Returns the installation id.
    pub fn add_installation(&self, account: &str, repos: &[(&str, Option<PathBuf>, bool)]) -> i64 {
        let repos: Vec<_> = repos
            .iter()
            .map(|(name, dir, private)| ((*name).to_owned(), dir.clone(), *private))
            .collect();
        self.shared.add_installation(account, repos)
    }

    /// The webhook secret of the App created last (its deliveries are signed with it).
    /// Panics when there is no App.
    pub fn webhook_secret(&self) -> String {
        let state = self.shared.lock();
        state.app().expect("an App").webhook_secret.clone()
    }

    /// Every installation token issued so far, oldest first.
    pub fn issued_tokens(&self) -> Vec<String> {
        let state = self.shared.lock();
        state
            .installation_tokens
            .iter()
            .map(|t| t.token.clone())
            .collect()
    }

    /// Expires every installation token issued so far.
    pub fn expire_tokens(&self) {
        self.shared.expire_tokens();
    }

    /// The commit statuses an App set on `repo` (`owner/name`) at `sha`, oldest first.
    pub fn statuses(&self, repo: &str, sha: &str) -> Vec<Value> {
        self.shared
            .lock()
            .written(WrittenKind::Status, repo, Some(sha))
    }

    /// The check runs on `repo` (`owner/name`), oldest first, as last updated.
    pub fn check_runs(&self, repo: &str) -> Vec<Value> {
        self.shared
            .lock()
            .written(WrittenKind::CheckRun, repo, None)
    }

    /// The comments on issue or pull request `number` of `repo` (`owner/name`), oldest first,
    /// as last updated.
    pub fn comments(&self, repo: &str, number: u64) -> Vec<Value> {
        let number = number.to_string();
        self.shared
            .lock()
            .written(WrittenKind::Comment, repo, Some(&number))
    }

    /// Sends a webhook delivery of `event` to `url`, signed with the App's webhook secret as
    /// GitHub signs them; the receiver's status. Panics when there is no App or no receiver.
    pub async fn deliver(&self, url: &str, event: &str, payload: Value) -> reqwest::StatusCode {
        self.deliver_with_guid(url, event, payload).await.1
    }

    /// Like [`FakeGitHub::deliver`], also returning the delivery's GUID (for `redeliver`).
    pub async fn deliver_with_guid(
        &self,
        url: &str,
        event: &str,
        payload: Value,
    ) -> (String, reqwest::StatusCode) {
        let delivered = self.shared.deliver(url, event, &payload).await;
        delivered.unwrap_or_else(|error| panic!("{error}"))
    }

    /// Sends delivery `guid` again with the same GUID and body, as GitHub's "Redeliver".
    pub async fn redeliver(&self, url: &str, guid: &str) -> reqwest::StatusCode {
        let delivered = self.shared.redeliver(url, guid).await;
        delivered.unwrap_or_else(|error| panic!("{error}"))
    }

    /// Signs in with GitHub as `login` to the Helvetia server at `server` the way a browser
    /// does — start, GitHub's authorization page, the callback — and answers the browser's
    /// session: its cookies and CSRF token. Panics if any step fails.
    pub async fn browser_sign_in(&self, server: &str, login: &str) -> BrowserSession {
        self.sign_in_as(login);
        let browser = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client");
        let hop = |response: &reqwest::Response| {
            assert!(
                response.status().is_redirection(),
                "{}: {}",
                response.url(),
                response.status()
            );
            let location = &response.headers()[reqwest::header::LOCATION];
            location.to_str().expect("a location").to_owned()
        };
        let started = browser
            .get(format!("{server}/api/v1/auth/github"))
            .send()
            .await
            .expect("the sign-in starts");
        let state_cookie = cookies(&started);
        let authorized = browser
            .get(hop(&started))
            .send()
            .await
            .expect("GitHub's authorization page answers");
        let callback = browser
            .get(hop(&authorized))
            .header(reqwest::header::COOKIE, state_cookie)
            .send()
            .await
            .expect("the callback answers");
        hop(&callback);
        let cookie = cookies(&callback);
        let csrf = cookie
            .split("; ")
            .find_map(|pair| pair.strip_prefix("helvetia_csrf="))
            .expect("a CSRF cookie")
            .to_owned();
        BrowserSession { cookie, csrf }
    }

    /// A `helvetia server` (`binary`) that takes this fake for GitHub — private destinations
    /// allowed, since the fake listens on loopback —, with `app` entered as its App and the
    /// members of `org` free to sign up.
    pub async fn server_with_app(
        &self,
        binary: &str,
        app: &AppCredentials,
        org: &str,
    ) -> crate::TestServer {
        let (web, api) = (self.web_url(), self.api_url());
        let server = crate::TestServer::start_with(
            binary,
            &[
                "--github-url",
                &web,
                "--github-api-url",
                &api,
                "--signup-github-orgs",
                org,
                "--allow-private-destinations",
            ],
        )
        .await;
        let (status, body) = server
            .api(
                reqwest::Method::PUT,
                "/api/v1/github/app",
                Some(app.manual_entry()),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        server
    }

    /// An API token with `scopes` of `login`, who signs in with GitHub to the Helvetia server
    /// at `server` as a browser does and makes the token there.
    pub async fn user_token(&self, server: &str, login: &str, scopes: &[&str]) -> String {
        let browser = self.browser_sign_in(server, login).await;
        let request = crate::http_client()
            .post(format!("{server}/api/v1/tokens"))
            .header(reqwest::header::COOKIE, &browser.cookie)
            .header("x-csrf-token", &browser.csrf)
            .json(&json!({"name": login, "scopes": scopes}));
        let (status, token) = crate::answer(request).await;
        assert_eq!(status, 201, "{token}");
        token["token"].as_str().expect("a token").to_owned()
    }

    /// Every request seen so far, credentials elided.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.shared.lock().requests.clone()
    }
}

/// A browser signed in to Helvetia: what it sends back.
pub struct BrowserSession {
    /// The `Cookie` header value.
    pub cookie: String,
    /// The `X-CSRF-Token` value its writes carry.
    pub csrf: String,
}

/// The cookies `response` sets, as a `Cookie` header value.
fn cookies(response: &reqwest::Response) -> String {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok()?.split(';').next())
        .filter(|pair| {
            pair.split_once('=')
                .is_some_and(|(_, value)| !value.is_empty())
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn router(shared: Shared) -> Router {
    let api = Router::new()
        .merge(app::api_routes())
        .merge(api::routes())
        .merge(writes::routes())
        .layer(middleware::map_response(rate_limit_headers))
        .layer(middleware::from_fn(require_user_agent));
    Router::new()
        .merge(app::web_routes())
        .merge(oauth::routes())
        .nest("/_fake", control::routes())
        .merge(git::routes())
        .nest("/api/v3", api)
        .layer(middleware::from_fn_with_state(shared.clone(), record))
        .with_state(shared)
}

/// GitHub's API refuses requests without a `User-Agent`.
async fn require_user_agent(request: Request, next: Next) -> Response {
    if request.headers().contains_key(header::USER_AGENT) {
        return next.run(request).await;
    }
    github_error(
        StatusCode::FORBIDDEN,
        "Request forbidden by administrative rules. Please make sure your request has a User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required).",
    )
}

/// The rate-limit headers GitHub's API answers carry; the fake never limits.
async fn rate_limit_headers(mut response: Response) -> Response {
    let reset = (state::now() + 3600).to_string();
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-ratelimit-limit", "5000".to_owned()),
        ("x-ratelimit-remaining", "4999".to_owned()),
        ("x-ratelimit-used", "1".to_owned()),
        ("x-ratelimit-reset", reset),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
}

/// Remembers every request, its credentials reduced to their scheme.
async fn record(State(shared): State<Shared>, request: Request, next: Next) -> Response {
    let headers = request
        .headers()
        .iter()
        .map(|(name, value)| {
            let value = value.to_str().unwrap_or("<binary>");
            let value = if name == header::AUTHORIZATION {
                let scheme = value.split(' ').next().unwrap_or_default();
                format!("{scheme} ***")
            } else {
                value.to_owned()
            };
            (name.as_str().to_owned(), value)
        })
        .collect();
    shared.lock().requests.push(SeenRequest {
        method: request.method().to_string(),
        uri: request.uri().to_string(),
        headers,
    });
    next.run(request).await
}

/// Compares two secrets in constant time.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// GitHub's error body: `{"message", "documentation_url", "status"}`.
pub(crate) fn github_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({
            "message": message,
            "documentation_url": "https://docs.github.com/rest",
            "status": status.as_u16().to_string(),
        })),
    )
        .into_response()
}

/// A refusal in GitHub's error format, small enough to travel in a `Result`.
pub(crate) struct GitHubError(pub(crate) StatusCode, pub(crate) &'static str);

impl IntoResponse for GitHubError {
    fn into_response(self) -> Response {
        github_error(self.0, self.1)
    }
}

pub(crate) const NOT_FOUND: GitHubError = GitHubError(StatusCode::NOT_FOUND, "Not Found");

/// The token in `Authorization: Bearer …` or `Authorization: token …`.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token"))
        .then(|| token.trim().to_owned())
}

/// `per_page` and `page` as GitHub reads them: 30 and 1 by default, at most 100 per page.
#[derive(serde::Deserialize)]
pub(crate) struct Page {
    per_page: Option<usize>,
    page: Option<usize>,
}

impl Page {
    /// This page of `items`, with the `Link` header (`next`, `last`, `first`, `prev`) that
    /// GitHub sends for `{api}{path}`.
    pub(crate) fn of<T: Clone>(
        &self,
        items: &[T],
        api_url: &str,
        path: &str,
    ) -> (Vec<T>, Option<HeaderValue>) {
        let per_page = self.per_page.unwrap_or(30).clamp(1, 100);
        let page = self.page.unwrap_or(1).max(1);
        let last = items.len().div_ceil(per_page).max(1);
        let start = (page - 1).saturating_mul(per_page).min(items.len());
        let end = (start + per_page).min(items.len());
        let link = |page: usize, rel: &str| {
            format!("<{api_url}{path}?per_page={per_page}&page={page}>; rel=\"{rel}\"")
        };
        let mut links = vec![];
        if page > 1 {
            links.push(link(page - 1, "prev"));
        }
        if page < last {
            links.push(link(page + 1, "next"));
            links.push(link(last, "last"));
        }
        if page > 1 {
            links.push(link(1, "first"));
        }
        let header = (!links.is_empty())
            .then(|| HeaderValue::from_str(&links.join(", ")).ok())
            .flatten();
        (items[start..end].to_vec(), header)
    }
}

/// A JSON answer with an optional `Link` header.
pub(crate) fn with_link(status: StatusCode, body: Value, link: Option<HeaderValue>) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    if let Some(link) = link {
        response.headers_mut().insert(header::LINK, link);
    }
    response
}

#[cfg(test)]
mod tests;
