//! The webhook delivery log: every delivery received and what it did, kept 30 days — recorded
//! one by one or in batches, settled when a delivery that waited is decided, and searched for
//! an earlier copy of a delivery (a duplicate).

use helvetia_core::service::Service;
use helvetia_core::webhook::{Delivery, Outcome, Source, Verdict};
use jiff::Timestamp;

use crate::{Result, Store, StoreError, millis, now_millis, timestamp, with_pool};

/// A delivery to record: everything but its id.
#[derive(Debug, Clone, Default)]
pub struct NewDelivery {
    pub service_id: Option<i64>,
    pub source: Option<Source>,
    pub event: String,
    pub delivery_id: Option<String>,
    pub signature: Option<Verdict>,
    pub outcome: Option<Outcome>,
    pub reason: String,
    pub deployment_id: Option<i64>,
    pub git_ref: Option<String>,
    pub commit: Option<String>,
    pub pusher: Option<String>,
    pub message: Option<String>,
    pub compare_url: Option<String>,
}

/// A delivery's values as the table takes them.
struct DeliveryValues<'a> {
    delivery: &'a NewDelivery,
    source: Source,
    signature: Verdict,
    outcome: Outcome,
    received_at: i64,
}

impl<'a> DeliveryValues<'a> {
    fn of(delivery: &'a NewDelivery) -> Result<DeliveryValues<'a>> {
        let missing = |what: &str| StoreError::Corrupt(format!("a delivery without its {what}"));
        Ok(DeliveryValues {
            delivery,
            source: delivery.source.ok_or_else(|| missing("source"))?,
            signature: delivery
                .signature
                .ok_or_else(|| missing("signature verdict"))?,
            outcome: delivery.outcome.ok_or_else(|| missing("outcome"))?,
            received_at: now_millis(),
        })
    }
}

/// The columns a delivery is inserted with, in the order both inserts bind them.
macro_rules! delivery_columns {
    () => {
        "service_id, source, event, delivery_id, signature, outcome, reason, deployment_id,
         git_ref, commit_sha, pusher, message, compare_url, received_at"
    };
}

/// At 14 values a row, well under SQLite's limit on a statement's parameters.
const DELIVERIES_PER_INSERT: usize = 500;

/// The `INSERT` of `$rows` (`DeliveryValues`), a `QueryBuilder` written out where it is
/// used: it is built once per backend.
macro_rules! insert_deliveries {
    ($rows:expr) => {{
        let mut insert = sqlx::QueryBuilder::new(concat!(
            "INSERT INTO webhook_deliveries (",
            delivery_columns!(),
            ") "
        ));
        insert.push_values($rows, |mut values, row: &DeliveryValues| {
            let delivery = row.delivery;
            values
                .push_bind(delivery.service_id)
                .push_bind(row.source.as_str())
                .push_bind(&delivery.event)
                .push_bind(&delivery.delivery_id)
                .push_bind(row.signature.as_str())
                .push_bind(row.outcome.as_str())
                .push_bind(&delivery.reason)
                .push_bind(delivery.deployment_id)
                .push_bind(&delivery.git_ref)
                .push_bind(&delivery.commit)
                .push_bind(&delivery.pusher)
                .push_bind(&delivery.message)
                .push_bind(&delivery.compare_url)
                .push_bind(row.received_at);
        });
        insert
    }};
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: i64,
    source: String,
    event: String,
    delivery_id: Option<String>,
    signature: String,
    outcome: String,
    reason: String,
    deployment_id: Option<i64>,
    git_ref: Option<String>,
    commit_sha: Option<String>,
    pusher: Option<String>,
    message: Option<String>,
    compare_url: Option<String>,
    received_at: i64,
}

impl TryFrom<DeliveryRow> for Delivery {
    type Error = StoreError;
    fn try_from(row: DeliveryRow) -> Result<Delivery> {
        let corrupt = |what| move |e| StoreError::corrupt(what, e);
        Ok(Delivery {
            id: row.id,
            source: row.source.parse().map_err(corrupt("delivery source"))?,
            event: row.event,
            delivery_id: row.delivery_id,
            signature: row
                .signature
                .parse()
                .map_err(corrupt("signature verdict"))?,
            outcome: row.outcome.parse().map_err(corrupt("delivery outcome"))?,
            reason: row.reason,
            deployment_id: row.deployment_id,
            git_ref: row.git_ref,
            commit: row.commit_sha,
            pusher: row.pusher,
            message: row.message,
            compare_url: row.compare_url,
            received_at: timestamp(row.received_at)?,
        })
    }
}

/// `SELECT` of every delivery column, followed by `$where`.
macro_rules! select_deliveries {
    ($where:literal) => {
        concat!(
            "SELECT id, source, event, delivery_id, signature, outcome, reason, deployment_id,
                    git_ref, commit_sha, pusher, message, compare_url, received_at
             FROM webhook_deliveries WHERE ",
            $where
        )
    };
}

impl Store {
    /// Records a delivery; its id in the log.
    pub async fn record_delivery(&self, delivery: &NewDelivery) -> Result<i64> {
        let row = [DeliveryValues::of(delivery)?];
        Ok(with_pool!(self, |pool| {
            let mut insert = insert_deliveries!(&row);
            insert.push(" RETURNING id");
            insert.build_query_scalar().fetch_one(pool).await?
        }))
    }

