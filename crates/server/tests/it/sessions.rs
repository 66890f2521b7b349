//! Sessions: access tokens (the JWT checks), refresh-token rotation and reuse, signing out,
//! the session cookies with their CSRF check, and signing-key rotation.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use helvetia_core::auth::UserId;
use helvetia_server::passwords;
use helvetia_server::vault::Vault;
use helvetia_store::audit::{AuditBy, AuditLog};
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::BodyExt;
use jiff::Timestamp;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::harness::Api;

pub const PASSWORD: &str = "correct horse battery staple";

/// A user with `PASSWORD`.
pub async fn account(api: &Api, email: &str) -> UserId {
    let (_, user) = api.user(email).await;
    let hash = passwords::hash(PASSWORD.into()).await.unwrap();
    api.store
        .set_password(user, &hash, AuditBy::default(), None)
        .await
        .unwrap();
    user
}

/// The answer to a request: status, JSON body and `Set-Cookie` values.
pub async fn exchange(api: &Api, request: Request<Body>) -> (StatusCode, Value, Vec<String>) {
    let response = api.router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let cookies = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .collect();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, body, cookies)
}

pub fn post_json(path: &str) -> axum::http::request::Builder {
    Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json")
}

pub async fn sign_in(api: &Api, body: Value) -> (StatusCode, Value) {
    api.call(Method::POST, "/api/v1/auth/signin", None, Some(body))
        .await
}

/// Signs in with `PASSWORD`; answers the access and the refresh token.
pub async fn session(api: &Api, email: &str) -> (String, String) {
    let (status, body) = sign_in(api, json!({"email": email, "password": PASSWORD})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

pub async fn me(api: &Api, access: &str) -> StatusCode {
    api.call(Method::GET, "/api/v1/me", Some(access), None)
        .await
        .0
}

async fn refresh(api: &Api, token: &str) -> (StatusCode, Value) {
    api.call(
        Method::POST,
        "/api/v1/auth/refresh",
        None,
        Some(json!({"refresh_token": token})),
    )
    .await
}

/// The signing key's id and secret, read the way the server reads them.
async fn signing_key(api: &Api) -> (String, Vec<u8>) {
    let vault = Vault::open_for(api.dir.path(), None, &api.store)
        .await
        .unwrap();
    let key = api.store.signing_keys(Timestamp::now()).await.unwrap();
    let key = key.into_iter().next().unwrap();
    let secret = vault
        .open(&format!("signing-key:{}", key.kid), &key.sealed_secret)
        .unwrap();
    (key.kid, hex::decode(secret).unwrap())
}

/// A JWT with this header and claims, signed with HMAC-SHA-256 (or -384 when the header says
/// HS384) under `secret`.
fn forge(header: Value, claims: Value, secret: &[u8]) -> String {
    let encode = |value: &Value| URL_SAFE_NO_PAD.encode(value.to_string());
    let message = format!("{}.{}", encode(&header), encode(&claims));
    let signature = if header["alg"] == "HS384" {
        let mut mac = Hmac::<sha2::Sha384>::new_from_slice(secret).unwrap();
        mac.update(message.as_bytes());
        mac.finalize().into_bytes().to_vec()
    } else {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
        mac.update(message.as_bytes());
        mac.finalize().into_bytes().to_vec()
    };
    format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn forged_expired_and_foreign_access_tokens_are_refused() {
    let api = Api::new().await;
    account(&api, "ada@example.com").await;
    let (access, _) = session(&api, "ada@example.com").await;
    assert_eq!(me(&api, &access).await, StatusCode::OK);
    let (kid, secret) = signing_key(&api).await;
    let good = claims_of(&access);
    let now = Timestamp::now().as_second();
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": kid});
    // The forgery works when nothing is wrong: every refusal below is for its one change.
    let control = forge(header.clone(), good.clone(), &secret);
    assert_eq!(me(&api, &control).await, StatusCode::OK);

    let with = |change: Value| {
        let mut claims = good.clone();
        for (key, value) in change.as_object().unwrap() {
            claims[key] = value.clone();
        }
        claims
    };
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "kid": kid}).to_string()),
        URL_SAFE_NO_PAD.encode(good.to_string())
    );
    let cases = [
        ("alg none", unsigned),
        (
            "another key",
            forge(
                header.clone(),
                good.clone(),
                b"not the server's key, 32 bytes!!",
            ),
        ),
        (
            "RS256 header over an HMAC signature",
            forge(json!({"alg": "RS256", "kid": kid}), good.clone(), &secret),
        ),
        (
            "HS384",
            forge(json!({"alg": "HS384", "kid": kid}), good.clone(), &secret),
        ),
        (
            "expired",
            forge(
                header.clone(),
                with(json!({"iat": now - 1000, "exp": now - 100})),
                &secret,
            ),
        ),
        (
            "wrong audience",
            forge(
                header.clone(),
                with(json!({"aud": "someone-else"})),
                &secret,
            ),
        ),
        (
            "wrong issuer",
            forge(
                header.clone(),
                with(json!({"iss": "https://evil.example"})),
                &secret,
            ),
        ),
        (
            "unknown kid",
            forge(
                json!({"alg": "HS256", "kid": "nope"}),
                good.clone(),
                &secret,
            ),
        ),
        (
            "no kid",
            forge(json!({"alg": "HS256"}), good.clone(), &secret),
        ),
        ("not a JWT", "eyJhbGciOi.garbage".to_owned()),
    ];
    for (what, token) in cases {
        let (status, body) = api
            .call(Method::GET, "/api/v1/me", Some(&token), None)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
        assert_eq!(body["error"]["code"], "invalid_token", "{what}");
    }
}

