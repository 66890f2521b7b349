//! Deliveries waiting for their commit's CI checks (a service that waits for CI): each has a
//! deadline; a `check_suite` or `status` event about its commit settles it, or the deadline
//! does. One event at a time takes a delivery (a conditional `UPDATE`), so two events about
//! the same commit deploy it once.

use helvetia_core::webhook::{Outcome, Source};
use jiff::Timestamp;

use crate::{Result, Store, StoreError, millis, with_pool};

/// A delivery waiting for the checks of its commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwaitingChecks {
    pub id: i64,
    pub source: Source,
    pub pusher: Option<String>,
}

#[derive(sqlx::FromRow)]
struct AwaitingRow {
    id: i64,
    source: String,
    pusher: Option<String>,
}

impl Store {
    /// Lets `waiting` delivery `id` wait for its commit's checks until `deadline`.
    pub async fn await_checks(&self, id: i64, deadline: Timestamp) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query("UPDATE webhook_deliveries SET checks_deadline = $1 WHERE id = $2")
                .bind(millis(deadline))
                .bind(id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// `service_id`'s deliveries waiting for the checks of commit `sha` at `now` (not past
    /// their deadline), oldest first.
    pub async fn awaiting_checks(
        &self,
        service_id: i64,
        sha: &str,
        now: Timestamp,
    ) -> Result<Vec<AwaitingChecks>> {
        let rows: Vec<AwaitingRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, source, pusher FROM webhook_deliveries
                 WHERE service_id = $1 AND commit_sha = $2 AND outcome = 'waiting'
                   AND checks_deadline >= $3
                 ORDER BY id",
            )
            .bind(service_id)
            .bind(sha)
            .bind(millis(now))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|row| {
                Ok(AwaitingChecks {
                    id: row.id,
                    source: row
                        .source
                        .parse()
                        .map_err(|e| StoreError::corrupt("delivery source", e))?,
                    pusher: row.pusher,
                })
            })
            .collect()
    }

    /// Says why delivery `id` still waits (what is still running), if it still does.
    pub async fn still_waiting(&self, id: i64, reason: &str) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE webhook_deliveries SET reason = $1 WHERE id = $2 AND outcome = 'waiting'",
            )
            .bind(reason)
            .bind(id)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Settles waiting delivery `id` as `outcome` if it is still waiting; whether it was (the
    /// one caller that gets `true` acts on it).
    pub async fn take_waiting(&self, id: i64, outcome: Outcome, reason: &str) -> Result<bool> {
        let taken = with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE webhook_deliveries SET outcome = $1, reason = $2, checks_deadline = NULL
                 WHERE id = $3 AND outcome = 'waiting'",
            )
            .bind(outcome.as_str())
            .bind(reason)
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(taken == 1)
    }

    /// Settles as `ignored` the deliveries whose checks had not passed by their deadline;
    /// how many.
    pub async fn expire_check_waits(&self, now: Timestamp) -> Result<u64> {
        Ok(with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE webhook_deliveries
                 SET outcome = 'ignored', checks_deadline = NULL,
                     reason = 'not deployed: its checks did not pass in time'
                 WHERE outcome = 'waiting' AND checks_deadline < $1",
            )
            .bind(millis(now))
            .execute(pool)
            .await?
            .rows_affected()
        }))
    }
}
