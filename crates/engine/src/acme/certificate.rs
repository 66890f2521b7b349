//! What Helvetia reads from a certificate chain: the leaf's issuer and validity, for the
//! certificate's state (issued by whom, expiring when, renewed at two thirds of its life) —
//! and, for a chain a user uploads with its key, that the key is the leaf's and which names the
//! leaf covers.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use x509_cert::Certificate;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;
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

/// A chain and key a user uploaded, checked: the leaf's issuer, validity and DNS names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedCertificate {
    pub info: CertificateInfo,
    /// The leaf's subject alternative names of the DNS kind (`*.example.com` included).
    pub names: Vec<String>,
}

impl UploadedCertificate {
    /// Checks that `chain_pem` (leaf first) and `key_pem` (PKCS#8, PKCS#1 or SEC1) belong
    /// together — the key's public half is the leaf's — and reads the leaf. Never echoes the
    /// key in an error.
    pub fn check(chain_pem: &str, key_pem: &str) -> Result<UploadedCertificate, CertificateError> {
        let info = CertificateInfo::from_pem_chain(chain_pem)?;
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(chain_pem.as_bytes())
                .collect::<Result<_, _>>()
                .map_err(|e| CertificateError(e.to_string()))?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|_| {
            CertificateError(
                "the private key is not a PEM private key (PKCS#8, PKCS#1 or SEC1)".into(),
            )
        })?;
        let provider = rustls::crypto::ring::default_provider();
        let signing = provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| CertificateError(format!("the private key cannot be used: {e}")))?;
        CertifiedKey::new(chain, signing)
            .keys_match()
            .map_err(|_| {
                CertificateError(
                    "the private key is not the key of the chain's first certificate".into(),
                )
            })?;
        let leaf = Certificate::load_pem_chain(chain_pem.as_bytes())
            .map_err(|e| CertificateError(e.to_string()))?
            .into_iter()
            .next()
            .ok_or_else(|| CertificateError("it holds no certificate".to_owned()))?;
        let names = match leaf.tbs_certificate().get_extension::<SubjectAltName>() {
            Ok(Some((_, SubjectAltName(names)))) => names
                .into_iter()
                .filter_map(|name| match name {
                    GeneralName::DnsName(name) => Some(name.to_string().to_ascii_lowercase()),
                    _ => None,
                })
                .collect(),
            Ok(None) => vec![],
            Err(e) => return Err(CertificateError(format!("its names cannot be read: {e}"))),
        };
        Ok(UploadedCertificate { info, names })
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
    fn an_upload_is_its_key_and_names() {
        let made = TestCertificates::make(&["example.test", "*.example.test"], |_| {});
        let chain = format!("{}{}", made.leaf_pem, made.ca_pem);
        let checked = UploadedCertificate::check(&chain, &made.leaf_key_pem).unwrap();
        assert_eq!(checked.names, ["example.test", "*.example.test"]);
        assert_eq!(checked.info.issuer, "CN=Helvetia test CA");

        let other = TestCertificates::make(&["example.test"], |_| {});
        let mismatch = UploadedCertificate::check(&chain, &other.leaf_key_pem).unwrap_err();
        assert!(mismatch.to_string().contains("not the key"), "{mismatch}");
        assert!(!mismatch.to_string().contains("PRIVATE"), "{mismatch}");
        let garbage = UploadedCertificate::check(&chain, "not a key").unwrap_err();
        assert!(garbage.to_string().contains("PEM private key"), "{garbage}");
        assert!(UploadedCertificate::check("nope", &made.leaf_key_pem).is_err());
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
