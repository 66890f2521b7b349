//! The dashboard's pages, as a browser without JavaScript uses them: signing in (password, API
//! token), the session cookie and its renewal, the CSRF token on every form, what each viewer
//! sees, the security headers, the assets, and the live fragments over SSE. The browser tests
//! (`crates/helvetia/tests/it/dashboard.rs`) drive the same pages in Chromium.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use futures::StreamExt;
use helvetia_core::auth::Scope;
use tower::ServiceExt;

use crate::browser::Browser;
use crate::harness::Api;
use crate::sessions::{PASSWORD, account};

#[tokio::test]
async fn strangers_are_sent_to_sign_in_and_come_back_where_they_were_going() {
    let api = Api::new().await;
    account(&api, "ada@example.com").await;
    let mut browser = Browser::new(&api);
    let page = browser.get("/p/demo/s/web/env").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location, "/signin?next=%2Fp%2Fdemo%2Fs%2Fweb%2Fenv");
    let page = browser
        .get("/signin?next=%2Fp%2Fdemo%2Fs%2Fweb%2Fenv")
        .await;
    assert!(
        page.body
            .contains(r#"name="next" value="/p/demo/s/web/env""#),
        "{}",
        page.body
    );
    let csrf = browser.cookies["helvetia_csrf"].clone();
    assert!(
        page.body
            .contains(&format!(r#"name="csrf" value="{csrf}""#))
    );

    // Without the page's token (another site's form), nothing is even checked.
    let fields = [("email", "ada@example.com"), ("password", PASSWORD)];
    let page = browser.submit_with("/signin", "forged", &fields).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert!(!browser.cookies.contains_key("helvetia_session"));

    let wrong = browser
        .submit(
            "/signin",
            &[("email", "ada@example.com"), ("password", "wrong")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(
        wrong
            .body
            .contains("Wrong e-mail address, password or code"),
        "{}",
        wrong.body
    );
    assert!(
        wrong.body.contains(r#"value="ada@example.com""#),
        "the address is kept"
    );

    // Only paths of this server are followed after signing in.
    let page = browser
        .submit(
            "/signin",
            &[
                ("email", "ada@example.com"),
                ("password", PASSWORD),
                ("next", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location, "/");
    assert!(browser.cookies.contains_key("helvetia_session"));
    let page = browser.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("ada@example.com"),
        "who is signed in shows"
    );

    // Signing out ends the session itself, not only the cookie.
    let session = browser.cookies["helvetia_session"].clone();
    let page = browser.submit("/signout", &[]).await;
    assert_eq!(page.location, "/signin");
    assert!(!browser.cookies.contains_key("helvetia_session"));
    let (status, _) = api
        .call(Method::GET, "/api/v1/me", Some(&session), None)
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the access token died with its session"
    );
}

#[tokio::test]
async fn a_session_whose_access_token_expired_is_renewed_by_its_refresh_cookie() {
    let api = Api::new().await;
    account(&api, "ada@example.com").await;
    let mut browser = Browser::new(&api);
    browser.sign_in("ada@example.com").await;
    // An access token the server no longer accepts, as after its 15 minutes.
    browser
        .cookies
        .insert("helvetia_session".into(), "expired.jwt.value".into());
    let page = browser.get("/p/demo/s/web").await;
    assert_eq!(
        page.location,
        "/api/v1/auth/renew?next=%2Fp%2Fdemo%2Fs%2Fweb"
    );
    let page = browser.get(&page.location.clone()).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location, "/p/demo/s/web");
    assert_ne!(browser.cookies["helvetia_session"], "expired.jwt.value");
    assert_eq!(browser.get("/").await.status, StatusCode::OK);

    // A used refresh cookie, or none, leads to signing in again; `next` stays on this server.
    browser.cookies.remove("helvetia_refresh");
    let page = browser
        .get("/api/v1/auth/renew?next=https://evil.example/")
        .await;
    assert_eq!(page.location, "/signin?next=%2F");
}

#[tokio::test]
async fn an_api_token_signs_in_and_the_dashboard_allows_only_its_scopes() {
    let api = Api::new().await;
    api.demo_service("web").await;
    let read_only = api.token(&[Scope::Read]).await;
    let mut browser = Browser::new(&api);
    browser.get("/signin").await;
    let page = browser
        .submit("/signin/token", &[("token", "hlv_not-a-token")])
        .await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(
        page.body.contains("unknown, expired or revoked"),
        "{}",
        page.body
    );
    let page = browser
        .submit("/signin/token", &[("token", &read_only)])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let page = browser.get("/").await;
    assert!(
        page.body.contains(r#"href="/p/demo/s/web""#),
        "{}",
        page.body
    );
    let page = browser.get("/p/demo/s/web").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let page = browser
        .submit("/p/demo/s/web/action", &[("action", "deploy")])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert!(
        page.body.contains("needs the `deploy` scope"),
        "{}",
        page.body
    );
    let (_, deployments) = api
        .get("/api/v1/projects/demo/services/web/deployments")
        .await;
    assert_eq!(
        deployments.as_array().unwrap().len(),
        0,
        "nothing was deployed"
    );
}

#[tokio::test]
async fn every_form_needs_the_csrf_token_and_viewers_see_only_their_own() {
    let api = Api::new().await;
    account(&api, "ada@example.com").await;
    account(&api, "bob@example.com").await;
    let mut ada = Browser::new(&api);
    ada.sign_in("ada@example.com").await;
    let page = ada.submit_with("/projects", "", &[("name", "shop")]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let page = ada.submit("/projects", &[("name", "Not A Name")]).await;
    assert_eq!(
        page.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        page.body
    );
    assert!(
        page.body.contains(r#"aria-invalid="true""#),
        "the field says what is wrong"
    );
    let page = ada.submit("/projects", &[("name", "shop")]).await;
    assert_eq!(page.location, "/p/shop/new");
    let page = ada.get("/p/shop/new").await;
    assert!(page.body.contains("New service in shop"), "{}", page.body);
    let page = ada
        .submit(
            "/p/shop/new",
            &[
                ("name", "web"),
                ("source", "git"),
                ("repo", "https://e.org/a.git"),
            ],
        )
        .await;
    assert_eq!(page.location, "/p/shop/s/web", "{}", page.body);
    let page = ada.get("/p/shop/s/web").await;
    assert!(
        page.body.contains("None yet: deploy the branch to start."),
        "{}",
        page.body
    );

    let mut bob = Browser::new(&api);
    bob.sign_in("bob@example.com").await;
    let page = bob.get("/").await;
    assert!(
        !page.body.contains("shop"),
        "another user's project is not listed"
    );
    assert!(page.body.contains("No projects yet"), "{}", page.body);
    let page = bob.get("/p/shop/s/web").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    let page = bob
        .submit("/p/shop/s/web/action", &[("action", "stop")])
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn secrets_stay_masked_until_revealed_and_a_stale_form_is_a_clear_conflict() {
    let api = Api::new().await;
    account(&api, "ada@example.com").await;
    api.demo_service("web").await;
    let mut ada = Browser::new(&api);
    ada.sign_in("ada@example.com").await;
    let page = ada
        .submit(
            "/p/demo/s/web/env",
            &[
                ("name", "API_KEY"),
                ("value", "s3cr3t-value"),
                ("secret", "on"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Saved."), "{}", page.body);
    assert!(!page.body.contains("s3cr3t-value"), "a secret is masked");
    let page = ada
        .submit("/p/demo/s/web/env/import", &[("dotenv", "PLAIN=visible\n")])
        .await;
    assert!(page.body.contains("visible"), "a plain value shows");
    let page = ada
        .submit("/p/demo/s/web/env/reveal", &[("name", "API_KEY")])
        .await;
    assert!(page.body.contains("s3cr3t-value"), "{}", page.body);

    let page = ada.get("/p/demo/s/web").await;
    let revision = page
        .body
        .split(r#"name="revision" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    // Someone else changes the service meanwhile.
    let (status, _) = api
        .call(
            Method::PATCH,
            "/api/v1/projects/demo/services/web",
            Some(&api.admin),
            Some(serde_json::json!({"branch": "other"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let page = ada
        .submit(
            "/p/demo/s/web/scale",
            &[("replicas", "3"), ("revision", &revision)],
        )
        .await;
    assert_eq!(page.status, StatusCode::CONFLICT, "{}", page.body);
    assert!(
        page.body.contains("changed since you opened the page"),
        "{}",
        page.body
    );
    let (_, service) = api.get("/api/v1/projects/demo/services/web").await;
    assert_eq!(service["runtime"]["replicas"], 1, "nothing changed");
}

#[tokio::test]
async fn pages_forbid_inline_script_and_framing_and_assets_are_kept_a_year() {
    let api = Api::new().await;
    let mut browser = Browser::new(&api);
    for path in ["/signin", "/", "/p/x/s/y"] {
        let page = browser.get(path).await;
        let csp = page.headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(csp.contains("script-src 'self';"), "{path}: {csp}");
        assert!(!csp.contains("unsafe"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
    }
    let page = browser.get("/signin").await;
    assert!(!page.body.contains("<script>"), "no inline script");
    assert!(!page.body.contains("style="), "no inline style");
    let css = page
        .body
        .split(r#"rel="stylesheet" href=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    assert!(
        css.starts_with("/assets/app.") && css.ends_with(".css"),
        "{css}"
    );
    let request = Request::builder()
        .uri(&css)
        .header(header::ACCEPT_ENCODING, "gzip, br");
    let asset = browser.send(request, Body::empty()).await;
    assert_eq!(asset.status, StatusCode::OK);
    assert_eq!(asset.headers[header::CONTENT_ENCODING], "gzip");
    assert_eq!(
        asset.headers[header::CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(
        browser.get("/assets/app.0000000000000000.css").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_overview_stream_sends_the_list_again_when_a_deployment_changes() {
    let api = Api::new().await;
    account(&api, "ada@example.com").await;
    api.demo_service("web").await;
    let mut ada = Browser::new(&api);
    ada.sign_in("ada@example.com").await;
    let cookie = format!("helvetia_session={}", ada.cookies["helvetia_session"]);
    let request = Request::builder()
        .uri("/live/overview")
        .header(header::COOKIE, cookie)
        .body(Body::empty())
        .unwrap();
    let response = api.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body().into_data_stream();
    let mut seen = String::new();
    let mut next_event = async || loop {
        let chunk = tokio::time::timeout(Duration::from_secs(10), body.next())
            .await
            .expect("an event within 10 s")
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
        if let Some(end) = seen.find("\n\n") {
            let event: String = seen.drain(..end + 2).collect();
            if event.starts_with("event:") {
                return event;
            }
        }
    };
    let first = next_event().await;
    assert!(first.starts_with("event: overview"), "{first}");
    assert!(first.contains("not deployed"), "{first}");
    let (status, _) = api
        .post(
            "/api/v1/projects/demo/services/web/deployments",
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let second = next_event().await;
    assert!(second.contains("status-queued"), "{second}");
}

#[tokio::test]
async fn an_account_with_two_factors_is_asked_for_its_code_on_the_sign_in_page() {
    use helvetia_server::sessions::totp;
    let api = Api::new().await;
    account(&api, "ada@example.com").await;
    let (access, _) = crate::sessions::session(&api, "ada@example.com").await;
    let (_, enrolment) = api
        .call(Method::POST, "/api/v1/me/totp", Some(&access), None)
        .await;
    let secret = totp::decode(enrolment["secret"].as_str().unwrap()).unwrap();
    let step = totp::step_at(jiff::Timestamp::now());
    let (status, _) = api
        .call(
            Method::POST,
            "/api/v1/me/totp/confirm",
            Some(&access),
            Some(serde_json::json!({"code": totp::code(&secret, step)})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let mut browser = Browser::new(&api);
    browser.get("/signin").await;
    let fields = [("email", "ada@example.com"), ("password", PASSWORD)];
    let page = browser.submit("/signin", &fields).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(
        page.body.contains("two-factor authentication"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains(r#"aria-invalid="true""#),
        "the code field is marked"
    );
    assert!(!browser.cookies.contains_key("helvetia_session"));
    // The next step's code: the one confirming enrolment was used up.
    let code = totp::code(&secret, step + 1);
    let page = browser
        .submit("/signin", &[fields[0], fields[1], ("code", &code)])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert!(browser.cookies.contains_key("helvetia_session"));
}
