//! The client commands, one module per group.

use clap::Subcommand;

use crate::GlobalArgs;

mod audit;
mod certificates;
mod deployments;
mod disk;
mod domains;
mod env;
mod hooks;
mod image_source;
mod login;
mod logs;
mod metrics;
mod notifications;
mod previews;
mod projects;
mod services;
mod settings;
mod teams;
mod tokens;
mod trusts;
mod users;
mod volumes;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Log in: approve a code in your browser (or pass `--token TOKEN`, `--token -` to read it
    /// from standard input); the server and token are saved for the following commands.
    Login(login::LoginArgs),
    /// Revoke the saved token on the server and forget it.
    Logout,
    /// Who you are logged in as: user, token, scopes, teams and roles.
    Whoami,
    /// Create, list and delete projects.
    #[command(subcommand)]
    Projects(projects::ProjectsCommand),
    /// Create, inspect, change and delete services.
    #[command(subcommand)]
    Services(Box<services::ServicesCommand>),
    /// Deploy a service and follow the deployment until it is live or failed.
    Deploy(deployments::DeployArgs),
    /// Roll a service back to an earlier deployment's image (no rebuild).
    Rollback(deployments::RollbackArgs),
    /// A service's deployment history (`deployments PROJECT/SERVICE`), or manage one deployment.
    Deployments(deployments::DeploymentsArgs),
    /// A service's custom domains: added, checked, routed, made primary, removed.
    #[command(subcommand)]
    Domains(domains::DomainsCommand),
    /// Every certificate of the installation and its state (instance administrators).
    #[command(subcommand)]
    Certificates(certificates::CertificatesCommand),
    /// Environment variables and secrets of a service or a project.
    #[command(subcommand)]
    Env(env::EnvCommand),
    /// The disk budget: what Helvetia's images, registry and build cache take (instance
    /// administrators).
    #[command(subcommand)]
    Disk(disk::DiskCommand),
    /// Deploys on push: a service's settings, its webhook receiver's secret, and what every
    /// delivery did.
    #[command(subcommand)]
    Hooks(hooks::HooksCommand),
    /// A service's previews: one per pull request, or of any branch; approvals for forks.
    #[command(subcommand)]
    Previews(previews::PreviewsCommand),
    /// Where a project hears about deploys (Slack, Discord, a signed webhook, e-mail), test
    /// messages and the log of every attempt.
    #[command(subcommand)]
    Notifications(Box<notifications::NotificationsCommand>),
    /// A service's runtime output, or a deployment's log; `-f` follows it.
    Logs(logs::LogsArgs),
    /// A service's CPU, memory, network and disk use now, with a sparkline of each.
    Metrics(metrics::MetricsArgs),
    /// Create, list and revoke API tokens.
    #[command(subcommand)]
    Tokens(tokens::TokensCommand),
    /// Read the audit log.
    Audit(audit::AuditArgs),
    /// A service's persistent volumes.
    #[command(subcommand)]
    Volumes(volumes::VolumesCommand),
    /// Which CI jobs may deploy a service with their OpenID Connect token (no stored secret).
    #[command(subcommand)]
    Trusts(trusts::TrustsCommand),
    /// User accounts (instance administrators).
    #[command(subcommand)]
    Users(users::UsersCommand),
    /// Teams, members, roles and invitations.
    #[command(subcommand)]
    Teams(teams::TeamsCommand),
}

pub async fn run(command: Command, global: &GlobalArgs) -> anyhow::Result<()> {
    match command {
        Command::Login(args) => login::login(args, global).await,
        Command::Logout => login::logout().await,
        Command::Whoami => login::whoami(global).await,
        Command::Projects(command) => projects::run(command, global).await,
        Command::Services(command) => services::run(*command, global).await,
        Command::Deploy(args) => deployments::deploy(args, global).await,
        Command::Rollback(args) => deployments::rollback(args, global).await,
        Command::Deployments(args) => deployments::run(args, global).await,
        Command::Domains(command) => domains::run(command, global).await,
        Command::Certificates(command) => certificates::run(command, global).await,
        Command::Disk(command) => disk::run(command, global).await,
        Command::Env(command) => env::run(command, global).await,
        Command::Hooks(command) => hooks::run(command, global).await,
        Command::Previews(command) => previews::run(command, global).await,
        Command::Notifications(command) => notifications::run(*command, global).await,
        Command::Logs(args) => logs::run(args, global).await,
        Command::Metrics(args) => metrics::run(args, global).await,
        Command::Tokens(command) => tokens::run(command, global).await,
        Command::Audit(args) => audit::run(args, global).await,
        Command::Volumes(command) => volumes::run(command, global).await,
        Command::Trusts(command) => trusts::run(command, global).await,
        Command::Users(command) => users::run(command, global).await,
        Command::Teams(command) => teams::run(command, global).await,
    }
}
