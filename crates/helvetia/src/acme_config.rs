//! `helvetia server`'s ACME settings beyond the CA itself: the DNS provider that answers
//! DNS-01 challenges (wildcards) and External Account Binding. Their secrets come from the
//! environment or from files, never from the command line, where `ps` would show them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use helvetia_core::certificate::GeneratedCertificates;
use helvetia_server::platform::{AcmeSettings, DnsSettings, ExternalAccountBinding};

/// The environment variable with the DNS provider's credentials.
const DNS_CREDENTIALS_ENV: &str = "HELVETIA_ACME_DNS_CREDENTIALS";
/// The environment variable with the External Account Binding's MAC key.
const EAB_HMAC_KEY_ENV: &str = "HELVETIA_ACME_EAB_HMAC_KEY";

#[derive(Debug, Args, Clone, Default)]
pub struct AcmeArgs {
    /// The DNS provider that sets DNS-01 challenges' TXT records, which a wildcard's
    /// certificate needs: `httpreq=<endpoint URL>` (lego's generic HTTP-request provider) or
    /// `cloudflare`. Credentials come from HELVETIA_ACME_DNS_CREDENTIALS or
    /// --acme-dns-credentials-file: `user:password` for httpreq (basic auth, optional), an API
    /// token with Zone:Read and DNS:Edit for Cloudflare. [default: none]
    #[arg(long, env = "HELVETIA_ACME_DNS_PROVIDER", value_name = "PROVIDER")]
    pub acme_dns_provider: Option<String>,
    /// A file holding the DNS provider's credentials (instead of HELVETIA_ACME_DNS_CREDENTIALS).
    #[arg(long, env = "HELVETIA_ACME_DNS_CREDENTIALS_FILE", value_name = "FILE")]
    pub acme_dns_credentials_file: Option<PathBuf>,
    /// How long the DNS provider's records take to reach its servers before the CA looks, e.g.
    /// `30s`. [default: 10s for Cloudflare, none for httpreq]
    #[arg(long, env = "HELVETIA_ACME_DNS_PROPAGATION", value_name = "DURATION", value_parser = parse_propagation)]
    pub acme_dns_propagation: Option<Duration>,
    /// The key id of External Account Binding, for a CA that requires it (ZeroSSL, a company
    /// CA); its MAC key (base64url) comes from HELVETIA_ACME_EAB_HMAC_KEY or
    /// --acme-eab-hmac-key-file.
    #[arg(long, env = "HELVETIA_ACME_EAB_KID", value_name = "KID")]
    pub acme_eab_kid: Option<String>,
    /// A file holding the External Account Binding's MAC key (instead of
    /// HELVETIA_ACME_EAB_HMAC_KEY).
    #[arg(long, env = "HELVETIA_ACME_EAB_HMAC_KEY_FILE", value_name = "FILE")]
    pub acme_eab_hmac_key_file: Option<PathBuf>,
    /// Certificates for services' generated hostnames: `none`, `per-host` (one per hostname,
    /// by HTTP-01; Let's Encrypt allows 50 per registered domain a week) or `wildcard` (one per
    /// project, `*.<project>.<base-domain>`, and one per service with previews, by DNS-01:
    /// needs --acme-dns-provider). [default: per-host when --acme-directory is set and the base
    /// domain is a public name — not localhost, .test, .internal, .local or an address —
    /// else none]
    #[arg(long, env = "HELVETIA_GENERATED_CERTIFICATES", value_name = "CHOICE", value_parser = parse_generated)]
    pub generated_certificates: Option<GeneratedCertificates>,
}

fn parse_propagation(text: &str) -> Result<Duration, String> {
    helvetia_core::units::parse_duration(text).map_err(|e| e.to_string())
}

fn parse_generated(text: &str) -> Result<GeneratedCertificates, String> {
    GeneratedCertificates::parse(text)
        .ok_or_else(|| format!("`{text}` is not one of none, per-host, wildcard"))
}

/// A secret from `file` if given, else from the environment variable `variable`.
fn secret(
    file: Option<&Path>,
    variable: &str,
    env: &dyn Fn(&str) -> Option<String>,
    flag: &str,
) -> anyhow::Result<Option<String>> {
    match file {
        Some(file) => std::fs::read_to_string(file)
            .map(|text| Some(text.trim().to_owned()))
            .with_context(|| format!("{flag}: reading {}", file.display())),
        None => Ok(env(variable)
            .map(|text| text.trim().to_owned())
            .filter(|text| !text.is_empty())),
    }
}

impl AcmeArgs {
    /// Refuses these settings when no CA is named: they would silently do nothing.
    pub fn refuse_without_ca(&self) -> anyhow::Result<()> {
        let generated = self
            .generated_certificates
            .is_some_and(|choice| choice != GeneratedCertificates::None);
        if self.acme_dns_provider.is_some() || self.acme_eab_kid.is_some() || generated {
            bail!(
                "--acme-dns-provider, --acme-eab-kid and --generated-certificates need \
                 --acme-directory"
            );
        }
        Ok(())
    }

