//! Container metrics: the collector's samples, their 1-minute and 1-hour averages, and what the
//! Prometheus exposition reads about deployments.
//!
//! All three resolutions live in one table, told apart by `resolution` (the bucket width in
//! seconds, 0 for raw samples), so one query serves a series at any of them. Each row counts
//! the raw samples it stands for, and coarser averages weigh rows by that count: an hour's
//! average is the average of its samples, not of its minutes.
//!
//! [`Store::roll_up_metrics`] averages whole buckets only, from a per-resolution watermark kept
//! in the same transaction as the averages, so it can run any number of times and never counts
//! a sample twice. Every function that depends on the time takes `now` from the caller, so
//! tests drive roll-up and retention with a controlled clock.

use std::time::Duration;

use helvetia_core::Timestamp;
use helvetia_core::container::ServiceEventKind;
use helvetia_core::deployment::DeploymentStatus;
use helvetia_core::metrics::{ContainerSample, Resolution, Retention, RollUp, SeriesPoint, Usage};

use crate::{Result, Store, StoreError, WritePool, millis, timestamp, with_pool};

/// A container the collector samples.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MetricTarget {
    pub container: String,
    pub engine_id: String,
    pub service_id: i64,
    pub deployment_id: i64,
    pub project: String,
    pub service: String,
}

/// One sample as the collector writes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NewSample<'a> {
    pub service_id: i64,
    pub deployment_id: i64,
    pub container: &'a str,
    pub usage: Usage,
    pub restarts: i64,
}

/// Which part of a service's metrics a series covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesQuery<'a> {
    pub service_id: i64,
    pub from: Timestamp,
    pub to: Timestamp,
    pub step: Duration,
    pub resolution: Resolution,
    /// Only this deployment's containers.
    pub deployment_id: Option<i64>,
    /// Only this container.
    pub container: Option<&'a str>,
}

/// A deployment that ended, for the duration histograms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedDeployment {
    pub status: DeploymentStatus,
    /// From the request to the end.
    pub total: Duration,
    /// Time spent in `building`, when the deployment built an image.
    pub build: Option<Duration>,
}

/// The usage columns, in the order [`UsageRow`] and the statements below use them.
macro_rules! usage_columns {
    () => {
        "cpu_percent, cpu_limit_percent, memory_bytes, memory_limit_bytes, net_rx_bytes_per_second,
         net_tx_bytes_per_second, block_read_bytes_per_second, block_write_bytes_per_second, pids"
    };
}

/// The weighted averages of the usage columns over a group of rows, named like the columns.
/// PostgreSQL sums integers as `numeric`, hence the casts back.
macro_rules! averaged_usage {
    () => {
        "SUM(cpu_percent * samples) / SUM(samples) AS cpu_percent,
         SUM(cpu_limit_percent * samples) / SUM(samples) AS cpu_limit_percent,
         CAST(SUM(memory_bytes * samples) / SUM(samples) AS BIGINT) AS memory_bytes,
         MAX(memory_limit_bytes) AS memory_limit_bytes,
         SUM(net_rx_bytes_per_second * samples) / SUM(samples) AS net_rx_bytes_per_second,
         SUM(net_tx_bytes_per_second * samples) / SUM(samples) AS net_tx_bytes_per_second,
         SUM(block_read_bytes_per_second * samples) / SUM(samples) AS block_read_bytes_per_second,
         SUM(block_write_bytes_per_second * samples) / SUM(samples) AS block_write_bytes_per_second,
         CAST(SUM(pids * samples) / SUM(samples) AS BIGINT) AS pids,
         MAX(restarts) AS restarts"
    };
}

#[derive(sqlx::FromRow)]
struct UsageRow {
    cpu_percent: f64,
    cpu_limit_percent: f64,
    memory_bytes: i64,
    memory_limit_bytes: i64,
    net_rx_bytes_per_second: f64,
    net_tx_bytes_per_second: f64,
    block_read_bytes_per_second: f64,
    block_write_bytes_per_second: f64,
    pids: i64,
}

