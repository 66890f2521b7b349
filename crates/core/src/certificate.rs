//! Certificates as objects: each routed domain's certificate has a state a person can read —
//! `pending` while ordered, `issued` (by whom, valid from and until), `failed` (the CA's
//! reason, and when Helvetia tries again), `renewing` once two thirds of its life have
//! passed, `expiring` when one still served ends within [`EXPIRING_WITHIN`] — and Helvetia, as
//! the ACME client, decides when to order again: never in a loop against a CA that refuses
//! (the waits grow), never at a CA's rate limit's pace. A certificate a user uploaded is
//! served as it is and never ordered.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

/// Where a certificate stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CertificateState {
    Pending,
    Issued,
    Failed,
    Renewing,
    /// Served, and ending within [`EXPIRING_WITHIN`]: its renewals keep failing, or it was
    /// uploaded and nobody replaced it. Never stored: [`CertificateState::at`] derives it.
    Expiring,
}

/// How close to its end a certificate still served counts as expiring (and is notified).
pub const EXPIRING_WITHIN: SignedDuration = SignedDuration::from_hours(14 * 24);

impl CertificateState {
    pub fn as_str(self) -> &'static str {
        match self {
            CertificateState::Pending => "pending",
            CertificateState::Issued => "issued",
            CertificateState::Failed => "failed",
            CertificateState::Renewing => "renewing",
            CertificateState::Expiring => "expiring",
        }
    }

    pub fn parse(text: &str) -> Option<CertificateState> {
        use CertificateState::*;
        [Pending, Issued, Failed, Renewing, Expiring]
            .into_iter()
            .find(|state| state.as_str() == text)
    }

    /// The state to show at `now` of a certificate stored as `self`, served until
    /// `not_after` (if one was issued): `expiring` once that is within [`EXPIRING_WITHIN`]
    /// while no renewal is under way, however it got there.
    pub fn at(self, not_after: Option<Timestamp>, now: Timestamp) -> CertificateState {
        let ending = not_after.is_some_and(|end| end.duration_since(now) < EXPIRING_WITHIN);
        match self {
            CertificateState::Issued | CertificateState::Failed if ending => {
                CertificateState::Expiring
            }
            state => state,
        }
    }
}

/// Where a certificate comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CertificateSource {
    /// Ordered and renewed by Helvetia from its CA.
    Acme,
    /// Uploaded by a user (chain and key): served until replaced or removed, never renewed.
    Uploaded,
}

/// A domain's certificate as the API shows it (never its key).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Certificate {
    pub state: CertificateState,
    pub source: CertificateSource,
    /// The issuing CA's name, once issued.
    pub issuer: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub not_before: Option<Timestamp>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub not_after: Option<Timestamp>,
    /// Why the last order failed, as the CA said it.
    pub reason: Option<String>,
    /// Orders that failed in a row.
    pub failures: u32,
    /// When Helvetia orders again (after a failure, or to renew).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub next_attempt_at: Option<Timestamp>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: Timestamp,
}

/// What a certificate is for: each kind has its own source of names, and one table, one
/// expiry logic and one serving path hold them all.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CertificateKind {
    /// A custom domain's whole name (a wildcard domain's too).
    Domain,
    /// A service's generated hostname (`web.shop.example.com`; a preview's too).
    Hostname,
    /// Every generated hostname one label under a name: a project's
    /// (`*.shop.example.com`), or a service's previews (`*.web.shop.example.com`).
    Wildcard,
    /// The host of Helvetia's own public URL.
    PublicUrl,
}

impl CertificateKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CertificateKind::Domain => "domain",
            CertificateKind::Hostname => "hostname",
            CertificateKind::Wildcard => "wildcard",
            CertificateKind::PublicUrl => "public_url",
        }
    }

    pub fn parse(text: &str) -> Option<CertificateKind> {
        use CertificateKind::*;
        [Domain, Hostname, Wildcard, PublicUrl]
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }
}

/// The names a certificate is for, of a kind; a domain's names the domain's id too.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CertificateSubject {
    pub kind: CertificateKind,
    /// Usually one; a wildcard's is `*.<parent>`.
    pub names: Vec<String>,
    pub domain_id: Option<i64>,
}

