//! `helvetia domains …`: a service's custom domains — added (and checked at once), listed
//! with what their last check found, checked again, made primary, removed; their basic auth
//! and HSTS.

use std::io::{BufRead, IsTerminal};

use anyhow::Context;
use clap::Subcommand;
use helvetia_api_types::{
    AddDomain, Certificate, CertificateSource, Domain, SetBasicAuth, SetHsts, UploadCertificate,
};

use crate::GlobalArgs;
use crate::client::Client;
use crate::output;
use crate::target::ServiceTarget;

#[derive(Debug, Subcommand)]
pub enum DomainsCommand {
    /// The service's domains, the primary first, with how each was verified.
    List { target: ServiceTarget },
    /// Add a domain; it is checked at once (DNS, then HTTP) and routed when it passes.
    Add {
        target: ServiceTarget,
        domain: String,
        /// Only requests under this path go to the service (`/api`).
        #[arg(long)]
        path_prefix: Option<String>,
        /// Redirect every request permanently to the service's primary domain.
        #[arg(long)]
        redirect: bool,
        /// Route it without a check (team admins).
        #[arg(long)]
        force: bool,
        /// Send HSTS (a year) over HTTPS once its certificate is served.
        #[arg(long)]
        hsts: bool,
    },
    /// Check a domain again; it is routed once a check passes.
    Verify {
        target: ServiceTarget,
        domain: String,
    },
    /// Make a domain the service's primary (aliases redirect to it).
    Primary {
        target: ServiceTarget,
        domain: String,
    },
    /// Remove a domain; its route goes at once.
    Remove {
        target: ServiceTarget,
        domain: String,
    },
    /// Put HTTP basic auth in front of a domain (the password is asked for, or read from
    /// standard input), or take it away with --clear.
    Auth {
        target: ServiceTarget,
        domain: String,
        #[arg(long, required_unless_present = "clear")]
        user: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        #[arg(long, conflicts_with_all = ["user", "password_stdin"])]
        clear: bool,
    },
    /// Send HSTS over HTTPS once the domain's certificate is served, or stop with --off.
    Hsts {
        target: ServiceTarget,
        domain: String,
        /// Seconds browsers keep to HTTPS (default: a year).
        #[arg(long)]
        max_age: Option<u64>,
        #[arg(long)]
        include_subdomains: bool,
        /// Ask for browsers' preload lists (needs --include-subdomains).
        #[arg(long)]
        preload: bool,
        #[arg(long, conflicts_with_all = ["max_age", "include_subdomains", "preload"])]
        off: bool,
    },
    /// Serve a certificate of your own for a domain (instead of one Helvetia orders): never
    /// renewed, its coming expiry notified; or stop with --remove.
    Certificate {
        target: ServiceTarget,
        domain: String,
        /// The PEM chain: the domain's certificate first, then the intermediates.
        #[arg(long, required_unless_present = "remove")]
        chain: Option<std::path::PathBuf>,
        /// The PEM private key (kept sealed; never shown again).
        #[arg(long, required_unless_present = "remove")]
        key: Option<std::path::PathBuf>,
        #[arg(long, conflicts_with_all = ["chain", "key"])]
        remove: bool,
    },
}

/// The password for basic auth: the first line of standard input with `--password-stdin`,
/// else asked for without echo.
pub(super) fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    rpassword::prompt_password("Password: ").context("cannot read the password")
}

fn state(domain: &Domain) -> String {
    match domain.verification {
        Some(how) => format!("routed ({})", how.as_str()),
        None => "not verified".into(),
    }
}

/// The certificate's state, with its issuer once issued.
pub(super) fn certificate(certificate: Option<&Certificate>) -> String {
    let Some(certificate) = certificate else {
        return "-".into();
    };
    let state = match certificate.source {
        CertificateSource::Acme => certificate.state.as_str().to_owned(),
        CertificateSource::Uploaded => format!("{}, uploaded", certificate.state.as_str()),
    };
    match &certificate.issuer {
        Some(issuer) => format!("{state} ({issuer})"),
        None => state,
    }
}

/// When the certificate ends.
pub(super) fn expires(certificate: Option<&Certificate>) -> String {
    let until = certificate.and_then(|c| c.not_after);
    until.map_or_else(|| "-".to_owned(), output::time)
}

/// Why the last order failed, as the CA said, and when Helvetia tries again.
pub(super) fn reason(certificate: Option<&Certificate>) -> String {
    let Some(certificate) = certificate else {
        return "-".into();
    };
    match (&certificate.reason, certificate.next_attempt_at) {
        (Some(reason), Some(next)) => format!("{reason} (next attempt {})", output::time(next)),
        (Some(reason), None) => reason.clone(),
        (None, _) => "-".into(),
    }
}

/// The table of `domains list`, and of the domains in `services show`.
pub fn print_table(domains: &[Domain]) {
    output::table(
        [
            "DOMAIN",
            "ROLE",
            "STATE",
            "AUTH",
            "CERTIFICATE",
            "EXPIRES",
            "REASON",
            "LAST CHECK",
        ],
        domains.iter().map(|domain| {
            [
                format!(
                    "{}{}",
                    domain.name,
                    domain.path_prefix.as_deref().unwrap_or_default()
                ),
                role(domain).to_owned(),
                state(domain),
                output::or_dash(domain.basic_auth.as_ref().map(|auth| auth.user.as_str())),
                certificate(domain.certificate.as_ref()),
                expires(domain.certificate.as_ref()),
                reason(domain.certificate.as_ref()),
                output::or_dash(domain.last_check.as_deref()),
            ]
        }),
    );
}

