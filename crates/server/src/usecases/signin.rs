//! Signing in with a password (and a second factor), and changing the password.
//!
//! Every refusal looks the same to the client ([`Refusal::Credentials`]): an unknown e-mail
//! address, a wrong password, a locked or disabled account, a wrong or replayed code. An
//! unknown address still costs one argon2 hash, so timing does not tell accounts apart. The
//! reason goes to the audit log: the user's own for an account, the instance's for an unknown
//! address. Failed passwords and codes count towards the lockout
//! ([`helvetia_core::account::lockout`]); while an account is locked even the right password is
//! refused, and those attempts do not lengthen the lock.

use helvetia_api_types::{ChangePassword, SignIn};
use helvetia_core::account::{Email, check_password};
use helvetia_core::audit::AuditAction;
use helvetia_core::auth::{Caller, Credential, UserId, token_hash};
use helvetia_core::validation::{FieldErrors, Invalid};
use helvetia_store::audit::AuditBy;
use helvetia_store::credentials::SignInRecord;
use helvetia_store::sessions::NewSession;
use jiff::Timestamp;

use super::account::{Issued, Origin, account, by_user};
use super::{App, Refusal, Result, UseCaseError, totp};
use crate::passwords;
use crate::sessions::{SESSION_LIFETIME, random_token};

/// Signs in; answers a new session's tokens.
pub async fn sign_in(app: &App, input: SignIn, origin: Origin) -> Result<Issued> {
    let now = Timestamp::now();
    let email = Email::parse(&input.email).map_err(|e| FieldErrors::single("email", e))?;
    // Counted for unknown addresses too, and before any password is checked.
    app.platform.limits.check_account(email.as_str())?;
    let Some(record) = app.store.sign_in_record(&email).await? else {
        passwords::verify_nothing(input.password).await;
        let by = AuditBy {
            actor: "anonymous".into(),
            client: origin.client,
            ..AuditBy::default()
        };
        let target = format!("{email}: no such account");
        app.store
            .record_audit(by, AuditAction::SignInFailed, &target)
            .await?;
        return Err(UseCaseError::Unauthenticated(Refusal::Credentials));
    };
    let by = by_user(&record.user, origin.client.clone());
    let blocked = if record.user.disabled {
        Some("account disabled")
    } else if record.locked_until.is_some_and(|until| until > now) {
        Some("account locked")
    } else if record.password_hash.is_none() {
        Some("no password set")
    } else {
        None
    };
    if let Some(reason) = blocked {
        passwords::verify_nothing(input.password).await;
        app.store
            .record_audit(by, AuditAction::SignInFailed, reason)
            .await?;
        return Err(UseCaseError::Unauthenticated(Refusal::Credentials));
    }
    let hash = record.password_hash.clone().unwrap_or_default();
    if !passwords::verify(hash, input.password).await {
        return Err(failed(app, &record, by, "wrong password", now).await);
    }
    if record.user.totp_enabled {
        second_factor(
            app,
            &record,
            &by,
            &input.totp_code,
            &input.recovery_code,
            now,
        )
        .await?;
    }
    start(app, record.user.id, by, origin, now).await
}

/// Checks the TOTP code or recovery code of an account that has TOTP enabled.
async fn second_factor(
    app: &App,
    record: &SignInRecord,
    by: &AuditBy,
    totp_code: &Option<String>,
    recovery_code: &Option<String>,
    now: Timestamp,
) -> Result<()> {
    let user = record.user.id;
    match (totp_code, recovery_code) {
        (Some(code), _) => match totp::check(app, record, code, now).await? {
            totp::Checked::Accepted => Ok(()),
            totp::Checked::Wrong => {
                Err(failed(app, record, by.clone(), "wrong TOTP code", now).await)
            }
            totp::Checked::Replayed => {
                Err(failed(app, record, by.clone(), "TOTP code used before", now).await)
            }
        },
        (None, Some(code)) => {
            let hash = token_hash(&totp::normalize_recovery_code(code));
            if app.store.use_recovery_code(user, &hash, by.clone()).await? {
                Ok(())
            } else {
                let reason = "unknown or used recovery code";
                Err(failed(app, record, by.clone(), reason, now).await)
            }
        }
        (None, None) => Err(UseCaseError::Unauthenticated(Refusal::SecondFactorRequired)),
    }
}

/// Counts a failure (locking the account once too many) and answers the refusal.
async fn failed(
    app: &App,
    record: &SignInRecord,
    by: AuditBy,
    reason: &str,
    now: Timestamp,
) -> UseCaseError {
    match app
        .store
        .record_failed_sign_in(record.user.id, by, reason, now)
        .await
    {
        Ok(_) => UseCaseError::Unauthenticated(Refusal::Credentials),
        Err(error) => error.into(),
    }
}

/// Starts a session for `user` (audited as a sign-in) and issues its first tokens.
pub(super) async fn start(
    app: &App,
    user: UserId,
    by: AuditBy,
    origin: Origin,
    now: Timestamp,
) -> Result<Issued> {
    let refresh_token = random_token();
    let expires_at = now
        .checked_add(SESSION_LIFETIME)
        .map_err(|e| UseCaseError::Internal(e.to_string()))?;
    let session = NewSession {
        user,
        expires_at,
        refresh_hash: token_hash(&refresh_token),
        client: origin.client,
        user_agent: origin.user_agent,
    };
    let session = app.store.start_session(by, &session).await?;
    let (access_token, expires_in) = app
        .keyring
        .issue(&app.store, &app.platform.vault, user, session, now)
        .await
        .map_err(|e| UseCaseError::Internal(e.to_string()))?;
    Ok(Issued {
        access_token,
        expires_in,
        refresh_token,
    })
}

/// Changes the caller's password after checking the current one; every other session of the
/// caller ends.
pub async fn change_password(app: &App, caller: &Caller, input: ChangePassword) -> Result<()> {
    let record = account(app, caller).await?;
    check_password(&input.new_password).map_err(|e| FieldErrors::single("new_password", e))?;
    let by = by_user(&record.user, caller.client.clone());
    let current = record.password_hash.clone().unwrap_or_default();
    if !passwords::verify(current, input.current_password).await {
        // Counted like a failed sign-in: a stolen session must not make guessing cheap.
        let reason = "wrong current password (changing it)";
        app.store
            .record_failed_sign_in(record.user.id, by, reason, Timestamp::now())
            .await?;
        let wrong = Invalid::new("is not the account's password");
        return Err(FieldErrors::single("current_password", wrong).into());
    }
    let hash = passwords::hash(input.new_password)
        .await
        .map_err(|e| UseCaseError::Internal(e.to_string()))?;
    let keep = match caller.credential {
        Credential::Session { session } => Some(session),
        Credential::Token { .. } | Credential::IdToken { .. } => None,
    };
    app.store
        .set_password(record.user.id, &hash, by, keep)
        .await?;
    Ok(())
}
