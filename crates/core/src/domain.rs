//! Custom domains: a service answers at names its team owns, besides its generated hostname.
//!
//! A domain is stored in its ASCII form (IDNA: `bücher.example` is `xn--bcher-kva.example`),
//! lowercase, without a trailing dot. It is routed only once verified: its DNS points at the
//! server's public addresses, or a token served through the domain came back (it may sit behind
//! a proxy), or an administrator forced it. A wildcard (`*.example.com`) is one label `*` in
//! front, nothing else.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use jiff::Timestamp;

use crate::certificate::Certificate;

use crate::validation::Invalid;

/// The path under which every host answers a domain's HTTP check, relayed to Helvetia.
pub const WELL_KNOWN_PATH: &str = "/.well-known/helvetia/";
/// The edge router's route of [`WELL_KNOWN_PATH`] on every host.
pub const WELL_KNOWN_ROUTE: &str = "helvetia-well-known";
/// Where a CA fetches HTTP-01 answers, on every host, relayed to Helvetia (its ACME client).
pub const ACME_CHALLENGE_PATH: &str = "/.well-known/acme-challenge/";
pub const ACME_CHALLENGE_ROUTE: &str = "helvetia-acme-challenge";

const MAX_NAME_LEN: usize = 253;
const MAX_LABEL_LEN: usize = 63;

/// A domain name a service may answer at, in ASCII form.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(into = "String", try_from = "String")]
pub struct DomainName(String);

impl TryFrom<String> for DomainName {
    type Error = Invalid;
    fn try_from(value: String) -> Result<DomainName, Invalid> {
        DomainName::parse(&value, true)
    }
}

impl From<DomainName> for String {
    fn from(name: DomainName) -> String {
        name.0
    }
}

