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
    /// Only actions starting with this (`deployment` for every `deployment.…`).
    #[arg(long)]
    action: Option<String>,
    /// Only entries whose actor contains this (an e-mail address, `token:12`).
    #[arg(long)]
    actor: Option<String>,
    /// Only entries whose target contains this (`demo/web`).
    #[arg(long)]
    target: Option<String>,
}

impl AuditArgs {
    /// The query string of the request.
    fn query(&self) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("limit", &self.limit.to_string());
        let filters = [
            ("action", &self.action),
            ("actor", &self.actor),
            ("target", &self.target),
        ];
        for (name, value) in filters {
            if let Some(value) = value {
                query.append_pair(name, value);
            }
        }
        query.finish()
    }
}

pub async fn run(args: AuditArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let client = Client::from_args(global)?;
    let entries = client
        .get::<Vec<AuditEntry>>(&format!("/api/v1/audit?{}", args.query()))
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