    /// Records deliveries (one per service a delivery reached, of one or more deliveries),
    /// in one statement per 500.
    pub async fn record_deliveries(&self, deliveries: &[NewDelivery]) -> Result<()> {
        let rows = deliveries
            .iter()
            .map(DeliveryValues::of)
            .collect::<Result<Vec<_>>>()?;
        for chunk in rows.chunks(DELIVERIES_PER_INSERT) {
            with_pool!(self, |pool| {
                let mut insert = insert_deliveries!(chunk);
                insert.build().execute(pool).await?;
            });
        }
        Ok(())
    }

    /// Settles a `waiting` delivery: what it did in the end.
    pub async fn settle_delivery(
        &self,
        id: i64,
        outcome: Outcome,
        reason: &str,
        deployment_id: Option<i64>,
    ) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE webhook_deliveries SET outcome = $1, reason = $2, deployment_id = $3
                 WHERE id = $4",
            )
            .bind(outcome.as_str())
            .bind(reason)
            .bind(deployment_id)
            .bind(id)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The deployment an earlier delivery `delivery_id` from `source` requested for
    /// `service_id`, if one did (a redelivery of it is a duplicate; one of a delivery that
    /// was refused, failed or ignored is processed again).
    pub async fn delivery_acted(
        &self,
        service_id: i64,
        source: Source,
        delivery_id: &str,
    ) -> Result<Option<Delivery>> {
        let row: Option<DeliveryRow> = with_pool!(self, |pool| {
            sqlx::query_as(select_deliveries!(
                "service_id = $1 AND source = $2 AND delivery_id = $3 AND outcome = 'deployed'
                 ORDER BY id LIMIT 1"
            ))
            .bind(service_id)
            .bind(source.as_str())
            .bind(delivery_id)
            .fetch_optional(pool)
            .await?
        });
        row.map(Delivery::try_from).transpose()
    }

    /// `service`'s deliveries — with `None`, those that reached no service (the GitHub App's,
    /// refused or for a repository no service is linked to) — newest first: at most `limit`,
    /// older than `before` when given.
    pub async fn deliveries(
        &self,
        service: Option<&Service>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Delivery>> {
        let rows: Vec<DeliveryRow> = with_pool!(self, |pool| {
            sqlx::query_as(select_deliveries!(
                "(service_id = $1 OR ($1 IS NULL AND service_id IS NULL)) AND id < $2
                 ORDER BY id DESC LIMIT $3"
            ))
            .bind(service.map(|service| service.id))
            .bind(before.unwrap_or(i64::MAX))
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(Delivery::try_from).collect()
    }

    /// Settles deliveries still `waiting` since before `older_than` as `failed`: their diff
    /// was cut short (a restart), and a redelivery processes them again.
    pub async fn fail_stale_deliveries(&self, older_than: Timestamp) -> Result<u64> {
        Ok(with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE webhook_deliveries
                 SET outcome = 'failed',
                     reason = 'interrupted while finding the changed files: redeliver it'
                 WHERE outcome = 'waiting' AND checks_deadline IS NULL AND received_at < $1",
            )
            .bind(millis(older_than))
            .execute(pool)
            .await?
            .rows_affected()
        }))
    }

    /// Deletes deliveries received before `older_than`; how many.
    pub async fn prune_deliveries(&self, older_than: Timestamp) -> Result<u64> {
        Ok(with_pool!(self, |pool| {
            sqlx::query("DELETE FROM webhook_deliveries WHERE received_at < $1")
                .bind(millis(older_than))
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }
}
