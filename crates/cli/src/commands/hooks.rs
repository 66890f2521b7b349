//! `helvetia hooks …`: deploys on push — a service's settings, its receiver's secret, and the
//! delivery log that says what every webhook delivery did.

use clap::Subcommand;
use helvetia_api_types::{Delivery, HookSecret, HookView, UpdateHook};

use crate::GlobalArgs;
use crate::client::Client;
use crate::output;
use crate::target::ServiceTarget;

#[derive(Debug, Subcommand)]
pub enum HooksCommand {
    /// A service's deploy-on-push settings and its receiver's URL.
    Show { target: ServiceTarget },
    /// Change the deploy-on-push settings.
    Set {
        target: ServiceTarget,
        /// Deploy pushes to the service's branch (`true`/`false`).
        #[arg(long)]
        auto_deploy: Option<bool>,
        /// Deploy only when a changed file matches one of these globs (repeat the flag);
        /// `--watch ''` alone clears them.
        #[arg(long = "watch")]
        watch_paths: Vec<String>,
        /// A push cancels a running build of an older commit (`true`/`false`).
        #[arg(long)]
        cancel_running: Option<bool>,
        /// Deploy a pushed commit only once its CI checks have passed (`true`/`false`; a
        /// service created from a GitHub repository).
        #[arg(long)]
        wait_for_ci: Option<bool>,
    },
    /// Make the service's receiver, or replace its URL and secret: the secret is shown once.
    Secret { target: ServiceTarget },
    /// The deliveries the service received (30 days), newest first, with what each did.
    Deliveries {
        target: ServiceTarget,
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// The GitHub App's deliveries that reached no service: refused ones, and pushes to a
    /// repository no service is linked to (instance administrators).
    AppDeliveries {
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
}

fn show(view: &HookView) {
    output::fields(&[
        ("auto-deploy", view.auto_deploy.to_string()),
        (
            "watch paths",
            if view.watch_paths.is_empty() {
                "(every change)".to_owned()
            } else {
                view.watch_paths.join(" ")
            },
        ),
        ("cancel running", view.cancel_running.to_string()),
        ("wait for CI", view.wait_for_ci.to_string()),
        (
            "receiver",
            output::or_dash(
                view.receiver_url
                    .as_ref()
                    .map(|url| format!("{url}/SOURCE")),
            ),
        ),
    ]);
}

pub async fn run(command: HooksCommand, global: &GlobalArgs) -> anyhow::Result<()> {
    let client = Client::from_args(global)?;
    match command {
        HooksCommand::Show { target } => {
            let view = client
                .get::<HookView>(&format!("{}/hook", target.path()))
                .await?;
            if global.json {
                return output::json(&view.json);
            }
            show(&view.body);
            Ok(())
        }
        HooksCommand::Set {
            target,
            auto_deploy,
            watch_paths,
            cancel_running,
            wait_for_ci,
        } => {
            let watch_paths = match watch_paths.as_slice() {
                [] => None,
                [only] if only.is_empty() => Some(Vec::new()),
                patterns => Some(patterns.to_vec()),
            };
            let body = UpdateHook {
                auto_deploy,
                watch_paths,
                cancel_running,
                wait_for_ci,
            };
            let view = client
                .patch::<HookView>(&format!("{}/hook", target.path()), &body)
                .await?;
            if global.json {
                return output::json(&view.json);
            }
            show(&view.body);
            Ok(())
        }
        HooksCommand::Secret { target } => {
            let made = client
                .post::<HookSecret>(&format!("{}/hook/secret", target.path()), &())
                .await?;
            if global.json {
                return output::json(&made.json);
            }
            let url = &made.body.receiver_url;
            println!("Receiver of {target} (the previous URL and secret no longer work):");
            println!("  Gitea:   {url}/gitea");
            println!("  Forgejo: {url}/forgejo");
            println!("  GitLab:  {url}/gitlab");
            println!("  other:   {url}/generic");
            println!("Secret (shown once): {}", made.body.secret);
            Ok(())
        }
        HooksCommand::Deliveries { target, limit } => {
            let path = format!("{}/hook/deliveries?limit={limit}", target.path());
            deliveries(&client, &path, global).await
        }
        HooksCommand::AppDeliveries { limit } => {
            let path = format!("/api/v1/github/deliveries?limit={limit}");
            deliveries(&client, &path, global).await
        }
    }
}

async fn deliveries(client: &Client, path: &str, global: &GlobalArgs) -> anyhow::Result<()> {
    let log = client.get::<Vec<Delivery>>(path).await?;
    if global.json {
        return output::json(&log.json);
    }
    output::table(
        [
            "RECEIVED",
            "SOURCE",
            "EVENT",
            "DELIVERY",
            "SIGNATURE",
            "OUTCOME",
            "REF",
            "COMMIT",
            "REASON",
        ],
        log.body.iter().map(|d| {
            [
                output::time(d.received_at),
                d.source.to_string(),
                d.event.clone(),
                output::or_dash(d.delivery_id.as_ref()),
                d.signature.as_str().to_owned(),
                d.outcome.to_string(),
                output::or_dash(d.git_ref.as_ref()),
                output::short_sha(d.commit.as_deref()),
                d.reason.clone(),
            ]
        }),
    );
    Ok(())
}
