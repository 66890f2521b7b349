//! What Helvetia reads from a certificate chain: the leaf's issuer and validity, for the
//! certificate's state (issued by whom, expiring when, renewed at two thirds of its life).

use x509_cert::Certificate;
use x509_cert::time::Time;

/// The leaf of a PEM chain, as far as Helvetia needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// The leaf's issuer as RFC 4514 writes it, e.g. `CN=Pebble Intermediate CA 5b6a0f`.
    pub issuer: String,
    pub not_before: jiff::Timestamp,
    pub not_after: jiff::Timestamp,
}

#[derive(Debug, thiserror::Error)]
#[error("the certificate chain could not be read: {0}")]
pub struct CertificateError(String);

impl CertificateInfo {
    /// Reads the first certificate of `chain_pem` (the leaf, as ACME serves a chain).
    pub fn from_pem_chain(chain_pem: &str) -> Result<CertificateInfo, CertificateError> {
        let chain = Certificate::load_pem_chain(chain_pem.as_bytes())
            .map_err(|e| CertificateError(e.to_string()))?;
        let leaf = chain
            .first()
            .ok_or_else(|| CertificateError("it holds no certificate".to_owned()))?;
        let tbs = leaf.tbs_certificate();
        Ok(CertificateInfo {
            issuer: tbs.issuer().to_string(),
            not_before: timestamp(tbs.validity().not_before)?,
            not_after: timestamp(tbs.validity().not_after)?,
        })
    }
}

impl CertificateInfo {
    /// When to renew: two thirds into the certificate's life (30 days before the end of Let's
    /// Encrypt's 90), so a renewal that fails has a third of the life left to succeed.
    pub fn renew_at(&self) -> jiff::Timestamp {
        helvetia_core::certificate::renew_at(self.not_before, self.not_after)
    }
}

fn timestamp(time: Time) -> Result<jiff::Timestamp, CertificateError> {
    let seconds = i64::try_from(time.to_unix_duration().as_secs())
        .map_err(|_| CertificateError(format!("{time} is out of range")))?;
    jiff::Timestamp::from_second(seconds).map_err(|e| CertificateError(e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use helvetia_test_support::pebble::TestCertificates;

    use super::*;

    /// A leaf valid for the dates given and its CA, leaf first as ACME serves them.
    fn chain(not_before: (i32, u8, u8), not_after: (i32, u8, u8)) -> String {
        let made = TestCertificates::make(&["example.test"], |leaf| {
            leaf.not_before = rcgen::date_time_ymd(not_before.0, not_before.1, not_before.2);
            leaf.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        });
        format!("{}{}", made.leaf_pem, made.ca_pem)
    }

    #[test]
    fn the_leaf_is_read_from_a_chain() {
        let info = CertificateInfo::from_pem_chain(&chain((2026, 11, 1), (2027, 1, 30))).unwrap();
        assert_eq!(info.issuer, "CN=Helvetia test CA");
        assert_eq!(info.not_before.to_string(), "2026-11-01T00:00:00Z");
        assert_eq!(info.not_after.to_string(), "2027-01-30T00:00:00Z");
    }

    #[test]
    fn renewal_is_due_two_thirds_into_the_life() {
        let info = CertificateInfo::from_pem_chain(&chain((2026, 11, 1), (2027, 1, 30))).unwrap();
        assert_eq!(info.renew_at().to_string(), "2026-12-31T00:00:00Z");
    }

    #[test]
    fn what_is_no_chain_is_an_error() {
        for text in [
            "",
            "hello",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        ] {
            assert!(CertificateInfo::from_pem_chain(text).is_err(), "{text:?}");
        }
    }
}
