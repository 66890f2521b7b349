//! Sessions and the keys that sign their access tokens.
//!
//! A session is a family of refresh tokens, stored as SHA-256 hashes: each use of one marks it
//! used and stores its successor, so a used token presented again means two parties hold the
//! family — the whole session is revoked. An access token names its session, and every request
//! checks the session row ([`Store::session_caller`]), so revoking a session ends its access
//! tokens at once. Signing keys are sealed by the server's vault before they get here.

use helvetia_core::audit::AuditAction;
use helvetia_core::auth::{Caller, Credential, Principal, Scopes, UserId};
use jiff::Timestamp;

use crate::audit::{AuditBy, audit};
use crate::{Result, Store, WritePool, millis, now_millis, timestamp, with_pool};

/// A session about to start, with its first refresh token.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub user: UserId,
    /// The absolute end: no refresh extends it.
    pub expires_at: Timestamp,
    pub refresh_hash: String,
    pub client: Option<String>,
    pub user_agent: Option<String>,
}

/// What presenting a refresh token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refresh {
    /// It was current: it is used now, its successor is stored.
    Rotated { session: i64, user: UserId },
    /// It had been used before: its session is revoked.
    Reused { session: i64 },
    /// Unknown, or its session has ended.
    Invalid,
}

/// A key that signs or verifies session tokens, its secret as the vault sealed it.
#[derive(Debug, Clone)]
pub struct SigningKey {
    pub kid: String,
    pub sealed_secret: String,
    pub created_at: Timestamp,
    /// `None` for the key that signs; otherwise it verifies until then.
    pub retires_at: Option<Timestamp>,
}

#[derive(sqlx::FromRow)]
struct RefreshRow {
    id: i64,
    session_id: i64,
    used_at: Option<i64>,
    user_id: i64,
    live: bool,
}

#[derive(sqlx::FromRow)]
struct SessionUserRow {
    user_id: i64,
    email: String,
    instance_admin: bool,
}

#[derive(sqlx::FromRow)]
struct SigningKeyRow {
    kid: String,
    secret: String,
    created_at: i64,
    retires_at: Option<i64>,
}

