//! `helvetia tokens …`.

use clap::Subcommand;
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
    },
    /// List tokens (never their values).
    List,
    /// Revoke a token at once.
    Revoke { id: i64 },
}

pub async fn run(command: TokensCommand, global: &GlobalArgs) -> anyhow::Result<()> {
    let client = Client::from_args(global)?;
    match command {
        TokensCommand::Create {
            name,
            scopes,
            expires_in_days,
        } => {
            let body =
                json!({ "name": name, "scopes": scopes, "expires_in_days": expires_in_days });
            let created = client.post("/api/v1/tokens", &body).await?;
            if global.json {
                return output::json(&created);
            }
            println!("{}", output::text(&created, "token"));
            eprintln!(
                "Token #{} created. It is shown only this once.",
                output::text(&created, "id")
            );
        }
        TokensCommand::List => {
            let tokens = client.get("/api/v1/tokens").await?;
            if global.json {
                return output::json(&tokens);
            }
            output::table(
                [
                    "ID",
                    "NAME",
                    "TOKEN",
                    "SCOPES",
                    "CREATED",
                    "LAST USED",
                    "STATUS",
                ],
                output::array(&tokens).iter().map(|t| {
                    let status = if t["revoked_at"].is_string() {
                        "revoked"
                    } else {
                        "active"
                    };
                    [
                        output::text(t, "id"),
                        output::text(t, "name"),
                        format!("{}…", output::text(t, "hint")),
                        output::array(&t["scopes"])
                            .iter()
                            .filter_map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(","),
                        output::time(t, "created_at"),
                        output::time(t, "last_used_at"),
                        status.to_owned(),
                    ]
                }),
            );
        }
        TokensCommand::Revoke { id } => {
            client.delete(&format!("/api/v1/tokens/{id}")).await?;
            if global.json {
                return output::json(&json!({ "revoked": id }));
            }
            println!("Revoked token #{id}.");
        }
    }
    Ok(())
}
