//! Single-use links and the public operations that use them: signing up (with the bootstrap
//! link, an invitation, or an address at a domain open to sign-up) and setting a password
//! through a reset link. A link is a 256-bit secret; only its hash is stored, it works once
//! and it expires.

use helvetia_api_types::{OneTimeLink, PasswordReset, SignUp, UserView};
use helvetia_core::account::{Email, User, check_password};
use helvetia_core::auth::{Role, TeamId, UserId, token_hash};
use helvetia_core::validation::{FieldErrors, Invalid};
use helvetia_store::Store;
use helvetia_store::audit::AuditBy;
use helvetia_store::links::{LinkKind, NewLink};
use helvetia_store::users::NewUser;
use jiff::{SignedDuration, Timestamp};

use super::tokens::random_secret;
use super::{Result, UseCaseError};
use crate::passwords;

/// What a link's secret starts with, so a pasted one is recognisable.
const LINK_PREFIX: &str = "hlvl_";
/// How long a sign-up or password-reset link works.
pub const RESET_VALIDITY: SignedDuration = SignedDuration::from_hours(24);
/// How long an invitation works.
pub const INVITATION_VALIDITY: SignedDuration = SignedDuration::from_hours(7 * 24);
const MAX_NAME: usize = 100;

/// What a link is for, and for whom.
pub struct LinkFor {
    pub kind: LinkKind,
    pub team: Option<TeamId>,
    pub role: Option<Role>,
    pub user: Option<UserId>,
    pub email: Option<Email>,
}

/// Makes and stores a link, audited by `by`; the answer is the only time its secret is seen.
pub async fn issue(store: &Store, by: AuditBy, link: LinkFor) -> Result<(i64, OneTimeLink)> {
    let validity = match link.kind {
        LinkKind::Invite => INVITATION_VALIDITY,
        LinkKind::Signup | LinkKind::Reset => RESET_VALIDITY,
    };
    let expires_at = Timestamp::now()
        .checked_add(validity)
        .map_err(|e| UseCaseError::Internal(e.to_string()))?;
    let token = format!("{LINK_PREFIX}{}", random_secret());
    let stored = NewLink {
        kind: link.kind,
        hash: token_hash(&token),
        team: link.team,
        role: link.role,
        user: link.user,
        email: link.email,
        expires_at,
    };
    let id = store.create_link(by, &stored).await?;
    let page = match link.kind {
        LinkKind::Signup | LinkKind::Invite => "/signup",
        LinkKind::Reset => "/reset",
    };
    Ok((
        id,
        OneTimeLink {
            path: format!("{page}?token={token}"),
            token,
            expires_at,
        },
    ))
}

/// The sign-up link for the first owner, printed at a start while the server has no user. It
/// replaces the link of an earlier start.
pub async fn bootstrap_signup(store: &Store) -> Result<OneTimeLink> {
    store.revoke_signup_links().await?;
    let by = AuditBy {
        actor: "system (first start)".into(),
        ..AuditBy::default()
    };
    let link = LinkFor {
        kind: LinkKind::Signup,
        team: None,
        role: None,
        user: None,
        email: None,
    };
    Ok(issue(store, by, link).await?.1)
}

/// A password reset link for `user` (an owner locked out, a user who never set one).
pub async fn reset_link(store: &Store, by: AuditBy, user: UserId) -> Result<OneTimeLink> {
    let link = LinkFor {
        kind: LinkKind::Reset,
        team: None,
        role: None,
        user: Some(user),
        email: None,
    };
    Ok(issue(store, by, link).await?.1)
}

pub fn user_view(user: User) -> UserView {
    UserView {
        id: user.id.0,
        email: user.email.to_string(),
        name: user.name,
        instance_admin: user.instance_admin,
        has_password: user.has_password,
        totp_enabled: user.totp_enabled,
        disabled: user.disabled,
        created_at: user.created_at,
    }
}

/// Checks a display name: 1 to 100 printable characters once trimmed.
pub fn check_name(errors: &mut FieldErrors, field: &str, name: &str) -> Option<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        errors.add(
            field,
            Invalid::new(format!("must be 1 to {MAX_NAME} printable characters")),
        );
        return None;
    }
    Some(name.to_owned())
}

/// Creates an account: with a sign-up link or an invitation (which also joins its team), or,
/// without a link, for an address at a domain open to sign-up. Anything else is refused
/// without saying whether the address has an account.
pub async fn sign_up(
    store: &Store,
    signup_domains: &[String],
    input: SignUp,
    client: Option<String>,
) -> Result<UserView> {
    let mut errors = FieldErrors::new();
    let email = errors.check_optional("email", input.email.as_deref(), Email::parse);
    let name = check_name(&mut errors, "name", &input.name);
    let password = errors.check("password", check_password(&input.password));
    let (email, name, ()) = errors.finish(|| Some((email?, name?, password?)))?;
    let user = match input.token {
        Some(token) => {
            let link = token_hash(&token);
            usable(store, &link).await?;
            let password_hash = hash(input.password).await?;
            store
                .sign_up_with_link(&link, email, name, password_hash, client)
                .await?
        }
        None => {
            let email =
                email.ok_or_else(|| FieldErrors::single("email", Invalid::new("required")))?;
            // Before the (deliberately slow) hashing: a closed door costs the server nothing.
            if !signup_domains.iter().any(|domain| domain == email.domain()) {
                return Err(UseCaseError::Forbidden(
                    "sign-up is by invitation only on this server".into(),
                ));
            }
            let by = AuditBy {
                actor: format!("{email} (sign-up)"),
                client,
                ..AuditBy::default()
            };
            let new = NewUser {
                email,
                name,
                password_hash: Some(hash(input.password).await?),
                instance_admin: false,
            };
            store.create_user(by, &new).await?
        }
    };
    Ok(user_view(user))
}

/// Sets a password through a reset link.
pub async fn reset_password(
    store: &Store,
    input: PasswordReset,
    client: Option<String>,
) -> Result<()> {
    check_password(&input.password).map_err(|e| FieldErrors::single("password", e))?;
    let link = token_hash(&input.token);
    usable(store, &link).await?;
    let password_hash = hash(input.password).await?;
    store.reset_password(&link, &password_hash, client).await?;
    Ok(())
}

/// "Not found" unless link `hash` can still be used: before hashing a password for nothing.
async fn usable(store: &Store, hash: &str) -> Result<()> {
    if store.link_is_usable(hash).await? {
        Ok(())
    } else {
        Err(UseCaseError::NotFound(
            "link (unknown, already used or expired)".into(),
        ))
    }
}

pub async fn hash(password: String) -> Result<String> {
    passwords::hash(password)
        .await
        .map_err(|e| UseCaseError::Internal(e.to_string()))
}
