//! The dashboard's pages for what is set up rather than watched, as a browser without
//! JavaScript uses them: API tokens (made, shown once, revoked), the audit log with its
//! filters, a service's volumes.

use axum::http::{Method, StatusCode};

use crate::browser::Browser;
use crate::harness::Api;
use crate::sessions::account;

#[tokio::test]
async fn a_token_made_on_the_tokens_page_is_shown_once_works_and_can_be_revoked() {
    let api = Api::new().await;
    account(&api, "ada@example.com").await;
    let mut ada = Browser::new(&api);
    ada.sign_in("ada@example.com").await;
    let page = ada
        .submit(
            "/tokens",
            &[
                ("name", "ci"),
                ("read", "on"),
                ("deploy", "on"),
                ("expires_in_days", "30"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let token = page
        .body
        .split(r#"<code class="revealed" id="new-token">"#)
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap()
        .to_owned();
    assert!(token.starts_with("hlv_"), "{token}");
    let (status, me) = api
        .call(Method::GET, "/api/v1/me", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["token_name"], "ci", "{me}");
    let page = ada.get("/tokens").await;
    assert!(!page.body.contains(&token), "the value is shown once");
    assert!(page.body.contains("read, deploy"), "{}", page.body);
    let id = me["token_id"].as_i64().unwrap();
    let page = ada.submit(&format!("/tokens/{id}/revoke"), &[]).await;
    assert!(page.body.contains("revoked"), "{}", page.body);
    let (status, _) = api
        .call(Method::GET, "/api/v1/me", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let page = ada.submit("/tokens", &[("name", "nothing")]).await;
    assert_eq!(
        page.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "no scope: {}",
        page.body
    );
}

#[tokio::test]
async fn the_audit_page_filters_the_viewers_log() {
    let api = Api::new().await;
    account(&api, "ada@example.com").await;
    api.demo_service("web").await;
    let mut ada = Browser::new(&api);
    ada.sign_in("ada@example.com").await;
    ada.submit("/tokens", &[("name", "ci"), ("read", "on")])
        .await;
    let page = ada.get("/audit").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("token.create"), "{}", page.body);
    assert!(page.body.contains("auth.signin"), "{}", page.body);
    let page = ada.get("/audit?action=token").await;
    assert!(page.body.contains("token.create"), "{}", page.body);
    assert!(!page.body.contains("auth.signin"), "{}", page.body);
    assert!(
        page.body.contains(r#"value="token""#),
        "the filter stays in the form"
    );
    // Ada, the first account, administers the instance; Bob does not.
    assert_eq!(ada.get("/audit?instance=on").await.status, StatusCode::OK);
    account(&api, "bob@example.com").await;
    let mut bob = Browser::new(&api);
    bob.sign_in("bob@example.com").await;
    let page = bob.get("/audit?instance=on").await;
    assert_eq!(
        page.status,
        StatusCode::FORBIDDEN,
        "for instance administrators only"
    );
    let (status, entries) = api
        .get("/api/v1/audit?action=service&target=demo/web")
        .await;
    assert_eq!(status, StatusCode::OK);
    let actions: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["service.create"], "{entries}");
}

#[tokio::test]
async fn volumes_are_listed_with_their_sizes_added_and_removed() {
    let api = Api::new().await;
    account(&api, "ada@example.com").await;
    api.demo_service("web").await;
    let mut ada = Browser::new(&api);
    ada.sign_in("ada@example.com").await;
    let page = ada.get("/p/demo/s/web/volumes").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("No volumes"), "{}", page.body);
    let page = ada
        .submit("/p/demo/s/web/volumes", &[("name", "data"), ("path", "/")])
        .await;
    assert_eq!(
        page.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        page.body
    );
    assert!(
        page.body.contains("path"),
        "the refusal names the field: {}",
        page.body
    );
    let page = ada
        .submit(
            "/p/demo/s/web/volumes",
            &[("name", "data"), ("path", "/var/data")],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body
            .contains("Added. It applies from the next deployment."),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("/var/data") && page.body.contains("0 B"),
        "{}",
        page.body
    );
    let (_, listed) = api.get("/api/v1/projects/demo/services/web/volumes").await;
    assert_eq!(listed[0]["name"], "data", "{listed}");
    let page = ada
        .submit("/p/demo/s/web/volumes/remove", &[("name", "data")])
        .await;
    assert!(page.body.contains("Removed;"), "{}", page.body);
    assert!(page.body.contains("No volumes"), "{}", page.body);
}