impl From<UsageRow> for Usage {
    fn from(row: UsageRow) -> Usage {
        let unsigned = |value: i64| u64::try_from(value).unwrap_or(0);
        Usage {
            cpu_percent: row.cpu_percent,
            cpu_limit_percent: row.cpu_limit_percent,
            memory_bytes: unsigned(row.memory_bytes),
            memory_limit_bytes: unsigned(row.memory_limit_bytes),
            net_rx_bytes_per_second: row.net_rx_bytes_per_second,
            net_tx_bytes_per_second: row.net_tx_bytes_per_second,
            block_read_bytes_per_second: row.block_read_bytes_per_second,
            block_write_bytes_per_second: row.block_write_bytes_per_second,
            pids: unsigned(row.pids),
        }
    }
}

#[derive(sqlx::FromRow)]
struct SampleRow {
    container: String,
    deployment_id: i64,
    at: i64,
    #[sqlx(flatten)]
    usage: UsageRow,
    restarts: i64,
}

#[derive(sqlx::FromRow)]
struct PointRow {
    bucket: i64,
    containers: i64,
    #[sqlx(flatten)]
    usage: UsageRow,
    restarts: i64,
}

#[derive(sqlx::FromRow)]
struct FinishedRow {
    status: String,
    created_at: i64,
    finished_at: i64,
    build_started: Option<i64>,
    build_ended: Option<i64>,
}

/// Rows per `INSERT`: 15 bound parameters each, far below both backends' limits.
const ROWS_PER_INSERT: usize = 1000;

/// How long after a bucket ends its raw samples may still arrive (a tick's stats calls and the
/// insert happen after the time the samples carry).
const SETTLE: jiff::SignedDuration = jiff::SignedDuration::from_secs(60);

