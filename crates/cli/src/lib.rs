//! Helvetia's command-line client.
//!
//! Every command talks to a server over its HTTP API ([`client`]); nothing here touches the
//! database or the engine. One module per command group under [`commands`]; [`output`] renders
//! tables for people and passes the API's JSON through for scripts (`--json`).

use clap::Args;

pub mod client;
mod commands;
mod credentials;
mod output;
pub mod sse;
mod target;

pub use commands::Command;

/// Options every client command accepts.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Print the API's JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// Server URL; overrides the one saved by `helvetia login`.
    #[arg(long, global = true, env = "HELVETIA_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// API token; overrides the one saved by `helvetia login`.
    #[arg(
        long,
        global = true,
        env = "HELVETIA_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
}

/// Runs one client command.
pub async fn run(command: Command, global: GlobalArgs) -> anyhow::Result<()> {
    commands::run(command, &global).await
}
