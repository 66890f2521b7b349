//! `helvetia login` and `helvetia logout`.

use std::io::BufRead;

use anyhow::{Context, bail};
use clap::Args;
use helvetia_api_types::{Me, Scope};

use crate::GlobalArgs;
use crate::client::Client;
use crate::credentials::Credentials;
use crate::output;

/// Takes the global `--server` and `--token`; without `--token` the token is read from
/// standard input, which keeps it out of the shell history.
#[derive(Debug, Args)]
pub struct LoginArgs {}

pub async fn login(_args: LoginArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let server = global
        .server
        .clone()
        .context("which server? pass --server URL (e.g. http://127.0.0.1:7300)")?;
    let token = match global.token.clone() {
        Some(token) => token,
        None => {
            eprintln!("Paste the API token and press Enter:");
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim().to_owned()
        }
    };
    if token.is_empty() {
        bail!("no token given");
    }
    let client = Client::new(&server, &token)?;
    let me = client.get::<Me>("/api/v1/me").await?;
    let path = Credentials {
        server: client.server().to_owned(),
        token,
    }
    .save()?;
    if global.json {
        return output::json(&me.json);
    }
    let who = match (&me.body.user, &me.body.token_name) {
        (Some(user), _) => user.email.clone(),
        (None, Some(token)) => format!("token `{token}`"),
        (None, None) => "the system".to_owned(),
    };
    println!(
        "Logged in to {} as {} ({}). Saved to {}.",
        client.server(),
        who,
        me.body
            .scopes
            .iter()
            .map(|scope| Scope::as_str(*scope))
            .collect::<Vec<_>>()
            .join(", "),
        path.display()
    );
    Ok(())
}

pub fn logout() -> anyhow::Result<()> {
    if Credentials::remove()? {
        println!("Logged out.");
    } else {
        println!("Not logged in.");
    }
    Ok(())
}
