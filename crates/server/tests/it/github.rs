//! The instance's GitHub App: entered by hand or through the manifest flow, its secrets sealed
//! in the store and never answered, the flow's state good once.

use axum::http::{Method, StatusCode};
use helvetia_store::audit::AuditLog;
use serde_json::json;

use crate::harness::Api;
use crate::sessions::{account, session};

/// A key made for the tests only.
const PRIVATE_KEY: &str = include_str!("../../../engine/src/github/test-app-key.pem");

/// Every byte the SQLite database holds on disk, its write-ahead log included.
fn database_bytes(api: &Api) -> Vec<u8> {
    let mut bytes = vec![];
    for name in ["db.sqlite", "db.sqlite-wal"] {
        bytes.extend(std::fs::read(api.dir.path().join(name)).unwrap_or_default());
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[tokio::test]
async fn an_app_entered_by_hand_is_stored_sealed_and_its_secrets_never_come_back() {
    let api = Api::new().await;
    account(&api, "admin@example.com").await;
    let (admin, _) = session(&api, "admin@example.com").await;
    account(&api, "dev@example.com").await;
    let (dev, _) = session(&api, "dev@example.com").await;
    const APP: &str = "/api/v1/github/app";
    let app = || (Method::PUT, APP);

    let unset = api
        .expect(StatusCode::OK, Some(&admin), (Method::GET, APP), None)
        .await;
    assert_eq!(unset["configured"], false);
    let input = json!({
        "app_id": 12345,
        "client_id": "Iv1.client",
        "client_secret": "client-secret-in-clear",
        "private_key": PRIVATE_KEY,
        "webhook_secret": "webhook-secret-in-clear",
    });
    api.expect(
        StatusCode::FORBIDDEN,
        Some(&dev),
        app(),
        Some(input.clone()),
    )
    .await;
    let bad_key = json!({"private_key": "-----BEGIN RSA PRIVATE KEY-----\nAA\n-----END RSA PRIVATE KEY-----"});
    let mut refused = input.clone();
    refused["private_key"] = bad_key["private_key"].clone();
    let answer = api
        .expect(
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(&admin),
            app(),
            Some(refused),
        )
        .await;
    assert!(answer.to_string().contains("private_key"), "{answer}");

    let saved = api
        .expect(StatusCode::OK, Some(&admin), app(), Some(input))
        .await;
    let read = api
        .expect(StatusCode::OK, Some(&admin), (Method::GET, APP), None)
        .await;
    for view in [&saved, &read] {
        assert_eq!(view["configured"], true);
        assert_eq!(view["app_id"], 12345);
        assert_eq!(view["client_id"], "Iv1.client");
        assert_eq!(view["secrets_set"], true);
        let text = view.to_string();
        assert!(
            !text.contains("in-clear") && !text.contains("PRIVATE KEY"),
            "{text}"
        );
    }
    let key_line = PRIVATE_KEY.lines().nth(1).unwrap();
    let stored = database_bytes(&api);
    for secret in [
        "client-secret-in-clear",
        "webhook-secret-in-clear",
        key_line,
    ] {
        assert!(
            !contains(&stored, secret),
            "`{secret}` is in the database in clear"
        );
    }
    let log = api
        .store
        .audit_log(AuditLog::Instance, None, 50)
        .await
        .unwrap();
    let users = api
        .store
        .user_by_email(&helvetia_core::account::Email::parse("admin@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    let own = api
        .store
        .audit_log(AuditLog::User(users.id), None, 50)
        .await
        .unwrap();
    assert!(
        log.iter()
            .chain(&own)
            .any(|entry| entry.action == "github.app_configure"),
        "{log:?} {own:?}"
    );
}

#[tokio::test]
async fn the_manifest_form_asks_what_later_issues_need_and_its_state_works_once() {
    let api = Api::configured(|settings| {
        // No GitHub answers here: the conversion fails, after the state was spent.
        settings.github.api = url::Url::parse("http://127.0.0.1:9").unwrap();
    })
    .await;
    account(&api, "admin@example.com").await;
    let (admin, _) = session(&api, "admin@example.com").await;
    account(&api, "dev@example.com").await;
    let (dev, _) = session(&api, "dev@example.com").await;
    let start = || (Method::POST, "/api/v1/github/app/manifest");
    api.expect(StatusCode::FORBIDDEN, Some(&dev), start(), Some(json!({})))
        .await;
    let form = api
        .expect(
            StatusCode::OK,
            Some(&admin),
            start(),
            Some(json!({"organization": "acme"})),
        )
        .await;
    let state = form["state"].as_str().unwrap();
    assert!(
        form["action"]
            .as_str()
            .unwrap()
            .starts_with("https://github.com/organizations/acme/settings/apps/new?state="),
        "{form}"
    );
    let manifest: serde_json::Value =
        serde_json::from_str(form["manifest"].as_str().unwrap()).unwrap();
    assert_eq!(manifest["public"], false);
    assert_eq!(manifest["default_permissions"]["statuses"], "write");
    assert_eq!(manifest["default_permissions"]["contents"], "read");
    assert_eq!(manifest["default_events"].as_array().unwrap().len(), 6);
    let base = manifest["url"].as_str().unwrap();
    assert_eq!(
        manifest["redirect_url"],
        format!("{base}/api/v1/github/app/callback")
    );
    assert_eq!(
        manifest["hook_attributes"]["url"],
        format!("{base}/api/v1/github/webhook")
    );
    assert_eq!(
        manifest["callback_urls"][0],
        format!("{base}/api/v1/auth/github/callback")
    );

    let callback = |state: &str| format!("/api/v1/github/app/callback?code=c0de&state={state}");
    let wrong = api
        .expect(
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            (Method::GET, &callback("not-the-state")),
            None,
        )
        .await;
    assert!(wrong.to_string().contains("state"), "{wrong}");
    // The right state: spent, though GitHub cannot be reached to convert the code…
    let unreachable = api
        .expect(
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            (Method::GET, &callback(state)),
            None,
        )
        .await;
    assert!(unreachable.to_string().contains("code"), "{unreachable}");
    // …so it cannot be replayed.
    let replayed = api
        .expect(
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            (Method::GET, &callback(state)),
            None,
        )
        .await;
    assert!(replayed.to_string().contains("state"), "{replayed}");
    assert_eq!(api.store.github_app().await.unwrap(), None);
}
