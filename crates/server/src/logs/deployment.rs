//! The log of one deployment, written as it happens.
//!
//! Producers (the pipeline, the build's progress callback) hand lines to [`DeployLog::line`],
//! which never blocks; a background task redacts, numbers, stores them in batches, and then
//! broadcasts them. A build printing thousands of lines a second costs a few inserts, not
//! thousands. Past [`LogLimits::max_bytes`] a deployment's output is dropped behind one visible
//! marker; the pipeline's own lines (`==>` phases, `!!!` failures) are always kept.

use std::sync::{Arc, PoisonError, RwLock};

use helvetia_core::Timestamp;
use helvetia_core::deployment::DeploymentStatus;
use helvetia_core::redact::Redactor;
use helvetia_store::Store;
use helvetia_store::logs::LogLine;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use super::{LogEvent, LogHub};

/// Lines stored per batch at most; a batch is also written as soon as no more lines are
/// immediately waiting.
const BATCH: usize = 1000;

/// How much deployment log is kept, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct LogLimits {
    /// Output a deployment may store, in bytes.
    pub max_bytes: usize,
    /// Logs of deployments older than this may be deleted…
    pub retention: std::time::Duration,
    /// …except those of each service's this many most recent deployments.
    pub keep_deployments: i64,
    /// Clients that may follow one service's logs (runtime output and deployment logs) at
    /// once.
    pub max_followers: usize,
}

impl LogLimits {
    pub const DEFAULT_MAX_BYTES: usize = 16 * 1024 * 1024;
    pub const DEFAULT_RETENTION: std::time::Duration =
        std::time::Duration::from_secs(90 * 24 * 3600);
    pub const DEFAULT_KEEP_DEPLOYMENTS: i64 = 50;
    pub const DEFAULT_MAX_FOLLOWERS: usize = 100;
}

impl Default for LogLimits {
    fn default() -> Self {
        LogLimits {
            max_bytes: Self::DEFAULT_MAX_BYTES,
            retention: Self::DEFAULT_RETENTION,
            keep_deployments: Self::DEFAULT_KEEP_DEPLOYMENTS,
            max_followers: Self::DEFAULT_MAX_FOLLOWERS,
        }
    }
}

enum Entry {
    Line(Timestamp, String),
    Status(DeploymentStatus),
}

pub struct DeployLog {
    deployment_id: i64,
    sender: mpsc::UnboundedSender<Entry>,
    writer: JoinHandle<()>,
    /// Grows when a secret comes into being during the deployment (see [`DeployLog::also_redact`]).
    redactor: RwLock<Redactor>,
    hub: Arc<LogHub>,
    store: Store,
}

impl DeployLog {
    /// Starts appending after the last line already stored for `deployment_id`.
    pub async fn open(
        store: Store,
        hub: Arc<LogHub>,
        deployment_id: i64,
        redactor: Redactor,
        limits: LogLimits,
    ) -> DeployLog {
        let next = match store.last_log_seq(deployment_id).await {
            Ok(last) => last + 1,
            Err(error) => {
                tracing::error!(deployment = deployment_id, %error, "reading the log position failed");
                1
            }
        };
        let (sender, receiver) = mpsc::unbounded_channel();
        let broadcast = hub.open(deployment_id);
        let writer = tokio::spawn(write_batches(
            store.clone(),
            broadcast,
            deployment_id,
            next,
            limits,
            receiver,
        ));
        DeployLog {
            deployment_id,
            sender,
            writer,
            redactor: RwLock::new(redactor),
            hub,
            store,
        }
    }

    /// Appends `text`, one stored line per line of text, with secrets redacted.
    pub fn line(&self, text: impl AsRef<str>) {
        let now = Timestamp::now();
        for line in text.as_ref().lines() {
            // The writer only stops after `finish`, so a failed send cannot lose a line.
            let _ = self.sender.send(Entry::Line(now, self.redact(line)));
        }
    }

    /// Tells followers the deployment's new status, in order with the lines.
    pub fn status(&self, status: DeploymentStatus) {
        let _ = self.sender.send(Entry::Status(status));
    }

    /// The redactor of this deployment's secrets, for output that arrives in chunks: only a
    /// [`LineRedactor`](helvetia_core::redact::LineRedactor) built on it keeps a secret whole
    /// where it cuts an over-long line.
    pub fn redactor(&self) -> Redactor {
        self.redactor
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// `text` with this deployment's secrets redacted, for reasons stored elsewhere.
    pub fn redact(&self, text: &str) -> String {
        self.redactor
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .redact(text)
    }

    /// Redacts `secret` too from now on (a credential the deployment obtained after opening
    /// its log).
    pub fn also_redact(&self, secret: &str) {
        let mut redactor = self
            .redactor
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        *redactor = redactor.with(secret);
    }

    /// Waits until every line is stored, then tells followers the log is complete.
    pub async fn finish(self) {
        drop(self.sender);
        if let Err(error) = self.writer.await {
            tracing::error!(%error, "the deployment log writer panicked");
        }
        let status = match self.store.deployment_by_id(self.deployment_id).await {
            Ok(deployment) => deployment.status,
            Err(_) => DeploymentStatus::Failed,
        };
        let sender = self.hub.open(self.deployment_id);
        let _ = sender.send(LogEvent::End(status));
        self.hub.close(self.deployment_id);
    }
}

async fn write_batches(
    store: Store,
    broadcast: broadcast::Sender<LogEvent>,
    deployment_id: i64,
    mut next: i64,
    limits: LogLimits,
    mut receiver: mpsc::UnboundedReceiver<Entry>,
) {
    let mut stored_bytes = 0usize;
    let mut truncated = false;
    let mut entries = Vec::with_capacity(BATCH);
    while receiver.recv_many(&mut entries, BATCH).await > 0 {
        let mut lines = Vec::with_capacity(entries.len());
        let mut events = Vec::with_capacity(entries.len());
        for entry in entries.drain(..) {
            match entry {
                Entry::Status(status) => events.push(Err(status)),
                Entry::Line(at, line) => {
                    let essential = line.starts_with("==>") || line.starts_with("!!!");
                    if stored_bytes + line.len() > limits.max_bytes && !essential {
                        if !truncated {
                            truncated = true;
                            let marker = format!(
                                "[log truncated: this deployment's output passed {} MiB; further output is not kept]",
                                limits.max_bytes / (1024 * 1024)
                            );
                            events.push(Ok(lines.len()));
                            lines.push((at, marker));
                        }
                        continue;
                    }
                    stored_bytes += line.len();
                    events.push(Ok(lines.len()));
                    lines.push((at, line));
                }
            }
        }
        if let Err(error) = store.append_logs(deployment_id, next, &lines).await {
            tracing::error!(deployment = deployment_id, %error, lines = lines.len(), "storing log lines failed");
            continue;
        }
        for event in events {
            let event = match event {
                Ok(index) => {
                    let (at, line) = &lines[index];
                    LogEvent::Line(LogLine {
                        seq: next + index as i64,
                        at: *at,
                        line: line.clone(),
                    })
                }
                Err(status) => LogEvent::Status(status),
            };
            // No follower is not an error.
            let _ = broadcast.send(event);
        }
        next += lines.len() as i64;
    }
}
