//! API tokens and the caller's own identity.
//!
//! A token belongs to the user who made it and acts with that user's roles, limited by its
//! scopes and, if made so, to one team. Its owner lists and revokes it; so do the admins of a
//! team it can act in. A server-administration token belongs to no one.

use helvetia_api_types::{ApiToken, CreateToken, CreatedToken, Me, MeUser, TeamRole};
use helvetia_core::auth::{
    Caller, Role, Scope, Scopes, TOKEN_PREFIX, TeamId, token_hash, token_hint,
};
use helvetia_core::name::TeamName;
use helvetia_core::validation::{FieldErrors, Invalid};
use helvetia_store::tokens::{NewToken, TokenListing};
use jiff::{SignedDuration, Timestamp};
use rand::RngExt;

use super::access;
use super::{App, Result, UseCaseError};

const MAX_TOKEN_NAME: usize = 100;

/// 256 bits of randomness, base-62 encoded: the body of a token, or a device code.
pub(crate) fn random_secret() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    (0..43)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// The token and what to store of it: a server-administration token unless the caller gives it
/// an owner.
pub fn mint(name: String, scopes: Scopes, expires_at: Option<Timestamp>) -> (String, NewToken) {
    let token = format!("{TOKEN_PREFIX}{}", random_secret());
    let stored = NewToken {
        name,
        hash: token_hash(&token),
        hint: token_hint(&token),
        scopes,
        expires_at,
        user: None,
        team: None,
    };
    (token, stored)
}

/// Creates a token; the answer holds the token itself, which is never shown again.
pub async fn create(app: &App, caller: &Caller, input: CreateToken) -> Result<CreatedToken> {
    let mut errors = FieldErrors::new();
    let name = input.name.trim();
    if name.is_empty() || name.len() > MAX_TOKEN_NAME || name.chars().any(char::is_control) {
        errors.add(
            "name",
            Invalid::new(format!(
                "must be 1 to {MAX_TOKEN_NAME} printable characters"
            )),
        );
    }
    let scopes = input
        .scopes
        .iter()
        .map(|s| s.parse::<Scope>())
        .collect::<std::result::Result<Vec<_>, _>>()
        .and_then(Scopes::new);
    let scopes = errors.check("scopes", scopes);
    let expires_at = match input.expires_in_days {
        None => Some(None),
        Some(days @ 1..=3650) => Timestamp::now()
            .checked_add(SignedDuration::from_hours(days * 24))
            .ok()
            .map(Some),
        Some(_) => {
            errors.add(
                "expires_in_days",
                Invalid::new("must be between 1 and 3650"),
            );
            None
        }
    };
    let team = errors.check_optional("team", input.team.as_deref(), TeamName::parse);
    let (scopes, expires_at, team) = errors.finish(|| Some((scopes?, expires_at?, team?)))?;
    if let Some(beyond) = scopes.iter().find(|scope| !caller.scopes.allows(*scope)) {
        return Err(UseCaseError::Forbidden(format!(
            "a token cannot carry more than the credential that makes it: yours lacks `{beyond}`"
        )));
    }
    let team = match team {
        Some(name) => Some(access::team(app, caller, &name, Scope::Read).await?.0.id),
        None => None,
    };
    let (token, mut stored) = mint(name.to_owned(), scopes, expires_at);
    stored.user = caller.user();
    stored.team = team;
    let info = app.store.create_token(caller, &stored).await?;
    Ok(CreatedToken { token, info })
}

/// Tokens, never their values: the caller's own, or with `team` those that can act in a team
/// the caller is an admin of.
pub async fn list(app: &App, caller: &Caller, team: Option<&str>) -> Result<Vec<ApiToken>> {
    let listing = match (team, caller.user()) {
        (Some(team), _) => TokenListing::Team(admin_of(app, caller, team).await?),
        (None, Some(user)) => TokenListing::User(user),
        (None, None) => TokenListing::System,
    };
    Ok(app.store.list_tokens(listing).await?)
}

/// The team named `team`, if the caller administers it.
async fn admin_of(app: &App, caller: &Caller, team: &str) -> Result<TeamId> {
    let name = access::team_name(team)?;
    Ok(access::team(app, caller, &name, Scope::Admin).await?.0.id)
}

/// Revokes a token; it stops working at once. The caller may revoke its own tokens and, as an
/// admin of a team a token can act in, that token; any other is "not found". The caller's own
/// last way in only with `force` (the store checks, in the same transaction).
pub async fn revoke(app: &App, caller: &Caller, id: i64, force: bool) -> Result<()> {
    let not_found = || UseCaseError::NotFound(format!("active token #{id}"));
    let owner = app.store.token_ownership(id).await?.ok_or_else(not_found)?;
    let own = owner.user == caller.user() && (owner.user.is_some() || caller.is_system());
    let administers = |team: &TeamId| caller.role(*team).is_some_and(|role| role >= Role::Admin);
    // The team whose admin the caller is here: the revocation goes into its log.
    let through = match (owner.team, owner.user) {
        (Some(team), _) => Some(team).filter(administers),
        (None, Some(user)) => app
            .store
            .memberships(user)
            .await?
            .into_keys()
            .find(administers),
        (None, None) => None,
    };
    if !own && !caller.is_system() && through.is_none() {
        return Err(not_found());
    }
    Ok(app
        .store
        .revoke_token(caller, id, force, owner.team.or(through))
        .await?)
}

/// Who the caller is, what its credential may do and its role in each team.
pub async fn me(app: &App, caller: &Caller) -> Result<Me> {
    let user = match caller.user() {
        Some(id) => {
            let user = app.store.user(id).await?;
            Some(MeUser {
                id: id.0,
                email: user.email.to_string(),
                name: user.name,
                instance_admin: user.instance_admin,
                totp_enabled: user.totp_enabled,
            })
        }
        None => None,
    };
    let mut teams = vec![];
    for team in app.store.list_teams().await? {
        if let Some(role) = caller.role(team.id) {
            teams.push(TeamRole {
                team: team.name.to_string(),
                role,
                personal: team.personal_of.is_some() && team.personal_of == caller.user(),
            });
        }
    }
    let (token_id, token_name) = match &caller.credential {
        helvetia_core::auth::Credential::Token { id, name } => (Some(*id), Some(name.clone())),
        helvetia_core::auth::Credential::Session { .. }
        | helvetia_core::auth::Credential::IdToken { .. } => (None, None),
    };
    Ok(Me {
        user,
        token_id,
        token_name,
        scopes: caller.scopes.iter().collect(),
        teams,
    })
}