impl DomainName {
    /// Reads a domain as a person typed it: Unicode or ASCII, any case, an optional trailing
    /// dot; a leading `*.` only when `wildcard` is allowed.
    pub fn parse(input: &str, wildcard: bool) -> Result<DomainName, Invalid> {
        let trimmed = input.trim().trim_end_matches('.');
        if trimmed.is_empty() {
            return Err(Invalid::new("must not be empty"));
        }
        let (star, rest) = match trimmed.strip_prefix("*.") {
            Some(rest) if wildcard => (true, rest),
            Some(_) => {
                return Err(Invalid::new(
                    "a wildcard (`*.`) is only for wildcard domains",
                ));
            }
            None => (false, trimmed),
        };
        if rest.contains('*') {
            return Err(Invalid::new("`*` may only be the whole first label"));
        }
        if rest.parse::<IpAddr>().is_ok() || rest.starts_with('[') {
            return Err(Invalid::new("must be a domain name, not an address"));
        }
        let ascii = idna::domain_to_ascii(rest)
            .map_err(|_| Invalid::new("is not a valid internationalized domain name"))?;
        let labels: Vec<&str> = ascii.split('.').collect();
        if labels.len() < 2 {
            return Err(Invalid::new(
                "must have at least two labels (`example.com`)",
            ));
        }
        for label in &labels {
            if label.is_empty() || label.len() > MAX_LABEL_LEN {
                return Err(Invalid::new("each label must have 1 to 63 characters"));
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(Invalid::new(
                    "may only contain letters, digits and `-` (after IDNA)",
                ));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(Invalid::new("no label may start or end with `-`"));
            }
        }
        if labels
            .last()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(Invalid::new("the last label must not be all digits"));
        }
        let name = if star { format!("*.{ascii}") } else { ascii };
        if name.len() > MAX_NAME_LEN {
            return Err(Invalid::new(format!(
                "must be at most {MAX_NAME_LEN} characters"
            )));
        }
        Ok(DomainName(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_wildcard(&self) -> bool {
        self.0.starts_with("*.")
    }

    /// Whether `host` is this domain, or under it for a wildcard (one label deep, as TLS
    /// wildcards match).
    pub fn covers(&self, host: &str) -> bool {
        crate::certificate::covers(&self.0, host)
    }

    /// Whether this domain is `other` or lies under it (`a.b.example` under `example`).
    pub fn is_within(&self, other: &str) -> bool {
        let name = self.0.trim_start_matches("*.");
        name == other || name.ends_with(&format!(".{other}"))
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A service's domain, as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Domain {
    pub id: i64,
    pub service_id: i64,
    /// In ASCII form (IDNA).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub name: DomainName,
    /// Only requests under this path go to the service (the rest of the domain may be
    /// another service's).
    pub path_prefix: Option<String>,
    /// The domain the service's URL names; aliases redirect to it.
    pub primary: bool,
    /// Answers every request with a permanent redirect to the primary domain.
    pub redirect: bool,
    /// How it came to be routed; `null` until it is verified.
    pub verification: Option<Verification>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub verified_at: Option<Timestamp>,
    /// What the last check found (what the DNS answered, what came back over HTTP).
    pub last_check: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub checked_at: Option<Timestamp>,
    /// Served at `http://<domain>/.well-known/helvetia/<token>` for the HTTP check.
    pub token: String,
    /// Its certificate, once Helvetia ordered one (with an ACME directory configured).
    pub certificate: Option<Certificate>,
    /// HTTP basic auth in front of the domain: who may pass (the password is kept only as a
    /// hash, never shown).
    pub basic_auth: Option<BasicAuthUser>,
    /// The HSTS header sent over HTTPS once its certificate is served.
    pub hsts: Option<Hsts>,
    /// When an unverified domain is checked again by itself; `null` once verified, or after
    /// the re-checks gave up (the last check says so).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub next_check_at: Option<Timestamp>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
}

impl Domain {
    pub fn is_routed(&self) -> bool {
        self.verification.is_some()
    }
}

/// The user of a domain's HTTP basic auth, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BasicAuthUser {
    pub user: String,
}

const MAX_BASIC_AUTH_USER: usize = 64;
/// bcrypt reads at most 72 bytes of a password: a longer one would pass on its first 72.
const MAX_BASIC_AUTH_PASSWORD: usize = 72;
const MIN_BASIC_AUTH_PASSWORD: usize = 8;

/// A basic-auth user name: 1 to 64 visible ASCII characters, no `:` (which ends the user in
/// the `user:password` a browser sends, and in the edge router's `user:hash` lines).
pub fn check_basic_auth_user(user: &str) -> Result<(), Invalid> {
    if user.is_empty() || user.len() > MAX_BASIC_AUTH_USER {
        return Err(Invalid::new(format!(
            "must have 1 to {MAX_BASIC_AUTH_USER} characters"
        )));
    }
    if !user.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
        return Err(Invalid::new(
            "may only contain visible ASCII characters other than `:`",
        ));
    }
    Ok(())
}

/// A basic-auth password: 8 to 72 printable ASCII characters (spaces too). All of it counts in
/// the hash; and browsers encode other characters differently (RFC 7617 leaves it open), so
/// such a password could pass in one and not in another.
pub fn check_basic_auth_password(password: &str) -> Result<(), Invalid> {
    if password.len() < MIN_BASIC_AUTH_PASSWORD || password.len() > MAX_BASIC_AUTH_PASSWORD {
        return Err(Invalid::new(format!(
            "must have {MIN_BASIC_AUTH_PASSWORD} to {MAX_BASIC_AUTH_PASSWORD} characters"
        )));
    }
    if !password.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
        return Err(Invalid::new(
            "may only contain printable ASCII characters (and spaces)",
        ));
    }
    Ok(())
}

/// A domain's HSTS header (`Strict-Transport-Security`), opt-in: browsers that saw it use only
/// HTTPS for the domain for `max_age_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Hsts {
    pub max_age_seconds: u64,
    /// The domain's subdomains too (`includeSubDomains`).
    pub include_subdomains: bool,
    /// Asks to be on browsers' preload lists (`preload`).
    pub preload: bool,
}

impl Hsts {
    /// One year, the common choice (and what the preload list asks at least).
    pub const DEFAULT_MAX_AGE_SECONDS: u64 = 365 * 24 * 3600;
    /// Two years, the longest browsers keep.
    pub const MAX_MAX_AGE_SECONDS: u64 = 2 * 365 * 24 * 3600;

