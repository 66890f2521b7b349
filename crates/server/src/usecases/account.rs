//! What the account operations share: the caller's own account record, how the audit log
//! names a user acting on their own account, and what a new session hands out.

use helvetia_core::account::User;
use helvetia_core::auth::{Caller, Principal};
use helvetia_store::audit::AuditBy;
use helvetia_store::credentials::SignInRecord;

use super::{App, Result, UseCaseError};

/// A session's tokens, fresh from a sign-in or a refresh.
#[derive(Debug, Clone)]
pub struct Issued {
    pub access_token: String,
    /// Seconds.
    pub expires_in: i64,
    pub refresh_token: String,
}

/// Where a request came from, for the session row and the audit log.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub client: Option<String>,
    pub user_agent: Option<String>,
}

/// How the audit log names a user acting on their own account.
pub fn by_user(user: &User, client: Option<String>) -> AuditBy {
    AuditBy {
        team: None,
        user: Some(user.id),
        actor: format!("user:{}({})", user.id.0, user.email),
        client,
    }
}

/// The signed-in user behind `caller`. A server-administration token has no account: for it
/// the account is "not found".
pub async fn account(app: &App, caller: &Caller) -> Result<SignInRecord> {
    match &caller.principal {
        Principal::User { id, .. } => {
            let user = app.store.user(*id).await?;
            Ok(app.store.sign_in_record_of(user).await?)
        }
        Principal::System => Err(UseCaseError::NotFound(
            "account (a server-administration token belongs to no one)".into(),
        )),
        Principal::CiJob { .. } => Err(UseCaseError::NotFound(
            "account (a CI job's token belongs to no one)".into(),
        )),
    }
}
