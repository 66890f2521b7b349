//! User accounts, managed by instance administrators (and the system): create one (with a
//! password, or a link to set it), list them, issue a password reset link, disable one.

use helvetia_api_types::{CreateUser, CreatedUser, OneTimeLink, UserView};
use helvetia_core::account::{Email, User, check_password};
use helvetia_core::auth::{Caller, UserId};
use helvetia_core::validation::FieldErrors;
use helvetia_store::StoreError;
use helvetia_store::audit::AuditBy;
use helvetia_store::users::NewUser;

use super::links::{self, check_name, user_view};
use super::{App, Result, UseCaseError};

fn instance_admin(caller: &Caller) -> Result<()> {
    if caller.is_instance_admin() {
        Ok(())
    } else {
        Err(UseCaseError::Forbidden(
            "only instance administrators manage users".into(),
        ))
    }
}

/// Creates a user with a personal team. Without a password, the answer carries a link where
/// the user sets one.
pub async fn create(app: &App, caller: &Caller, input: CreateUser) -> Result<CreatedUser> {
    instance_admin(caller)?;
    let mut errors = FieldErrors::new();
    let email = errors.check("email", Email::parse(&input.email));
    let name = match &input.name {
        Some(name) => check_name(&mut errors, "name", name),
        None => email.as_ref().map(ToString::to_string),
    };
    let password = errors.check_optional("password", input.password.as_deref(), |password| {
        check_password(password).map(|()| password.to_owned())
    });
    let (email, name, password) = errors.finish(|| Some((email?, name?, password?)))?;
    let password_hash = match password {
        Some(password) => Some(links::hash(password).await?),
        None => None,
    };
    let new = NewUser {
        email,
        name,
        password_hash,
        instance_admin: input.instance_admin.unwrap_or(false),
    };
    let user = app.store.create_user(AuditBy::from(caller), &new).await?;
    let password_link = if user.has_password {
        None
    } else {
        Some(links::reset_link(&app.store, AuditBy::from(caller), user.id).await?)
    };
    Ok(CreatedUser {
        user: user_view(user),
        password_link,
    })
}

pub async fn list(app: &App, caller: &Caller) -> Result<Vec<UserView>> {
    instance_admin(caller)?;
    Ok(app
        .store
        .list_users()
        .await?
        .into_iter()
        .map(user_view)
        .collect())
}

/// The user `user` names: an id or an e-mail address.
async fn find(app: &App, user: &str) -> Result<User> {
    let not_found = || UseCaseError::NotFound(format!("user `{user}`"));
    match user.parse::<i64>() {
        Ok(id) => match app.store.user(UserId(id)).await {
            Err(StoreError::NotFound(_)) => Err(not_found()),
            found => Ok(found?),
        },
        Err(_) => {
            let email = Email::parse(user).map_err(|_| not_found())?;
            app.store.user_by_email(&email).await?.ok_or_else(not_found)
        }
    }
}

/// A single-use link where `user` sets a new password.
pub async fn reset_link(app: &App, caller: &Caller, user: &str) -> Result<OneTimeLink> {
    instance_admin(caller)?;
    let user = find(app, user).await?;
    links::reset_link(&app.store, AuditBy::from(caller), user.id).await
}

/// Disables `user`: their tokens and sessions stop working at once.
pub async fn disable(app: &App, caller: &Caller, user: &str) -> Result<()> {
    instance_admin(caller)?;
    let user = find(app, user).await?;
    if Some(user.id) == caller.user() {
        return Err(UseCaseError::Conflict(
            "you cannot disable your own account".into(),
        ));
    }
    Ok(app
        .store
        .disable_user(AuditBy::from(caller), user.id)
        .await?)
}
