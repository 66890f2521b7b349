//! What proves a user is who they say: the password hash, the sealed TOTP secret with the last
//! time step it accepted, recovery codes, and the count of failed sign-ins that locks an
//! account ([`helvetia_core::account::lockout`]). Checking a password or a code is the server's
//! work; the store keeps the state and makes each "use once" rule a single conditional update,
//! so two requests racing with one code cannot both succeed.

use helvetia_core::account::{Email, User, lockout};
use helvetia_core::audit::AuditAction;
use helvetia_core::auth::UserId;
use jiff::Timestamp;

use crate::audit::{AuditBy, audit};
use crate::{Result, Store, StoreError, WritePool, millis, now_millis, opt_timestamp, with_pool};

/// What signing in checks of an account.
#[derive(Debug, Clone)]
pub struct SignInRecord {
    pub user: User,
    /// The argon2id PHC string; `None` until the user set a password.
    pub password_hash: Option<String>,
    /// The TOTP secret as the vault sealed it; set from enrolment on, enabled or not.
    pub totp_secret: Option<String>,
    /// Sign-ins are refused until then.
    pub locked_until: Option<Timestamp>,
}

#[derive(sqlx::FromRow)]
struct SecretsRow {
    password_hash: Option<String>,
    totp_secret: Option<String>,
    locked_until: Option<i64>,
}

impl Store {
    /// The account signing in with `email`, if there is one.
    pub async fn sign_in_record(&self, email: &Email) -> Result<Option<SignInRecord>> {
        let Some(user) = self.user_by_email(email).await? else {
            return Ok(None);
        };
        self.sign_in_record_of(user).await.map(Some)
    }

