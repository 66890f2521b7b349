//! `helvetia audit`.

use clap::Args;
use helvetia_api_types::AuditEntry;

use crate::GlobalArgs;
use crate::client::Client;
use crate::output;

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// How many entries, newest first.
    #[arg(long, default_value_t = 50)]
    limit: i64,
}

pub async fn run(args: AuditArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let client = Client::from_args(global)?;
    let entries = client
        .get::<Vec<AuditEntry>>(&format!("/api/v1/audit?limit={}", args.limit))
        .await?;
    if global.json {
        return output::json(&entries.json);
    }
    output::table(
        ["TIME", "ACTOR", "ACTION", "TARGET"],
        entries.body.iter().map(|e| {
            [
                output::time(e.at),
                e.actor.clone(),
                e.action.clone(),
                e.target.clone(),
            ]
        }),
    );
    Ok(())
}
