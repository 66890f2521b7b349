//! `helvetia server`: start the control plane and run it until SIGTERM or Ctrl-C.

use anyhow::Context;
use clap::ArgMatches;
use helvetia_server::{ADMIN_TOKEN_FILE, Server};
use tokio_util::sync::CancellationToken;

use crate::logging;
use crate::server_config::ServerArgs;

pub async fn run(args: ServerArgs, matches: &ArgMatches) -> anyhow::Result<()> {
    let args = args.apply_file(matches)?;
    logging::init_for_server(args.log_format);
    let listen = args.listen;
    let config = args.into_config()?;
    tracing::info!(?config, "starting");
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let data_dir = config.data_dir.clone();
    let server = Server::start(config, listener).await?;
    let address = server.local_addr()?;
    announce(
        &address.to_string(),
        server.first_admin_token.as_deref(),
        &data_dir,
    );
    if let Some(link) = &server.owner_signup {
        println!("  First owner: sign up (single use, valid 24 hours; a new link at each start");
        println!("          until someone does) at {link}");
        println!("          or: helvetia users create --owner <email>");
    }

    let shutdown = CancellationToken::new();
    tokio::spawn(forward_signals(shutdown.clone()));
    server.serve(shutdown).await?;
    tracing::info!("stopped");
    Ok(())
}

/// `helvetia server rotate-key`.
pub async fn rotate_key(args: ServerArgs, matches: &ArgMatches) -> anyhow::Result<()> {
    let args = args.apply_file(matches)?;
    logging::init_for_server(args.log_format);
    let config = args.into_config()?;
    match helvetia_server::rotate_master_key(&config).await? {
        Some(key) => {
            println!(
                "Every secret is now sealed with a new master key. Set it before the next start:"
            );
            println!("  HELVETIA_MASTER_KEY={key}");
        }
        None => println!(
            "Every secret is now sealed with a new master key, saved in {}.",
            config
                .data_dir
                .join(helvetia_server::vault::KEY_FILE)
                .display()
        ),
    }
    Ok(())
}

/// `helvetia server admin-token`: the token alone on stdout, so a script can capture it. With
/// `--reset-link`, a password reset link for that user instead (a path: the server's URL goes
/// before it).
pub async fn admin_token(
    args: ServerArgs,
    matches: &ArgMatches,
    reset_link: Option<&str>,
) -> anyhow::Result<()> {
    let args = args.apply_file(matches)?;
    logging::init_for_server(args.log_format);
    let config = args.into_config()?;
    if let Some(email) = reset_link {
        let link = helvetia_server::issue_reset_link(&config, email).await?;
        eprintln!(
            "A password reset link for {email} (single use, valid 24 hours; recorded in the audit log):"
        );
        println!("{link}");
        return Ok(());
    }
    let token = helvetia_server::issue_admin_token(&config).await?;
    eprintln!("A new admin token (shown once; recorded in the audit log):");
    println!("{token}");
    Ok(())
}

/// What a person starting the server needs: where it is and how to log in.
fn announce(address: &str, first_token: Option<&str>, data_dir: &std::path::Path) {
    let url = format!("http://{address}");
    let token_file = data_dir.join(ADMIN_TOKEN_FILE);
    println!("Helvetia {} is running.", env!("CARGO_PKG_VERSION"));
    println!(
        "  Dashboard: {url}/   (sign in with your account, or paste the admin token under \"Sign in with an API token\")"
    );
    println!("  API:    {url}/api/v1   (OpenAPI: {url}/api/v1/openapi.json)");
    match first_token {
        Some(token) => {
            println!(
                "  Admin token (shown once; also saved to {}):",
                token_file.display()
            );
            println!("          {token}");
            println!("  Log in: helvetia login --server {url} --token {token}");
        }
        None => {
            println!(
                "  Admin token: created on first start, saved in {}",
                token_file.display()
            );
            println!(
                "  Log in: helvetia login --server {url} --token \"$(cat {})\"",
                token_file.display()
            );
        }
    }
}

/// Cancels `shutdown` on the first SIGTERM or Ctrl-C.
async fn forward_signals(shutdown: CancellationToken) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C: shutting down"),
        () = terminate => tracing::info!("SIGTERM: shutting down"),
    }
    shutdown.cancel();
}
