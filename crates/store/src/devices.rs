//! Device authorizations (RFC 8628, `helvetia login` through the browser): a command-line
//! client asks for a pair of codes, a signed-in user approves the short one, and the client
//! redeems the long one — once — for a personal API token of that user.
//!
//! The device code is a bearer secret and is stored as a hash; the user code is short, typed by
//! people, and only useful to someone who is already signed in, so it is stored as it is (in
//! its normal form: upper case, no dash). Every function takes `now`, so expiry and the polling
//! interval are decided against one clock the caller chooses.

use helvetia_core::audit::AuditAction;
use helvetia_core::auth::{ApiToken, Caller, UserId};
use jiff::Timestamp;

use crate::audit::{AuditBy, audit};
use crate::tokens::{NewToken, TokenRow, insert_token, select_tokens};
use crate::{Result, Store, StoreError, WritePool, millis, now_millis, with_pool};

/// How long an expired authorization is kept (its client is told `expired_token` meanwhile,
/// then that its code is unknown).
const KEPT_AFTER_EXPIRY_MS: i64 = 24 * 60 * 60 * 1000;

/// A device authorization about to be stored.
#[derive(Debug, Clone)]
pub struct NewDeviceCode {
    pub device_code_hash: String,
    /// Normal form: the code's characters only, upper case.
    pub user_code: String,
    /// What the client calls itself (the token is named after it).
    pub client_name: String,
    pub expires_at: Timestamp,
    pub interval_secs: i64,
}

/// What a poll with a device code finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DevicePoll {
    /// No such device code.
    Unknown,
    /// Its time ran out before it was redeemed.
    Expired,
    /// Its token was already handed out.
    Redeemed,
    Denied,
    /// Still waiting for the user, and polled before its interval passed: the interval is now
    /// `interval_secs` (5 s longer, as RFC 8628 §3.5 asks).
    SlowDown {
        interval_secs: i64,
    },
    /// Still waiting for the user.
    Pending,
    /// Approved: the token was stored, for the user who approved, with this listing; the code
    /// is spent.
    Issued(Box<ApiToken>),
}

#[derive(sqlx::FromRow)]
struct DeviceRow {
    id: i64,
    client_name: String,
    expires_at: i64,
    interval_secs: i64,
    last_polled_at: Option<i64>,
    approved_by: Option<i64>,
    denied_at: Option<i64>,
    redeemed_at: Option<i64>,
}

