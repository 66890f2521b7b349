//! User accounts and teams as the rest of the system sees them, and the rules for what a user
//! may type: e-mail addresses and passwords.

use jiff::Timestamp;

use crate::auth::{Role, TeamId, UserId};
use crate::name::TeamName;
use crate::validation::Invalid;

/// The shortest password accepted. Length is what makes a password strong; no composition
/// rules (NIST SP 800-63B).
pub const MIN_PASSWORD_LEN: usize = 12;
/// The longest: argon2 hashes any length, but a megabyte password is a denial of service.
pub const MAX_PASSWORD_LEN: usize = 1024;

/// A user account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub email: Email,
    pub name: String,
    pub instance_admin: bool,
    pub has_password: bool,
    pub totp_enabled: bool,
    pub created_at: Timestamp,
    pub disabled: bool,
}

/// A team and the caller's role in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    pub id: TeamId,
    pub name: TeamName,
    /// The user whose personal team it is.
    pub personal_of: Option<UserId>,
    pub created_at: Timestamp,
}

/// A member of a team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user: UserId,
    pub email: Email,
    pub name: String,
    pub role: Role,
    pub since: Timestamp,
}

/// An e-mail address, lower-cased: how a user is known and signs in. Checked for shape only
/// (one `@`, a domain with a dot, no spaces); nothing is sent to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Email, Invalid> {
        let email = raw.trim().to_lowercase();
        let valid = email.len() <= 254
            && !email.chars().any(|c| c.is_whitespace() || c.is_control())
            && email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            });
        if valid {
            Ok(Email(email))
        } else {
            Err(Invalid::new(
                "must be an e-mail address like ada@example.com",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after the `@`.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, domain)| domain)
    }

    /// The part before the `@`.
    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map_or(&self.0, |(local, _)| local)
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks a new password's length (in characters).
pub fn check_password(password: &str) -> Result<(), Invalid> {
    let len = password.chars().count();
    if len < MIN_PASSWORD_LEN {
        return Err(Invalid::new(format!(
            "must be at least {MIN_PASSWORD_LEN} characters"
        )));
    }
    if len > MAX_PASSWORD_LEN {
        return Err(Invalid::new(format!(
            "must be at most {MAX_PASSWORD_LEN} characters"
        )));
    }
    Ok(())
}

/// Consecutive failed sign-ins an account absorbs before it is locked.
pub const LOCKOUT_AFTER_FAILURES: i64 = 5;
/// The first lock's length; each further failure doubles it, up to [`LOCKOUT_MAX`].
pub const LOCKOUT_FIRST: jiff::SignedDuration = jiff::SignedDuration::from_mins(1);
/// The longest lock: long enough to make guessing hopeless, short enough that an attacker
/// cannot keep an owner out for days.
pub const LOCKOUT_MAX: jiff::SignedDuration = jiff::SignedDuration::from_hours(1);

/// How long an account stays locked after its `failures`-th consecutive failed sign-in: not at
/// all before [`LOCKOUT_AFTER_FAILURES`], then 1, 2, 4 … minutes, at most an hour. A success
/// resets the count.
pub fn lockout(failures: i64) -> Option<jiff::SignedDuration> {
    let beyond = failures.checked_sub(LOCKOUT_AFTER_FAILURES)?;
    if beyond < 0 {
        return None;
    }
    let doublings = u32::try_from(beyond.min(16)).unwrap_or(16);
    let lock = LOCKOUT_FIRST
        .checked_mul(1 << doublings)
        .unwrap_or(LOCKOUT_MAX);
    Some(lock.min(LOCKOUT_MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockout_doubles_from_the_fifth_failure_up_to_an_hour() {
        assert_eq!(lockout(4), None);
        assert_eq!(lockout(5), Some(jiff::SignedDuration::from_mins(1)));
        assert_eq!(lockout(6), Some(jiff::SignedDuration::from_mins(2)));
        assert_eq!(lockout(8), Some(jiff::SignedDuration::from_mins(8)));
        assert_eq!(lockout(12), Some(LOCKOUT_MAX));
        assert_eq!(lockout(i64::MAX), Some(LOCKOUT_MAX));
    }

    #[test]
    fn emails_are_lower_cased_and_shaped() {
        let email = Email::parse(" Ada@Example.COM ").unwrap();
        assert_eq!(email.as_str(), "ada@example.com");
        assert_eq!(email.domain(), "example.com");
        assert_eq!(email.local_part(), "ada");
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "a@b@c.d",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_are_long_enough() {
        assert!(check_password("short").is_err());
        assert!(check_password("correct horse battery").is_ok());
        assert!(check_password(&"x".repeat(MAX_PASSWORD_LEN + 1)).is_err());
    }
}