    /// The credentials of `user`.
    pub async fn sign_in_record_of(&self, user: User) -> Result<SignInRecord> {
        let row: SecretsRow = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT password_hash, totp_secret, locked_until FROM users WHERE id = $1",
            )
            .bind(user.id.0)
            .fetch_optional(pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("user #{}", user.id.0)))?
        });
        Ok(SignInRecord {
            user,
            password_hash: row.password_hash,
            totp_secret: row.totp_secret,
            locked_until: opt_timestamp(row.locked_until)?,
        })
    }

    /// Counts a failed sign-in of `user` at `now` and locks the account as
    /// [`lockout`] says; answers until when it is locked.
    pub async fn record_failed_sign_in(
        &self,
        user: UserId,
        by: AuditBy,
        reason: &str,
        now: Timestamp,
    ) -> Result<Option<Timestamp>> {
        let locked = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let failures: i64 = sqlx::query_scalar(
                "UPDATE users SET failed_signins = failed_signins + 1 WHERE id = $1
                 RETURNING failed_signins",
            )
            .bind(user.0)
            .fetch_one(&mut *tx)
            .await?;
            let locked = lockout(failures).and_then(|lock| now.checked_add(lock).ok());
            if let Some(until) = locked {
                sqlx::query("UPDATE users SET locked_until = $1 WHERE id = $2")
                    .bind(millis(until))
                    .bind(user.0)
                    .execute(&mut *tx)
                    .await?;
            }
            let by = AuditBy {
                user: Some(user),
                ..by.clone()
            };
            let target = match locked {
                Some(until) => format!("{reason}; locked until {until}"),
                None => reason.to_owned(),
            };
            audit!(tx, by, AuditAction::SignInFailed, target);
            tx.commit().await?;
            locked
        });
        Ok(locked)
    }

    /// Sets `user`'s password hash and ends every session of theirs but `keep` (the one that
    /// changed it, if any): whoever knew the old password is signed out.
    pub async fn set_password(
        &self,
        user: UserId,
        password_hash: &str,
        by: AuditBy,
        keep: Option<i64>,
    ) -> Result<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "UPDATE users SET password_hash = $1, failed_signins = 0, locked_until = NULL
                 WHERE id = $2",
            )
            .bind(password_hash)
            .bind(user.0)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE sessions SET revoked_at = $1, revoked_reason = 'password changed'
                 WHERE user_id = $2 AND revoked_at IS NULL AND id IS DISTINCT FROM $3",
            )
            .bind(now_millis())
            .bind(user.0)
            .bind(keep)
            .execute(&mut *tx)
            .await?;
            let target = format!("user:{}", user.0);
            audit!(tx, by, AuditAction::PasswordChange, target);
            tx.commit().await?;
        });
        Ok(())
    }

    /// Stores a new TOTP secret (sealed) for enrolment; refused while TOTP is enabled.
    pub async fn set_totp_secret(&self, user: UserId, sealed: &str) -> Result<()> {
        let updated = with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE users SET totp_secret = $1, totp_last_step = NULL
                 WHERE id = $2 AND totp_enabled_at IS NULL",
            )
            .bind(sealed)
            .bind(user.0)
            .execute(pool)
            .await?
            .rows_affected()
        });
        if updated == 0 {
            return Err(StoreError::Conflict(
                "two-factor authentication is already enabled; disable it first".into(),
            ));
        }
        Ok(())
    }

    /// Enables TOTP after the first code (`step`) was checked, replacing the recovery codes
    /// with `recovery_hashes`.
    pub async fn enable_totp(
        &self,
        user: UserId,
        step: i64,
        recovery_hashes: &[String],
        by: AuditBy,
    ) -> Result<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let updated = sqlx::query(
                "UPDATE users SET totp_enabled_at = $1, totp_last_step = $2
                 WHERE id = $3 AND totp_enabled_at IS NULL AND totp_secret IS NOT NULL",
            )
            .bind(now_millis())
            .bind(step)
            .bind(user.0)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if updated == 0 {
                return Err(StoreError::Conflict(
                    "no two-factor enrolment is in progress".into(),
                ));
            }
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                .bind(user.0)
                .execute(&mut *tx)
                .await?;
            for hash in recovery_hashes {
                sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
                    .bind(user.0)
                    .bind(hash)
                    .execute(&mut *tx)
                    .await?;
            }
            let target = format!("user:{}", user.0);
            audit!(tx, by, AuditAction::TotpEnable, target);
            tx.commit().await?;
        });
        Ok(())
    }

    /// Turns TOTP off and forgets its secret and recovery codes.
    pub async fn disable_totp(&self, user: UserId, by: AuditBy) -> Result<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "UPDATE users SET totp_secret = NULL, totp_enabled_at = NULL,
                                  totp_last_step = NULL
                 WHERE id = $1",
            )
            .bind(user.0)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                .bind(user.0)
                .execute(&mut *tx)
                .await?;
            let target = format!("user:{}", user.0);
            audit!(tx, by, AuditAction::TotpDisable, target);
            tx.commit().await?;
        });
        Ok(())
    }

    /// Accepts the TOTP time step `step` for `user` if it is later than every step accepted
    /// before: a code, and any earlier one, works once.
    pub async fn accept_totp_step(&self, user: UserId, step: i64) -> Result<bool> {
        let updated = with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE users SET totp_last_step = $1
                 WHERE id = $2 AND (totp_last_step IS NULL OR totp_last_step < $1)",
            )
            .bind(step)
            .bind(user.0)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(updated == 1)
    }

    /// Uses up the recovery code with hash `code_hash`; false if it is not one of the user's
    /// or was used already.
    pub async fn use_recovery_code(
        &self,
        user: UserId,
        code_hash: &str,
        by: AuditBy,
    ) -> Result<bool> {
        let used = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let id: Option<i64> = sqlx::query_scalar(
                "UPDATE recovery_codes SET used_at = $1
                 WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL RETURNING id",
            )
            .bind(now_millis())
            .bind(user.0)
            .bind(code_hash)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(id) = id {
                let left: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
                )
                .bind(user.0)
                .fetch_one(&mut *tx)
                .await?;
                let target = format!("user:{} recovery code #{id}; {left} left", user.0);
                audit!(tx, by, AuditAction::RecoveryCodeUse, target);
            }
            tx.commit().await?;
            id.is_some()
        });
        Ok(used)
    }
}