impl Store {
    /// Starts a session for a user who just proved who they are: their failed sign-ins are
    /// forgotten, the sign-in is audited. Answers the session's id.
    pub async fn start_session(&self, by: AuditBy, session: &NewSession) -> Result<i64> {
        let id = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let now = now_millis();
            sqlx::query("UPDATE users SET failed_signins = 0, locked_until = NULL WHERE id = $1")
                .bind(session.user.0)
                .execute(&mut *tx)
                .await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO sessions (user_id, created_at, expires_at, client_addr, user_agent)
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(session.user.0)
            .bind(now)
            .bind(millis(session.expires_at))
            .bind(&session.client)
            .bind(&session.user_agent)
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO refresh_tokens (session_id, token_hash, created_at, expires_at)
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(id)
            .bind(&session.refresh_hash)
            .bind(now)
            .bind(millis(session.expires_at))
            .execute(&mut *tx)
            .await?;
            let by = AuditBy {
                user: Some(session.user),
                ..by.clone()
            };
            audit!(tx, by, AuditAction::SignIn, format!("session:{id}"));
            tx.commit().await?;
            id
        });
        Ok(id)
    }

    /// Uses the refresh token hashed `presented` and stores `next` as its successor; a token
    /// used before revokes its session (audited by `by`).
    pub async fn rotate_refresh_token(
        &self,
        presented: &str,
        next: &str,
        by: AuditBy,
        now: Timestamp,
    ) -> Result<Refresh> {
        let now = millis(now);
        let outcome = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let row: Option<RefreshRow> = sqlx::query_as(
                "SELECT r.id, r.session_id, r.used_at, s.user_id,
                        (s.revoked_at IS NULL AND s.expires_at > $2 AND r.expires_at > $2
                         AND u.disabled_at IS NULL) AS live
                 FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id
                                       JOIN users u ON u.id = s.user_id
                 WHERE r.token_hash = $1",
            )
            .bind(presented)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else {
                return Ok(Refresh::Invalid);
            };
            // The conditional update decides a race: of two requests presenting one token, only
            // one marks it used; the other counts as a reuse.
            let mut fresh = false;
            if row.used_at.is_none() && row.live {
                fresh = sqlx::query(
                    "UPDATE refresh_tokens SET used_at = $1 WHERE id = $2 AND used_at IS NULL",
                )
                .bind(now)
                .bind(row.id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
            }
            let outcome = if fresh {
                sqlx::query(
                    "INSERT INTO refresh_tokens (session_id, token_hash, created_at, expires_at)
                     SELECT id, $1, $2, expires_at FROM sessions WHERE id = $3",
                )
                .bind(next)
                .bind(now)
                .bind(row.session_id)
                .execute(&mut *tx)
                .await?;
                Refresh::Rotated {
                    session: row.session_id,
                    user: UserId(row.user_id),
                }
            } else if row.used_at.is_some() || row.live {
                let revoked = sqlx::query(
                    "UPDATE sessions SET revoked_at = $1, revoked_reason = 'refresh token reused'
                     WHERE id = $2 AND revoked_at IS NULL",
                )
                .bind(now)
                .bind(row.session_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if revoked > 0 {
                    let by = AuditBy {
                        user: Some(UserId(row.user_id)),
                        ..by.clone()
                    };
                    let target = format!(
                        "session:{} (a used refresh token came back)",
                        row.session_id
                    );
                    audit!(tx, by, AuditAction::SessionRevoke, target);
                }
                Refresh::Reused {
                    session: row.session_id,
                }
            } else {
                Refresh::Invalid
            };
            tx.commit().await?;
            outcome
        });
        Ok(outcome)
    }

    /// The session a refresh token (hashed) belongs to, used or not, and its user.
    pub async fn session_of_refresh_token(&self, hash: &str) -> Result<Option<(i64, UserId)>> {
        let row: Option<(i64, i64)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT s.id, s.user_id FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id
                 WHERE r.token_hash = $1",
            )
            .bind(hash)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(|(session, user)| (session, UserId(user))))
    }

    /// Ends a session (signing out, or an administrator revoking it); false if it had ended.
    pub async fn revoke_session(
        &self,
        session: i64,
        by: AuditBy,
        action: AuditAction,
        reason: &str,
    ) -> Result<bool> {
        let revoked = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let user: Option<i64> = sqlx::query_scalar(
                "UPDATE sessions SET revoked_at = $1, revoked_reason = $2
                 WHERE id = $3 AND revoked_at IS NULL RETURNING user_id",
            )
            .bind(now_millis())
            .bind(reason)
            .bind(session)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(user) = user {
                let by = AuditBy {
                    user: Some(UserId(user)),
                    ..by.clone()
                };
                audit!(tx, by, action, format!("session:{session}"));
            }
            tx.commit().await?;
            user.is_some()
        });
        Ok(revoked)
    }

    /// The caller an access token of `session` (issued to `user`) acts as, if the session is
    /// live and its user not disabled: every scope, limited by the user's roles.
    pub async fn session_caller(
        &self,
        session: i64,
        user: UserId,
        now: Timestamp,
    ) -> Result<Option<Caller>> {
        let row: Option<SessionUserRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT s.user_id, u.email, u.instance_admin
                 FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.id = $1 AND s.user_id = $2 AND s.revoked_at IS NULL
                   AND s.expires_at > $3 AND u.disabled_at IS NULL",
            )
            .bind(session)
            .bind(user.0)
            .bind(millis(now))
            .fetch_optional(pool)
            .await?
        });
        let Some(row) = row else { return Ok(None) };
        let user = UserId(row.user_id);
        Ok(Some(Caller {
            principal: Principal::User {
                id: user,
                email: row.email,
                instance_admin: row.instance_admin,
            },
            credential: Credential::Session { session },
            scopes: Scopes::admin(),
            teams: self.memberships(user).await?,
            client: None,
        }))
    }

    /// The keys that still verify at `now`, the signing one (never retiring) first.
    pub async fn signing_keys(&self, now: Timestamp) -> Result<Vec<SigningKey>> {
        let rows: Vec<SigningKeyRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT kid, secret, created_at, retires_at FROM signing_keys
                 WHERE retires_at IS NULL OR retires_at > $1
                 ORDER BY retires_at IS NOT NULL, id DESC",
            )
            .bind(millis(now))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|row| {
                Ok(SigningKey {
                    kid: row.kid,
                    sealed_secret: row.secret,
                    created_at: timestamp(row.created_at)?,
                    retires_at: row.retires_at.map(timestamp).transpose()?,
                })
            })
            .collect()
    }

    /// Makes `kid` the signing key. The key that signed until now verifies until `retire_at`;
    /// with `only_if_none`, nothing happens when a signing key exists already (the first
    /// start's key, made by whichever caller gets there first). Answers whether it was stored.
    pub async fn add_signing_key(
        &self,
        kid: &str,
        sealed_secret: &str,
        retire_at: Timestamp,
        only_if_none: bool,
        by: AuditBy,
    ) -> Result<bool> {
        let added = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let signing: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM signing_keys WHERE retires_at IS NULL")
                    .fetch_one(&mut *tx)
                    .await?;
            if only_if_none && signing > 0 {
                return Ok(false);
            }
            sqlx::query("UPDATE signing_keys SET retires_at = $1 WHERE retires_at IS NULL")
                .bind(millis(retire_at))
                .execute(&mut *tx)
                .await?;
            sqlx::query("INSERT INTO signing_keys (kid, secret, created_at) VALUES ($1, $2, $3)")
                .bind(kid)
                .bind(sealed_secret)
                .bind(now_millis())
                .execute(&mut *tx)
                .await?;
            if signing > 0 {
                audit!(
                    tx,
                    by,
                    AuditAction::SigningKeyRotate,
                    format!("signing key {kid}")
                );
            }
            tx.commit().await?;
            true
        });
        Ok(added)
    }
}
