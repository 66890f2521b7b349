//! The one interface the deploy pipeline uses to steer traffic: apply a whole routing table,
//! then confirm the edge router serves it. Traefik implements it today ([`crate::traefik`]); a
//! built-in Rust proxy can implement it later without the pipeline changing.

use std::time::Duration;

use futures::future::BoxFuture;
use helvetia_core::routing::RoutingTable;

#[derive(Debug, thiserror::Error)]
pub enum RoutingError {
    #[error("writing the routing configuration failed: {0}")]
    Write(String),
    #[error("the edge router did not load the new routes within {waited:?}: {detail}")]
    NotConfirmed { waited: Duration, detail: String },
    #[error("the edge router is not running: {0}")]
    Unavailable(String),
}

pub trait EdgeRouter: Send + Sync {
    /// Why the router cannot serve at all right now (its process is not running), when it
    /// knows; `None` otherwise.
    fn down(&self) -> Option<String>;

    /// Makes `table` the complete set of routes (atomically: the router sees the old table or
    /// the new one, never a mix).
    fn apply<'a>(&'a self, table: &'a RoutingTable) -> BoxFuture<'a, Result<(), RoutingError>>;

    /// Waits until the router serves exactly `table`'s routes, or `timeout` passes.
    fn confirm<'a>(
        &'a self,
        table: &'a RoutingTable,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<(), RoutingError>>;
}
