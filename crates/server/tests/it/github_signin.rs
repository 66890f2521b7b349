//! Sign in with GitHub and the user's repositories, against the fake GitHub started in-process.
//! The browser is played by hand: the API's redirect is followed to the fake's authorization
//! page, whose redirect brings the code and `state` back to the callback.

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use helvetia_core::outbound::DestinationPolicy;
use helvetia_engine::github::GitHubUrls;
use helvetia_engine::outbound::{Outbound, ResolverSetting};
use helvetia_server::github_user::{AppCredentials, GitHubError};
use helvetia_test_support::github::FakeGitHub;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::harness::Api;

/// The fake GitHub with an App, an API that signs in with it (`orgs` may sign up) and the
/// App's credentials.
pub(crate) async fn setup(orgs: &[&str]) -> (FakeGitHub, Api, AppCredentials) {
    // Installs the TLS provider the server's GitHub client (and this test's) needs, as the
    // binary's `main` does.
    helvetia_test_support::http_client();
    let github = FakeGitHub::start().await;
    let created = github.create_app("helvetia").await;
    let credentials = AppCredentials {
        web_url: github.web_url().parse().unwrap(),
        api_url: github.api_url().parse().unwrap(),
        client_id: created.client_id.clone(),
        client_secret: created.client_secret.clone(),
    };
    let kept = credentials.clone();
    let orgs: Vec<String> = orgs.iter().map(|org| (*org).to_owned()).collect();
    let urls = GitHubUrls {
        web: credentials.web_url,
        api: credentials.api_url,
    };
    let api = Api::configured(move |settings| {
        // The fake listens on loopback.
        settings.repo_policy.destinations.allow_private = true;
        settings.github = urls;
        settings.signup_github_orgs = orgs;
    })
    .await;
    // The App entered by hand, as an instance administrator would.
    let (status, body) = api
        .call(
            Method::PUT,
            "/api/v1/github/app",
            Some(&api.admin),
            Some(created.manual_entry()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (github, api, kept)
}

/// The value of cookie `name` among a response's `Set-Cookie` headers.
fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|cookie| cookie.split(';').next()?.split_once('='))
        .find(|(key, value)| *key == name && !value.is_empty())
        .map(|(_, value)| value.to_owned())
}

/// A browser's start of a sign-in: the fake GitHub's authorization URL and the browser cookie.
async fn start(api: &Api) -> (String, String) {
    let request = Request::get("/api/v1/auth/github")
        .body(Body::empty())
        .unwrap();
    let response = api.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()[header::LOCATION].to_str().unwrap();
    let cookie = set_cookie(response.headers(), "helvetia_github").unwrap();
    (location.to_owned(), cookie)
}

/// GitHub's answer to the authorization page: the callback's path and query.
async fn authorize(authorize_url: &str) -> String {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client.get(authorize_url).send().await.unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::FOUND);
    let back = response.headers()[reqwest::header::LOCATION]
        .to_str()
        .unwrap();
    let back = url::Url::parse(back).unwrap();
    assert_eq!(back.path(), "/api/v1/auth/github/callback");
    format!("{}?{}", back.path(), back.query().unwrap())
}

/// Query parameter `name` of `path`.
fn param(path: &str, name: &str) -> String {
    url::form_urlencoded::parse(path.split_once('?').unwrap().1.as_bytes())
        .find(|(key, _)| key == name)
        .unwrap()
        .1
        .into_owned()
}

