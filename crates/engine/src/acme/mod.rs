//! Helvetia as an ACME client (RFC 8555): accounts, certificate orders, their challenges and
//! the issued chain, on `instant-acme` with every request to the CA going through
//! [`crate::outbound`] (`transport.rs`). The caller keeps the state — the account's credentials
//! and each certificate's key, sealed — and answers challenges through a
//! [`ChallengeResponder`]; DNS-01 records are set through a [`dns::DnsProvider`] (Cloudflare's
//! API, lego's `httpreq`).
//!
//! Read [`AcmeClient`] first, then `order.rs` (one order, start to end).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::outbound::Outbound;

mod certificate;
pub mod dns;
mod order;
mod transport;

pub use certificate::{CertificateError, CertificateInfo, UploadedCertificate};
pub use order::{
    Challenge, ChallengeKind, ChallengeResponder, IssuedCertificate, OrderRequest, ResponderError,
};

/// Which CA Helvetia orders from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Directory {
    LetsEncrypt,
    LetsEncryptStaging,
    /// Any ACME directory, e.g. `https://127.0.0.1:14000/dir` (Pebble), ZeroSSL, a company CA.
    Url(url::Url),
}

impl Directory {
    pub fn url(&self) -> &str {
        match self {
            Directory::LetsEncrypt => instant_acme::LetsEncrypt::Production.url(),
            Directory::LetsEncryptStaging => instant_acme::LetsEncrypt::Staging.url(),
            Directory::Url(url) => url.as_str(),
        }
    }
}

/// An ACME account's key and URL, as the caller stores them (sealed: the key signs every
/// request of the account). The JSON is instant-acme's and names the directory.
#[derive(Clone)]
pub struct AccountCredentials(String);

impl AccountCredentials {
    pub fn from_json(json: String) -> AccountCredentials {
        AccountCredentials(json)
    }

    pub fn as_json(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AccountCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccountCredentials(***)")
    }
}

/// External Account Binding (RFC 8555 §7.3.4), which some CAs (ZeroSSL, Google, company CAs)
/// require to tie a new ACME account to an account of theirs.
#[derive(Clone)]
pub struct ExternalAccountBinding {
    pub key_id: String,
    /// The MAC key as CAs hand it out: base64url.
    pub hmac_key: String,
}

impl ExternalAccountBinding {
    /// The binding of `key_id` with `hmac_key`, checked to be base64url as CAs hand it out.
    pub fn new(key_id: &str, hmac_key: &str) -> Result<ExternalAccountBinding, AcmeError> {
        let (key_id, hmac_key) = (key_id.trim(), hmac_key.trim());
        if key_id.is_empty() {
            return Err(AcmeError::Input(
                "the External Account Binding key id is empty".into(),
            ));
        }
        decode_hmac_key(hmac_key)?;
        Ok(ExternalAccountBinding {
            key_id: key_id.to_owned(),
            hmac_key: hmac_key.to_owned(),
        })
    }
}

/// The MAC key's bytes: base64url, padded or not.
fn decode_hmac_key(hmac_key: &str) -> Result<Vec<u8>, AcmeError> {
    match URL_SAFE_NO_PAD.decode(hmac_key.trim_end_matches('=')) {
        Ok(bytes) if !bytes.is_empty() => Ok(bytes),
        _ => Err(AcmeError::Input(
            "the External Account Binding key is not base64url".into(),
        )),
    }
}

impl std::fmt::Debug for ExternalAccountBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalAccountBinding")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// A problem document (RFC 7807) in which the CA says why it refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// e.g. `urn:ietf:params:acme:error:unauthorized`.
    pub kind: Option<String>,
    pub detail: Option<String>,
    /// Per-identifier problems (`subproblems`), as `name: type: detail`.
    pub subproblems: Vec<String>,
}

