//! A session after sign-in: refreshing its tokens, signing out, turning an access token back
//! into a caller, and rotating the key that signs access tokens.
//!
//! A refresh token works once: using it stores its successor. A used one presented again means
//! it was copied — the whole session is revoked (audited as `auth.session_revoke`) and both
//! holders must sign in again. An access token is checked against its session on every
//! request, so signing out or a revocation ends it at once, not when it expires.

use helvetia_api_types::SigningKeyRotated;
use helvetia_core::audit::AuditAction;
use helvetia_core::auth::{Caller, Credential, UserId, token_hash};
use helvetia_store::audit::AuditBy;
use helvetia_store::sessions::Refresh;
use jiff::Timestamp;

use super::account::{Issued, Origin, by_user};
use super::{App, Refusal, Result, UseCaseError};
use crate::sessions::{SessionError, random_token};

/// Exchanges a refresh token for new tokens of its session.
pub async fn refresh(app: &App, refresh_token: &str, origin: Origin) -> Result<Issued> {
    let now = Timestamp::now();
    let next = random_token();
    let by = AuditBy {
        actor: "system (a used refresh token came back)".into(),
        client: origin.client,
        ..AuditBy::default()
    };
    let outcome = app
        .store
        .rotate_refresh_token(&token_hash(refresh_token), &token_hash(&next), by, now)
        .await?;
    match outcome {
        Refresh::Rotated { session, user } => {
            let (access_token, expires_in) = app
                .keyring
                .issue(&app.store, &app.platform.vault, user, session, now)
                .await
                .map_err(internal)?;
            Ok(Issued {
                access_token,
                expires_in,
                refresh_token: next,
            })
        }
        Refresh::Reused { session } => {
            tracing::warn!(session, "a used refresh token came back: session revoked");
            Err(UseCaseError::Unauthenticated(Refusal::Session))
        }
        Refresh::Invalid => Err(UseCaseError::Unauthenticated(Refusal::Session)),
    }
}

/// Ends the session `refresh_token` belongs to; its access tokens stop working at once.
pub async fn sign_out(app: &App, refresh_token: &str, origin: Origin) -> Result<()> {
    let found = app
        .store
        .session_of_refresh_token(&token_hash(refresh_token))
        .await?;
    let (session, user) = found.ok_or(UseCaseError::Unauthenticated(Refusal::Session))?;
    revoke(app, session, user, origin).await
}

/// Ends the session the caller's access token belongs to (a browser signing out of the
/// dashboard, whose refresh cookie is only sent under `/api/v1/auth`). Other credentials have
/// no session: nothing to end.
pub async fn end(app: &App, caller: &Caller, origin: Origin) -> Result<()> {
    let (Credential::Session { session }, Some(user)) = (&caller.credential, caller.user()) else {
        return Ok(());
    };
    revoke(app, *session, user, origin).await
}

async fn revoke(app: &App, session: i64, user: UserId, origin: Origin) -> Result<()> {
    let user = app.store.user(user).await?;
    let by = by_user(&user, origin.client);
    app.store
        .revoke_session(session, by, AuditAction::SignOut, "signed out")
        .await?;
    Ok(())
}

/// The caller an access token acts as; `None` when the token is invalid (forged, expired, of
/// another algorithm, issuer or audience) or its session has ended.
pub async fn caller(app: &App, access_token: &str, now: Timestamp) -> Result<Option<Caller>> {
    let claims = match app
        .keyring
        .verify(&app.store, &app.platform.vault, access_token, now)
        .await
    {
        Ok(claims) => claims,
        Err(SessionError::InvalidToken) => return Ok(None),
        Err(error) => return Err(internal(error)),
    };
    let Ok(user) = claims.sub.parse::<i64>() else {
        return Ok(None);
    };
    Ok(app
        .store
        .session_caller(claims.sid, UserId(user), now)
        .await?)
}

/// Makes a new signing key (instance administrators); access tokens signed by the previous
/// one keep verifying until they expire.
pub async fn rotate_signing_key(app: &App, caller: &Caller) -> Result<SigningKeyRotated> {
    if !caller.is_instance_admin() {
        return Err(UseCaseError::Forbidden(
            "only instance administrators rotate the signing key".into(),
        ));
    }
    let kid = app
        .keyring
        .rotate(&app.store, &app.platform.vault, AuditBy::from(caller))
        .await
        .map_err(internal)?;
    Ok(SigningKeyRotated { kid })
}

fn internal(error: SessionError) -> UseCaseError {
    match error {
        SessionError::Store(error) => error.into(),
        other => UseCaseError::Internal(other.to_string()),
    }
}
