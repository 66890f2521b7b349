//! Helvetia's adapters to the parts of the machine it drives: the Docker engine ([`docker`]),
//! git ([`git`]), GitHub's API ([`github`]), child processes ([`process`]), readiness probes
//! and connection draining ([`probe`]), the edge router ([`routing`], implemented by
//! [`traefik`]), certificates from an ACME CA ([`acme`]), and the one way to addresses users
//! choose ([`outbound`]).
//!
//! Each adapter converts its infrastructure errors at its edge into its own error type; nothing
//! here knows about the store or HTTP APIs of Helvetia itself.

pub mod acme;
pub mod builder;
pub mod checkout_files;
mod daemon;
pub mod docker;
pub mod git;
pub mod github;
mod loopback;
pub mod outbound;
pub mod probe;
pub mod process;
pub mod registry;
pub mod routing;
pub mod traefik;
mod write;
