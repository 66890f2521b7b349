//! Logs: deployment logs written as they happen and streamed live, and the runtime output of
//! a service's containers.
//!
//! A deployment's log is durable first: lines are stored (in batches) before they are
//! broadcast on the [`LogHub`], so a reader that falls behind the broadcast can always catch
//! up from the store without losing or repeating a line.

use std::collections::HashMap;
use std::sync::Mutex;

use helvetia_core::deployment::DeploymentStatus;
use helvetia_store::logs::LogLine;
use tokio::sync::broadcast;

mod deployment;
mod followers;
pub mod retention;
pub mod runtime;

pub use deployment::{DeployLog, LogLimits};
pub use followers::{Follower, Followers};

/// Events a live deployment log carries.
#[derive(Debug, Clone)]
pub enum LogEvent {
    /// A stored line.
    Line(LogLine),
    /// The deployment moved to this status.
    Status(DeploymentStatus),
    /// The log is complete; the deployment ended in this status.
    End(DeploymentStatus),
}

/// How many events a slow reader may fall behind before it must catch up from the store.
const CHANNEL_CAPACITY: usize = 4096;

struct Channel {
    sender: broadcast::Sender<LogEvent>,
    writing: bool,
}

/// The live side of deployment logs: one broadcast channel per deployment being followed or
/// written.
#[derive(Default)]
pub struct LogHub {
    channels: Mutex<HashMap<i64, Channel>>,
}

impl LogHub {
    fn channels(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Channel>> {
        self.channels.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Follows a deployment's log from now on, whether or not it is being written yet.
    pub fn subscribe(&self, deployment_id: i64) -> broadcast::Receiver<LogEvent> {
        let mut channels = self.channels();
        channels.retain(|_, c| c.writing || c.sender.receiver_count() > 0);
        channels
            .entry(deployment_id)
            .or_insert_with(|| Channel {
                sender: broadcast::channel(CHANNEL_CAPACITY).0,
                writing: false,
            })
            .sender
            .subscribe()
    }

    /// True while a job writes this deployment's log.
    pub fn is_writing(&self, deployment_id: i64) -> bool {
        self.channels()
            .get(&deployment_id)
            .is_some_and(|c| c.writing)
    }

    fn open(&self, deployment_id: i64) -> broadcast::Sender<LogEvent> {
        let mut channels = self.channels();
        let channel = channels.entry(deployment_id).or_insert_with(|| Channel {
            sender: broadcast::channel(CHANNEL_CAPACITY).0,
            writing: false,
        });
        channel.writing = true;
        channel.sender.clone()
    }

    fn close(&self, deployment_id: i64) {
        let mut channels = self.channels();
        if let Some(channel) = channels.get_mut(&deployment_id) {
            channel.writing = false;
        }
        channels.retain(|_, c| c.writing || c.sender.receiver_count() > 0);
    }
}
