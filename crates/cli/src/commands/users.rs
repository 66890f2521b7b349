//! `helvetia users …`: accounts, for instance administrators.

use std::io::BufRead;

use anyhow::Context;
use clap::Subcommand;
use helvetia_api_types::{CreateUser, CreatedUser, OneTimeLink, UserView};
use serde_json::json;

use crate::GlobalArgs;
use crate::client::Client;
use crate::output;

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user (with a personal team). Prints a single-use link where they set their
    /// password, unless --password-stdin gives one.
    Create {
        email: String,
        #[arg(long)]
        name: Option<String>,
        /// Make them an instance administrator. The first user (the owner, made with the
        /// token printed at first start) always is one and inherits everything made before.
        #[arg(long)]
        owner: bool,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List every user.
    List,
    /// Print a single-use password reset link (valid 24 hours) for a user.
    ResetLink { email: String },
    /// Disable a user: their tokens and sessions stop working at once.
    Disable { email: String },
}

/// A link the server answered, made absolute.
pub fn link_url(client: &Client, link: &OneTimeLink) -> String {
    format!("{}{}", client.server().trim_end_matches('/'), link.path)
}

pub async fn run(command: UsersCommand, global: &GlobalArgs) -> anyhow::Result<()> {
    let client = Client::from_args(global)?;
    match command {
        UsersCommand::Create {
            email,
            name,
            owner,
            password_stdin,
        } => {
            let password = if password_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .context("cannot read the password from standard input")?;
                Some(line.trim_end_matches(['\r', '\n']).to_owned())
            } else {
                None
            };
            let body = CreateUser {
                email,
                name,
                password,
                instance_admin: Some(owner),
            };
            let created = client.post::<CreatedUser>("/api/v1/users", &body).await?;
            if global.json {
                return output::json(&created.json);
            }
            let user = &created.body.user;
            println!("Created user #{} {}.", user.id, user.email);
            if let Some(link) = &created.body.password_link {
                println!(
                    "They set their password at (single use, until {}):",
                    output::time(link.expires_at)
                );
                println!("  {}", link_url(&client, link));
            }
        }
        UsersCommand::List => {
            let users = client.get::<Vec<UserView>>("/api/v1/users").await?;
            if global.json {
                return output::json(&users.json);
            }
            output::table(
                ["ID", "EMAIL", "NAME", "ADMIN", "PASSWORD", "TOTP", "STATUS"],
                users.body.iter().map(|u| {
                    let yes = |b: bool| if b { "yes" } else { "no" }.to_owned();
                    let status = if u.disabled { "disabled" } else { "active" };
                    [
                        u.id.to_string(),
                        u.email.clone(),
                        u.name.clone(),
                        yes(u.instance_admin),
                        yes(u.has_password),
                        yes(u.totp_enabled),
                        status.to_owned(),
                    ]
                }),
            );
        }
        UsersCommand::ResetLink { email } => {
            let link = client
                .post::<OneTimeLink>(&format!("/api/v1/users/{email}/reset-link"), &json!({}))
                .await?;
            if global.json {
                return output::json(&link.json);
            }
            println!("{}", link_url(&client, &link.body));
            eprintln!(
                "Single use, valid until {}. Give it to {email} only.",
                output::time(link.body.expires_at)
            );
        }
        UsersCommand::Disable { email } => {
            client
                .post::<()>(&format!("/api/v1/users/{email}/disable"), &json!({}))
                .await?;
            if global.json {
                return output::json(&json!({ "disabled": email }));
            }
            println!("Disabled {email}.");
        }
    }
    Ok(())
}
