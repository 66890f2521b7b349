//! What changed, as it happens: the services whose deployments or events were just written.
//!
//! Live views (the dashboard's status and overview) follow this instead of asking the
//! database again and again. It is a hint, not a log: a receiver that falls behind is told it
//! lagged and re-reads what it shows; nothing is kept for a receiver that was not listening.
//! Only this process's writes are announced.

use tokio::sync::broadcast;

use crate::Store;

/// How many changes a slow receiver may fall behind before it is told it lagged.
const CAPACITY: usize = 256;

/// A service whose state (a deployment's status, its containers' health, its events) changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Changed {
    pub service_id: i64,
}

#[derive(Clone)]
pub(crate) struct Changes(broadcast::Sender<Changed>);

impl Default for Changes {
    fn default() -> Self {
        Changes(broadcast::channel(CAPACITY).0)
    }
}

impl Store {
    /// Follows changes from now on.
    pub fn subscribe_changes(&self) -> broadcast::Receiver<Changed> {
        self.changes.0.subscribe()
    }

    /// Announces a committed change of `service_id`'s state.
    pub(crate) fn changed(&self, service_id: i64) {
        // Nobody listening is not an error.
        let _ = self.changes.0.send(Changed { service_id });
    }
}
