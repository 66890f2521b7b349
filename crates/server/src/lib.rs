//! Helvetia's control plane: the operations it offers ([`usecases`]), the HTTP API over them
//! ([`api`]), the job worker ([`worker`]) and the start-up sequence that wires them to the
//! store ([`run`]).
//!
//! The binary parses configuration into a [`ServerConfig`] and calls [`run`] with a bound
//! listener and a shutdown token, so tests can start a whole server on port 0.

pub mod api;
mod builds;
pub mod certificates;
mod config;
mod containers;
pub mod dashboard;
pub mod delivery_log;
pub mod disk;
pub mod failpoint;
pub mod github;
pub mod github_user;
pub mod limits;
pub mod logs;
pub mod metrics;
mod monitor;
pub mod notifications;
pub mod oidc;
pub mod passwords;
pub mod platform;
mod readiness;
mod reconcile;
pub mod sessions;
mod startup;
pub mod supervisor;
pub mod usecases;
pub mod vault;
pub mod worker;

pub use config::{
    BuilderConfig, EdgeConfig, RegistryAddress, RegistryConfig, SecretText, ServerConfig,
};
pub use helvetia_engine::acme::Directory as AcmeDirectory;
pub use helvetia_engine::outbound::ResolverSetting;
pub use startup::{
    ADMIN_TOKEN_FILE, Server, StartError, issue_admin_token, issue_reset_link, rotate_master_key,
    run,
};
