//! Where and how Helvetia, as an ACME client, orders certificates: the CA, the account's
//! contact and External Account Binding, and the DNS provider that answers DNS-01 challenges
//! (the only proof a CA accepts for a wildcard). Secrets here print as `***`.

use std::sync::Arc;
use std::time::Duration;

use helvetia_core::certificate::GeneratedCertificates;
pub use helvetia_engine::acme::ExternalAccountBinding;
use helvetia_engine::acme::dns::{CLOUDFLARE_API, Cloudflare, Dns01Responder, HttpReq};
use helvetia_engine::acme::{ChallengeResponder, Directory};
use helvetia_engine::outbound::Outbound;

use crate::config::SecretText;

/// Where Helvetia, as an ACME client, orders certificates.
#[derive(Debug, Clone)]
pub struct AcmeSettings {
    pub directory: Directory,
    /// The account's contact address.
    pub contact: Option<String>,
    /// Certificates to trust for the CA's API beside the system's.
    pub extra_roots_pem: String,
    /// Ties a new account to one at the CA, for CAs that require it (ZeroSSL, company CAs).
    pub external_account: Option<ExternalAccountBinding>,
    /// Sets DNS-01 challenges' TXT records; without it wildcards get no certificate.
    pub dns: Option<DnsSettings>,
    /// Which certificates services' generated hostnames get.
    pub generated: GeneratedCertificates,
}

