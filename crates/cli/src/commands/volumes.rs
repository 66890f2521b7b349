//! `helvetia volumes …`.

use clap::Subcommand;
use helvetia_api_types::{AddVolume, VolumeChange, VolumeView};

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
            let body = AddVolume {
                name: name.clone(),
                path: path.clone(),
            };
            let change = client
                .post::<VolumeChange>(&format!("{}/volumes", target.path()), &body)
                .await?;
            if !global.json {
                println!("Added volume {name} at {path} to {target}.");
            }
            let redeployment = change.body.redeployment.as_ref();
            deployments::watch_change(&client, &target, &change.json, redeployment, detach, global)
                .await
        }
        VolumesCommand::List { target } => {
            let volumes = client
                .get::<Vec<VolumeView>>(&format!("{}/volumes", target.path()))
                .await?;
            if global.json {
                return output::json(&volumes.json);
            }
            output::table(
                ["VOLUME", "PATH", "SIZE", "ENGINE NAME", "CREATED"],
                volumes.body.iter().map(|v| {
                    [
                        v.volume.name.clone(),
                        v.volume.path.clone(),
                        output::human_bytes(v.size_bytes),
                        v.volume.engine_name.clone(),
                        output::time(v.volume.created_at),
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
                .delete::<VolumeChange>(&format!("{}/volumes/{name}", target.path()), None::<&()>)
                .await?;
            if !global.json {
                println!(
                    "Removed volume {name} from {target}; its data is deleted once no container mounts it."
                );
            }
            let redeployment = change.body.redeployment.as_ref();
            deployments::watch_change(&client, &target, &change.json, redeployment, detach, global)
                .await
        }
    }
}