impl From<instant_acme::Problem> for Problem {
    fn from(problem: instant_acme::Problem) -> Problem {
        let subproblems = problem
            .subproblems
            .iter()
            .map(|sub| {
                let name = match &sub.identifier {
                    Some(identifier) => identifier.authorized(false).to_string(),
                    None => "?".to_owned(),
                };
                let kind = sub.r#type.as_deref().unwrap_or("?");
                format!("{name}: {kind}: {}", sub.detail.as_deref().unwrap_or(""))
            })
            .collect();
        Problem {
            kind: problem.r#type,
            detail: problem.detail,
            subproblems,
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = self
            .kind
            .as_deref()
            .unwrap_or("urn:ietf:params:acme:error:unknown");
        write!(f, "{kind}")?;
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        for sub in &self.subproblems {
            write!(f, "; {sub}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    /// The CA answered with a problem: its reason, verbatim.
    #[error("the CA refused{}: {problem}", for_domain(domain))]
    Refused {
        domain: Option<String>,
        problem: Problem,
    },
    /// The caller's [`ChallengeResponder`] failed (a DNS provider's refusal, say).
    #[error("the challenge for {domain} could not be set up: {reason}")]
    Challenge { domain: String, reason: String },
    /// The outbound policy refused the CA's address, or the connection or TLS failed.
    #[error("the CA could not be reached: {0}")]
    Unreachable(String),
    /// The CA took longer than the order's timeout to validate or to issue.
    #[error("the CA did not answer in time")]
    Timeout,
    #[error("the CA's answer was not understood: {0}")]
    Protocol(String),
    /// What the caller passed is not usable (no names, roots that are not PEM, a stored account
    /// that does not read).
    #[error("{0}")]
    Input(String),
}

fn for_domain(domain: &Option<String>) -> String {
    domain.as_ref().map(|d| format!(" {d}")).unwrap_or_default()
}

impl From<instant_acme::Error> for AcmeError {
    fn from(error: instant_acme::Error) -> AcmeError {
        match error {
            instant_acme::Error::Api(problem) => AcmeError::Refused {
                domain: None,
                problem: problem.into(),
            },
            instant_acme::Error::Timeout(_) => AcmeError::Timeout,
            instant_acme::Error::Other(error) if error.is::<transport::TransportError>() => {
                AcmeError::Unreachable(error.to_string())
            }
            other => AcmeError::Protocol(other.to_string()),
        }
    }
}

/// reqwest verifies a server's certificate with the process's rustls provider; the binary
/// installs ring at start, and so does every client here for an adapter used elsewhere (tests).
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// `error` and its causes, for a reason a user reads: reqwest's own text is only "error sending
/// request", the refused connection or the certificate's fault is in the causes.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// A client of one CA, reached through the outbound policy.
#[derive(Clone)]
pub struct AcmeClient {
    directory: Directory,
    http: transport::OutboundHttp,
}

impl std::fmt::Debug for AcmeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcmeClient")
            .field("directory", &self.directory)
            .finish_non_exhaustive()
    }
}

impl AcmeClient {
    /// How long one request to the CA may take.
    pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

    /// A client of `directory`'s CA; `extra_roots_pem` (PEM certificates, possibly none) are
    /// trusted beside the system's roots for the CA's API — Pebble's is self-made.
    pub fn new(
        outbound: Arc<Outbound>,
        directory: Directory,
        extra_roots_pem: &str,
    ) -> Result<AcmeClient, AcmeError> {
        let roots = if extra_roots_pem.trim().is_empty() {
            vec![]
        } else {
            reqwest::Certificate::from_pem_bundle(extra_roots_pem.as_bytes())
                .map_err(|e| AcmeError::Input(format!("the trusted roots are not PEM: {e}")))?
        };
        Ok(AcmeClient {
            directory,
            http: transport::OutboundHttp::new(outbound, roots, AcmeClient::REQUEST_TIMEOUT),
        })
    }

    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// Registers a new account (terms of service agreed) with optional contact addresses
    /// (`mailto:…`) and External Account Binding; the credentials are the caller's to seal.
    pub async fn create_account(
        &self,
        contacts: &[String],
        binding: Option<&ExternalAccountBinding>,
    ) -> Result<(Account, AccountCredentials), AcmeError> {
        let key = binding
            .map(|binding| {
                let hmac = decode_hmac_key(&binding.hmac_key)?;
                Ok::<_, AcmeError>(instant_acme::ExternalAccountKey::new(
                    binding.key_id.clone(),
                    &hmac,
                ))
            })
            .transpose()?;
        let contacts: Vec<&str> = contacts.iter().map(String::as_str).collect();
        let new_account = instant_acme::NewAccount {
            contact: &contacts,
            terms_of_service_agreed: true,
            only_return_existing: false,
        };
        let (account, credentials) =
            instant_acme::Account::builder_with_http(Box::new(self.http.clone()))
                .create(&new_account, self.directory.url().to_owned(), key.as_ref())
                .await?;
        let json = serde_json::to_string(&credentials)
            .map_err(|e| AcmeError::Protocol(format!("the account could not be stored: {e}")))?;
        Ok((Account { inner: account }, AccountCredentials(json)))
    }

    /// The account `credentials` describe (made by [`AcmeClient::create_account`]); their
    /// directory is the one the account was created on.
    pub async fn load_account(
        &self,
        credentials: &AccountCredentials,
    ) -> Result<Account, AcmeError> {
        let credentials: instant_acme::AccountCredentials = serde_json::from_str(&credentials.0)
            .map_err(|e| {
                AcmeError::Input(format!("the stored ACME account could not be read: {e}"))
            })?;
        let account = instant_acme::Account::builder_with_http(Box::new(self.http.clone()))
            .from_credentials(credentials)
            .await?;
        Ok(Account { inner: account })
    }
}

/// An account at a CA, ready to order.
pub struct Account {
    inner: instant_acme::Account,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("id", &self.inner.id())
            .finish_non_exhaustive()
    }
}

impl Account {
    /// The account's URL at the CA.
    pub fn id(&self) -> &str {
        self.inner.id()
    }

