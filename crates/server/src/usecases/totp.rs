//! Two-factor authentication with TOTP: enrolment (a secret shown once, sealed by the vault at
//! rest), confirmation with a first code (which enables it and hands out recovery codes, stored
//! hashed), turning it off, and checking a code at sign-in. Codes are RFC 6238's
//! ([`crate::sessions::totp`]); each time step is accepted once per account.

use crate::vault::totp_binding;
use helvetia_api_types::{DisableTotp, RecoveryCodes, TotpCode, TotpEnrolment};
use helvetia_core::auth::{Caller, token_hash};
use helvetia_core::validation::{FieldErrors, Invalid};
use helvetia_store::credentials::SignInRecord;
use jiff::Timestamp;
use rand::RngExt;

use super::account::{account, by_user};
use super::{App, Result, UseCaseError};
use crate::passwords;
use crate::sessions::totp;

/// How many recovery codes an enrolment hands out.
pub const RECOVERY_CODES: usize = 10;
/// The issuer authenticator apps show beside the account.
const ISSUER: &str = "Helvetia";

/// What a TOTP code presented for an account turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    Accepted,
    Wrong,
    /// Right for its time step, but that step (or a later one) was accepted before.
    Replayed,
}

/// Checks `code` against the account's secret at `now` and uses its time step up.
pub(super) async fn check(
    app: &App,
    record: &SignInRecord,
    code: &str,
    now: Timestamp,
) -> Result<Checked> {
    let secret = secret_of(app, record)?;
    let Some(step) = totp::matching_step(&secret, code, now) else {
        return Ok(Checked::Wrong);
    };
    if app.store.accept_totp_step(record.user.id, step).await? {
        Ok(Checked::Accepted)
    } else {
        Ok(Checked::Replayed)
    }
}

fn secret_of(app: &App, record: &SignInRecord) -> Result<Vec<u8>> {
    let sealed = record
        .totp_secret
        .as_deref()
        .ok_or_else(|| UseCaseError::Conflict("no TOTP secret: start an enrolment first".into()))?;
    let encoded = app
        .platform
        .vault
        .open(&totp_binding(record.user.id), sealed)
        .map_err(|e| UseCaseError::Internal(format!("TOTP secret: {e}")))?;
    totp::decode(&encoded).ok_or_else(|| UseCaseError::Internal("TOTP secret: not base32".into()))
}

/// A recovery code as stored (hashed): upper case, without separators.
pub fn normalize_recovery_code(code: &str) -> String {
    code.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// A new recovery code: 16 base32 characters (80 bits) in groups of four.
fn new_recovery_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut rng = rand::rng();
    let chars: Vec<char> = (0..16)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    chars
        .chunks(4)
        .map(|group| group.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// Begins enrolment: a new secret (replacing one not yet confirmed), shown this once.
pub async fn start(app: &App, caller: &Caller) -> Result<TotpEnrolment> {
    let record = account(app, caller).await?;
    if record.user.totp_enabled {
        return Err(UseCaseError::Conflict(
            "two-factor authentication is already enabled; disable it first".into(),
        ));
    }
    let secret = totp::new_secret();
    let sealed = app
        .platform
        .vault
        .seal(&totp_binding(record.user.id), &totp::encode(&secret));
    app.store.set_totp_secret(record.user.id, &sealed).await?;
    Ok(TotpEnrolment {
        secret: totp::encode(&secret),
        uri: totp::provisioning_uri(ISSUER, record.user.email.as_str(), &secret),
    })
}

/// Enables TOTP once the app's first code matches; answers the recovery codes, shown once.
pub async fn confirm(app: &App, caller: &Caller, input: TotpCode) -> Result<RecoveryCodes> {
    let record = account(app, caller).await?;
    if record.user.totp_enabled {
        return Err(UseCaseError::Conflict(
            "two-factor authentication is already enabled".into(),
        ));
    }
    let secret = secret_of(app, &record)?;
    let step = totp::matching_step(&secret, &input.code, Timestamp::now()).ok_or_else(|| {
        FieldErrors::single(
            "code",
            Invalid::new("is not the authenticator's current code"),
        )
    })?;
    let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect();
    let hashes: Vec<String> = codes
        .iter()
        .map(|code| token_hash(&normalize_recovery_code(code)))
        .collect();
    let by = by_user(&record.user, caller.client.clone());
    app.store
        .enable_totp(record.user.id, step, &hashes, by)
        .await?;
    Ok(RecoveryCodes {
        recovery_codes: codes,
    })
}

/// Turns TOTP off, given the account's password or a current code.
pub async fn disable(app: &App, caller: &Caller, input: DisableTotp) -> Result<()> {
    let record = account(app, caller).await?;
    if !record.user.totp_enabled {
        return Err(UseCaseError::Conflict(
            "two-factor authentication is not enabled".into(),
        ));
    }
    let proven = match (input.password, input.code) {
        (Some(password), _) => {
            let hash = record.password_hash.clone().unwrap_or_default();
            passwords::verify(hash, password).await
        }
        (None, Some(code)) => {
            check(app, &record, &code, Timestamp::now()).await? == Checked::Accepted
        }
        (None, None) => false,
    };
    if !proven {
        return Err(FieldErrors::single(
            "password",
            Invalid::new("send the account's password or a current TOTP code"),
        )
        .into());
    }
    let by = by_user(&record.user, caller.client.clone());
    app.store.disable_totp(record.user.id, by).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_80_bits_and_normalise_for_typing() {
        let code = new_recovery_code();
        assert_eq!(code.len(), 19, "{code}");
        assert_eq!(code.matches('-').count(), 3, "{code}");
        let typed = format!(" {} ", code.to_lowercase().replace('-', " "));
        assert_eq!(normalize_recovery_code(&typed), code.replace('-', ""));
    }
}
