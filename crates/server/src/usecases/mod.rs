//! The operations Helvetia offers, one function each, grouped by resource. The HTTP API calls
//! them; so will the webhook receivers, the dashboard pages and scheduled jobs.
//!
//! An operation takes the [`App`] (store, platform, worker), the caller and typed input. It
//! checks that the caller owns what it names ([`access`]), validates the input with the
//! core's validators, changes the store (which writes the audit entry in the same
//! transaction), wakes the worker or the reconciler, and answers with a typed result (the
//! API's contract types, `helvetia_api_types`) or a [`UseCaseError`]. Nothing here knows
//! HTTP: each entry point maps a [`UseCaseError`] to its own terms (the API in
//! `api::error`, the only place that picks status codes).
//!
//! Module dependencies point one way: every resource module uses [`access`]; those that
//! start containers use [`deployments`] to request a redeployment.

use std::sync::Arc;

use helvetia_core::validation::FieldErrors;
use helvetia_store::{Outage, Store, StoreError};
use tokio::sync::Notify;

use crate::platform::Platform;
use crate::sessions::Keyring;
use crate::worker::WorkerHandle;

pub mod access;
pub mod account;
pub mod audit;
pub mod certificates;
pub mod deployments;
pub mod detect;
pub mod devices;
pub mod disk;
pub mod domains;
pub mod env;
pub mod github;
pub mod github_repos;
pub mod github_users;
pub mod hooks;
pub mod lifecycle;
pub mod links;
pub mod logs;
pub mod metrics;
pub mod notifications;
pub mod oidc;
pub mod previews;
pub mod projects;
pub mod pull_requests;
pub mod push_deploys;
pub mod receivers;
pub mod services;
pub mod sessions;
pub mod signin;
pub mod teams;
pub mod tokens;
pub mod totp;
pub mod users;
pub mod volumes;

/// What the operations work with.
#[derive(Clone)]
pub struct App {
    pub store: Store,
    pub platform: Arc<Platform>,
    pub worker: WorkerHandle,
    /// Notified when a change (a deletion) leaves containers or routes to clean up.
    pub reconcile: Arc<Notify>,
    /// The keys that sign and verify session tokens, opened once.
    pub keyring: Arc<Keyring>,
    /// What users reach through the GitHub App, kept briefly.
    pub github: Arc<github_repos::Cache>,
    /// The key sets of the OpenID Connect issuers CI jobs' tokens come from.
    pub oidc: Arc<crate::oidc::KeySets>,
    /// The webhook delivery log's writer (group commit).
    pub delivery_log: Arc<crate::delivery_log::DeliveryLog>,
}

impl App {
    /// The operations' context for a server's entry points (the API, scheduled jobs), with
    /// empty caches.
    pub fn new(platform: Arc<Platform>, worker: WorkerHandle, reconcile: Arc<Notify>) -> App {
        App {
            store: platform.store.clone(),
            platform,
            worker,
            reconcile,
            keyring: Arc::default(),
            github: Arc::default(),
            oidc: Arc::default(),
            delivery_log: Arc::default(),
        }
    }
}

/// Why an operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum UseCaseError {
    /// What the caller named does not exist, or is not the caller's.
    #[error("{0} not found")]
    NotFound(String),
    /// The caller may see what it named but its role or credential does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// The operation contradicts the current state (a name taken, nothing to roll back to).
    #[error("{0}")]
    Conflict(String),
    /// The caller did not prove who they are: a sign-in or a refresh token refused.
    #[error("{0}")]
    Unauthenticated(Refusal),
    /// A token that proves itself (a CI job's OpenID Connect token) did not: why, for the
    /// job's log (expired, another audience, an unknown key).
    #[error("{0}")]
    TokenRefused(String),
    /// The input breaks a rule; the reasons per field.
    #[error(transparent)]
    Invalid(#[from] FieldErrors),
    /// A request that cannot be honoured as made (a sign-in with GitHub whose `state` is
    /// unknown, used, expired or another browser's, or whose code GitHub refused).
    #[error("{0}")]
    Refused(String),
    /// A request body over the operation's limit (in bytes).
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    /// A limit on what one service may hold at once is reached; trying later may succeed.
    #[error("{0}")]
    Busy(String),
    /// A rate limit is reached (sign-in attempts of an account).
    #[error(transparent)]
    RateLimited(#[from] crate::limits::RateLimited),
    /// A change was made for a state of the resource that is no longer current.
    #[error("{0}")]
    Stale(String),
    /// The database does not answer for now (restarting, unreachable); trying later may
    /// succeed. The detail is for the log.
    #[error("the database is unavailable; try again shortly")]
    Unavailable(String),
    /// The database's disk is full: changes fail until space is freed. The detail is for the
    /// log.
    #[error("the server's storage is full; changes fail until disk space is freed")]
    StorageFull(String),
    /// Something failed on the server's side. The detail is for the log, never for a client.
    #[error("internal error")]
    Internal(String),
}

/// Why a sign-in or a refresh was refused. Which of e-mail, password, code or lock was wrong
/// is for the audit log only: an answer that told would tell which accounts exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("wrong e-mail address, password or code")]
    Credentials,
    /// The password was right; the account also needs its TOTP code or a recovery code.
    #[error("this account signs in with a second factor: send `totp_code` or `recovery_code`")]
    SecondFactorRequired,
    #[error("the refresh token is invalid, used or expired: sign in again")]
    Session,
    /// A webhook delivery without a valid signature (which part was wrong is not said).
    #[error("the delivery's signature is missing, wrong or expired")]
    Signature,
}

impl From<StoreError> for UseCaseError {
    fn from(error: StoreError) -> Self {
        match error.outage() {
            Some(Outage::Unreachable) => return UseCaseError::Unavailable(error.to_string()),
            Some(Outage::StorageFull) => return UseCaseError::StorageFull(error.to_string()),
            None => {}
        }
        match error {
            StoreError::NotFound(what) => UseCaseError::NotFound(what),
            StoreError::Conflict(why) => UseCaseError::Conflict(why),
            StoreError::IllegalTransition(illegal) => UseCaseError::Conflict(illegal.to_string()),
            StoreError::Stale(_) => UseCaseError::Stale(format!(
                "{error}: read it again and make the change on what it is now"
            )),
            StoreError::Corrupt(_)
            | StoreError::Config(_)
            | StoreError::Backend(_)
            | StoreError::Migrate(_) => UseCaseError::Internal(error.to_string()),
        }
    }
}

pub type Result<T> = std::result::Result<T, UseCaseError>;
