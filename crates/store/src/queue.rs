//! The durable job queue.
//!
//! Jobs are rows. A worker claims one by taking a lease (`lease_owner`, `lease_expires_at`) and
//! keeps it by heartbeating; a job whose lease ran out is claimable again, with its attempt
//! count raised so the worker can tell a fresh start from a rescue.
//!
//! The attempt count is also the claim's token: heartbeats and completions name the attempt
//! they belong to, so once a job is claimed again an earlier attempt loses it even when the
//! same worker (whose heartbeats failed for a whole lease) made both claims. The count only
//! ever grows, in the claim statement itself, so no two claims of a job share it.
//!
//! Two rules hold in the database itself, whatever the workers do:
//! - a job is claimed by one worker at a time: the claim is a single `UPDATE … RETURNING` that
//!   also locks the row (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite runs one writer at a
//!   time), and heartbeats and completions only apply while the caller still holds the lease;
//! - at most one job per service runs: a partial unique index on `jobs(service_id) WHERE state =
//!   'running'` refuses a second, and the claim query skips services that already have one.
//!
//! Queue calls take `now` from the caller so tests can drive lease expiry without sleeping.

use std::time::Duration;

use helvetia_core::audit::AuditAction;
use helvetia_core::job::{ClaimedJob, JobState};
use jiff::Timestamp;

use crate::{Result, Store, StoreError, WritePool, millis, opt_timestamp, with_pool};

/// The claim statement, parameterised by the row-locking clause of the backend.
macro_rules! claim_sql {
    ($lock:literal) => {
        concat!(
            "UPDATE jobs
             SET state = 'running', lease_owner = $1, lease_expires_at = $2,
                 attempts = attempts + 1, started_at = COALESCE(started_at, $3)
             WHERE id = (
                 SELECT j.id FROM jobs j
                 WHERE (j.state = 'queued' OR (j.state = 'running' AND j.lease_expires_at < $3))
                   AND (j.service_id IS NULL OR NOT EXISTS (
                         SELECT 1 FROM jobs r
                         WHERE r.service_id = j.service_id AND r.state = 'running'
                           AND r.id <> j.id))
                 ORDER BY j.id
                 LIMIT 1 ",
            $lock,
            ")
             RETURNING id, kind, service_id, deployment_id, attempts, cancel_requested"
        )
    };
}

/// Enqueues a job inside the transaction `$tx` (`$deployment` may be `None`).
macro_rules! enqueue_job {
    ($tx:expr, $kind:expr, $service:expr, $deployment:expr, $now:expr) => {
        sqlx::query(
            "INSERT INTO jobs (kind, service_id, deployment_id, state, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind($kind.as_str())
        .bind($service)
        .bind($deployment)
        .bind(helvetia_core::job::JobState::Queued.as_str())
        .bind($now)
        .execute(&mut *$tx)
        .await?
    };
}

/// Inside `$tx`: cancels the job of deployment `$deployment` if no worker took it yet.
macro_rules! cancel_queued_deployment_job {
    ($tx:expr, $deployment:expr, $reason:expr, $now:expr) => {
        sqlx::query(
            "UPDATE jobs SET state = $1, finished_at = $2, error = $3
             WHERE deployment_id = $4 AND state = $5",
        )
        .bind(helvetia_core::job::JobState::Cancelled.as_str())
        .bind($now)
        .bind($reason)
        .bind($deployment)
        .bind(helvetia_core::job::JobState::Queued.as_str())
        .execute(&mut *$tx)
        .await?
    };
}

/// Inside `$tx`: asks the worker of deployment `$deployment`'s unfinished job to stop; it sees
/// the request at its next heartbeat, or when it claims the job.
macro_rules! request_deployment_job_cancel {
    ($tx:expr, $deployment:expr) => {
        sqlx::query(
            "UPDATE jobs SET cancel_requested = TRUE
             WHERE deployment_id = $1 AND state IN ($2, $3)",
        )
        .bind($deployment)
        .bind(helvetia_core::job::JobState::Queued.as_str())
        .bind(helvetia_core::job::JobState::Running.as_str())
        .execute(&mut *$tx)
        .await?
    };
}

/// Inside `$tx`: how many jobs of service `$service` are running, as an `i64`.
macro_rules! running_service_jobs {
    ($tx:expr, $service:expr) => {{
        let running: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE service_id = $1 AND state = $2")
                .bind($service)
                .bind(helvetia_core::job::JobState::Running.as_str())
                .fetch_one(&mut *$tx)
                .await?;
        running
    }};
}

pub(crate) use {
    cancel_queued_deployment_job, enqueue_job, request_deployment_job_cancel, running_service_jobs,
};

#[derive(sqlx::FromRow)]
struct ClaimRow {
    id: i64,
    kind: String,
    service_id: Option<i64>,
    deployment_id: Option<i64>,
    attempts: i64,
    cancel_requested: bool,
}

/// What a heartbeat learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heartbeat {
    /// The lease was extended.
    Renewed { cancel_requested: bool },
    /// The lease was lost (it expired and another worker claimed the job, or the job was
    /// finished elsewhere): stop working on it.
    Lost,
}

/// A job row as the queue's observers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    pub id: i64,
    pub state: JobState,
    pub attempts: i64,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<Timestamp>,
    pub error: Option<String>,
}

