//! API tokens and the caller's own identity.

use helvetia_api_types::{ApiToken, CreateToken, CreatedToken, Me};
use helvetia_core::auth::{Caller, Scope, Scopes, TOKEN_PREFIX, token_hash, token_hint};
use helvetia_core::validation::{FieldErrors, Invalid};
use helvetia_store::tokens::NewToken;
use jiff::{SignedDuration, Timestamp};
use rand::RngExt;

use super::{App, Result};

const MAX_TOKEN_NAME: usize = 100;

/// A new random token: the prefix and 256 bits of randomness, base-62 encoded.
fn generate_token() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    let body: String = (0..43)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    format!("{TOKEN_PREFIX}{body}")
}

/// The token and what to store of it.
pub fn mint(name: String, scopes: Scopes, expires_at: Option<Timestamp>) -> (String, NewToken) {
    let token = generate_token();
    let stored = NewToken {
        name,
        hash: token_hash(&token),
        hint: token_hint(&token),
        scopes,
        expires_at,
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
    let (scopes, expires_at) = errors.finish(|| Some((scopes?, expires_at?)))?;
    let (token, stored) = mint(name.to_owned(), scopes, expires_at);
    let info = app.store.create_token(caller, &stored).await?;
    Ok(CreatedToken { token, info })
}

/// The caller's team's tokens, never their values.
pub async fn list(app: &App, caller: &Caller) -> Result<Vec<ApiToken>> {
    Ok(app.store.list_tokens(caller.team).await?)
}

/// Revokes a token; it stops working at once. The caller's own last admin token only with
/// `force` (the store checks, in the same transaction as the revocation).
pub async fn revoke(app: &App, caller: &Caller, id: i64, force: bool) -> Result<()> {
    Ok(app.store.revoke_token(caller, id, force).await?)
}

/// Who the caller's token belongs to and what it may do.
pub fn me(caller: &Caller) -> Me {
    Me {
        token_id: caller.token_id,
        token_name: caller.token_name.clone(),
        scopes: caller.scopes.iter().collect(),
    }
}
