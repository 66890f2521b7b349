//! The instance's GitHub App — one at most, its secrets sealed by the vault before they get
//! here — the manifest flows an instance administrator started, and which App installation a
//! service's clones use.
//!
//! A manifest flow's `state` is a bearer secret handed to GitHub and back, so it is stored as a
//! hash; it is spent in the statement that finds it, so a replayed one finds nothing.

use helvetia_core::audit::AuditAction;
use helvetia_core::auth::UserId;
use jiff::Timestamp;

use crate::audit::{AuditBy, audit};
use crate::{Result, Store, WritePool, millis, timestamp, with_pool};

/// The instance's GitHub App as stored: the secrets are the vault's sealed forms.
#[derive(Clone, PartialEq, Eq)]
pub struct GitHubApp {
    pub app_id: i64,
    /// Known when the App was made through the manifest flow.
    pub slug: Option<String>,
    pub client_id: String,
    pub sealed_private_key: String,
    pub sealed_client_secret: String,
    pub sealed_webhook_secret: String,
    pub created_at: Timestamp,
}

impl std::fmt::Debug for GitHubApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubApp")
            .field("app_id", &self.app_id)
            .field("slug", &self.slug)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// A manifest flow found by its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingManifest {
    /// Who started it; `None` for the server's own admin token.
    pub user: Option<UserId>,
}

#[derive(sqlx::FromRow)]
struct GitHubAppRow {
    app_id: i64,
    slug: Option<String>,
    client_id: String,
    private_key: String,
    client_secret: String,
    webhook_secret: String,
    created_at: i64,
}

impl Store {
    /// The instance's GitHub App, if one is configured.
    pub async fn github_app(&self) -> Result<Option<GitHubApp>> {
        let row: Option<GitHubAppRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT app_id, slug, client_id, private_key, client_secret, webhook_secret,
                        created_at
                 FROM github_app WHERE id = 1",
            )
            .fetch_optional(pool)
            .await?
        });
        row.map(|row| {
            Ok(GitHubApp {
                app_id: row.app_id,
                slug: row.slug,
                client_id: row.client_id,
                sealed_private_key: row.private_key,
                sealed_client_secret: row.client_secret,
                sealed_webhook_secret: row.webhook_secret,
                created_at: timestamp(row.created_at)?,
            })
        })
        .transpose()
    }

    /// Makes `app` the instance's GitHub App, replacing any before it; audited as the
    /// instance's (`by` is an instance administrator, outside any team).
    pub async fn save_github_app(&self, app: &GitHubApp, by: impl Into<AuditBy>) -> Result<()> {
        let by = by.into();
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "INSERT INTO github_app (id, app_id, slug, client_id, private_key, client_secret,
                                         webhook_secret, created_at)
                 VALUES (1, $1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (id) DO UPDATE SET
                     app_id = excluded.app_id, slug = excluded.slug,
                     client_id = excluded.client_id, private_key = excluded.private_key,
                     client_secret = excluded.client_secret,
                     webhook_secret = excluded.webhook_secret, created_at = excluded.created_at",
            )
            .bind(app.app_id)
            .bind(&app.slug)
            .bind(&app.client_id)
            .bind(&app.sealed_private_key)
            .bind(&app.sealed_client_secret)
            .bind(&app.sealed_webhook_secret)
            .bind(millis(app.created_at))
            .execute(&mut *tx)
            .await?;
            audit!(
                tx,
                by,
                AuditAction::GitHubAppConfigure,
                format!("github app {}", app.app_id)
            );
            tx.commit().await?;
        });
        Ok(())
    }

    /// Records a manifest flow `user` (`None`: the server's own admin token) started; its `state` (hashed) is good until `expires_at`.
    /// Flows that expired go, so abandoned ones do not pile up.
    pub async fn add_github_manifest_state(
        &self,
        state_hash: &str,
        user: Option<UserId>,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query("DELETE FROM github_manifest_states WHERE expires_at <= $1")
                .bind(millis(now))
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO github_manifest_states (state_hash, user_id, expires_at)
                 VALUES ($1, $2, $3)",
            )
            .bind(state_hash)
            .bind(user.map(|user| user.0))
            .bind(millis(expires_at))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Spends a manifest flow's state: who started it, if it was pending and had not expired at
    /// `now`. One statement finds and deletes it, so of two requests with the same
    /// state one at most gets an answer.
    pub async fn take_github_manifest_state(
        &self,
        state_hash: &str,
        now: Timestamp,
    ) -> Result<Option<PendingManifest>> {
        let user: Option<(Option<i64>, i64)> = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let user = sqlx::query_as(
                "DELETE FROM github_manifest_states WHERE state_hash = $1
                 RETURNING user_id, expires_at",
            )
            .bind(state_hash)
            .fetch_optional(&mut *tx)
            .await?;
            tx.commit().await?;
            user
        });
        Ok(user
            .filter(|(_, expires_at)| *expires_at > millis(now))
            .map(|(user, _)| PendingManifest {
                user: user.map(UserId),
            }))
    }
}
