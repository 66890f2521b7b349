//! `helvetia login` through the browser: the OAuth 2.0 device authorization grant (RFC 8628).
//!
//! The CLI [`start`]s a login and gets a long device code (its secret) and a short user code
//! (for the user's eyes); the user, signed in, [`decide`]s on the user code; the CLI [`poll`]s
//! with the device code until the answer is a token. The token is a personal API token of the
//! user who approved, with every scope and every team of theirs, so only a credential that
//! holds as much — a session, or an admin token of that user not limited to one team — may
//! approve: a login never yields more than its approver's credential could.

use helvetia_core::auth::{Caller, Scope, Scopes, token_hash};
use helvetia_core::validation::{FieldErrors, Invalid};
use helvetia_store::StoreError;
use helvetia_store::devices::{DevicePoll, NewDeviceCode};
use jiff::{SignedDuration, Timestamp};
use rand::RngExt;

use super::tokens::{mint, random_secret};
use super::{App, Result, UseCaseError};

/// How long a login may wait for the user (RFC 8628 suggests minutes, not hours).
pub const LIFETIME: SignedDuration = SignedDuration::from_secs(600);
/// Seconds a client waits between polls to begin with (RFC 8628 §3.2's default).
pub const INTERVAL_SECS: i64 = 5;
/// RFC 8628 §6.1: consonants only (no words, no 0/O or 1/I), 20^8 ≈ 2^34.6 codes.
const USER_CODE_ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
const USER_CODE_LENGTH: usize = 8;
const MAX_CLIENT_NAME: usize = 64;

/// A login just started.
#[derive(Debug)]
pub struct Started {
    pub device_code: String,
    /// As shown to people: `XXXX-XXXX`.
    pub user_code: String,
}

/// What a poll answers.
#[derive(Debug)]
pub enum Polled {
    /// The token, handed out this once.
    Token(String),
    Pending,
    /// Polled before the interval passed; poll every `interval_secs` from now on.
    SlowDown {
        interval_secs: i64,
    },
    Denied,
    Expired,
    /// No such device code, or its token was already handed out.
    Invalid,
}

/// Starts a device login for a client calling itself `client_name`.
pub async fn start(app: &App, client_name: &str, now: Timestamp) -> Result<Started> {
    let client_name = client_name.trim();
    let length = client_name.chars().count();
    if length == 0 || length > MAX_CLIENT_NAME || client_name.chars().any(char::is_control) {
        return Err(FieldErrors::single(
            "client_name",
            Invalid::new(format!(
                "must be 1 to {MAX_CLIENT_NAME} printable characters"
            )),
        )
        .into());
    }
    let expires_at = now
        .checked_add(LIFETIME)
        .map_err(|e| UseCaseError::Internal(e.to_string()))?;
    // A user code is short, so a new one may meet one in use: draw again. Three collisions in
    // a row would take billions of pending logins.
    for _ in 0..3 {
        let device_code = random_secret();
        let user_code = random_user_code();
        let stored = NewDeviceCode {
            device_code_hash: token_hash(&device_code),
            user_code: user_code.clone(),
            client_name: client_name.to_owned(),
            expires_at,
            interval_secs: INTERVAL_SECS,
        };
        match app.store.create_device_code(&stored).await {
            Ok(()) => {
                return Ok(Started {
                    device_code,
                    user_code: format!("{}-{}", &user_code[..4], &user_code[4..]),
                });
            }
            Err(StoreError::Conflict(_)) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(UseCaseError::Internal(
        "no free device user code after three draws".into(),
    ))
}

fn random_user_code() -> String {
    let mut rng = rand::rng();
    (0..USER_CODE_LENGTH)
        .map(|_| char::from(USER_CODE_ALPHABET[rng.random_range(0..USER_CODE_ALPHABET.len())]))
        .collect()
}

/// A user code as stored: upper case, without the dash; `None` if it cannot be one.
pub fn normal_user_code(typed: &str) -> Option<String> {
    let code: String = typed
        .trim()
        .chars()
        .filter(|c| *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let valid =
        code.len() == USER_CODE_LENGTH && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b));
    valid.then_some(code)
}

/// The signed-in caller approves or denies the login showing `user_code`; answers the name the
/// client gave itself.
pub async fn decide(
    app: &App,
    caller: &Caller,
    user_code: &str,
    approve: bool,
    now: Timestamp,
) -> Result<String> {
    let Some(user) = caller.user() else {
        return Err(UseCaseError::Forbidden(
            "a server-administration token belongs to no user, and a device login gets a \
             token of the user who approves it: sign in as a user to approve"
                .into(),
        ));
    };
    let limited = match caller.token_id() {
        Some(id) => app
            .store
            .token_ownership(id)
            .await?
            .is_some_and(|token| token.team.is_some()),
        None => false,
    };
    if limited || !caller.scopes.allows(Scope::Admin) {
        return Err(UseCaseError::Forbidden(
            "approving hands out a token with all of your powers, so it takes a credential \
             that has them all: a session, or an admin token not limited to one team"
                .into(),
        ));
    }
    let code = normal_user_code(user_code).ok_or_else(|| {
        FieldErrors::single(
            "user_code",
            Invalid::new("must be the 8 letters the CLI shows, like BCDF-GHJK"),
        )
    })?;
    Ok(app
        .store
        .decide_device_code(caller, user, &code, approve, now)
        .await?)
}

/// The client polls with its device code (from `client`, for the audit log).
pub async fn poll(
    app: &App,
    device_code: &str,
    now: Timestamp,
    client: Option<String>,
) -> Result<Polled> {
    let mut issued = None;
    let polled = app
        .store
        .poll_device_code(&token_hash(device_code), now, client, |client_name, _| {
            let (token, stored) = mint(format!("CLI: {client_name}"), Scopes::admin(), None);
            issued = Some(token);
            stored
        })
        .await?;
    Ok(match polled {
        DevicePoll::Issued(_) => match issued {
            Some(token) => Polled::Token(token),
            None => return Err(UseCaseError::Internal("a token stored but not made".into())),
        },
        DevicePoll::Pending => Polled::Pending,
        DevicePoll::SlowDown { interval_secs } => Polled::SlowDown { interval_secs },
        DevicePoll::Denied => Polled::Denied,
        DevicePoll::Expired => Polled::Expired,
        DevicePoll::Unknown | DevicePoll::Redeemed => Polled::Invalid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_compare_without_case_and_dash() {
        assert_eq!(normal_user_code("bcdf-ghjk").as_deref(), Some("BCDFGHJK"));
        assert_eq!(normal_user_code(" BCDFGHJK ").as_deref(), Some("BCDFGHJK"));
        assert_eq!(normal_user_code("BCDF-GHJ"), None);
        assert_eq!(
            normal_user_code("ABCD-EFGH"),
            None,
            "vowels are not in the alphabet"
        );
    }

    #[test]
    fn user_codes_are_drawn_from_the_alphabet() {
        let code = random_user_code();
        assert_eq!(normal_user_code(&code), Some(code));
    }
}