#[derive(sqlx::FromRow)]
struct JobRow {
    id: i64,
    state: String,
    attempts: i64,
    lease_owner: Option<String>,
    lease_expires_at: Option<i64>,
    error: Option<String>,
}

fn lease_end(now: Timestamp, lease: Duration) -> i64 {
    millis(now).saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX))
}

impl Store {
    /// Claims the oldest claimable job for `worker`, or returns `None` when there is none.
    pub async fn claim_job(
        &self,
        worker: &str,
        now: Timestamp,
        lease: Duration,
    ) -> Result<Option<ClaimedJob>> {
        let expires = lease_end(now, lease);
        let claimed: Result<Option<ClaimRow>, sqlx::Error> = match &self.db {
            crate::Db::Sqlite(pool) => {
                sqlx::query_as(claim_sql!(""))
                    .bind(worker)
                    .bind(expires)
                    .bind(millis(now))
                    .fetch_optional(pool)
                    .await
            }
            crate::Db::Postgres(pool) => {
                sqlx::query_as(claim_sql!("FOR UPDATE SKIP LOCKED"))
                    .bind(worker)
                    .bind(expires)
                    .bind(millis(now))
                    .fetch_optional(pool)
                    .await
            }
        };
        let row = match claimed {
            Ok(row) => row,
            // Two workers picked jobs of the same service at once; the unique index let only
            // one through. The other simply has nothing to claim right now.
            Err(error)
                if error
                    .as_database_error()
                    .is_some_and(|db| db.is_unique_violation()) =>
            {
                None
            }
            Err(error) => return Err(error.into()),
        };
        row.map(|row| {
            Ok(ClaimedJob {
                id: row.id,
                kind: row
                    .kind
                    .parse()
                    .map_err(|e| StoreError::corrupt("job kind", e))?,
                service_id: row.service_id,
                deployment_id: row.deployment_id,
                attempt: row.attempts,
                cancel_requested: row.cancel_requested,
            })
        })
        .transpose()
    }

    /// Extends `worker`'s lease on its claim `job` and reports whether cancellation was
    /// requested.
    pub async fn heartbeat_job(
        &self,
        job: &ClaimedJob,
        worker: &str,
        now: Timestamp,
        lease: Duration,
    ) -> Result<Heartbeat> {
        let cancel_requested: Option<bool> = with_pool!(self, |pool| {
            sqlx::query_scalar(
                "UPDATE jobs SET lease_expires_at = $1
                 WHERE id = $2 AND lease_owner = $3 AND attempts = $4 AND state = 'running'
                 RETURNING cancel_requested",
            )
            .bind(lease_end(now, lease))
            .bind(job.id)
            .bind(worker)
            .bind(job.attempt)
            .fetch_optional(pool)
            .await?
        });
        Ok(match cancel_requested {
            Some(cancel_requested) => Heartbeat::Renewed { cancel_requested },
            None => Heartbeat::Lost,
        })
    }