/// The callback as a browser with cookie `browser` (if any) calls it.
async fn callback(api: &Api, path: &str, browser: Option<&str>) -> axum::response::Response {
    let mut request = Request::get(path);
    if let Some(browser) = browser {
        request = request.header(header::COOKIE, format!("helvetia_github={browser}"));
    }
    api.router
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

async fn error_of(response: axum::response::Response) -> (StatusCode, String) {
    let status = response.status();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    (
        status,
        body["error"]["message"].as_str().unwrap().to_owned(),
    )
}

/// Signs in with GitHub as `login` from start to end; answers the session cookie.
pub(crate) async fn sign_in(api: &Api, github: &FakeGitHub, login: &str) -> String {
    github.sign_in_as(login);
    let (authorize_url, browser) = start(api).await;
    let back = authorize(&authorize_url).await;
    let response = callback(api, &back, Some(&browser)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{back}");
    set_cookie(response.headers(), "helvetia_session").unwrap()
}

/// `GET /api/v1/me` with a browser's session cookie.
async fn me(api: &Api, session: &str) -> Value {
    let request = Request::get("/api/v1/me")
        .header(header::COOKIE, format!("helvetia_session={session}"))
        .body(Body::empty())
        .unwrap();
    let (status, body) = api.send(request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn signing_in_with_github_signs_up_members_of_allowed_organizations_once() {
    let (github, api, _) = setup(&["acme"]).await;
    github.add_user("octo", "octo@acme.example", &["Acme"]);
    let session = sign_in(&api, &github, "octo").await;
    let first = me(&api, &session).await;
    assert_eq!(first["user"]["email"], "octo@acme.example", "{first}");
    // The user's GitHub token is kept sealed, never as GitHub issued it (`ghu_…`).
    let id = helvetia_core::auth::UserId(first["user"]["id"].as_i64().unwrap());
    let kept = api.store.github_token(id).await.unwrap().unwrap();
    assert!(!kept.sealed.contains("ghu_"), "{}", kept.sealed);
    assert!(kept.expires_at.is_some());
    // Signing in again is the same account, not a second one.
    let again = sign_in(&api, &github, "octo").await;
    assert_eq!(me(&api, &again).await["user"]["id"], first["user"]["id"]);
    let request = Request::get("/api/v1/audit")
        .header(header::COOKIE, format!("helvetia_session={again}"))
        .body(Body::empty())
        .unwrap();
    let (status, audit) = api.send(request).await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|entry| entry["action"].as_str())
        .collect();
    assert!(actions.contains(&"auth.github_link"), "{audit}");
    assert!(actions.contains(&"auth.signin"), "{audit}");
}

#[tokio::test]
async fn a_github_user_outside_the_allowed_organizations_cannot_sign_up() {
    let (github, api, _) = setup(&["acme"]).await;
    github.add_user("stranger", "stranger@elsewhere.example", &["other"]);
    github.sign_in_as("stranger");
    let (authorize_url, browser) = start(&api).await;
    let back = authorize(&authorize_url).await;
    let (status, message) = error_of(callback(&api, &back, Some(&browser)).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(message.contains("may not sign up"), "{message}");
    assert!(api.store.list_users().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_state_that_is_missing_replayed_or_another_browsers_is_refused() {
    let (github, api, _) = setup(&["acme"]).await;
    github.add_user("octo", "octo@acme.example", &["acme"]);
    github.sign_in_as("octo");
    // Another browser's cookie: refused, and the state is used up.
    let (authorize_url, _) = start(&api).await;
    let (_, other_browser) = start(&api).await;
    let back = authorize(&authorize_url).await;
    let (status, message) = error_of(callback(&api, &back, Some(&other_browser)).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("another browser"), "{message}");
    // No cookie at all.
    let (authorize_url, browser) = start(&api).await;
    let back = authorize(&authorize_url).await;
    let (status, message) = error_of(callback(&api, &back, None).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("cookie is missing"), "{message}");
    // No state.
    let code_only = format!("/api/v1/auth/github/callback?code={}", param(&back, "code"));
    let (status, message) = error_of(callback(&api, &code_only, Some(&browser)).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("`state`"), "{message}");
    // Replayed: the first use signs in, the second is refused.
    let response = callback(&api, &back, Some(&browser)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (status, message) = error_of(callback(&api, &back, Some(&browser)).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("used already"), "{message}");
}

#[tokio::test]
async fn a_wrong_or_missing_pkce_verifier_and_a_refused_code_are_github_errors() {
    let (github, api, credentials) = setup(&["acme"]).await;
    github.add_user("octo", "octo@acme.example", &["acme"]);
    github.sign_in_as("octo");
    // The code of one authorization with the state (and so the verifier) of another: GitHub
    // refuses the exchange with HTTP 200 and an `error`.
    let (first_url, _) = start(&api).await;
    let (second_url, browser) = start(&api).await;
    let first_back = authorize(&first_url).await;
    let second_back = authorize(&second_url).await;
    let crossed = format!(
        "/api/v1/auth/github/callback?code={}&state={}",
        param(&first_back, "code"),
        param(&second_back, "state")
    );
    let (status, message) = error_of(callback(&api, &crossed, Some(&browser)).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("GitHub refused"), "{message}");
    assert!(message.contains("incorrect or expired"), "{message}");
    // The exchange without the verifier (sent empty) of an authorization with a challenge.
    let (url, _) = start(&api).await;
    let back = authorize(&url).await;
    let outbound = Outbound::new(
        DestinationPolicy {
            allow_private: true,
        },
        ResolverSetting::System,
    )
    .unwrap();
    let exchanged = helvetia_server::github_user::exchange_code(
        &outbound,
        &credentials,
        &param(&back, "code"),
        "http://127.0.0.1:7300/api/v1/auth/github/callback",
        "",
    )
    .await;
    let Err(GitHubError::Refused(description)) = exchanged else {
        panic!("a missing verifier was not refused");
    };
    assert!(
        description.contains("incorrect or expired"),
        "{description}"
    );
    // A code GitHub never issued.
    let (url, browser) = start(&api).await;
    let back = authorize(&url).await;
    let forged = format!(
        "/api/v1/auth/github/callback?code=0000&state={}",
        param(&back, "state")
    );
    let (status, message) = error_of(callback(&api, &forged, Some(&browser)).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("GitHub refused"), "{message}");
    assert!(api.store.list_users().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_linked_account_signs_in_as_itself() {
    let (github, api, _) = setup(&[]).await;
    // Nobody may sign up with GitHub here; an existing account links itself.
    let (token, user) = api.user("ada@example.com").await;
    github.add_user("ada-gh", "someone-else@example.com", &[]);
    github.sign_in_as("ada-gh");
    let request = Request::post("/api/v1/me/github")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let response = api.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let browser = set_cookie(response.headers(), "helvetia_github").unwrap();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let started: Value = serde_json::from_slice(&bytes).unwrap();
    let back = authorize(started["authorize_url"].as_str().unwrap()).await;
    let response = callback(&api, &back, Some(&browser)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(set_cookie(response.headers(), "helvetia_session").is_none());
    let session = sign_in(&api, &github, "ada-gh").await;
    let signed_in = me(&api, &session).await;
    assert_eq!(signed_in["user"]["id"], json!(user.0), "{signed_in}");
    assert_eq!(signed_in["user"]["email"], "ada@example.com");
}

#[tokio::test]
async fn repositories_are_listed_across_pages() {
    let (github, api, _) = setup(&["acme"]).await;
    github.add_user("octo", "octo@acme.example", &["acme"]);
    let names: Vec<String> = (0..250).map(|n| format!("repo-{n:03}")).collect();
    let repos: Vec<(&str, Option<std::path::PathBuf>, bool)> = names
        .iter()
        .map(|name| (name.as_str(), None, name.ends_with('7')))
        .collect();
    let installation = github.add_installation("acme", &repos);
    let session = sign_in(&api, &github, "octo").await;
    let get = |path: String| {
        let session = session.clone();
        let api = &api;
        async move {
            let request = Request::get(path)
                .header(header::COOKIE, format!("helvetia_session={session}"))
                .body(Body::empty())
                .unwrap();
            api.send(request).await
        }
    };
    let (status, installations) = get("/api/v1/github/installations".into()).await;
    assert_eq!(status, StatusCode::OK, "{installations}");
    assert_eq!(
        installations[0]["id"],
        json!(installation),
        "{installations}"
    );
    assert_eq!(installations[0]["account"], "acme");
    let path = format!("/api/v1/github/installations/{installation}/repositories");
    let (status, listed) = get(path.clone()).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 250);
    let mut seen: Vec<&str> = listed.iter().map(|r| r["name"].as_str().unwrap()).collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), 250);
    assert_eq!(
        listed[0]["clone_url"],
        format!(
            "{}/{}.git",
            github.web_url(),
            listed[0]["full_name"].as_str().unwrap()
        )
    );
    let pages = |github: &FakeGitHub| {
        github
            .requests()
            .iter()
            .filter(|r| {
                r.uri
                    .contains(&format!("/user/installations/{installation}/repositories"))
            })
            .count()
    };
    assert_eq!(pages(&github), 3, "three pages of 100");
    // Asked again within the minute: from the cache.
    let (status, _) = get(path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(pages(&github), 3);
    let (status, _) = get("/api/v1/github/installations/999999/repositories".into()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