    /// Checks the settings: at most two years (0 tells browsers to forget it); `preload`
    /// needs `include_subdomains` and at least a year, as the preload list does.
    pub fn check(&self) -> Result<(), Invalid> {
        if self.max_age_seconds > Hsts::MAX_MAX_AGE_SECONDS {
            return Err(Invalid::new(format!(
                "max_age_seconds must be at most {} (two years)",
                Hsts::MAX_MAX_AGE_SECONDS
            )));
        }
        if self.preload
            && (!self.include_subdomains || self.max_age_seconds < Hsts::DEFAULT_MAX_AGE_SECONDS)
        {
            return Err(Invalid::new(
                "preload needs include_subdomains and a max age of at least a year",
            ));
        }
        Ok(())
    }
}

/// The wait before the automatic re-check after `rechecks` failed ones: 1 minute, doubling to
/// an hour, then hourly; `None` once about three days of hourly checks failed — the domain
/// then waits for a `verify` (its last check says so).
pub fn recheck_wait(rechecks: u32) -> Option<Duration> {
    const FIRST: u64 = 60;
    const MAX: u64 = 3600;
    const GIVE_UP_AFTER: u32 = 78;
    if rechecks >= GIVE_UP_AFTER {
        return None;
    }
    Some(Duration::from_secs(
        FIRST.saturating_mul(1u64 << rechecks.min(6)).min(MAX),
    ))
}

/// What the last check of a domain whose re-checks gave up says, after what it found.
pub const RECHECKS_STOPPED: &str =
    "automatic checks stopped after about three days: run `helvetia domains verify`";

const MAX_PATH_PREFIX: usize = 200;

/// A path prefix a domain's route may take: `/` then path characters (letters, digits,
/// `-._~%/`), no `//` nor `..` segment, at most 200 characters; `/` alone is no prefix.
pub fn check_path_prefix(prefix: &str) -> Result<(), Invalid> {
    if !prefix.starts_with('/') || prefix == "/" {
        return Err(Invalid::new("must start with `/` and name a path (`/api`)"));
    }
    if prefix.len() > MAX_PATH_PREFIX {
        return Err(Invalid::new(format!(
            "must be at most {MAX_PATH_PREFIX} characters"
        )));
    }
    if !prefix
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~%/".contains(&b))
    {
        return Err(Invalid::new(
            "may only contain letters, digits and `-._~%/`",
        ));
    }
    if prefix.contains("//") || prefix.split('/').any(|segment| segment == "..") {
        return Err(Invalid::new("must not contain `//` or a `..` segment"));
    }
    Ok(())
}

/// How a domain came to be routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Verification {
    /// Its DNS answers with the server's public addresses.
    Dns,
    /// A token served at `/.well-known/helvetia/<token>` came back through the domain.
    HttpToken,
    /// An administrator routed it without a check.
    Forced,
}

impl Verification {
    pub fn as_str(self) -> &'static str {
        match self {
            Verification::Dns => "dns",
            Verification::HttpToken => "http_token",
            Verification::Forced => "forced",
        }
    }

    pub fn parse(text: &str) -> Option<Verification> {
        [
            Verification::Dns,
            Verification::HttpToken,
            Verification::Forced,
        ]
        .into_iter()
        .find(|how| how.as_str() == text)
    }
}

