//! A master key rotation re-seals every value the vault sealed — not only variables: users'
//! TOTP keys and GitHub tokens, session signing keys, receivers' secrets, the GitHub App's —
//! so each opens under the new key, read back the way the features read it.

use axum::http::StatusCode;
use helvetia_server::sessions::Keyring;
use helvetia_server::vault::{self, Vault};
use helvetia_store::audit::AuditBy;
use helvetia_store::github::GitHubApp;
use helvetia_store::github_users::SealedGitHubToken;
use helvetia_store::sealed::GithubAppSecret;
use jiff::Timestamp;

use crate::harness::Api;
use crate::hooks::{SERVICE, receiver};

#[tokio::test]
async fn rotating_the_master_key_reseals_every_sealed_value() {
    let api = Api::new().await;
    let sealer = &api.platform.vault;
    let (_, user) = api.user("ada@example.com").await;
    let store = &api.store;
    store
        .set_totp_secret(user, &sealer.seal(&vault::totp_binding(user), "totp-key"))
        .await
        .unwrap();
    let token = SealedGitHubToken {
        sealed: sealer.seal(&vault::github_token_binding(user), "gho_token"),
        expires_at: None,
    };
    store.set_github_token(user, &token).await.unwrap();
    let seal_app = |secret, value| sealer.seal(&vault::github_app_binding(secret), value);
    let app = GitHubApp {
        app_id: 1,
        slug: None,
        client_id: "Iv1.client".into(),
        sealed_private_key: seal_app(GithubAppSecret::PrivateKey, "pem"),
        sealed_client_secret: seal_app(GithubAppSecret::ClientSecret, "client"),
        sealed_webhook_secret: seal_app(GithubAppSecret::WebhookSecret, "hook"),
        created_at: Timestamp::now(),
    };
    store
        .save_github_app(&app, &api.admin_caller)
        .await
        .unwrap();
    let (_, hook_secret) = receiver(&api).await;
    let (status, shown) = api.get(SERVICE).await;
    assert_eq!(status, StatusCode::OK);
    let service = store
        .service_by_id(shown["id"].as_i64().unwrap())
        .await
        .unwrap();
    Keyring::default()
        .rotate(store, sealer, AuditBy::default())
        .await
        .unwrap();
    let keys_before = store.signing_keys(Timestamp::now()).await.unwrap();
    assert_eq!(keys_before.len(), 1);

    vault::rotate(api.dir.path(), None, store).await.unwrap();
    let rotated = Vault::open_for(api.dir.path(), None, store).await.unwrap();
    let opens = |binding: &str, sealed: &str| {
        let opened = rotated.open(binding, sealed);
        assert!(
            sealer.open(binding, sealed).is_err(),
            "{binding}: still under the old key"
        );
        opened.unwrap_or_else(|e| panic!("{binding}: {e}"))
    };

    let record = store
        .sign_in_record_of(store.user(user).await.unwrap())
        .await
        .unwrap();
    let totp = record.totp_secret.unwrap();
    assert_eq!(opens(&vault::totp_binding(user), &totp), "totp-key");
    let token = store.github_token(user).await.unwrap().unwrap();
    assert_eq!(
        opens(&vault::github_token_binding(user), &token.sealed),
        "gho_token"
    );
    let app = store.github_app().await.unwrap().unwrap();
    for (secret, sealed, value) in [
        (GithubAppSecret::PrivateKey, &app.sealed_private_key, "pem"),
        (
            GithubAppSecret::ClientSecret,
            &app.sealed_client_secret,
            "client",
        ),
        (
            GithubAppSecret::WebhookSecret,
            &app.sealed_webhook_secret,
            "hook",
        ),
    ] {
        assert_eq!(opens(&vault::github_app_binding(secret), sealed), value);
    }
    let hook = store.service_hook(&service).await.unwrap();
    let sealed = hook.sealed_secret.unwrap();
    assert_eq!(
        opens(&vault::hook_binding(service.id), &sealed),
        hook_secret
    );
    let keys = store.signing_keys(Timestamp::now()).await.unwrap();
    assert_eq!(keys.len(), keys_before.len());
    for (key, before) in keys.iter().zip(&keys_before) {
        let binding = vault::signing_key_binding(&key.kid);
        assert_eq!(
            opens(&binding, &key.sealed_secret),
            sealer.open(&binding, &before.sealed_secret).unwrap()
        );
    }
}
