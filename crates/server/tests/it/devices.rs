//! `helvetia login` through the browser: the device authorization grant (RFC 8628).

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use helvetia_core::auth::{Scope, Scopes, token_hash};
use helvetia_server::api;
use helvetia_store::audit::AuditLog;
use helvetia_store::devices::NewDeviceCode;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use crate::harness::Api;

const START: &str = "/api/v1/auth/device";
const TOKEN: &str = "/api/v1/auth/device/token";
const APPROVE: &str = "/api/v1/auth/device/approve";

/// A new device login: `(device_code, user_code)`.
async fn start(api: &Api, client_name: &str) -> (String, String) {
    let (status, body) = api
        .call(
            Method::POST,
            START,
            None,
            Some(json!({"client_name": client_name})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (
        body["device_code"].as_str().unwrap().to_owned(),
        body["user_code"].as_str().unwrap().to_owned(),
    )
}

async fn poll(api: &Api, device_code: &str) -> (StatusCode, Value) {
    api.call(
        Method::POST,
        TOKEN,
        None,
        Some(json!({"device_code": device_code})),
    )
    .await
}

async fn decide(api: &Api, token: &str, user_code: &str, approve: bool) -> (StatusCode, Value) {
    api.call(
        Method::POST,
        APPROVE,
        Some(token),
        Some(json!({"user_code": user_code, "approve": approve})),
    )
    .await
}

/// The RFC 6749 §5.2 error a refused poll answers.
fn oauth_error(answer: &(StatusCode, Value)) -> &str {
    assert_eq!(answer.0, StatusCode::BAD_REQUEST, "{}", answer.1);
    answer.1["error"].as_str().unwrap()
}

#[tokio::test]
async fn a_login_approved_by_a_user_gets_their_token_once() {
    let api = Api::new().await;
    let (user_token, user) = api.user("ada@example.com").await;

    let (status, started) = api
        .call(
            Method::POST,
            START,
            None,
            Some(json!({"client_name": "helvetia on laptop"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let device_code = started["device_code"].as_str().unwrap();
    let user_code = started["user_code"].as_str().unwrap();
    assert!(
        user_code.len() == 9
            && user_code.as_bytes()[4] == b'-'
            && user_code
                .chars()
                .all(|c| c == '-' || "BCDFGHJKLMNPQRSTVWXZ".contains(c)),
        "{user_code}"
    );
    assert_eq!(started["verification_uri"], "http://127.0.0.1/device");
    assert_eq!(
        started["verification_uri_complete"],
        format!("http://127.0.0.1/device?code={user_code}")
    );
    assert_eq!(started["expires_in"], 600);
    assert_eq!(started["interval"], 5);
    assert_eq!(
        oauth_error(&poll(&api, device_code).await),
        "authorization_pending"
    );

    // The code is typed without its dash, in lower case.
    let typed = user_code.replace('-', "").to_lowercase();
    let (status, decided) = decide(&api, &user_token, &typed, true).await;
    assert_eq!(status, StatusCode::OK, "{decided}");
    assert_eq!(
        decided,
        json!({"client_name": "helvetia on laptop", "approved": true})
    );

    // Redeemed in the RFC's form; an approved login need not wait for the interval.
    let request = Request::builder()
        .method(Method::POST)
        .uri(TOKEN)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code={device_code}&client_id=helvetia"
        )))
        .unwrap();
    let (status, issued) = api.send(request).await;
    assert_eq!(status, StatusCode::OK, "{issued}");
    assert_eq!(issued["token_type"], "Bearer");
    let token = issued["access_token"].as_str().unwrap();
    assert!(token.starts_with("hlv_"));

    let (status, me) = api.call(Method::GET, "/api/v1/me", Some(token), None).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["user"]["email"], "ada@example.com");
    assert_eq!(me["token_name"], "CLI: helvetia on laptop");
    assert_eq!(me["scopes"], json!(["admin"]));
    let (_, tokens) = api
        .call(Method::GET, "/api/v1/tokens", Some(token), None)
        .await;
    let listed = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "CLI: helvetia on laptop")
        .unwrap();
    assert_eq!(listed["owner"], "ada@example.com");
    assert_eq!(listed["team"], Value::Null);

    // Once only.
    assert_eq!(oauth_error(&poll(&api, device_code).await), "invalid_grant");
    let (status, _) = decide(&api, &user_token, user_code, false).await;
    assert_eq!(status, StatusCode::CONFLICT);

    let log = api
        .store
        .audit_log(AuditLog::User(user), None, 20)
        .await
        .unwrap();
    let actions: Vec<&str> = log.iter().map(|entry| entry.action.as_str()).collect();
    assert!(
        actions.starts_with(&["token.create", "auth.device_approve"]),
        "{actions:?}"
    );
}

#[tokio::test]
async fn denied_expired_hurried_and_unknown_logins_get_no_token() {
    let api = Api::new().await;
    let (user_token, _) = api.user("ada@example.com").await;

    let (denied, user_code) = start(&api, "denied").await;
    let (status, decided) = decide(&api, &user_token, &user_code, false).await;
    assert_eq!(status, StatusCode::OK, "{decided}");
    assert_eq!(oauth_error(&poll(&api, &denied).await), "access_denied");
    let (status, _) = decide(&api, &user_token, &user_code, true).await;
    assert_eq!(status, StatusCode::CONFLICT, "a denial is final");

    let (hurried, _) = start(&api, "hurried").await;
    assert_eq!(
        oauth_error(&poll(&api, &hurried).await),
        "authorization_pending"
    );
    let slow_down = poll(&api, &hurried).await;
    assert_eq!(oauth_error(&slow_down), "slow_down");
    assert!(
        slow_down.1["error_description"]
            .as_str()
            .unwrap()
            .contains("every 10 s"),
        "{}",
        slow_down.1
    );

    // A login that expired before anyone approved it.
    api.store
        .create_device_code(&NewDeviceCode {
            device_code_hash: token_hash("an-expired-device-code"),
            user_code: "BCDFGHJK".into(),
            client_name: "late".into(),
            expires_at: Timestamp::now() - SignedDuration::from_secs(1),
            interval_secs: 5,
        })
        .await
        .unwrap();
    assert_eq!(
        oauth_error(&poll(&api, "an-expired-device-code").await),
        "expired_token"
    );
    let (status, _) = decide(&api, &user_token, "BCDF-GHJK", true).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    assert_eq!(
        oauth_error(&poll(&api, "no-such-device-code").await),
        "invalid_grant"
    );
    let (status, body) = decide(&api, &user_token, "AEIO-UAEI", true).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // Malformed polls are refused in OAuth's shape too.
    let (status, body) = api
        .call(Method::POST, TOKEN, None, Some(json!({"grant_type": "x"})))
        .await;
    assert_eq!(oauth_error(&(status, body)), "invalid_request");
    let (status, body) = api
        .call(
            Method::POST,
            TOKEN,
            None,
            Some(json!({"device_code": hurried, "grant_type": "password"})),
        )
        .await;
    assert_eq!(oauth_error(&(status, body)), "unsupported_grant_type");
}

#[tokio::test]
async fn only_a_users_full_credential_approves() {
    let api = Api::new().await;
    let (user_token, _) = api.user("ada@example.com").await;
    let (_, user_code) = start(&api, "laptop").await;

    let (system, stored) = api::mint_token("break-glass".into(), Scopes::admin(), None);
    api.store.issue_system_token(&stored).await.unwrap();
    let (status, body) = decide(&api, &system, &user_code, true).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("belongs to no user"),
        "{body}"
    );

    let (_, me) = api
        .call(Method::GET, "/api/v1/me", Some(&user_token), None)
        .await;
    let team = me["teams"][0]["team"].as_str().unwrap();
    let (status, limited) = api
        .call(
            Method::POST,
            "/api/v1/tokens",
            Some(&user_token),
            Some(json!({"name": "one team", "scopes": ["admin"], "team": team})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{limited}");
    let (status, body) = decide(&api, limited["token"].as_str().unwrap(), &user_code, true).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    let reader = api.token(&[Scope::Read, Scope::Deploy, Scope::Write]).await;
    let (status, _) = decide(&api, &reader, &user_code, true).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // None of those decided anything.
    let (status, _) = decide(&api, &user_token, &user_code, true).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn the_approval_page_shows_the_code_escaped_and_may_not_be_framed() {
    let api = Api::new().await;
    let page = |path: &str| {
        let request = Request::builder().uri(path).body(Body::empty()).unwrap();
        let router = api.router.clone();
        async move { tower::ServiceExt::oneshot(router, request).await.unwrap() }
    };
    let response = page("/device?code=bcdfghjk").await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
    let policy = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    let nonce = policy
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap();
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap();
    let html = String::from_utf8(body.to_bytes().to_vec()).unwrap();
    assert!(html.contains("value=\"BCDF-GHJK\""), "{html}");
    assert!(
        html.contains(&format!("<script nonce=\"{nonce}\">")),
        "{html}"
    );
    assert!(
        html.contains("fetch('/api/v1/auth/device/approve'"),
        "{html}"
    );

    // Whatever the query holds, only a well-formed code reaches the page.
    let (status, html) = api
        .send(
            Request::builder()
                .uri("/device?code=%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.as_str().unwrap().contains("alert(1)"), "{html}");
}

/// With a public URL, people are sent there to approve, whatever address the CLI used.
#[tokio::test]
async fn the_verification_uri_is_on_the_public_url() {
    let public = helvetia_core::edge::PublicUrl::parse("https://helvetia.example.com").unwrap();
    let api = Api::configured(|settings| settings.public_url = Some(public)).await;
    let (status, started) = api
        .call(
            Method::POST,
            START,
            None,
            Some(json!({"client_name": "laptop"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    assert_eq!(
        started["verification_uri"],
        "https://helvetia.example.com/device"
    );
}
