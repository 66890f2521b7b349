//! The log of one deployment, written as it happens.
//!
//! Producers (the pipeline, the build's progress callback) hand lines to [`DeployLog::line`],
//! which never blocks; a background task numbers them and stores them in batches, so a build
//! printing thousands of lines a second costs a few inserts, not thousands.

use helvetia_core::Timestamp;
use helvetia_store::Store;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Lines stored per batch at most; a batch is also written as soon as no more lines are
/// immediately waiting.
const BATCH: usize = 500;

pub struct DeployLog {
    sender: mpsc::UnboundedSender<(Timestamp, String)>,
    writer: JoinHandle<()>,
}

impl DeployLog {
    /// Starts appending after the last line already stored for `deployment_id`.
    pub async fn open(store: Store, deployment_id: i64) -> DeployLog {
        let next = match store.last_log_seq(deployment_id).await {
            Ok(last) => last + 1,
            Err(error) => {
                tracing::error!(deployment = deployment_id, %error, "reading the log position failed");
                1
            }
        };
        let (sender, receiver) = mpsc::unbounded_channel();
        let writer = tokio::spawn(write_batches(store, deployment_id, next, receiver));
        DeployLog { sender, writer }
    }

    /// Appends `text`, one stored line per line of text.
    pub fn line(&self, text: impl AsRef<str>) {
        let now = Timestamp::now();
        for line in text.as_ref().lines() {
            // The writer only stops after `finish`, so a failed send cannot lose a line.
            let _ = self.sender.send((now, line.to_owned()));
        }
    }

    /// Waits until every line is stored.
    pub async fn finish(self) {
        drop(self.sender);
        if let Err(error) = self.writer.await {
            tracing::error!(%error, "the deployment log writer panicked");
        }
    }
}

async fn write_batches(
    store: Store,
    deployment_id: i64,
    mut next: i64,
    mut receiver: mpsc::UnboundedReceiver<(Timestamp, String)>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while receiver.recv_many(&mut batch, BATCH).await > 0 {
        match store.append_logs(deployment_id, next, &batch).await {
            Ok(()) => next += batch.len() as i64,
            Err(error) => {
                tracing::error!(deployment = deployment_id, %error, lines = batch.len(), "storing log lines failed");
            }
        }
        batch.clear();
    }
}
