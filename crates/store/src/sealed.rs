//! The values the server's vault sealed that live beside other data — users' TOTP keys and
//! GitHub tokens, sign-ins with GitHub in progress, session signing keys, receivers' secrets,
//! the GitHub App's secrets — found and written back when the master key is rotated. (The
//! variables', channels' and ACME values have their own lists in [`crate::env::Resealed`].)

use crate::{Result, Store, with_pool};

/// Where a sealed value lives: the row, and what its vault binding is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SealedAt {
    /// `users.totp_secret`, by user id.
    Totp(i64),
    /// `users.github_token_sealed`, by user id.
    GithubToken(i64),
    /// `github_authorizations.verifier_sealed`, by the state's hash.
    GithubAuthorization(String),
    /// `signing_keys.secret`, by key id.
    SigningKey(String),
    /// `service_hooks.secret`, by service id.
    HookSecret(i64),
    /// One of the GitHub App's secrets.
    GithubApp(GithubAppSecret),
    /// `services.registry_password`, by service id.
    RegistryPassword(i64),
}

/// The GitHub App's sealed columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GithubAppSecret {
    PrivateKey,
    ClientSecret,
    WebhookSecret,
}

impl GithubAppSecret {
    pub const ALL: [GithubAppSecret; 3] = [
        GithubAppSecret::PrivateKey,
        GithubAppSecret::ClientSecret,
        GithubAppSecret::WebhookSecret,
    ];

    /// The column's name, which is also the secret's name in its vault binding.
    pub fn as_str(self) -> &'static str {
        match self {
            GithubAppSecret::PrivateKey => "private_key",
            GithubAppSecret::ClientSecret => "client_secret",
            GithubAppSecret::WebhookSecret => "webhook_secret",
        }
    }
}

impl SealedAt {
    /// Writes `$1` into this value's column; `$2` is the row's key, when it has one.
    pub(crate) fn update(&self) -> String {
        match self {
            SealedAt::Totp(_) => "UPDATE users SET totp_secret = $1 WHERE id = $2".into(),
            SealedAt::GithubToken(_) => {
                "UPDATE users SET github_token_sealed = $1 WHERE id = $2".into()
            }
            SealedAt::GithubAuthorization(_) => {
                "UPDATE github_authorizations SET verifier_sealed = $1 WHERE state_hash = $2".into()
            }
            SealedAt::SigningKey(_) => "UPDATE signing_keys SET secret = $1 WHERE kid = $2".into(),
            SealedAt::HookSecret(_) => {
                "UPDATE service_hooks SET secret = $1 WHERE service_id = $2".into()
            }
            SealedAt::GithubApp(secret) => {
                format!("UPDATE github_app SET {} = $1", secret.as_str())
            }
            SealedAt::RegistryPassword(_) => {
                "UPDATE services SET registry_password = $1 WHERE id = $2".into()
            }
        }
    }
}

impl Store {
    /// Every value sealed in the places [`SealedAt`] names, as stored.
    pub async fn sealed_values(&self) -> Result<Vec<(SealedAt, String)>> {
        let (totp, tokens, authorizations, keys, hooks, app, registries) =
            with_pool!(self, |pool| {
                let totp: Vec<(i64, String)> = sqlx::query_as(
                    "SELECT id, totp_secret FROM users WHERE totp_secret IS NOT NULL ORDER BY id",
                )
                .fetch_all(pool)
                .await?;
                let tokens: Vec<(i64, String)> = sqlx::query_as(
                    "SELECT id, github_token_sealed FROM users
                 WHERE github_token_sealed IS NOT NULL ORDER BY id",
                )
                .fetch_all(pool)
                .await?;
                let authorizations: Vec<(String, String)> =
                    sqlx::query_as("SELECT state_hash, verifier_sealed FROM github_authorizations")
                        .fetch_all(pool)
                        .await?;
                let keys: Vec<(String, String)> =
                    sqlx::query_as("SELECT kid, secret FROM signing_keys ORDER BY id")
                        .fetch_all(pool)
                        .await?;
                let hooks: Vec<(i64, String)> = sqlx::query_as(
                    "SELECT service_id, secret FROM service_hooks
                 WHERE secret IS NOT NULL ORDER BY service_id",
                )
                .fetch_all(pool)
                .await?;
                let app: Option<(String, String, String)> = sqlx::query_as(
                    "SELECT private_key, client_secret, webhook_secret FROM github_app",
                )
                .fetch_optional(pool)
                .await?;
                let registries: Vec<(i64, String)> = sqlx::query_as(
                    "SELECT id, registry_password FROM services
                 WHERE registry_password IS NOT NULL ORDER BY id",
                )
                .fetch_all(pool)
                .await?;
                (totp, tokens, authorizations, keys, hooks, app, registries)
            });
        let app = app.into_iter().flat_map(|(key, client, hook)| {
            GithubAppSecret::ALL
                .into_iter()
                .map(SealedAt::GithubApp)
                .zip([key, client, hook])
        });
        Ok(totp
            .into_iter()
            .map(|(id, sealed)| (SealedAt::Totp(id), sealed))
            .chain(
                tokens
                    .into_iter()
                    .map(|(id, sealed)| (SealedAt::GithubToken(id), sealed)),
            )
            .chain(
                authorizations
                    .into_iter()
                    .map(|(state, sealed)| (SealedAt::GithubAuthorization(state), sealed)),
            )
            .chain(
                keys.into_iter()
                    .map(|(kid, sealed)| (SealedAt::SigningKey(kid), sealed)),
            )
            .chain(
                hooks
                    .into_iter()
                    .map(|(id, sealed)| (SealedAt::HookSecret(id), sealed)),
            )
            .chain(app)
            .chain(
                registries
                    .into_iter()
                    .map(|(id, sealed)| (SealedAt::RegistryPassword(id), sealed)),
            )
            .collect())
    }
}
