//! Writing the webhook delivery log by group commit. Deliveries arrive in bursts and each
//! writes a row per service it reached; on SQLite, concurrent write transactions wait on each
//! other with the busy handler's sleeps (tens of milliseconds in the tail). Here writers queue
//! their rows and one at a time writes everything queued so far in one transaction: a writer
//! that finds its rows already written by another returns at once.

use std::sync::Mutex;

use helvetia_store::Store;
use helvetia_store::deliveries::NewDelivery;
use tokio::sync::oneshot;

/// What a writer waits on: whether its rows were committed (the error's text if not).
type Committed = oneshot::Sender<Result<(), String>>;

#[derive(Default)]
pub struct DeliveryLog {
    queued: Mutex<Vec<(Vec<NewDelivery>, Committed)>>,
    /// Held by the one writer at a time.
    writing: tokio::sync::Mutex<()>,
    /// Held from a duplicate check to the log row of the deployment it let through, so two
    /// copies of one delivery arriving together request one deployment.
    acting: tokio::sync::Mutex<()>,
}

impl DeliveryLog {
    /// Records `entries` (with whatever other writers queued meanwhile); returns once they are
    /// committed.
    pub async fn write(&self, store: &Store, entries: Vec<NewDelivery>) -> Result<(), String> {
        if entries.is_empty() {
            return Ok(());
        }
        let (committed, done) = oneshot::channel();
        self.lock().push((entries, committed));
        {
            let _writer = self.writing.lock().await;
            let batch = std::mem::take(&mut *self.lock());
            if !batch.is_empty() {
                let (rows, waiters): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
                let rows: Vec<NewDelivery> = rows.into_iter().flatten().collect();
                let result = store
                    .record_deliveries(&rows)
                    .await
                    .map_err(|error| error.to_string());
                for waiter in waiters {
                    // A waiter that is gone (its request was dropped) needs no answer.
                    let _ = waiter.send(result.clone());
                }
            }
        }
        done.await
            .unwrap_or_else(|_| Err("the delivery log's writer stopped".into()))
    }

    /// Held while a delivery checks that it is no duplicate and requests its deployment.
    pub async fn acting(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.acting.lock().await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Vec<NewDelivery>, Committed)>> {
        // The queue is only pushed to and taken whole: a panic cannot leave it half-changed.
        self.queued
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