    /// Adds the DNS provider, External Account Binding and the generated hostnames'
    /// certificates (under `base_domain`) to `settings`, secrets read through `env` (the
    /// process's environment, but in tests).
    pub fn apply(
        &self,
        settings: &mut AcmeSettings,
        base_domain: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<()> {
        if let Some(spec) = &self.acme_dns_provider {
            let credentials = secret(
                self.acme_dns_credentials_file.as_deref(),
                DNS_CREDENTIALS_ENV,
                env,
                "--acme-dns-credentials-file",
            )?;
            let dns = DnsSettings::parse(spec, credentials.as_deref(), self.acme_dns_propagation)
                .map_err(|e| anyhow::anyhow!("--acme-dns-provider: {e}"))?;
            settings.dns = Some(dns);
        }
        let key = secret(
            self.acme_eab_hmac_key_file.as_deref(),
            EAB_HMAC_KEY_ENV,
            env,
            "--acme-eab-hmac-key-file",
        )?;
        settings.external_account = match (&self.acme_eab_kid, key) {
            (Some(kid), Some(key)) => Some(
                ExternalAccountBinding::new(kid, &key)
                    .map_err(|e| anyhow::anyhow!("--acme-eab-kid: {e}"))?,
            ),
            (Some(_), None) => bail!(
                "--acme-eab-kid needs its MAC key in {EAB_HMAC_KEY_ENV} or --acme-eab-hmac-key-file"
            ),
            (None, Some(_)) => bail!("an External Account Binding MAC key needs --acme-eab-kid"),
            (None, None) => None,
        };
        settings.generated = self
            .generated_certificates
            .unwrap_or_else(|| GeneratedCertificates::default_for(base_domain, true));
        if settings.generated == GeneratedCertificates::Wildcard && settings.dns.is_none() {
            bail!(
                "--generated-certificates wildcard needs --acme-dns-provider: only a DNS-01 \
                 challenge proves a wildcard"
            );
        }
        Ok(())
    }
}

/// The process's environment, for [`AcmeArgs::apply`].
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[cfg(test)]
mod tests {
    use helvetia_server::AcmeDirectory;
    use helvetia_server::platform::DnsProvider;

    use super::*;

    fn settings() -> AcmeSettings {
        AcmeSettings {
            directory: AcmeDirectory::LetsEncryptStaging,
            contact: None,
            extra_roots_pem: String::new(),
            external_account: None,
            dns: None,
            generated: GeneratedCertificates::None,
        }
    }

    fn applied(args: &AcmeArgs, env: &[(&str, &str)]) -> anyhow::Result<AcmeSettings> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        let lookup = |name: &str| {
            env.iter()
                .find(|(variable, _)| variable == name)
                .map(|(_, value)| value.clone())
        };
        let mut settings = settings();
        args.apply(&mut settings, "apps.example.com", &lookup)?;
        Ok(settings)
    }

    #[test]
    fn providers_and_bindings_take_their_secrets_from_the_environment_or_a_file() {
        let args = AcmeArgs {
            acme_dns_provider: Some("httpreq=http://127.0.0.1:9/dns".into()),
            acme_eab_kid: Some("kid-1".into()),
            ..AcmeArgs::default()
        };
        let env = [
            (DNS_CREDENTIALS_ENV, "bot:pass"),
            (EAB_HMAC_KEY_ENV, "c2VjcmV0LWtleQ"),
        ];
        let read = applied(&args, &env).unwrap();
        let Some(DnsProvider::HttpReq { basic_auth, .. }) = read.dns.map(|dns| dns.provider) else {
            panic!("httpreq expected");
        };
        assert_eq!(basic_auth.unwrap().1.expose(), "pass");
        assert_eq!(read.external_account.unwrap().key_id, "kid-1");

        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "cf-token\n").unwrap();
        let args = AcmeArgs {
            acme_dns_provider: Some("cloudflare".into()),
            acme_dns_credentials_file: Some(token),
            ..AcmeArgs::default()
        };
        let read = applied(&args, &[]).unwrap();
        let Some(DnsProvider::Cloudflare { token, .. }) = read.dns.map(|dns| dns.provider) else {
            panic!("cloudflare expected");
        };
        assert_eq!(token.expose(), "cf-token");
        assert!(read.external_account.is_none());
        // A public base domain: one certificate per generated hostname by default.
        assert_eq!(read.generated, GeneratedCertificates::PerHost);
        let wildcard = AcmeArgs {
            generated_certificates: Some(GeneratedCertificates::Wildcard),
            ..args
        };
        assert_eq!(
            applied(&wildcard, &[]).unwrap().generated,
            GeneratedCertificates::Wildcard
        );
    }

    #[test]
    fn bad_or_incomplete_settings_are_refused_at_start() {
        let error =
            |args: AcmeArgs, env: &[(&str, &str)]| applied(&args, env).unwrap_err().to_string();
        let cloudflare = AcmeArgs {
            acme_dns_provider: Some("cloudflare".into()),
            ..AcmeArgs::default()
        };
        assert!(error(cloudflare, &[]).contains("API token"));
        let kid_only = AcmeArgs {
            acme_eab_kid: Some("kid".into()),
            ..AcmeArgs::default()
        };
        assert!(error(kid_only.clone(), &[]).contains(EAB_HMAC_KEY_ENV));
        assert!(error(kid_only.clone(), &[(EAB_HMAC_KEY_ENV, "no way!")]).contains("base64url"));
        assert!(
            error(AcmeArgs::default(), &[(EAB_HMAC_KEY_ENV, "c2VjcmV0")])
                .contains("--acme-eab-kid")
        );
        let missing = AcmeArgs {
            acme_dns_provider: Some("cloudflare".into()),
            acme_dns_credentials_file: Some("/nonexistent/token".into()),
            ..AcmeArgs::default()
        };
        assert!(error(missing, &[]).contains("/nonexistent/token"));
        assert!(kid_only.refuse_without_ca().is_err());
        let wildcard = AcmeArgs {
            generated_certificates: Some(GeneratedCertificates::Wildcard),
            ..AcmeArgs::default()
        };
        assert!(error(wildcard.clone(), &[]).contains("needs --acme-dns-provider"));
        assert!(wildcard.refuse_without_ca().is_err());
        assert!(AcmeArgs::default().refuse_without_ca().is_ok());
    }
}
