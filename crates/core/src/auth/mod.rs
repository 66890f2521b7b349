//! Who is calling, and what they may do.
//!
//! API tokens are opaque random strings shown once; only their SHA-256 is stored (a fast hash is
//! right here: tokens carry 256 bits of entropy, so there is nothing to brute-force). Each token
//! carries [`Scope`]s; each API operation requires one scope.
//!
//! Every project belongs to a team ([`TeamId`]); users are members of teams with a [`Role`].
//! What a caller may do is decided in [`caller`]: its role in the team and its credential's
//! scopes, both.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

use crate::validation::Invalid;

mod caller;
mod role;

pub use caller::{Actor, Caller, Credential, Denied, Principal, UserId};
pub use role::Role;

/// What a token may do. Broader scopes include narrower ones: `admin` ⊇ `write` ⊇ `deploy` ⊇
/// `read`; `secrets:reveal` is separate and only `admin` includes it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Scope {
    /// See projects, services, deployments and logs.
    #[serde(rename = "read")]
    Read,
    /// Start, cancel and roll back deployments.
    #[serde(rename = "deploy")]
    Deploy,
    /// Create, change and delete projects and services.
    #[serde(rename = "write")]
    Write,
    /// Read secret values back.
    #[serde(rename = "secrets:reveal")]
    SecretsReveal,
    /// Manage tokens and read the audit log.
    #[serde(rename = "admin")]
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 5] = [
        Scope::Read,
        Scope::Deploy,
        Scope::Write,
        Scope::SecretsReveal,
        Scope::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Deploy => "deploy",
            Scope::Write => "write",
            Scope::SecretsReveal => "secrets:reveal",
            Scope::Admin => "admin",
        }
    }

    /// True when holding `self` is enough for an operation that requires `required`.
    pub fn includes(self, required: Scope) -> bool {
        match self {
            Scope::Admin => true,
            Scope::Write => matches!(required, Scope::Write | Scope::Deploy | Scope::Read),
            Scope::Deploy => matches!(required, Scope::Deploy | Scope::Read),
            Scope::Read => required == Scope::Read,
            Scope::SecretsReveal => required == Scope::SecretsReveal,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| {
                Invalid::new(format!(
                    "unknown scope `{s}`; expected one of read, deploy, write, secrets:reveal, admin"
                ))
            })
    }
}

/// The scopes a token carries. Never empty.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(into = "BTreeSet<Scope>", try_from = "BTreeSet<Scope>")]
pub struct Scopes(BTreeSet<Scope>);

impl From<Scopes> for BTreeSet<Scope> {
    fn from(scopes: Scopes) -> Self {
        scopes.0
    }
}

impl TryFrom<BTreeSet<Scope>> for Scopes {
    type Error = Invalid;
    fn try_from(scopes: BTreeSet<Scope>) -> Result<Self, Invalid> {
        Scopes::new(scopes)
    }
}

impl Scopes {
    pub fn new(scopes: impl IntoIterator<Item = Scope>) -> Result<Self, Invalid> {
        let set: BTreeSet<Scope> = scopes.into_iter().collect();
        if set.is_empty() {
            return Err(Invalid::new("at least one scope is required"));
        }
        Ok(Scopes(set))
    }

    pub fn admin() -> Self {
        Scopes(BTreeSet::from([Scope::Admin]))
    }

    /// Deploying and nothing else: what a webhook delivery may do.
    pub fn deploy() -> Self {
        Scopes(BTreeSet::from([Scope::Deploy]))
    }

    pub fn allows(&self, required: Scope) -> bool {
        self.0.iter().any(|held| held.includes(required))
    }

    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        self.0.iter().copied()
    }

    /// The comma-separated form the store keeps.
    pub fn to_list(&self) -> String {
        self.iter().map(Scope::as_str).collect::<Vec<_>>().join(",")
    }

    pub fn from_list(list: &str) -> Result<Self, Invalid> {
        let scopes = list
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::parse)
            .collect::<Result<Vec<Scope>, _>>()?;
        Scopes::new(scopes)
    }
}

/// An API token as listings show it: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    /// The first characters of the token, to tell tokens apart.
    pub hint: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Scope>))]
    pub scopes: Scopes,
    /// The e-mail of the user it belongs to; `null` for a server-administration token.
    pub owner: Option<String>,
    /// The one team it may act in; `null` for every team of its owner.
    pub team: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: jiff::Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub expires_at: Option<jiff::Timestamp>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub last_used_at: Option<jiff::Timestamp>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub revoked_at: Option<jiff::Timestamp>,
}

/// A team: what owns projects. Every user has a personal team and may be in others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct TeamId(pub i64);

/// The prefix of every Helvetia API token; lets secret scanners recognise leaked tokens.
pub const TOKEN_PREFIX: &str = "hlv_";

/// Hex SHA-256 of a token: what the store keeps and looks tokens up by.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The first characters of a token, safe to show in listings so a user can tell tokens apart.
pub fn token_hint(token: &str) -> String {
    token.chars().take(TOKEN_PREFIX.len() + 4).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_inclusion() {
        assert!(Scope::Admin.includes(Scope::SecretsReveal));
        assert!(Scope::Write.includes(Scope::Deploy));
        assert!(!Scope::Write.includes(Scope::SecretsReveal));
        assert!(!Scope::Write.includes(Scope::Admin));
        assert!(!Scope::Deploy.includes(Scope::Write));
        assert!(!Scope::SecretsReveal.includes(Scope::Read));
    }

    #[test]
    fn scope_lists_round_trip() {
        let scopes = Scopes::new([Scope::Read, Scope::SecretsReveal]).unwrap();
        assert_eq!(scopes.to_list(), "read,secrets:reveal");
        assert_eq!(Scopes::from_list("read,secrets:reveal").unwrap(), scopes);
        assert!(Scopes::from_list("").is_err());
        assert!(Scopes::from_list("root").is_err());
    }

    #[test]
    fn hashes_are_stable_hex() {
        assert_eq!(token_hash("abc").len(), 64);
        assert_eq!(token_hash("abc"), token_hash("abc"));
        assert_ne!(token_hash("abc"), token_hash("abd"));
    }
}
