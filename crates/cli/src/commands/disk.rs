//! `helvetia disk`: the disk budget and what Helvetia's images, registry and build cache take
//! (instance administrators); `helvetia disk sweep` sweeps now.

use clap::Subcommand;
use helvetia_api_types::{DiskBytes, DiskView};

use crate::GlobalArgs;
use crate::client::Client;
use crate::output::{self, human_bytes};

#[derive(Debug, Subcommand)]
pub enum DiskCommand {
    /// The budget, and what the last sweep left and freed.
    Show,
    /// Remove what no deployment needs and, over the budget, the least recently used build
    /// cache, now.
    Sweep,
}

pub async fn run(command: DiskCommand, global: &GlobalArgs) -> anyhow::Result<()> {
    let client = Client::from_args(global)?;
    let answer = match command {
        DiskCommand::Show => client.get::<DiskView>("/api/v1/disk").await?,
        DiskCommand::Sweep => {
            client
                .post::<DiskView>("/api/v1/disk/sweep", &serde_json::json!({}))
                .await?
        }
    };
    if global.json {
        return output::json(&answer.json);
    }
    let view = answer.body;
    println!("Budget: {}", human_bytes(view.budget_bytes));
    let (Some(used), Some(freed), Some(at)) = (view.used, view.freed, view.swept_at) else {
        println!("Not swept yet.");
        return Ok(());
    };
    println!("Last sweep: {at}");
    let row = |kind: &str, pick: fn(&DiskBytes) -> u64| {
        [
            kind.to_owned(),
            human_bytes(pick(&used)),
            human_bytes(pick(&freed)),
        ]
    };
    output::table(
        ["KIND", "USED", "FREED"],
        [
            row("runtime images", |b| b.images),
            row("registry", |b| b.registry),
            row("builder images", |b| b.builder_images),
            row("build cache", |b| b.build_cache),
            row("total", |b| b.total),
        ],
    );
    if used.total > view.budget_bytes {
        println!(
            "Over the budget by {}: what is left is needed by live or rollback-able deployments.",
            human_bytes(used.total - view.budget_bytes)
        );
    }
    Ok(())
}
