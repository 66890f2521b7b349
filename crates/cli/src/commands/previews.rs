//! `helvetia previews …`: a service's previews — one per pull request (with previews enabled),
//! or of any branch on request — their approval when they come from a fork, their removal, and
//! the service's preview settings.

use clap::Subcommand;
use helvetia_api_types::{
    ApprovePreview, DeployPreview, PreviewDeployed, PreviewSettings, PreviewSettingsInput,
    PreviewView,
};
use helvetia_core::name::ServiceName;

use crate::GlobalArgs;
use crate::client::Client;
use crate::output;
use crate::target::ServiceTarget;

use super::deployments::watch_change;

#[derive(Debug, Subcommand)]
pub enum PreviewsCommand {
    /// The service's previews: what each previews, its commit, URL and state.
    List { target: ServiceTarget },
    /// Deploy a preview of a branch as it is now, and follow the deployment.
    Deploy {
        target: ServiceTarget,
        #[arg(long)]
        branch: String,
        /// The preview's name (its hostname's first label); default: from the branch.
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        detach: bool,
    },
    /// Approve a fork's pull-request head commit for its preview (`pr-<number>`), and follow
    /// its deployment.
    Approve {
        target: ServiceTarget,
        preview: String,
        /// The head commit you looked at: refused if the pull request has moved on since.
        #[arg(long)]
        commit: Option<String>,
        #[arg(long)]
        detach: bool,
    },
    /// Remove a preview with its containers, images, volumes and route.
    Remove {
        target: ServiceTarget,
        preview: String,
    },
    /// Show or change the service's preview settings (flags left out keep their value).
    Settings {
        target: ServiceTarget,
        /// Pull requests get previews (`true`/`false`).
        #[arg(long)]
        enabled: Option<bool>,
        /// Previews get the service's secret variables too.
        #[arg(long)]
        secrets: Option<bool>,
        /// Previews run the service's release command.
        #[arg(long)]
        release_command: Option<bool>,
        /// Previews get (their own, empty) volumes at the service's mount paths.
        #[arg(long)]
        volumes: Option<bool>,
        /// At most this many previews; the oldest goes first.
        #[arg(long)]
        max: Option<u32>,
        /// Stop a preview not deployed or started for this many minutes (0: never).
        #[arg(long)]
        idle_minutes: Option<u32>,
        /// The pull-request label that approves a fork's head commit.
        #[arg(long)]
        approve_label: Option<String>,
    },
}

pub async fn run(command: PreviewsCommand, global: &GlobalArgs) -> anyhow::Result<()> {
    let client = Client::from_args(global)?;
    match command {
        PreviewsCommand::List { target } => {
            let previews = client
                .get::<Vec<PreviewView>>(&format!("{}/previews", target.path()))
                .await?;
            if global.json {
                return output::json(&previews.json);
            }
            output::table(
                ["NAME", "PULL REQUEST", "BRANCH", "COMMIT", "STATE", "URL"],
                previews.body.iter().map(|preview| {
                    [
                        preview.name.clone(),
                        output::or_dash(preview.pull_request.map(|n| format!("#{n}"))),
                        preview.branch.clone(),
                        output::short_sha(
                            preview.head_commit.as_deref().or(preview
                                .latest_deployment
                                .as_ref()
                                .and_then(|d| d.commit_sha.as_deref())),
                        ),
                        state(preview),
                        preview.url.clone(),
                    ]
                }),
            );
            Ok(())
        }
        PreviewsCommand::Deploy {
            target,
            branch,
            name,
            detach,
        } => {
            let path = format!("{}/previews", target.path());
            let body = DeployPreview { branch, name };
            let deployed = client.post::<PreviewDeployed>(&path, &body).await?;
            follow(&client, &target, deployed, detach, global).await
        }
        PreviewsCommand::Approve {
            target,
            preview,
            commit,
            detach,
        } => {
            let path = format!("{}/previews/{preview}/approve", target.path());
            let body = ApprovePreview { commit };
            let deployed = client.post::<PreviewDeployed>(&path, &body).await?;
            follow(&client, &target, deployed, detach, global).await
        }
        PreviewsCommand::Remove { target, preview } => {
            let path = format!("{}/previews/{preview}", target.path());
            client.delete::<()>(&path, None::<&()>).await?;
            if !global.json {
                println!("Preview {preview} of {target} is being removed.");
            }
            Ok(())
        }
        PreviewsCommand::Settings {
            target,
            enabled,
            secrets,
            release_command,
            volumes,
            max,
            idle_minutes,
            approve_label,
        } => {
            let path = format!("{}/preview-settings", target.path());
            let input = PreviewSettingsInput {
                enabled,
                secrets,
                release_command,
                volumes,
                max_previews: max,
                idle_minutes,
                approve_label,
            };
            let settings = if input == PreviewSettingsInput::default() {
                client.get::<PreviewSettings>(&path).await?
            } else {
                client.patch::<PreviewSettings>(&path, &input).await?
            };
            if global.json {
                return output::json(&settings.json);
            }
            let settings = settings.body;
            output::fields(&[
                ("pull-request previews", settings.enabled.to_string()),
                ("secrets", settings.secrets.to_string()),
                ("release command", settings.release_command.to_string()),
                ("volumes", settings.volumes.to_string()),
                ("at most", settings.max_previews.to_string()),
                (
                    "stopped when idle",
                    match settings.idle_minutes {
                        0 => "never".to_owned(),
                        minutes => format!("after {minutes} min"),
                    },
                ),
                ("approval label", settings.approve_label),
            ]);
            Ok(())
        }
    }
}

fn state(preview: &PreviewView) -> String {
    if preview.awaiting_approval {
        return "awaiting approval".into();
    }
    match (&preview.live_deployment, &preview.latest_deployment) {
        (_, Some(latest)) if latest.status.is_in_progress() => latest.status.to_string(),
        (Some(_), _) => "live".into(),
        (None, Some(latest)) => latest.status.to_string(),
        (None, None) => "-".into(),
    }
}

/// Follows the preview's deployment as `helvetia deploy` does.
async fn follow(
    client: &Client,
    target: &ServiceTarget,
    deployed: crate::client::Answer<PreviewDeployed>,
    detach: bool,
    global: &GlobalArgs,
) -> anyhow::Result<()> {
    let preview = ServiceTarget {
        project: target.project.clone(),
        service: ServiceName::parse(&deployed.body.preview.service)?,
    };
    if !global.json {
        println!(
            "Preview {} of {target}: {}",
            deployed.body.preview.name, deployed.body.preview.url
        );
    }
    let deployment = &deployed.body.deployment;
    watch_change(
        client,
        &preview,
        &deployed.json,
        Some(deployment),
        detach,
        global,
    )
    .await
}