fn role(domain: &Domain) -> &'static str {
    match (domain.primary, domain.redirect) {
        (true, _) => "primary",
        (false, true) => "redirects to the primary",
        (false, false) => "alias",
    }
}

fn hsts(domain: &Domain) -> String {
    match &domain.hsts {
        Some(hsts) => format!(
            "max-age {}{}{}",
            hsts.max_age_seconds,
            if hsts.include_subdomains {
                ", includeSubDomains"
            } else {
                ""
            },
            if hsts.preload { ", preload" } else { "" }
        ),
        None => "-".into(),
    }
}

fn show(domain: &Domain) {
    output::fields(&[
        ("domain", domain.name.to_string()),
        ("path", output::or_dash(domain.path_prefix.as_deref())),
        ("role", role(domain).to_owned()),
        ("state", state(domain)),
        ("last check", output::or_dash(domain.last_check.as_deref())),
        ("certificate", certificate(domain.certificate.as_ref())),
        ("expires", expires(domain.certificate.as_ref())),
        ("reason", reason(domain.certificate.as_ref())),
        (
            "basic auth",
            output::or_dash(domain.basic_auth.as_ref().map(|auth| auth.user.as_str())),
        ),
        ("HSTS", hsts(domain)),
        (
            "HTTP check",
            format!(
                "http://{}/.well-known/helvetia/{}",
                domain.name, domain.token
            ),
        ),
    ]);
}

pub async fn run(command: DomainsCommand, global: &GlobalArgs) -> anyhow::Result<()> {
    let client = Client::from_args(global)?;
    let one = |target: &ServiceTarget, domain: &str, action: &str| {
        format!("{}/domains/{domain}{action}", target.path())
    };
    let answer = match command {
        DomainsCommand::List { target } => {
            let domains = client
                .get::<Vec<Domain>>(&format!("{}/domains", target.path()))
                .await?;
            if global.json {
                return output::json(&domains.json);
            }
            print_table(&domains.body);
            return Ok(());
        }
        DomainsCommand::Add {
            target,
            domain,
            path_prefix,
            redirect,
            force,
            hsts,
        } => {
            let body = AddDomain {
                name: domain,
                path_prefix,
                redirect,
                force,
            };
            let added = client
                .post::<Domain>(&format!("{}/domains", target.path()), &body)
                .await?;
            if hsts {
                let on = SetHsts {
                    max_age_seconds: None,
                    include_subdomains: false,
                    preload: false,
                };
                let name = added.body.name.to_string();
                client
                    .put::<Domain>(&one(&target, &name, "/hsts"), &on)
                    .await?
            } else {
                added
            }
        }
        DomainsCommand::Auth {
            target,
            domain,
            user,
            password_stdin,
            clear,
        } => match user.filter(|_| !clear) {
            Some(user) => {
                let password = read_password(password_stdin)?;
                let body = SetBasicAuth { user, password };
                client
                    .put::<Domain>(&one(&target, &domain, "/basic-auth"), &body)
                    .await?
            }
            None => {
                client
                    .delete::<Domain>(&one(&target, &domain, "/basic-auth"), None::<&()>)
                    .await?
            }
        },
        DomainsCommand::Hsts {
            target,
            domain,
            max_age,
            include_subdomains,
            preload,
            off,
        } => {
            if off {
                client
                    .delete::<Domain>(&one(&target, &domain, "/hsts"), None::<&()>)
                    .await?
            } else {
                let body = SetHsts {
                    max_age_seconds: max_age,
                    include_subdomains,
                    preload,
                };
                client
                    .put::<Domain>(&one(&target, &domain, "/hsts"), &body)
                    .await?
            }
        }
        DomainsCommand::Certificate {
            target,
            domain,
            chain: Some(chain),
            key: Some(key),
            remove: false,
        } => {
            let read = |path: &std::path::Path| {
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))
            };
            let body = UploadCertificate {
                chain_pem: read(&chain)?,
                key_pem: read(&key)?,
            };
            client
                .put::<Domain>(&one(&target, &domain, "/certificate"), &body)
                .await?
        }
        DomainsCommand::Certificate { target, domain, .. } => {
            client
                .delete::<Domain>(&one(&target, &domain, "/certificate"), None::<&()>)
                .await?
        }
        DomainsCommand::Verify { target, domain } => {
            client
                .post::<Domain>(&one(&target, &domain, "/verify"), &())
                .await?
        }
        DomainsCommand::Primary { target, domain } => {
            client
                .post::<Domain>(&one(&target, &domain, "/primary"), &())
                .await?
        }
        DomainsCommand::Remove { target, domain } => {
            client
                .delete::<()>(&one(&target, &domain, ""), None::<&()>)
                .await?;
            if !global.json {
                println!("Removed {domain} from {target}.");
            }
            return Ok(());
        }
    };
    if global.json {
        return output::json(&answer.json);
    }
    show(&answer.body);
    Ok(())
}
