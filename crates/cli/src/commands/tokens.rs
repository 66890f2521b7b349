//! `helvetia tokens …`.

use clap::Subcommand;
use helvetia_api_types::{ApiToken, CreateToken, CreatedToken};
use serde_json::json;

use crate::GlobalArgs;
use crate::client::Client;
use crate::output;

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create a token. It is printed once.
    Create {
        name: String,
        /// A scope to grant: read, deploy, write, secrets:reveal or admin. Repeatable.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// Expire after this many days.
        #[arg(long)]
        expires_in_days: Option<i64>,
        /// Limit the token to this team (default: every team you are in).
        #[arg(long)]
        team: Option<String>,
    },
    /// List tokens (never their values): yours, or with --team those that can act in a team
    /// you administer.
    List {
        #[arg(long)]
        team: Option<String>,
    },
    /// Revoke a token at once.
    Revoke {
        id: i64,
        /// Revoke your own token even when it is the last admin token (locks everyone out
        /// until `helvetia server admin-token` is run on the server).
        #[arg(long)]
        force: bool,
    },
}

pub async fn run(command: TokensCommand, global: &GlobalArgs) -> anyhow::Result<()> {
    let client = Client::from_args(global)?;
    match command {
        TokensCommand::Create {
            name,
            scopes,
            expires_in_days,
            team,
        } => {
            let body = CreateToken {
                name,
                scopes,
                expires_in_days,
                team,
            };
            let created = client.post::<CreatedToken>("/api/v1/tokens", &body).await?;
            if global.json {
                return output::json(&created.json);
            }
            println!("{}", created.body.token);
            eprintln!(
                "Token #{} created. It is shown only this once.",
                created.body.info.id
            );
        }
        TokensCommand::List { team } => {
            let path = match team {
                Some(team) => format!("/api/v1/tokens?team={team}"),
                None => "/api/v1/tokens".to_owned(),
            };
            let tokens = client.get::<Vec<ApiToken>>(&path).await?;
            if global.json {
                return output::json(&tokens.json);
            }
            output::table(
                [
                    "ID",
                    "NAME",
                    "OWNER",
                    "TEAM",
                    "TOKEN",
                    "SCOPES",
                    "CREATED",
                    "LAST USED",
                    "STATUS",
                ],
                tokens.body.iter().map(|t| {
                    let status = if t.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "active"
                    };
                    [
                        t.id.to_string(),
                        t.name.clone(),
                        t.owner.clone().unwrap_or_else(|| "(server)".into()),
                        t.team.clone().unwrap_or_else(|| "(all)".into()),
                        format!("{}…", t.hint),
                        t.scopes.to_list(),
                        output::time(t.created_at),
                        output::maybe_time(t.last_used_at),
                        status.to_owned(),
                    ]
                }),
            );
        }
        TokensCommand::Revoke { id, force } => {
            let path = if force {
                format!("/api/v1/tokens/{id}?force=true")
            } else {
                format!("/api/v1/tokens/{id}")
            };
            client.delete::<()>(&path, None::<&()>).await?;
            if global.json {
                return output::json(&json!({ "revoked": id }));
            }
            println!("Revoked token #{id}.");
        }
    }
    Ok(())
}
