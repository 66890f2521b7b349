//! The `helvetia` binary: `helvetia server` runs the control plane; every other subcommand is
//! the command-line client. This file only parses arguments and dispatches; see
//! `server_config.rs` for how server settings are assembled.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

mod acme_config;
mod builder_config;
mod config_file;
mod github_config;
mod logging;
mod server_cmd;
mod server_config;
mod settings_parsers;

#[derive(Parser)]
#[command(
    name = "helvetia",
    version,
    about = "Self-hosted platform-as-a-service: point it at a git repository, get a running, \
             health-checked web service.",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: TopCommand,
    #[command(flatten)]
    global: helvetia_cli::GlobalArgs,
}

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = false)]
struct ServerCommand {
    #[command(subcommand)]
    action: Option<ServerAction>,
    #[command(flatten)]
    args: server_config::ServerArgs,
}

#[derive(Subcommand)]
enum ServerAction {
    /// Re-encrypt every secret under a new master key (stop the server first).
    RotateKey,
    /// Issue a new admin token and print it (the way back in when none is left); audited.
    AdminToken {
        /// Instead, print a single-use password reset link (24 h) for the user with this
        /// address (an owner locked out); audited.
        #[arg(long, value_name = "EMAIL")]
        reset_link: Option<String>,
    },
}

#[derive(Subcommand)]
enum TopCommand {
    /// Run the Helvetia server: API, job worker, routing.
    Server(Box<ServerCommand>),
    #[command(flatten)]
    Client(helvetia_cli::Command),
}

fn main() -> ExitCode {
    // One TLS provider for every HTTPS client in the process (the CLI's and the server's).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        TopCommand::Server(command) => {
            let server_matches = matches
                .subcommand_matches("server")
                .cloned()
                .unwrap_or_default();
            let ServerCommand { action, args } = *command;
            match action {
                None => runtime.block_on(server_cmd::run(args, &server_matches)),
                Some(ServerAction::RotateKey) => {
                    runtime.block_on(server_cmd::rotate_key(args, &server_matches))
                }
                Some(ServerAction::AdminToken { reset_link }) => runtime.block_on(
                    server_cmd::admin_token(args, &server_matches, reset_link.as_deref()),
                ),
            }
        }
        TopCommand::Client(command) => {
            logging::init_for_client();
            runtime.block_on(helvetia_cli::run(command, cli.global))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn command_line_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
