//! End-to-end tests: the real `helvetia` binary, a real Docker engine, a real Traefik, git
//! repositories served from the local disk.
//!
//! Each test starts its own server (own data dir, ports, Traefik, network pool) and its own
//! uniquely named project, so tests run in parallel without seeing each other. They need a
//! running Docker engine and `HELVETIA_TRAEFIK_BIN` (or `traefik` in PATH); the README's test
//! command provides both.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod architecture;
mod budget;
mod builder;
mod certificates;
mod cli;
mod dashboard;
mod deploy;
mod detect;
mod domains;
mod env;
mod faults;
mod github;
mod images;
mod isolation;
mod kills;
mod login;
mod logs;
mod metrics;
mod oidc;
mod openapi;
mod outages;
mod previews;
mod public_url;
mod push;
mod races;
mod recovery;
mod server;
mod shapes;
mod zero_downtime;

/// The binary under test.
pub const BINARY: &str = env!("CARGO_BIN_EXE_helvetia");
