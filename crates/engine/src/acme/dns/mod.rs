//! DNS providers for DNS-01 challenges (the only proof CAs accept for a wildcard): each adds a
//! TXT record and removes it again, through [`crate::outbound`], with credentials the caller
//! opened from the store. [`Dns01Responder`] answers an order's DNS-01 challenges with one.

use std::time::Duration;

use futures::future::BoxFuture;

use super::order::{Challenge, ChallengeResponder, ResponderError};

mod cloudflare;
mod httpreq;

pub use cloudflare::{CLOUDFLARE_API, Cloudflare};
pub use httpreq::HttpReq;

/// How long one request to a DNS provider may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a DNS provider did not do what was asked, in words for the certificate's state.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct DnsError(pub String);

/// A DNS provider's API: TXT records at a name.
pub trait DnsProvider: Send + Sync {
    /// Adds a TXT record `value` at `fqdn` (e.g. `_acme-challenge.example.com.`), beside any
    /// there already.
    fn present<'a>(&'a self, fqdn: &'a str, value: &'a str) -> BoxFuture<'a, Result<(), DnsError>>;

    /// Removes the TXT record `value` at `fqdn`; one that is not there is no error.
    fn clean_up<'a>(&'a self, fqdn: &'a str, value: &'a str)
    -> BoxFuture<'a, Result<(), DnsError>>;
}

/// Answers DNS-01 challenges through a [`DnsProvider`]; an HTTP-01 challenge is refused (an
/// order sent here asks for DNS-01, see [`super::ChallengeKind`]).
#[derive(Debug)]
pub struct Dns01Responder<P> {
    provider: P,
    propagation: Duration,
}

impl<P: DnsProvider> Dns01Responder<P> {
    /// `provider`'s records are given `propagation` to reach all its authoritative servers
    /// before the CA looks (certbot gives Cloudflare 10 s; a local DNS needs none).
    pub fn new(provider: P, propagation: Duration) -> Dns01Responder<P> {
        Dns01Responder {
            provider,
            propagation,
        }
    }
}

impl<P: DnsProvider> ChallengeResponder for Dns01Responder<P> {
    fn present<'a>(
        &'a self,
        challenge: &'a Challenge,
    ) -> BoxFuture<'a, Result<(), ResponderError>> {
        Box::pin(async move {
            let Challenge::Dns01 { fqdn, value, .. } = challenge else {
                return Err(ResponderError(
                    "only DNS-01 challenges are answered through the DNS provider".into(),
                ));
            };
            Ok(self.provider.present(fqdn, value).await?)
        })
    }

    fn clean_up<'a>(
        &'a self,
        challenge: &'a Challenge,
    ) -> BoxFuture<'a, Result<(), ResponderError>> {
        Box::pin(async move {
            let Challenge::Dns01 { fqdn, value, .. } = challenge else {
                return Ok(());
            };
            Ok(self.provider.clean_up(fqdn, value).await?)
        })
    }

    fn propagation(&self) -> Duration {
        self.propagation
    }
}

impl From<DnsError> for ResponderError {
    fn from(error: DnsError) -> ResponderError {
        ResponderError(error.0)
    }
}

/// A provider's failure below HTTP, with its causes.
fn transport_error(what: &str, error: &reqwest::Error) -> DnsError {
    DnsError(format!("{what}: {}", super::with_causes(error)))
}
