//! The instance's GitHub App: entered by hand or through the manifest flow, its secrets sealed
//! in the store and never answered, the flow's state good once.

use axum::http::{Method, StatusCode};
use helvetia_server::platform::GitHubUrls;
use helvetia_store::audit::AuditLog;
use helvetia_test_support::github::FakeGitHub;
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

    // A wrong state; the right one, spent though GitHub cannot be reached to convert the code;
    // the right one again, replayed: each refused, saying why.
    for (state, status, why) in [
        ("not-the-state", StatusCode::NOT_FOUND, "state"),
        (state, StatusCode::UNPROCESSABLE_ENTITY, "code"),
        (state, StatusCode::NOT_FOUND, "state"),
    ] {
        let path = format!("/api/v1/github/app/callback?code=c0de&state={state}");
        let refused = api.expect(status, None, (Method::GET, &path), None).await;
        assert!(refused["error"].to_string().contains(why), "{refused}");
    }
    assert_eq!(api.store.github_app().await.unwrap(), None);
}

#[tokio::test]
async fn the_manifest_flow_against_github_creates_the_app_whose_jwt_mints_installation_tokens() {
    let fake = FakeGitHub::start().await;
    let api = Api::configured(|settings| {
        settings.github = GitHubUrls {
            web: url::Url::parse(&fake.web_url()).unwrap(),
            api: url::Url::parse(&fake.api_url()).unwrap(),
        };
        // The fake listens on loopback.
        settings.repo_policy.destinations.allow_private = true;
    })
    .await;
    account(&api, "admin@example.com").await;
    let (admin, _) = session(&api, "admin@example.com").await;
    let form = api
        .expect(
            StatusCode::OK,
            Some(&admin),
            (Method::POST, "/api/v1/github/app/manifest"),
            Some(json!({})),
        )
        .await;

    // The browser posts the form to GitHub, which sends it back with a code.
    let browser = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let posted = browser
        .post(form["action"].as_str().unwrap())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            serde_urlencoded::to_string([
                ("manifest", form["manifest"].as_str().unwrap()),
                ("state", form["state"].as_str().unwrap()),
            ])
            .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert!(posted.status().is_redirection(), "{}", posted.status());
    let back = url::Url::parse(posted.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(back.path(), "/api/v1/github/app/callback");
    let callback = format!("{}?{}", back.path(), back.query().unwrap());
    let created = api
        .expect(StatusCode::OK, None, (Method::GET, &callback), None)
        .await;
    assert_eq!(created["configured"], true);
    assert!(created["slug"].is_string(), "{created}");
    let mut fields: Vec<&str> = created
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        ["app_id", "client_id", "configured", "secrets_set", "slug"],
        "no secret is answered"
    );
    // GitHub's code and the state are spent: the same callback again is refused.
    api.expect(StatusCode::NOT_FOUND, None, (Method::GET, &callback), None)
        .await;
    let stored = database_bytes(&api);
    assert!(!contains(&stored, "PRIVATE KEY"), "the key is in clear");
    let app = api.store.github_app().await.unwrap().unwrap();
    assert_eq!(Some(app.app_id), created["app_id"].as_i64());

    // The App's JWT verifies at GitHub: it mints installation tokens, cached.
    let installation = fake.add_installation("acme", &[("site", None, true)]);
    let token = api.platform.installation_token(installation).await.unwrap();
    assert_eq!(fake.issued_tokens(), std::slice::from_ref(&token.token));
    let again = api.platform.installation_token(installation).await.unwrap();
    assert_eq!(again, token);
    assert_eq!(fake.issued_tokens().len(), 1, "the cached token is reused");
    assert!(!contains(&database_bytes(&api), &token.token));
    // A token GitHub refused (expired early) is forgotten and the next use mints another.
    fake.expire_tokens();
    api.platform
        .forget_installation_token(installation, &token.token)
        .await;
    let renewed = api.platform.installation_token(installation).await.unwrap();
    assert_ne!(renewed.token, token.token);
    assert_eq!(fake.issued_tokens().len(), 2);
}