impl AcmeSettings {
    /// The secrets among these settings (the DNS provider's password or token, the External
    /// Account Binding's MAC key), for the server's redactor.
    pub fn secrets(&self) -> Vec<String> {
        let dns = self.dns.as_ref().and_then(|dns| match &dns.provider {
            DnsProvider::HttpReq { basic_auth, .. } => {
                basic_auth.as_ref().map(|(_, password)| password.expose())
            }
            DnsProvider::Cloudflare { token, .. } => Some(token.expose()),
        });
        let binding = self
            .external_account
            .as_ref()
            .map(|eab| eab.hmac_key.as_str());
        [dns, binding]
            .into_iter()
            .flatten()
            .filter(|secret| !secret.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// A DNS provider and how long its records take to be seen by the CA.
#[derive(Debug, Clone)]
pub struct DnsSettings {
    pub provider: DnsProvider,
    pub propagation: Duration,
}

/// The DNS providers Helvetia can set TXT records through.
#[derive(Debug, Clone)]
pub enum DnsProvider {
    /// lego's `httpreq`: a service of the user's at `endpoint`, optionally behind basic auth.
    HttpReq {
        endpoint: url::Url,
        basic_auth: Option<(String, SecretText)>,
    },
    /// Cloudflare's API (`api` is Cloudflare's own but for a test's fake), with an API token.
    Cloudflare { api: url::Url, token: SecretText },
}

impl DnsSettings {
    /// The setting `spec` names — `httpreq=<endpoint URL>`, or `cloudflare` (optionally
    /// `cloudflare=<API URL>`) — with `credentials`: `user:password` for httpreq (optional), the
    /// API token for Cloudflare (required). `propagation` defaults to 10 s for Cloudflare (as
    /// certbot waits) and none for httpreq (whose service answers once its record is set).
    pub fn parse(
        spec: &str,
        credentials: Option<&str>,
        propagation: Option<Duration>,
    ) -> Result<DnsSettings, String> {
        let (kind, value) = match spec.split_once('=') {
            Some((kind, value)) => (kind.trim(), Some(value.trim())),
            None => (spec.trim(), None),
        };
        let credentials = credentials.map(str::trim).filter(|text| !text.is_empty());
        let url = |text: &str| -> Result<url::Url, String> {
            let url = url::Url::parse(text).map_err(|e| format!("`{text}` is not a URL: {e}"))?;
            match url.scheme() {
                "http" | "https" if url.host().is_some() => Ok(url),
                _ => Err(format!("`{text}` is not an http(s) URL")),
            }
        };
        let (provider, default_propagation) = match (kind, value) {
            ("httpreq", Some(endpoint)) => {
                let basic_auth = credentials
                    .map(|text| match text.split_once(':') {
                        Some((user, password)) if !user.is_empty() => {
                            Ok((user.to_owned(), SecretText::new(password.to_owned())))
                        }
                        _ => Err("httpreq credentials must read `user:password`".to_owned()),
                    })
                    .transpose()?;
                let endpoint = url(endpoint)?;
                (
                    DnsProvider::HttpReq {
                        endpoint,
                        basic_auth,
                    },
                    Duration::ZERO,
                )
            }
            ("httpreq", None) => {
                return Err("httpreq needs its endpoint: `httpreq=https://…`".to_owned());
            }
            ("cloudflare", api) => {
                let api = url(api.unwrap_or(CLOUDFLARE_API))?;
                let token = credentials.ok_or(
                    "cloudflare needs an API token (Zone:Read, DNS:Edit) in \
                     HELVETIA_ACME_DNS_CREDENTIALS or --acme-dns-credentials-file",
                )?;
                (
                    DnsProvider::Cloudflare {
                        api,
                        token: SecretText::new(token.to_owned()),
                    },
                    Duration::from_secs(10),
                )
            }
            (other, _) => {
                return Err(format!(
                    "`{other}` is not a DNS provider: `httpreq=<URL>` or `cloudflare`"
                ));
            }
        };
        Ok(DnsSettings {
            provider,
            propagation: propagation.unwrap_or(default_propagation),
        })
    }

    /// A responder that answers DNS-01 challenges through the provider, over `outbound`.
    pub fn responder(&self, outbound: Arc<Outbound>) -> Box<dyn ChallengeResponder> {
        match &self.provider {
            DnsProvider::HttpReq {
                endpoint,
                basic_auth,
            } => {
                let auth = basic_auth
                    .as_ref()
                    .map(|(user, password)| (user.clone(), password.expose().to_owned()));
                let provider = HttpReq::new(outbound, endpoint.clone(), auth);
                Box::new(Dns01Responder::new(provider, self.propagation))
            }
            DnsProvider::Cloudflare { api, token } => {
                let provider = Cloudflare::new(outbound, api.clone(), token.expose().to_owned());
                Box::new(Dns01Responder::new(provider, self.propagation))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn providers_read_with_their_credentials_and_hide_them() {
        let httpreq = DnsSettings::parse(
            "httpreq=https://dns.example.com/acme",
            Some("bot:s3cret"),
            None,
        )
        .unwrap();
        let shown = format!("{httpreq:?}");
        assert!(
            shown.contains("dns.example.com") && shown.contains("bot"),
            "{shown}"
        );
        assert!(!shown.contains("s3cret"), "{shown}");
        assert_eq!(httpreq.propagation, Duration::ZERO);
        let open = DnsSettings::parse("httpreq=http://127.0.0.1:8080/", None, None).unwrap();
        assert!(matches!(
            open.provider,
            DnsProvider::HttpReq {
                basic_auth: None,
                ..
            }
        ));
        let cloudflare = DnsSettings::parse("cloudflare", Some("tok3n\n"), None).unwrap();
        let shown = format!("{cloudflare:?}");
        assert!(
            shown.contains("api.cloudflare.com") && !shown.contains("tok3n"),
            "{shown}"
        );
        assert_eq!(cloudflare.propagation, Duration::from_secs(10));
        let quick = DnsSettings::parse(
            "cloudflare=http://127.0.0.1:9/client/v4",
            Some("t"),
            Some(Duration::ZERO),
        )
        .unwrap();
        assert_eq!(quick.propagation, Duration::ZERO);
        let settings = AcmeSettings {
            directory: Directory::LetsEncryptStaging,
            contact: None,
            extra_roots_pem: String::new(),
            external_account: Some(ExternalAccountBinding::new("kid", "c2VjcmV0").unwrap()),
            dns: Some(httpreq),
            generated: GeneratedCertificates::None,
        };
        assert_eq!(settings.secrets(), ["s3cret", "c2VjcmV0"]);
    }

    #[test]
    fn bad_providers_say_what_is_wrong() {
        let error = |spec: &str, credentials: Option<&str>| {
            DnsSettings::parse(spec, credentials, None).unwrap_err()
        };
        assert!(error("route53", None).contains("not a DNS provider"));
        assert!(error("httpreq", None).contains("needs its endpoint"));
        assert!(error("httpreq=dns.example.com", None).contains("not a URL"));
        assert!(error("httpreq=ftp://dns.example.com", None).contains("http(s)"));
        assert!(
            error("httpreq=https://d.example.com", Some("nopassword")).contains("user:password")
        );
        assert!(error("cloudflare", None).contains("API token"));
    }
}