fn millis_of(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn saturating_u64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Store {
    /// The containers the collector samples: every active one the engine has created, with
    /// the names of its service and project.
    pub async fn metric_targets(&self) -> Result<Vec<MetricTarget>> {
        let rows: Vec<MetricTarget> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT c.name AS container, c.engine_id, c.service_id, c.deployment_id,
                        p.name AS project, s.name AS service
                 FROM containers c
                 JOIN services s ON s.id = c.service_id
                 JOIN projects p ON p.id = s.project_id
                 WHERE c.state IN ('starting', 'ready', 'serving', 'draining')
                   AND c.engine_id IS NOT NULL
                 ORDER BY c.id",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Stores one collection's raw samples, all taken at `at`, in as few statements as
    /// possible (one for up to 1000 containers).
    pub async fn insert_container_samples(
        &self,
        at: Timestamp,
        samples: &[NewSample<'_>],
    ) -> Result<()> {
        for chunk in samples.chunks(ROWS_PER_INSERT) {
            with_pool!(self, |pool| {
                let mut insert = sqlx::QueryBuilder::new(concat!(
                    "INSERT INTO container_metrics (resolution, at, container, service_id,
                                                    deployment_id, samples, ",
                    usage_columns!(),
                    ", restarts) "
                ));
                insert.push_values(chunk, |mut row, sample| {
                    let usage = &sample.usage;
                    row.push_bind(Resolution::Raw.seconds())
                        .push_bind(millis(at))
                        .push_bind(sample.container)
                        .push_bind(sample.service_id)
                        .push_bind(sample.deployment_id)
                        .push_bind(1_i64)
                        .push_bind(usage.cpu_percent)
                        .push_bind(usage.cpu_limit_percent)
                        .push_bind(saturating_u64(usage.memory_bytes))
                        .push_bind(saturating_u64(usage.memory_limit_bytes))
                        .push_bind(usage.net_rx_bytes_per_second)
                        .push_bind(usage.net_tx_bytes_per_second)
                        .push_bind(usage.block_read_bytes_per_second)
                        .push_bind(usage.block_write_bytes_per_second)
                        .push_bind(saturating_u64(usage.pids))
                        .push_bind(sample.restarts);
                });
                insert.build().execute(pool).await?;
            });
        }
        Ok(())
    }

    /// Averages every bucket of the minute and hour resolutions that is complete at `now`
    /// and not averaged yet. Returns the number of rows written.
    pub async fn roll_up_metrics(&self, now: Timestamp) -> Result<u64> {
        let settled = millis(now.checked_sub(SETTLE).unwrap_or(now));
        let mut written = 0;
        for RollUp {
            into: resolution,
            from: source,
        } in Resolution::ROLL_UPS
        {
            let width = resolution.seconds() * 1000;
            let until = settled.div_euclid(width) * width;
            written += with_pool!(self, |pool| {
                let mut tx = pool.begin_write().await?;
                let done: Option<i64> = sqlx::query_scalar(
                    "SELECT done_until FROM metric_rollups WHERE resolution = $1",
                )
                .bind(resolution.seconds())
                .fetch_optional(&mut *tx)
                .await?;
                let from = match done {
                    Some(done) => done,
                    None => {
                        let oldest: Option<i64> = sqlx::query_scalar(
                            "SELECT MIN(at) FROM container_metrics WHERE resolution = $1",
                        )
                        .bind(source.seconds())
                        .fetch_one(&mut *tx)
                        .await?;
                        oldest.map_or(until, |at| at.div_euclid(width) * width)
                    }
                };
                let mut written = 0;
                if from < until {
                    written = sqlx::query(concat!(
                        "INSERT INTO container_metrics (resolution, at, container, service_id,
                                                        deployment_id, samples, ",
                        usage_columns!(),
                        ", restarts)
                         SELECT $1, (at / $2) * $2 AS bucket, container, MIN(service_id),
                                MIN(deployment_id), SUM(samples), ",
                        averaged_usage!(),
                        " FROM container_metrics
                         WHERE resolution = $3 AND at >= $4 AND at < $5
                         GROUP BY bucket, container
                         ON CONFLICT (resolution, at, container) DO UPDATE SET
                             samples = excluded.samples,
                             cpu_percent = excluded.cpu_percent,
                             cpu_limit_percent = excluded.cpu_limit_percent,
                             memory_bytes = excluded.memory_bytes,
                             memory_limit_bytes = excluded.memory_limit_bytes,
                             net_rx_bytes_per_second = excluded.net_rx_bytes_per_second,
                             net_tx_bytes_per_second = excluded.net_tx_bytes_per_second,
                             block_read_bytes_per_second = excluded.block_read_bytes_per_second,
                             block_write_bytes_per_second = excluded.block_write_bytes_per_second,
                             pids = excluded.pids,
                             restarts = excluded.restarts"
                    ))
                    .bind(resolution.seconds())
                    .bind(width)
                    .bind(source.seconds())
                    .bind(from)
                    .bind(until)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                }
                if done != Some(until.max(from)) {
                    sqlx::query(
                        "INSERT INTO metric_rollups (resolution, done_until) VALUES ($1, $2)
                         ON CONFLICT (resolution) DO UPDATE SET done_until = excluded.done_until",
                    )
                    .bind(resolution.seconds())
                    .bind(until.max(from))
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                written
            });
        }
        Ok(written)
    }

    /// Deletes every row older than its resolution's retention at `now`. Returns how many.
    pub async fn prune_metrics(&self, now: Timestamp, retention: &Retention) -> Result<u64> {
        let mut deleted = 0;
        for resolution in Resolution::ALL {
            let before = millis(now) - millis_of(retention.of(resolution));
            deleted += with_pool!(self, |pool| {
                sqlx::query("DELETE FROM container_metrics WHERE resolution = $1 AND at < $2")
                    .bind(resolution.seconds())
                    .bind(before)
                    .execute(pool)
                    .await?
                    .rows_affected()
            });
        }
        Ok(deleted)
    }

    /// A service's usage from `query.from` to `query.to` in steps of `query.step`: per step,
    /// each container's average, added up over the containers. Steps without samples are
    /// left out.
    pub async fn service_metrics(&self, query: &SeriesQuery<'_>) -> Result<Vec<SeriesPoint>> {
        let rows: Vec<PointRow> = with_pool!(self, |pool| {
            sqlx::query_as(concat!(
                "SELECT bucket, COUNT(*) AS containers,
                        SUM(cpu_percent) AS cpu_percent,
                        AVG(cpu_limit_percent) AS cpu_limit_percent,
                        CAST(SUM(memory_bytes) AS BIGINT) AS memory_bytes,
                        CAST(SUM(memory_limit_bytes) AS BIGINT) AS memory_limit_bytes,
                        SUM(net_rx_bytes_per_second) AS net_rx_bytes_per_second,
                        SUM(net_tx_bytes_per_second) AS net_tx_bytes_per_second,
                        SUM(block_read_bytes_per_second) AS block_read_bytes_per_second,
                        SUM(block_write_bytes_per_second) AS block_write_bytes_per_second,
                        CAST(SUM(pids) AS BIGINT) AS pids,
                        CAST(SUM(restarts) AS BIGINT) AS restarts
                 FROM (
                     SELECT (at / $1) * $1 AS bucket, container, ",
                averaged_usage!(),
                " FROM container_metrics
                     WHERE service_id = $2 AND resolution = $3 AND at >= $4 AND at < $5
                       AND ($6 IS NULL OR deployment_id = $6)
                       AND ($7 IS NULL OR container = $7)
                     GROUP BY bucket, container
                 ) AS per_container
                 GROUP BY bucket
                 ORDER BY bucket"
            ))
            .bind(millis_of(query.step).max(1))
            .bind(query.service_id)
            .bind(query.resolution.seconds())
            .bind(millis(query.from))
            .bind(millis(query.to))
            .bind(query.deployment_id)
            .bind(query.container)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|row| {
                Ok(SeriesPoint {
                    at: timestamp(row.bucket)?,
                    containers: row.containers,
                    usage: row.usage.into(),
                    restarts: row.restarts,
                })
            })
            .collect()
    }

    /// A service's raw samples taken at or after `since`, oldest first.
    pub async fn service_samples_since(
        &self,
        service_id: i64,
        since: Timestamp,
    ) -> Result<Vec<ContainerSample>> {
        let rows: Vec<SampleRow> = with_pool!(self, |pool| {
            sqlx::query_as(concat!(
                "SELECT container, deployment_id, at, ",
                usage_columns!(),
                ", restarts FROM container_metrics
                 WHERE service_id = $1 AND resolution = $2 AND at >= $3
                 ORDER BY at, container"
            ))
            .bind(service_id)
            .bind(Resolution::Raw.seconds())
            .bind(millis(since))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|row| {
                Ok(ContainerSample {
                    container: row.container,
                    deployment_id: row.deployment_id,
                    at: timestamp(row.at)?,
                    usage: row.usage.into(),
                    restarts: row.restarts,
                })
            })
            .collect()
    }

    /// How many events of `kind` a service recorded at or after `since`.
    pub async fn count_service_events(
        &self,
        service_id: i64,
        kind: ServiceEventKind,
        since: Timestamp,
    ) -> Result<i64> {
        let count = with_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM service_events
                 WHERE service_id = $1 AND kind = $2 AND at >= $3",
            )
            .bind(service_id)
            .bind(kind.as_str())
            .bind(millis(since))
            .fetch_one(pool)
            .await?
        });
        Ok(count)
    }

    /// How many deployments there are in each status (statuses without any are left out).
    pub async fn deployment_status_counts(&self) -> Result<Vec<(DeploymentStatus, i64)>> {
        let rows: Vec<(String, i64)> = with_pool!(self, |pool| {
            sqlx::query_as("SELECT status, COUNT(*) FROM deployments GROUP BY status")
                .fetch_all(pool)
                .await?
        });
        rows.into_iter()
            .map(|(status, count)| {
                let status = status
                    .parse()
                    .map_err(|e| StoreError::corrupt("deployment status", e))?;
                Ok((status, count))
            })
            .collect()
    }

    /// Deployments that ended after `after` and at or before `until`, oldest first.
    pub async fn finished_deployments(
        &self,
        after: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<FinishedDeployment>> {
        let rows: Vec<FinishedRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT d.status, d.created_at, d.finished_at,
                        (SELECT MIN(t.at) FROM deployment_transitions t
                         WHERE t.deployment_id = d.id AND t.to_status = 'building') AS build_started,
                        (SELECT MIN(t.at) FROM deployment_transitions t
                         WHERE t.deployment_id = d.id AND t.from_status = 'building') AS build_ended
                 FROM deployments d
                 WHERE d.finished_at > $1 AND d.finished_at <= $2
                 ORDER BY d.finished_at",
            )
            .bind(millis(after))
            .bind(millis(until))
            .fetch_all(pool)
            .await?
        });
        let elapsed =
            |from: i64, to: i64| Duration::from_millis(u64::try_from(to - from).unwrap_or(0));
        rows.into_iter()
            .map(|row| {
                Ok(FinishedDeployment {
                    status: row
                        .status
                        .parse()
                        .map_err(|e| StoreError::corrupt("deployment status", e))?,
                    total: elapsed(row.created_at, row.finished_at),
                    build: row
                        .build_started
                        .zip(row.build_ended)
                        .map(|(start, end)| elapsed(start, end)),
                })
            })
            .collect()
    }
}
