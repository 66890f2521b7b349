//! Users linked to GitHub accounts (by GitHub's numeric id, never by e-mail) and the sign-ins
//! with GitHub in progress. An authorization's `state` is used up by one conditional update,
//! so two callbacks racing with the same `state` cannot both proceed.

use helvetia_core::account::User;
use helvetia_core::audit::AuditAction;
use helvetia_core::auth::{Role, UserId};
use helvetia_core::name::TeamName;
use jiff::Timestamp;

use crate::audit::{AuditBy, audit};
use crate::teams::unique_team_name;
use crate::tokens::DEFAULT_TEAM;
use crate::users::{NewUser, UserRow, insert_user, select_users};
use crate::{Result, Store, StoreError, WritePool, millis, now_millis, timestamp, with_pool};

/// A sign-in with GitHub (or the linking of an account) about to start.
#[derive(Debug, Clone)]
pub struct NewGitHubAuthorization {
    /// SHA-256 of the `state` sent to GitHub.
    pub state_hash: String,
    /// SHA-256 of the random value in the browser's cookie.
    pub browser_hash: String,
    /// The PKCE verifier, sealed by the vault.
    pub verifier_sealed: String,
    /// The signed-in user who links their account; `None` for a sign-in.
    pub user: Option<UserId>,
    pub expires_at: Timestamp,
}

/// An authorization taken at the callback: it cannot be taken again.
#[derive(Debug, Clone)]
pub struct GitHubAuthorization {
    pub browser_hash: String,
    pub verifier_sealed: String,
    pub user: Option<UserId>,
    pub expires_at: Timestamp,
}

/// A user's GitHub token as stored: sealed, with its expiry when GitHub gave one.
#[derive(Debug, Clone)]
pub struct SealedGitHubToken {
    pub sealed: String,
    pub expires_at: Option<Timestamp>,
}

const LINKED_ELSEWHERE: &str = "this GitHub account is linked to another Helvetia account";

impl Store {
    /// Records an authorization in progress; expired ones are forgotten on the way.
    pub async fn start_github_authorization(&self, new: &NewGitHubAuthorization) -> Result<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query("DELETE FROM github_authorizations WHERE expires_at < $1")
                .bind(now_millis())
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO github_authorizations
                     (state_hash, browser_hash, verifier_sealed, user_id, expires_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&new.state_hash)
            .bind(&new.browser_hash)
            .bind(&new.verifier_sealed)
            .bind(new.user.map(|user| user.0))
            .bind(millis(new.expires_at))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Uses up the authorization of `state_hash`: `None` when there is none or it was used.
    /// Whether it expired or belongs to this browser is the caller's to check.
    pub async fn take_github_authorization(
        &self,
        state_hash: &str,
    ) -> Result<Option<GitHubAuthorization>> {
        let row: Option<(String, String, Option<i64>, i64)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "UPDATE github_authorizations SET used_at = $1
                 WHERE state_hash = $2 AND used_at IS NULL
                 RETURNING browser_hash, verifier_sealed, user_id, expires_at",
            )
            .bind(now_millis())
            .bind(state_hash)
            .fetch_optional(pool)
            .await?
        });
        row.map(|(browser_hash, verifier_sealed, user, expires_at)| {
            Ok(GitHubAuthorization {
                browser_hash,
                verifier_sealed,
                user: user.map(UserId),
                expires_at: timestamp(expires_at)?,
            })
        })
        .transpose()
    }

    /// The user linked to GitHub account `github_id`.
    pub async fn user_by_github_id(&self, github_id: i64) -> Result<Option<User>> {
        let row: Option<UserRow> = with_pool!(self, |pool| {
            sqlx::query_as(select_users!("github_id = $1"))
                .bind(github_id)
                .fetch_optional(pool)
                .await?
        });
        row.map(User::try_from).transpose()
    }

    /// Links `user` to GitHub account `github_id` (`login` for the audit log). A GitHub
    /// account linked to someone else is a conflict.
    pub async fn link_github(
        &self,
        by: AuditBy,
        user: UserId,
        github_id: i64,
        login: &str,
    ) -> Result<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let changed = sqlx::query("UPDATE users SET github_id = $1 WHERE id = $2")
                .bind(github_id)
                .bind(user.0)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::unique(LINKED_ELSEWHERE))?
                .rows_affected();
            if changed == 0 {
                return Err(StoreError::NotFound(format!("user #{}", user.0)));
            }
            let target = format!("github:{github_id}({login})");
            audit!(tx, by, AuditAction::GitHubLink, target);
            tx.commit().await?;
        });
        Ok(())
    }

    /// Creates a user (as [`Store::create_user`] does) linked to GitHub account `github_id`.
    pub async fn create_github_user(
        &self,
        by: AuditBy,
        user: &NewUser,
        github_id: i64,
        login: &str,
    ) -> Result<User> {
        let row: UserRow = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let row: UserRow = insert_user!(tx, by, user);
            sqlx::query("UPDATE users SET github_id = $1 WHERE id = $2")
                .bind(github_id)
                .bind(row.id)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::unique(LINKED_ELSEWHERE))?;
            let target = format!("github:{github_id}({login})");
            // In the new user's own log, beside their sign-ins.
            let by = AuditBy {
                user: Some(UserId(row.id)),
                ..by
            };
            audit!(tx, by, AuditAction::GitHubLink, target);
            tx.commit().await?;
            row
        });
        row.try_into()
    }

    /// Keeps `user`'s GitHub token (sealed by the caller), replacing the previous one.
    pub async fn set_github_token(&self, user: UserId, token: &SealedGitHubToken) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE users SET github_token_sealed = $1, github_token_expires_at = $2
                 WHERE id = $3",
            )
            .bind(&token.sealed)
            .bind(token.expires_at.map(millis))
            .bind(user.0)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// `user`'s GitHub token, if they signed in with GitHub or linked their account.
    pub async fn github_token(&self, user: UserId) -> Result<Option<SealedGitHubToken>> {
        let row: Option<(Option<String>, Option<i64>)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT github_token_sealed, github_token_expires_at FROM users WHERE id = $1",
            )
            .bind(user.0)
            .fetch_optional(pool)
            .await?
        });
        let Some((Some(sealed), expires_at)) = row else {
            return Ok(None);
        };
        Ok(Some(SealedGitHubToken {
            sealed,
            expires_at: expires_at.map(timestamp).transpose()?,
        }))
    }
}