    /// Orders a certificate for `request`'s names, answering each challenge through
    /// `responder`; a refusal is [`AcmeError::Refused`] with the CA's problem.
    pub async fn order(
        &self,
        request: &OrderRequest,
        responder: &dyn ChallengeResponder,
    ) -> Result<IssuedCertificate, AcmeError> {
        order::run(&self.inner, request, responder).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn lets_encrypt_is_a_named_choice() {
        assert_eq!(
            Directory::LetsEncrypt.url(),
            "https://acme-v02.api.letsencrypt.org/directory"
        );
        assert_eq!(
            Directory::LetsEncryptStaging.url(),
            "https://acme-staging-v02.api.letsencrypt.org/directory"
        );
        let pebble = Directory::Url("https://127.0.0.1:14000/dir".parse().unwrap());
        assert_eq!(pebble.url(), "https://127.0.0.1:14000/dir");
    }

    #[test]
    fn a_problem_reads_as_the_ca_wrote_it() {
        let problem: instant_acme::Problem = serde_json::from_value(serde_json::json!({
            "type": "urn:ietf:params:acme:error:rejectedIdentifier",
            "detail": "Error creating new order :: Cannot issue for 2 identifiers",
            "status": 400,
            "subproblems": [{
                "type": "urn:ietf:params:acme:error:rejectedIdentifier",
                "detail": "Domain name contains an invalid character",
                "identifier": { "type": "dns", "value": "a_b.example.com" },
            }],
        }))
        .unwrap();
        let error = AcmeError::from(instant_acme::Error::Api(problem));
        assert_eq!(
            error.to_string(),
            "the CA refused: urn:ietf:params:acme:error:rejectedIdentifier: Error creating new \
             order :: Cannot issue for 2 identifiers; a_b.example.com: \
             urn:ietf:params:acme:error:rejectedIdentifier: Domain name contains an invalid \
             character"
        );
    }

    #[test]
    fn credentials_and_bindings_keep_their_keys_out_of_logs() {
        let credentials = AccountCredentials::from_json(r#"{"key_pkcs8":"SECRET"}"#.into());
        assert_eq!(format!("{credentials:?}"), "AccountCredentials(***)");
        let binding = ExternalAccountBinding {
            key_id: "kid".into(),
            hmac_key: "SECRET".into(),
        };
        assert!(!format!("{binding:?}").contains("SECRET"));
        assert!(ExternalAccountBinding::new("kid", "c2VjcmV0LWtleQ").is_ok());
        for (kid, key) in [("", "c2VjcmV0"), ("kid", "not base64!"), ("kid", "")] {
            assert!(
                ExternalAccountBinding::new(kid, key).is_err(),
                "{kid} {key}"
            );
        }
    }
}