    /// Records the outcome of a claim `job` that `worker` still holds. Returns false when the
    /// lease had already been lost, in which case nothing is written.
    pub async fn finish_job(
        &self,
        job: &ClaimedJob,
        worker: &str,
        state: JobState,
        error: Option<&str>,
        now: Timestamp,
    ) -> Result<bool> {
        let updated = with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE jobs SET state = $1, error = $2, finished_at = $3,
                                 lease_owner = NULL, lease_expires_at = NULL
                 WHERE id = $4 AND lease_owner = $5 AND attempts = $6 AND state = 'running'",
            )
            .bind(state.as_str())
            .bind(error)
            .bind(millis(now))
            .bind(job.id)
            .bind(worker)
            .bind(job.attempt)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(updated > 0)
    }

    /// Ends the lease of every running job at once. Only for a server starting up that holds
    /// the instance lock: then no other worker can be alive, so waiting out their leases would
    /// only delay the recovery of interrupted jobs.
    pub async fn expire_all_leases(&self, now: Timestamp) -> Result<u64> {
        let expired = with_pool!(self, |pool| {
            sqlx::query("UPDATE jobs SET lease_expires_at = $1 WHERE state = 'running'")
                .bind(millis(now) - 1)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(expired)
    }

    /// When the earliest running lease runs out, so an idle worker knows when to look again.
    pub async fn next_lease_expiry(&self) -> Result<Option<Timestamp>> {
        let next: Option<i64> = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT MIN(lease_expires_at) FROM jobs WHERE state = 'running'")
                .fetch_one(pool)
                .await?
        });
        opt_timestamp(next)
    }

    /// Enqueues a job for a service that is not a deployment (e.g. stopping it), audited as
    /// `action`. A queued job of the same kind for the service is not duplicated.
    pub async fn enqueue_service_job(
        &self,
        actor: &helvetia_core::auth::Actor,
        service: &helvetia_core::service::Service,
        kind: helvetia_core::job::JobKind,
        action: AuditAction,
    ) -> Result<()> {
        let target = format!("{}/{}", service.project, service.name);
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let waiting: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM jobs WHERE service_id = $1 AND kind = $2 AND state = 'queued'",
            )
            .bind(service.id)
            .bind(kind.as_str())
            .fetch_one(&mut *tx)
            .await?;
            if waiting == 0 {
                enqueue_job!(tx, kind, service.id, None::<i64>, crate::now_millis());
            }
            crate::audit::audit!(tx, actor, action, target);
            tx.commit().await?;
        });
        Ok(())
    }

    /// Number of jobs waiting for a worker.
    pub async fn queued_job_count(&self) -> Result<i64> {
        let count = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE state = 'queued'")
                .fetch_one(pool)
                .await?
        });
        Ok(count)
    }

    /// A job by id, for observers and tests.
    pub async fn job(&self, id: i64) -> Result<JobRecord> {
        let row: Option<JobRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, state, attempts, lease_owner, lease_expires_at, error
                 FROM jobs WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        let row = row.ok_or_else(|| StoreError::NotFound(format!("job #{id}")))?;
        Ok(JobRecord {
            id: row.id,
            state: row
                .state
                .parse()
                .map_err(|e| StoreError::corrupt("job state", e))?,
            attempts: row.attempts,
            lease_owner: row.lease_owner,
            lease_expires_at: opt_timestamp(row.lease_expires_at)?,
            error: row.error,
        })
    }

    /// The job carrying out a deployment.
    pub async fn deployment_job(&self, deployment_id: i64) -> Result<JobRecord> {
        let id: Option<i64> = with_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT id FROM jobs WHERE deployment_id = $1 ORDER BY id DESC LIMIT 1",
            )
            .bind(deployment_id)
            .fetch_optional(pool)
            .await?
        });
        let id =
            id.ok_or_else(|| StoreError::NotFound(format!("job of deployment #{deployment_id}")))?;
        self.job(id).await
    }
}