impl CertificateSubject {
    pub fn domain(domain_id: i64, name: &str) -> CertificateSubject {
        CertificateSubject {
            kind: CertificateKind::Domain,
            names: vec![name.to_owned()],
            domain_id: Some(domain_id),
        }
    }

    pub fn new(kind: CertificateKind, name: &str) -> CertificateSubject {
        CertificateSubject {
            kind,
            names: vec![name.to_owned()],
            domain_id: None,
        }
    }

    /// The names as stored: separated by spaces (no DNS name holds one).
    pub fn joined_names(&self) -> String {
        self.names.join(" ")
    }

    /// Whether a name is a wildcard, which only a DNS-01 challenge proves.
    pub fn has_wildcard(&self) -> bool {
        self.names.iter().any(|name| name.starts_with("*."))
    }

    /// Whether this certificate serves `host`.
    pub fn covers(&self, host: &str) -> bool {
        self.names.iter().any(|name| covers(name, host))
    }
}

/// Which certificates services' generated hostnames get (`--generated-certificates`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeneratedCertificates {
    /// None: generated hostnames are served over HTTP only.
    None,
    /// One per hostname, by HTTP-01. Let's Encrypt issues at most 50 certificates per
    /// registered domain a week: many services (and previews) under one base domain reach it.
    PerHost,
    /// One per project (`*.<project>.<base>`) and one per service with previews
    /// (`*.<service>.<project>.<base>`), by DNS-01.
    Wildcard,
}

impl GeneratedCertificates {
    pub fn as_str(self) -> &'static str {
        match self {
            GeneratedCertificates::None => "none",
            GeneratedCertificates::PerHost => "per-host",
            GeneratedCertificates::Wildcard => "wildcard",
        }
    }

    pub fn parse(text: &str) -> Option<GeneratedCertificates> {
        use GeneratedCertificates::*;
        [None, PerHost, Wildcard]
            .into_iter()
            .find(|choice| choice.as_str() == text)
    }

    /// The default: one per hostname when a CA is set and the base domain is a public name
    /// (a CA cannot reach `localhost`, `.test`, `.internal`, `.local` or an address), else
    /// none.
    pub fn default_for(base_domain: &str, acme: bool) -> GeneratedCertificates {
        if acme && is_public_name(base_domain) {
            GeneratedCertificates::PerHost
        } else {
            GeneratedCertificates::None
        }
    }

    /// The certificates `hostnames` (services' generated hostnames) need: each its own, or
    /// the wildcards one label up (a service's `*.<project>.<base>`, a preview's
    /// `*.<service>.<project>.<base>`), each once.
    pub fn subjects(self, hostnames: &[String]) -> Vec<CertificateSubject> {
        let names: std::collections::BTreeSet<String> = match self {
            GeneratedCertificates::None => return vec![],
            GeneratedCertificates::PerHost => hostnames.iter().cloned().collect(),
            GeneratedCertificates::Wildcard => hostnames
                .iter()
                .filter_map(|host| Some(format!("*.{}", host.split_once('.')?.1)))
                .collect(),
        };
        let kind = match self {
            GeneratedCertificates::Wildcard => CertificateKind::Wildcard,
            _ => CertificateKind::Hostname,
        };
        names
            .iter()
            .map(|name| CertificateSubject::new(kind, name))
            .collect()
    }
}

/// Whether a CA could validate names under `domain`: not `localhost`, a reserved top-level
/// name (`.test`, `.example`, `.invalid`, `.internal`, `.local`, RFC 2606/6762) or an
/// address.
pub fn is_public_name(domain: &str) -> bool {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    if domain.parse::<std::net::IpAddr>().is_ok() || !domain.contains('.') {
        return false;
    }
    let top = domain.rsplit('.').next().unwrap_or_default();
    !matches!(
        top,
        "localhost" | "test" | "example" | "invalid" | "internal" | "local"
    )
}

/// Whether a certificate for `name` serves `host`: the same name, or for a wildcard
/// (`*.example.com`) one label in front of its parent, as TLS clients match (RFC 6125).
pub fn covers(name: &str, host: &str) -> bool {
    match name.strip_prefix("*.") {
        Some(parent) => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
        None => host == name,
    }
}

