//! Certificates as objects: each routed domain's certificate has a state a person can read —
//! `pending` while ordered, `issued` (by whom, valid from and until), `failed` (the CA's
//! reason, and when Helvetia tries again), `renewing` once two thirds of its life have
//! passed — and Helvetia, as the ACME client, decides when to order again: never in a loop
//! against a CA that refuses (the waits grow), never at a CA's rate limit's pace.

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
}

impl CertificateState {
    pub fn as_str(self) -> &'static str {
        match self {
            CertificateState::Pending => "pending",
            CertificateState::Issued => "issued",
            CertificateState::Failed => "failed",
            CertificateState::Renewing => "renewing",
        }
    }

    pub fn parse(text: &str) -> Option<CertificateState> {
        use CertificateState::*;
        [Pending, Issued, Failed, Renewing]
            .into_iter()
            .find(|state| state.as_str() == text)
    }
}

/// A domain's certificate as the API shows it (never its key).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Certificate {
    pub state: CertificateState,
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
    fn waits_grow_and_stop_at_a_day() {
        assert_eq!(retry_delay(1), Duration::from_secs(60));
        assert_eq!(retry_delay(2), Duration::from_secs(240));
        assert_eq!(retry_delay(3), Duration::from_secs(960));
        assert_eq!(retry_delay(20), Duration::from_secs(24 * 3600));
    }

    #[test]
    fn renewal_is_two_thirds_into_the_life() {
        let start: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let end = start + SignedDuration::from_hours(90 * 24);
        assert_eq!(
            renew_at(start, end),
            start + SignedDuration::from_hours(60 * 24)
        );
        for state in ["pending", "issued", "failed", "renewing"] {
            assert_eq!(CertificateState::parse(state).unwrap().as_str(), state);
        }
    }
}
