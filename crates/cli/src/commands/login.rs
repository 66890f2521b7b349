//! `helvetia login`, `logout` and `whoami`.
//!
//! Without `--token`, `login` runs the OAuth 2.0 device authorization grant (RFC 8628) against
//! the server: it prints a URL and a code, the user approves in a signed-in browser, and the
//! CLI receives a personal API token of theirs. `--token TOKEN` (or `--token -`, read from
//! standard input, which keeps it out of the shell history) saves a token made elsewhere.

use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use helvetia_api_types::{
    DEVICE_CODE_GRANT, DeviceLogin, DeviceToken, DeviceTokenError, Me, PollDeviceLogin, Scope,
    StartDeviceLogin,
};
use reqwest::{Method, StatusCode};

use crate::GlobalArgs;
use crate::client::Client;
use crate::credentials::Credentials;
use crate::output;

/// Takes the global `--server` and `--token`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The name of the token a browser login makes (`CLI: <name>`). Default: `helvetia on
    /// <host name>`.
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
}

pub async fn login(args: LoginArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let server = global
        .server
        .clone()
        .or_else(|| Credentials::load().ok().flatten().map(|saved| saved.server))
        .context("which server? pass --server URL (e.g. http://127.0.0.1:7300)")?;
    let token = match global.token.as_deref() {
        Some("-") => {
            eprintln!("Paste the API token and press Enter:");
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim().to_owned()
        }
        Some(token) => token.to_owned(),
        None => through_the_browser(&server, args.name).await?,
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
        scope_list(&me.body.scopes),
        path.display()
    );
    Ok(())
}

fn scope_list(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|scope| scope.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The device flow: a token once the user approved this login in their browser.
async fn through_the_browser(server: &str, name: Option<String>) -> anyhow::Result<String> {
    let client = Client::anonymous(server)?;
    let client_name = name.unwrap_or_else(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|host| host.trim().chars().take(40).collect::<String>())
            .filter(|host| !host.is_empty())
            .unwrap_or_else(|| "this computer".to_owned());
        format!("helvetia on {host}")
    });
    let started = client
        .post::<DeviceLogin>("/api/v1/auth/device", &StartDeviceLogin { client_name })
        .await?
        .body;
    eprintln!(
        "To log in, open {} in a browser where you are signed in to Helvetia,\n\
         and approve the code {}\n(or open {}).",
        started.verification_uri, started.user_code, started.verification_uri_complete
    );
    eprint!("Waiting for approval");
    let deadline = Instant::now() + Duration::from_secs(started.expires_in.max(0).unsigned_abs());
    let mut interval = Duration::from_secs(started.interval.max(1).unsigned_abs());
    let poll = PollDeviceLogin {
        device_code: started.device_code,
        grant_type: Some(DEVICE_CODE_GRANT.to_owned()),
        client_id: None,
    };
    loop {
        if Instant::now() + interval > deadline {
            eprintln!();
            bail!("the code expired before it was approved: run `helvetia login` again");
        }
        tokio::time::sleep(interval).await;
        eprint!(".");
        std::io::stderr().flush().ok();
        let response = client
            .request(Method::POST, "/api/v1/auth/device/token")
            .json(&poll)
            .send()
            .await
            .with_context(|| format!("cannot reach the Helvetia server at {server}"))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .context("reading the server's answer")?;
        if status == StatusCode::OK {
            eprintln!(" approved.");
            let token: DeviceToken = serde_json::from_slice(&bytes)
                .context("the server's token answer does not parse")?;
            return Ok(token.access_token);
        }
        let Ok(refused) = serde_json::from_slice::<DeviceTokenError>(&bytes) else {
            eprintln!();
            bail!(crate::client::describe_error(status, &bytes));
        };
        match refused.error.as_str() {
            "authorization_pending" => {}
            // RFC 8628 §3.5: every later poll waits 5 s longer.
            "slow_down" => interval += Duration::from_secs(5),
            "access_denied" => {
                eprintln!();
                bail!("the login was denied in the browser");
            }
            "expired_token" => {
                eprintln!();
                bail!("the code expired before it was approved: run `helvetia login` again");
            }
            _ => {
                eprintln!();
                bail!(
                    "the server refused the login: {} ({})",
                    refused.error_description,
                    refused.error
                );
            }
        }
    }
}

/// Revokes the saved token on the server, then forgets it. A token that cannot be revoked (the
/// server is unreachable, or it is your last admin token) is forgotten here all the same, and
/// the error says so.
pub async fn logout() -> anyhow::Result<()> {
    let Some(saved) = Credentials::load()? else {
        println!("Not logged in.");
        return Ok(());
    };
    let revoked = revoke(&saved).await;
    Credentials::remove()?;
    match revoked {
        Ok(()) => {
            println!("Logged out of {}; the token is revoked.", saved.server);
            Ok(())
        }
        Err(error) => Err(error.context(format!(
            "forgot the saved token, but it still works on {}: revoke it there with \
             `helvetia tokens revoke`",
            saved.server
        ))),
    }
}

async fn revoke(saved: &Credentials) -> anyhow::Result<()> {
    let client = Client::new(&saved.server, &saved.token)?;
    let me = client.get::<Me>("/api/v1/me").await?.body;
    let id = me
        .token_id
        .context("the server does not say which token this is")?;
    client
        .delete::<serde_json::Value>(&format!("/api/v1/tokens/{id}"), None::<&()>)
        .await?;
    Ok(())
}

/// Who the saved (or given) credential belongs to, and what it may do.
pub async fn whoami(global: &GlobalArgs) -> anyhow::Result<()> {
    let client = Client::from_args(global)?;
    let me = client.get::<Me>("/api/v1/me").await?;
    if global.json {
        return output::json(&me.json);
    }
    let me = me.body;
    let user = match &me.user {
        Some(user) if user.instance_admin => {
            format!("{} ({}), instance administrator", user.email, user.name)
        }
        Some(user) => format!("{} ({})", user.email, user.name),
        None => "none: a server-administration token".to_owned(),
    };
    let token = match (me.token_id, &me.token_name) {
        (Some(id), Some(name)) => format!("{name} (#{id})"),
        _ => "a session".to_owned(),
    };
    let teams = me
        .teams
        .iter()
        .map(|team| {
            let personal = if team.personal { ", personal" } else { "" };
            format!("{} ({}{personal})", team.team, team.role.as_str())
        })
        .collect::<Vec<_>>()
        .join(", ");
    output::fields(&[
        ("Server", client.server().to_owned()),
        ("User", user),
        ("Token", token),
        ("Scopes", scope_list(&me.scopes)),
        (
            "Teams",
            output::or_dash((!teams.is_empty()).then_some(teams)),
        ),
    ]);
    Ok(())
}
