//! `helvetia trusts …`: which OpenID Connect issuers' tokens may deploy a service from CI,
//! for which claims — deploys with no stored secret.

use clap::Subcommand;
use helvetia_api_types::{CreateTrust, Trust};
use serde_json::json;

use crate::GlobalArgs;
use crate::client::Client;
use crate::output;
use crate::target::ServiceTarget;

#[derive(Debug, Subcommand)]
pub enum TrustsCommand {
    /// Let CI jobs whose OpenID Connect token carries this repository and ref (and
    /// environment) deploy the service with `POST /api/v1/oidc/deploy`.
    Add {
        target: ServiceTarget,
        /// The `repository` claim: `owner/name` (default: the GitHub repository the service
        /// is linked to, whose id is then bound too).
        #[arg(long)]
        repository: Option<String>,
        /// The `ref` claim, in full: `refs/heads/main`; a trailing `*` matches a prefix
        /// (`refs/tags/v*`).
        #[arg(long = "ref", default_value = "refs/heads/main")]
        git_ref: String,
        /// The `environment` claim the token must carry (default: any or none).
        #[arg(long)]
        environment: Option<String>,
        /// The issuer's URL (default: GitHub Actions', https://token.actions.githubusercontent.com).
        #[arg(long)]
        issuer: Option<String>,
    },
    /// List a service's trusts.
    List { target: ServiceTarget },
    /// Remove a trust: its tokens deploy nothing from now on.
    Remove { target: ServiceTarget, id: i64 },
}

pub async fn run(command: TrustsCommand, global: &GlobalArgs) -> anyhow::Result<()> {
    let client = Client::from_args(global)?;
    match command {
        TrustsCommand::Add {
            target,
            repository,
            git_ref,
            environment,
            issuer,
        } => {
            let body = CreateTrust {
                issuer,
                repository,
                git_ref,
                environment,
            };
            let trust = client
                .post::<Trust>(&format!("{}/trusts", target.path()), &body)
                .await?;
            if global.json {
                return output::json(&trust.json);
            }
            let trust = trust.body;
            println!(
                "{target} trusts tokens of {} for {} on {} (trust #{}).",
                trust.issuer, trust.repository, trust.git_ref, trust.id
            );
        }
        TrustsCommand::List { target } => {
            let trusts = client
                .get::<Vec<Trust>>(&format!("{}/trusts", target.path()))
                .await?;
            if global.json {
                return output::json(&trusts.json);
            }
            output::table(
                [
                    "ID",
                    "ISSUER",
                    "REPOSITORY",
                    "REF",
                    "ENVIRONMENT",
                    "CREATED",
                ],
                trusts.body.iter().map(|t| {
                    [
                        t.id.to_string(),
                        t.issuer.clone(),
                        t.repository.clone(),
                        t.git_ref.clone(),
                        output::or_dash(t.environment.as_deref()),
                        output::time(t.created_at),
                    ]
                }),
            );
        }
        TrustsCommand::Remove { target, id } => {
            client
                .delete::<()>(&format!("{}/trusts/{id}", target.path()), None::<&()>)
                .await?;
            if global.json {
                return output::json(&json!({ "removed": id }));
            }
            println!("Removed trust #{id} of {target}.");
        }
    }
    Ok(())
}
