//! `helvetia volumes …`.

use clap::Subcommand;
use serde_json::{Value, json};

use crate::GlobalArgs;
use crate::client::Client;
use crate::output;
use crate::target::ServiceTarget;

use super::deployments;

#[derive(Debug, Subcommand)]
pub enum VolumesCommand {
    /// Add a volume, mounted at PATH in every container of the service. A live service is
    /// redeployed to mount it.
    Add {
        target: ServiceTarget,
        name: String,
        #[arg(long)]
        path: String,
        /// Return once the redeployment is queued instead of following it.
        #[arg(long)]
        detach: bool,
    },
    /// List a service's volumes with their sizes.
    List { target: ServiceTarget },
    /// Remove a volume and delete its data.
    Remove {
        target: ServiceTarget,
        name: String,
        /// Confirm that the volume's data is deleted.
        #[arg(long)]
        yes: bool,
        /// Return once the redeployment is queued instead of following it.
        #[arg(long)]
        detach: bool,
    },
}

pub async fn run(command: VolumesCommand, global: &GlobalArgs) -> anyhow::Result<()> {
    let client = Client::from_args(global)?;
    match command {
        VolumesCommand::Add {
            target,
            name,
            path,
            detach,
        } => {
            let change = client
                .post(
                    &format!("{}/volumes", target.path()),
                    &json!({ "name": name, "path": path }),
                )
                .await?;
            if !global.json {
                println!("Added volume {name} at {path} to {target}.");
            }
            follow(&client, &target, &change, detach, global).await
        }
        VolumesCommand::List { target } => {
            let volumes = client.get(&format!("{}/volumes", target.path())).await?;
            if global.json {
                return output::json(&volumes);
            }
            output::table(
                ["VOLUME", "PATH", "SIZE", "ENGINE NAME", "CREATED"],
                output::array(&volumes).iter().map(|v| {
                    [
                        output::text(v, "name"),
                        output::text(v, "path"),
                        output::human_bytes(v["size_bytes"].as_u64().unwrap_or(0)),
                        output::text(v, "engine_name"),
                        output::time(v, "created_at"),
                    ]
                }),
            );
            Ok(())
        }
        VolumesCommand::Remove {
            target,
            name,
            yes,
            detach,
        } => {
            if !yes {
                anyhow::bail!("removing volume {name} deletes its data; confirm with --yes");
            }
            let change = client
                .delete(&format!("{}/volumes/{name}", target.path()))
                .await?;
            if !global.json {
                println!(
                    "Removed volume {name} from {target}; its data is deleted once no container mounts it."
                );
            }
            follow(&client, &target, &change, detach, global).await
        }
    }
}

/// Follows the redeployment a volume change started, if any.
async fn follow(
    client: &Client,
    target: &ServiceTarget,
    change: &Value,
    detach: bool,
    global: &GlobalArgs,
) -> anyhow::Result<()> {
    let redeployment = &change["redeployment"];
    if redeployment.is_object() {
        return deployments::watch(client, target, redeployment, detach, global).await;
    }
    if global.json {
        return output::json(change);
    }
    Ok(())
}