#[tokio::test]
async fn refresh_rotates_and_a_replayed_refresh_token_revokes_its_session() {
    let api = Api::new().await;
    let user = account(&api, "ada@example.com").await;
    let (_, first) = session(&api, "ada@example.com").await;
    let (status, body) = refresh(&api, &first).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let second = body["refresh_token"].as_str().unwrap().to_owned();
    let access = body["access_token"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    assert!(body["expires_in"].as_i64().unwrap() <= 15 * 60);
    assert_eq!(me(&api, &access).await, StatusCode::OK);

    // The rotated token comes back: someone else has it. The whole family ends.
    let (status, body) = refresh(&api, &first).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(refresh(&api, &second).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&api, &access).await, StatusCode::UNAUTHORIZED);
    let log = api
        .store
        .audit_log(AuditLog::User(user), None, 20)
        .await
        .unwrap();
    assert!(
        log.iter()
            .any(|entry| entry.action == "auth.session_revoke"),
        "{log:?}"
    );
    // Another session of the same user is untouched.
    let (other, _) = session(&api, "ada@example.com").await;
    assert_eq!(me(&api, &other).await, StatusCode::OK);
}

#[tokio::test]
async fn signing_out_ends_the_session_at_once() {
    let api = Api::new().await;
    account(&api, "ada@example.com").await;
    let (access, refresh_token) = session(&api, "ada@example.com").await;
    let (status, body) = api
        .call(
            Method::POST,
            "/api/v1/auth/signout",
            None,
            Some(json!({"refresh_token": refresh_token})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(me(&api, &access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        refresh(&api, &refresh_token).await.0,
        StatusCode::UNAUTHORIZED
    );
}

/// The value of cookie `name` among `Set-Cookie` values, with its attributes.
fn set_cookie<'a>(cookies: &'a [String], name: &str) -> &'a str {
    cookies
        .iter()
        .find(|cookie| cookie.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie in {cookies:?}"))
}

fn cookie_value(set: &str) -> &str {
    set.split(';').next().unwrap().split_once('=').unwrap().1
}

#[tokio::test]
async fn cookie_sessions_need_the_csrf_token_on_writes() {
    let api = Api::new().await;
    account(&api, "ada@example.com").await;
    let body = json!({"email": "ada@example.com", "password": PASSWORD});
    let request = post_json("/api/v1/auth/signin")
        .header("x-forwarded-proto", "https")
        .body(Body::from(body.to_string()))
        .unwrap();
    let (status, answer, cookies) = exchange(&api, request).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let session_cookie = set_cookie(&cookies, "helvetia_session");
    let refresh_cookie = set_cookie(&cookies, "helvetia_refresh");
    let csrf_cookie = set_cookie(&cookies, "helvetia_csrf");
    for cookie in [session_cookie, refresh_cookie] {
        for attribute in ["HttpOnly", "SameSite=Lax", "Secure"] {
            assert!(cookie.contains(attribute), "{cookie}");
        }
    }
    assert!(
        refresh_cookie.contains("Path=/api/v1/auth;"),
        "{refresh_cookie}"
    );
    assert!(!csrf_cookie.contains("HttpOnly"), "{csrf_cookie}");
    let csrf = cookie_value(csrf_cookie).to_owned();
    let jar = format!(
        "helvetia_session={}; helvetia_csrf={csrf}",
        cookie_value(session_cookie)
    );

    let create = |name: &str, csrf: Option<&str>| {
        let body = json!({"name": name});
        let mut request = post_json("/api/v1/projects").header(header::COOKIE, &jar);
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        request.body(Body::from(body.to_string())).unwrap()
    };
    let (status, body, _) = exchange(&api, create("one", None)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _, _) = exchange(&api, create("one", Some("not-the-token"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body, _) = exchange(&api, create("one", Some(&csrf))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Reads need no CSRF token.
    let read = Request::builder()
        .uri("/api/v1/projects/one")
        .header(header::COOKIE, &jar)
        .body(Body::empty())
        .unwrap();
    assert_eq!(exchange(&api, read).await.0, StatusCode::OK);
    // Neither does a bearer token: nothing ambient to abuse.
    let access = answer["access_token"].as_str().unwrap();
    let (status, body) = api
        .call(
            Method::POST,
            "/api/v1/projects",
            Some(access),
            Some(json!({"name": "two"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // The refresh cookie, too, is only taken with the CSRF header.
    let refresh_jar = format!(
        "helvetia_refresh={}; helvetia_csrf={csrf}",
        cookie_value(refresh_cookie)
    );
    let refresh = |csrf: Option<&str>| {
        let mut request = post_json("/api/v1/auth/refresh").header(header::COOKIE, &refresh_jar);
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        request.body(Body::from("{}")).unwrap()
    };
    assert_eq!(exchange(&api, refresh(None)).await.0, StatusCode::FORBIDDEN);
    let (status, body, cookies) = exchange(&api, refresh(Some(&csrf))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Over plain HTTP the cookies are not `Secure` (a browser would drop them).
    assert!(!set_cookie(&cookies, "helvetia_session").contains("Secure"));
}

#[tokio::test]
async fn a_rotated_signing_key_verifies_until_its_tokens_expire() {
    let api = Api::new().await;
    // The first user is the instance's administrator.
    account(&api, "admin@example.com").await;
    account(&api, "bob@example.com").await;
    let (old, _) = session(&api, "admin@example.com").await;
    let (bob, _) = session(&api, "bob@example.com").await;
    let (status, body) = api
        .call(Method::POST, "/api/v1/signing-keys", Some(&bob), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    let (status, body) = api
        .call(Method::POST, "/api/v1/signing-keys", Some(&old), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let kid = body["kid"].as_str().unwrap().to_owned();
    let (new, _) = session(&api, "admin@example.com").await;
    let kid_of = |token: &str| {
        let header = token.split('.').next().unwrap();
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
        header["kid"].as_str().unwrap().to_owned()
    };
    assert_eq!(kid_of(&new), kid);
    assert_ne!(kid_of(&old), kid);
    assert_eq!(me(&api, &new).await, StatusCode::OK);
    assert_eq!(
        me(&api, &old).await,
        StatusCode::OK,
        "the old key verifies during the overlap"
    );
    assert_eq!(me(&api, &bob).await, StatusCode::OK);
    let keys = api.store.signing_keys(Timestamp::now()).await.unwrap();
    assert_eq!(keys.len(), 2);
    let retiring = keys.iter().find(|key| key.kid != kid).unwrap();
    let retires_at = retiring.retires_at.unwrap();
    assert!(retires_at > Timestamp::now() + jiff::SignedDuration::from_mins(15));
    // Once it retires, it verifies nothing.
    let after = retires_at + jiff::SignedDuration::from_secs(1);
    let still = api.store.signing_keys(after).await.unwrap();
    assert_eq!(still.len(), 1);
    assert_eq!(still[0].kid, kid);
}

/// Signs in as a browser does: answers the `Cookie` header of the session and its CSRF token.
async fn browser(api: &Api, email: &str) -> (String, String) {
    let body = json!({"email": email, "password": PASSWORD});
    let request = post_json("/api/v1/auth/signin")
        .body(Body::from(body.to_string()))
        .unwrap();
    let (status, answer, cookies) = exchange(api, request).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let csrf = cookie_value(set_cookie(&cookies, "helvetia_csrf")).to_owned();
    let session = cookie_value(set_cookie(&cookies, "helvetia_session"));
    (
        format!("helvetia_session={session}; helvetia_csrf={csrf}"),
        csrf,
    )
}

#[tokio::test]
async fn a_device_login_approved_by_a_browser_session_yields_a_working_token() {
    let api = Api::new().await;
    account(&api, "ada@example.com").await;
    let (jar, csrf) = browser(&api, "ada@example.com").await;
    let (status, started) = api
        .call(
            Method::POST,
            "/api/v1/auth/device",
            None,
            Some(json!({"client_name": "laptop"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let decision = json!({"user_code": started["user_code"], "approve": true});
    let approve = |csrf: Option<&str>| {
        let mut request = post_json("/api/v1/auth/device/approve").header(header::COOKIE, &jar);
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        request.body(Body::from(decision.to_string())).unwrap()
    };
    let (status, body, _) = exchange(&api, approve(None)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body, _) = exchange(&api, approve(Some(&csrf))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, issued) = api
        .call(
            Method::POST,
            "/api/v1/auth/device/token",
            None,
            Some(json!({"device_code": started["device_code"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{issued}");
    let token = issued["access_token"].as_str().unwrap();
    let (status, me) = api.call(Method::GET, "/api/v1/me", Some(token), None).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["user"]["email"], "ada@example.com");
}
