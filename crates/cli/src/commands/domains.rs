//! `helvetia domains …`: a service's custom domains — added (and checked at once), listed
//! with what their last check found, checked again, made primary, removed.

use clap::Subcommand;
use helvetia_api_types::{AddDomain, Domain};

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
}

fn state(domain: &Domain) -> String {
    match domain.verification {
        Some(how) => format!("routed ({})", how.as_str()),
        None => "not verified".into(),
    }
}

/// The certificate's state, with its expiry or the CA's reason.
fn certificate(domain: &Domain) -> String {
    let Some(certificate) = &domain.certificate else {
        return "-".into();
    };
    let state = certificate.state.as_str();
    match (&certificate.not_after, &certificate.reason) {
        (_, Some(reason)) => format!("{state}: {reason}"),
        (Some(until), None) => format!("{state} until {}", output::time(*until)),
        (None, None) => state.to_owned(),
    }
}

fn show(domain: &Domain) {
    let role = match (domain.primary, domain.redirect) {
        (true, _) => "primary",
        (false, true) => "redirects to the primary",
        (false, false) => "alias",
    };
    output::fields(&[
        ("domain", domain.name.to_string()),
        ("path", output::or_dash(domain.path_prefix.as_deref())),
        ("role", role.to_owned()),
        ("state", state(domain)),
        ("last check", output::or_dash(domain.last_check.as_deref())),
        ("certificate", certificate(domain)),
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
            output::table(
                [
                    "DOMAIN",
                    "PATH",
                    "PRIMARY",
                    "REDIRECT",
                    "STATE",
                    "CERTIFICATE",
                    "LAST CHECK",
                ],
                domains.body.iter().map(|domain| {
                    [
                        domain.name.to_string(),
                        output::or_dash(domain.path_prefix.as_deref()),
                        domain.primary.to_string(),
                        domain.redirect.to_string(),
                        state(domain),
                        certificate(domain),
                        output::or_dash(domain.last_check.as_deref()),
                    ]
                }),
            );
            return Ok(());
        }
        DomainsCommand::Add {
            target,
            domain,
            path_prefix,
            redirect,
            force,
        } => {
            let body = AddDomain {
                name: domain,
                path_prefix,
                redirect,
                force,
            };
            client
                .post::<Domain>(&format!("{}/domains", target.path()), &body)
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