/// What the DNS says of a domain, against the server's public addresses: `Ok` when every
/// address it resolves to is one of them (and it resolves to at least one), else why not —
/// naming what it answered.
pub fn points_here(answered: &[IpAddr], public: &[IpAddr]) -> Result<(), String> {
    if answered.is_empty() {
        return Err("the name does not resolve (no A or AAAA record)".into());
    }
    let elsewhere: Vec<String> = answered
        .iter()
        .filter(|address| !public.contains(address))
        .map(ToString::to_string)
        .collect();
    if elsewhere.is_empty() {
        return Ok(());
    }
    let expected: Vec<String> = public.iter().map(ToString::to_string).collect();
    Err(format!(
        "it resolves to {} — expected {}",
        elsewhere.join(", "),
        if expected.is_empty() {
            "the server's public addresses (none are configured)".to_owned()
        } else {
            expected.join(", ")
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_kept_in_ascii_form() {
        let parse = |s: &str| DomainName::parse(s, false).map(|d| d.0);
        assert_eq!(parse("Shop.Example.COM.").unwrap(), "shop.example.com");
        assert_eq!(parse("bücher.example").unwrap(), "xn--bcher-kva.example");
        for bad in [
            "",
            "localhost",
            "10.0.0.1",
            "[::1]",
            "a..b",
            "-a.example",
            "a_b.example",
            "*.example.com",
            "a.*.example",
            "example.123",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(parse(&format!("{}.example", "a".repeat(64))).is_err());
    }

    #[test]
    fn wildcards_cover_one_label() {
        let wildcard = DomainName::parse("*.Example.com", true).unwrap();
        assert_eq!(wildcard.as_str(), "*.example.com");
        assert!(wildcard.is_wildcard());
        assert!(wildcard.covers("shop.example.com"));
        assert!(!wildcard.covers("example.com"));
        assert!(!wildcard.covers("a.shop.example.com"));
        assert!(wildcard.is_within("example.com"));
        let plain = DomainName::parse("shop.example.com", false).unwrap();
        assert!(plain.is_within("example.com") && !plain.is_within("ample.com"));
    }

    #[test]
    fn path_prefixes_are_plain_paths() {
        assert!(check_path_prefix("/api").is_ok());
        assert!(check_path_prefix("/api/v1").is_ok());
        for bad in [
            "",
            "/",
            "api",
            "/a b",
            "/a`b",
            "/a//b",
            "/../x",
            &format!("/{}", "a".repeat(200)),
        ] {
            assert!(check_path_prefix(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn basic_auth_and_hsts_settings_are_checked() {
        assert!(check_basic_auth_user("alice").is_ok());
        for bad in ["", "a:b", "a b", "ä", &"a".repeat(65)] {
            assert!(check_basic_auth_user(bad).is_err(), "{bad}");
        }
        assert!(check_basic_auth_password("correct horse").is_ok());
        for bad in ["short", "tab\there!", "grüezi mitenand", &"p".repeat(73)] {
            assert!(check_basic_auth_password(bad).is_err(), "{bad}");
        }
        let year = Hsts {
            max_age_seconds: Hsts::DEFAULT_MAX_AGE_SECONDS,
            include_subdomains: true,
            preload: true,
        };
        assert!(year.check().is_ok());
        let short = Hsts {
            max_age_seconds: 600,
            ..year
        };
        assert!(short.check().is_err(), "preload needs a year");
        assert!(
            Hsts {
                preload: false,
                ..short
            }
            .check()
            .is_ok()
        );
        let long = Hsts {
            max_age_seconds: Hsts::MAX_MAX_AGE_SECONDS + 1,
            ..year
        };
        assert!(long.check().is_err());
    }

    #[test]
    fn rechecks_wait_longer_then_stop() {
        let minutes = |n| recheck_wait(n).map(|wait| wait.as_secs() / 60);
        assert_eq!(minutes(0), Some(1));
        assert_eq!(minutes(1), Some(2));
        assert_eq!(minutes(5), Some(32));
        assert_eq!(minutes(6), Some(60));
        assert_eq!(minutes(77), Some(60));
        assert_eq!(minutes(78), None);
        let total: u64 = (0..78).filter_map(recheck_wait).map(|w| w.as_secs()).sum();
        assert!((3 * 24 * 3600..4 * 24 * 3600).contains(&total), "{total}");
    }

    #[test]
    fn dns_must_point_only_here() {
        let here: IpAddr = "203.0.113.7".parse().unwrap();
        let there: IpAddr = "198.51.100.1".parse().unwrap();
        assert!(points_here(&[here], &[here]).is_ok());
        let error = points_here(&[here, there], &[here]).unwrap_err();
        assert!(
            error.contains("198.51.100.1") && error.contains("203.0.113.7"),
            "{error}"
        );
        assert!(
            points_here(&[], &[here])
                .unwrap_err()
                .contains("does not resolve")
        );
    }
}