impl Store {
    /// Stores a new device authorization. A user code already in use is a conflict (the
    /// caller draws another). Authorizations expired for a day go: anyone may start one, so
    /// the table must not keep every one ever started.
    pub async fn create_device_code(&self, code: &NewDeviceCode) -> Result<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query("DELETE FROM device_codes WHERE expires_at < $1")
                .bind(now_millis() - KEPT_AFTER_EXPIRY_MS)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO device_codes (device_code_hash, user_code, client_name, created_at,
                                           expires_at, interval_secs)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&code.device_code_hash)
            .bind(&code.user_code)
            .bind(&code.client_name)
            .bind(now_millis())
            .bind(millis(code.expires_at))
            .bind(code.interval_secs)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::unique("this device code is in use"))?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Approves (for `user`, who `caller` is) or denies the pending authorization with
    /// `user_code`, audited; answers the client's name. Not found once expired; a conflict once
    /// decided.
    pub async fn decide_device_code(
        &self,
        caller: &Caller,
        user: UserId,
        user_code: &str,
        approve: bool,
        now: Timestamp,
    ) -> Result<String> {
        let by = AuditBy::from(caller);
        let client_name: String = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let row: Option<DeviceRow> = sqlx::query_as(
                "SELECT id, client_name, expires_at, interval_secs, last_polled_at, approved_by,
                        denied_at, redeemed_at
                 FROM device_codes WHERE user_code = $1 AND expires_at > $2",
            )
            .bind(user_code)
            .bind(millis(now))
            .fetch_optional(&mut *tx)
            .await?;
            let row = row.ok_or_else(|| {
                StoreError::NotFound(format!("a pending device login with code {user_code}"))
            })?;
            if row.approved_by.is_some() || row.denied_at.is_some() {
                return Err(StoreError::Conflict(
                    "this device login was already approved or denied".into(),
                ));
            }
            let action = if approve {
                AuditAction::DeviceApprove
            } else {
                AuditAction::DeviceDeny
            };
            sqlx::query("UPDATE device_codes SET approved_by = $2, denied_at = $3 WHERE id = $1")
                .bind(row.id)
                .bind(approve.then_some(user.0))
                .bind((!approve).then_some(millis(now)))
                .execute(&mut *tx)
                .await?;
            audit!(
                tx,
                by.clone(),
                action,
                format!("device:{}({})", row.id, row.client_name)
            );
            tx.commit().await?;
            row.client_name
        });
        Ok(client_name)
    }

    /// A poll by the client holding the device code whose hash is `device_code_hash`, at
    /// `now`. On the first poll after approval the token `issue(client name, approver)` makes
    /// is stored, audited as the approver's, and the code is spent — in one transaction, so
    /// two polls at once cannot both receive a token.
    pub async fn poll_device_code(
        &self,
        device_code_hash: &str,
        now: Timestamp,
        client: Option<String>,
        issue: impl FnOnce(&str, UserId) -> NewToken,
    ) -> Result<DevicePoll> {
        let now = millis(now);
        let polled = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let row: Option<DeviceRow> = sqlx::query_as(
                "SELECT id, client_name, expires_at, interval_secs, last_polled_at, approved_by,
                        denied_at, redeemed_at
                 FROM device_codes WHERE device_code_hash = $1",
            )
            .bind(device_code_hash)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else {
                return Ok(DevicePoll::Unknown);
            };
            if row.redeemed_at.is_some() {
                return Ok(DevicePoll::Redeemed);
            }
            if row.expires_at <= now {
                return Ok(DevicePoll::Expired);
            }
            if row.denied_at.is_some() {
                return Ok(DevicePoll::Denied);
            }
            let Some(approver) = row.approved_by.map(UserId) else {
                let too_soon = row
                    .last_polled_at
                    .is_some_and(|last| now - last < row.interval_secs * 1000);
                let interval_secs = row.interval_secs + if too_soon { 5 } else { 0 };
                sqlx::query(
                    "UPDATE device_codes SET last_polled_at = $2, interval_secs = $3
                     WHERE id = $1",
                )
                .bind(row.id)
                .bind(now)
                .bind(interval_secs)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                return Ok(if too_soon {
                    DevicePoll::SlowDown { interval_secs }
                } else {
                    DevicePoll::Pending
                });
            };
            // The condition on `redeemed_at` makes a concurrent poll that got this far too
            // wait for this one's commit (PostgreSQL) or not start before it (SQLite's
            // one writer), then change nothing.
            let spent = sqlx::query(
                "UPDATE device_codes SET redeemed_at = $2, last_polled_at = $2
                 WHERE id = $1 AND redeemed_at IS NULL",
            )
            .bind(row.id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if spent.rows_affected() == 0 {
                return Ok(DevicePoll::Redeemed);
            }
            let token = NewToken {
                user: Some(approver),
                team: None,
                ..issue(&row.client_name, approver)
            };
            let token_row: TokenRow = insert_token!(tx, &token);
            let token = ApiToken::try_from(token_row)?;
            audit!(
                tx,
                AuditBy {
                    team: None,
                    user: Some(approver),
                    actor: format!("user:{} device:{}", approver.0, row.id),
                    client: client.clone(),
                },
                AuditAction::TokenCreate,
                format!("token:{}({})", token.id, token.name)
            );
            tx.commit().await?;
            DevicePoll::Issued(Box::new(token))
        });
        Ok(polled)
    }
}