/// The wait after the `failures`-th failed order in a row: 1 minute, then 4 times longer
/// each time, at most a day — a CA that keeps refusing is asked a few times a day, not in a
/// loop (Let's Encrypt allows 5 failed validations per name per hour).
pub fn retry_delay(failures: u32) -> Duration {
    const FIRST: u64 = 60;
    const MAX: u64 = 24 * 3600;
    let exponent = failures.saturating_sub(1).min(8);
    Duration::from_secs((FIRST.saturating_mul(4u64.pow(exponent))).min(MAX))
}

/// When a certificate valid from `not_before` to `not_after` is renewed: two thirds into its
/// life (30 days before the end of a 90-day certificate).
pub fn renew_at(not_before: Timestamp, not_after: Timestamp) -> Timestamp {
    let life = not_after.duration_since(not_before);
    not_before + SignedDuration::from_nanos(life.as_nanos() as i64 * 2 / 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_hostnames_get_certificates_only_under_a_public_base_domain() {
        use GeneratedCertificates::*;
        for private in [
            "localhost",
            "demo.localhost",
            "apps.test",
            "corp.internal",
            "box.local",
            "10.0.0.1",
            "::1",
            "example",
        ] {
            assert_eq!(
                GeneratedCertificates::default_for(private, true),
                None,
                "{private}"
            );
        }
        assert_eq!(
            GeneratedCertificates::default_for("apps.example.com", true),
            PerHost
        );
        assert_eq!(
            GeneratedCertificates::default_for("apps.example.com", false),
            None
        );
        let hosts = [
            "web.shop.apps.example.com".to_owned(),
            "api.shop.apps.example.com".to_owned(),
            "pr-1.web.shop.apps.example.com".to_owned(),
        ];
        let names = |choice: GeneratedCertificates| -> Vec<String> {
            choice
                .subjects(&hosts)
                .into_iter()
                .map(|subject| subject.joined_names())
                .collect()
        };
        assert!(names(None).is_empty());
        assert_eq!(names(PerHost).len(), 3);
        assert_eq!(
            names(Wildcard),
            ["*.shop.apps.example.com", "*.web.shop.apps.example.com"]
        );
        let wildcard = &Wildcard.subjects(&hosts)[0];
        assert!(wildcard.has_wildcard() && wildcard.covers("api.shop.apps.example.com"));
        for choice in [None, PerHost, Wildcard] {
            assert_eq!(GeneratedCertificates::parse(choice.as_str()), Some(choice));
        }
        for kind in ["domain", "hostname", "wildcard", "public_url"] {
            assert_eq!(CertificateKind::parse(kind).unwrap().as_str(), kind);
        }
    }

    #[test]
    fn waits_grow_and_stop_at_a_day() {
        assert_eq!(retry_delay(1), Duration::from_secs(60));
        assert_eq!(retry_delay(2), Duration::from_secs(240));
        assert_eq!(retry_delay(3), Duration::from_secs(960));
        assert_eq!(retry_delay(20), Duration::from_secs(24 * 3600));
    }

    #[test]
    fn a_served_certificate_near_its_end_is_expiring_unless_being_renewed() {
        let now: Timestamp = "2026-11-28T00:00:00Z".parse().unwrap();
        let in_days = |days: i64| Some(now + SignedDuration::from_hours(days * 24));
        use CertificateState::*;
        assert_eq!(Issued.at(in_days(15), now), Issued);
        assert_eq!(Issued.at(in_days(13), now), Expiring);
        assert_eq!(
            Failed.at(in_days(2), now),
            Expiring,
            "a renewal keeps failing"
        );
        assert_eq!(Failed.at(None, now), Failed, "never issued");
        assert_eq!(Renewing.at(in_days(2), now), Renewing);
        assert_eq!(
            Issued.at(in_days(-1), now),
            Expiring,
            "expired, still served"
        );
    }

    #[test]
    fn renewal_is_two_thirds_into_the_life() {
        let start: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let end = start + SignedDuration::from_hours(90 * 24);
        assert_eq!(
            renew_at(start, end),
            start + SignedDuration::from_hours(60 * 24)
        );
        for state in ["pending", "issued", "failed", "renewing", "expiring"] {
            assert_eq!(CertificateState::parse(state).unwrap().as_str(), state);
        }
    }
}
