//! Deployments and their recorded state changes.
//!
//! Every status change goes through [`Store::transition_deployment`]: a compare-and-set on the
//! current status (so two actors cannot both move one deployment), checked against the core's
//! state machine, recorded with its time and reason in the same transaction.

use helvetia_core::audit::AuditAction;
use helvetia_core::auth::{Caller, TeamId};
use helvetia_core::deployment::{
    Deployment, DeploymentCause, DeploymentKind, DeploymentStatus, Transition, check_transition,
};
use helvetia_core::git::{CommitSha, GitRef};
use helvetia_core::job::JobKind;
use helvetia_core::name::{ProjectName, ServiceName};
use helvetia_core::service::Service;

use crate::audit::audit;
use crate::queue::{cancel_queued_deployment_job, enqueue_job, request_deployment_job_cancel};
use crate::{
    Result, Store, StoreError, WritePool, now_millis, opt_timestamp, timestamp, with_pool,
};

macro_rules! select_deployments {
    ($where:literal) => {
        concat!(
            "SELECT d.id, d.service_id, p.name AS project, s.name AS service, d.kind, d.cause, d.status,
                    d.status_reason, d.git_ref, d.requested_commit, d.commit_sha, d.commit_message,
                    d.commit_author, d.image, d.source_deployment_id, d.created_by, d.created_at,
                    d.updated_at, d.finished_at
             FROM deployments d
             JOIN services s ON s.id = d.service_id
             JOIN projects p ON p.id = s.project_id
             WHERE ",
            $where
        )
    };
}

#[derive(sqlx::FromRow)]
struct DeploymentRow {
    id: i64,
    service_id: i64,
    project: String,
    service: String,
    kind: String,
    cause: String,
    status: String,
    status_reason: Option<String>,
    git_ref: Option<String>,
    requested_commit: Option<String>,
    commit_sha: Option<String>,
    commit_message: Option<String>,
    commit_author: Option<String>,
    image: Option<String>,
    source_deployment_id: Option<i64>,
    created_by: String,
    created_at: i64,
    updated_at: i64,
    finished_at: Option<i64>,
}

impl TryFrom<DeploymentRow> for Deployment {
    type Error = StoreError;
    fn try_from(row: DeploymentRow) -> Result<Deployment> {
        let corrupt = |what| move |e| StoreError::corrupt(what, e);
        Ok(Deployment {
            id: row.id,
            service_id: row.service_id,
            project: ProjectName::parse(&row.project).map_err(corrupt("project name"))?,
            service: ServiceName::parse(&row.service).map_err(corrupt("service name"))?,
            kind: row.kind.parse().map_err(corrupt("deployment kind"))?,
            cause: row.cause.parse().map_err(corrupt("deployment cause"))?,
            status: row.status.parse().map_err(corrupt("deployment status"))?,
            status_reason: row.status_reason,
            git_ref: row.git_ref,
            requested_commit: row.requested_commit,
            commit_sha: row.commit_sha,
            commit_message: row.commit_message,
            commit_author: row.commit_author,
            image: row.image,
            source_deployment_id: row.source_deployment_id,
            created_by: row.created_by,
            created_at: timestamp(row.created_at)?,
            updated_at: timestamp(row.updated_at)?,
            finished_at: opt_timestamp(row.finished_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct TransitionRow {
    from_status: Option<String>,
    to_status: String,
    at: i64,
    reason: String,
}

/// What a new deployment should run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeploymentRequest {
    /// Build the head of `git_ref`, or `commit` when given.
    Build {
        git_ref: GitRef,
        commit: Option<CommitSha>,
    },
    /// Run the image an earlier deployment built.
    Image {
        source_deployment_id: i64,
        image: String,
        cause: DeploymentCause,
    },
}

/// Records one state change inside `$tx`: compare-and-set on the status, then the history row.
/// Evaluates to the number of rows changed (0 when the status was no longer `$from`).
macro_rules! record_transition {
    ($tx:expr, $id:expr, $from:expr, $to:expr, $reason:expr, $now:expr) => {{
        let finished = match ($from.is_in_progress(), $to.is_in_progress()) {
            (true, false) => Some($now),
            _ => None,
        };
        let changed = sqlx::query(
            "UPDATE deployments
             SET status = $1, status_reason = $2, updated_at = $3,
                 finished_at = COALESCE($4, finished_at)
             WHERE id = $5 AND status = $6",
        )
        .bind($to.as_str())
        .bind($reason)
        .bind($now)
        .bind(finished)
        .bind($id)
        .bind($from.as_str())
        .execute(&mut *$tx)
        .await?
        .rows_affected();
        if changed > 0 {
            sqlx::query(
                "INSERT INTO deployment_transitions (deployment_id, from_status, to_status, at, reason)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind($id)
            .bind($from.as_str())
            .bind($to.as_str())
            .bind($now)
            .bind($reason)
            .execute(&mut *$tx)
            .await?;
        }
        changed
    }};
}

impl Store {
    /// Records a new deployment and enqueues its job in one transaction, so a deployment never
    /// exists without the job that will carry it out. Queued deployments of the same service
    /// that no worker has started are superseded by this one.
    pub async fn create_deployment(
        &self,
        caller: &Caller,
        service: &Service,
        request: &DeploymentRequest,
    ) -> Result<Deployment> {
        let (kind, cause, git_ref, commit, image, source) = match request {
            DeploymentRequest::Build { git_ref, commit } => (
                DeploymentKind::Build,
                DeploymentCause::Deploy,
                Some(git_ref.as_str()),
                commit.as_ref().map(CommitSha::as_str),
                None,
                None,
            ),
            DeploymentRequest::Image {
                source_deployment_id,
                image,
                cause,
            } => (
                DeploymentKind::Image,
                *cause,
                None,
                None,
                Some(image.as_str()),
                Some(*source_deployment_id),
            ),
        };
        let target = format!("{}/{}", service.project, service.name);
        let id: i64 = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let owned: Option<i64> = sqlx::query_scalar(
                "SELECT s.id FROM services s JOIN projects p ON p.id = s.project_id
                 WHERE s.id = $1 AND p.team_id = $2",
            )
            .bind(service.id)
            .bind(caller.team.0)
            .fetch_optional(&mut *tx)
            .await?;
            if owned.is_none() {
                return Err(StoreError::NotFound(format!("service `{target}`")));
            }
            let now = now_millis();
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO deployments (service_id, kind, status, status_reason, git_ref,
                                          requested_commit, image, source_deployment_id,
                                          created_by, created_at, updated_at, cause)
                 VALUES ($1, $2, 'queued', $3, $4, $5, $6, $7, $8, $9, $9, $10) RETURNING id",
            )
            .bind(service.id)
            .bind(kind.as_str())
            .bind("waiting for a worker")
            .bind(git_ref)
            .bind(commit)
            .bind(image)
            .bind(source)
            .bind(caller.label())
            .bind(now)
            .bind(cause.as_str())
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO deployment_transitions (deployment_id, from_status, to_status, at, reason)
                 VALUES ($1, NULL, 'queued', $2, $3)",
            )
            .bind(id)
            .bind(now)
            .bind(format!("requested by {}", caller.label()))
            .execute(&mut *tx)
            .await?;

            let superseded: Vec<i64> = sqlx::query_scalar(
                "SELECT id FROM deployments WHERE service_id = $1 AND status = 'queued' AND id <> $2",
            )
            .bind(service.id)
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
            let reason = format!("superseded by deployment #{id}");
            for old in superseded {
                let from = DeploymentStatus::Queued;
                let to = DeploymentStatus::Superseded;
                record_transition!(tx, old, from, to, &reason, now);
                // A worker may have claimed the job already; it will find the deployment
                // superseded when it tries to start and stop there.
                cancel_queued_deployment_job!(tx, old, &reason, now);
            }

            enqueue_job!(tx, JobKind::Deploy, service.id, Some(id), now);
            if let Some(source) = source {
                // An image deployment runs the same code as its source: it inherits the commit.
                sqlx::query(
                    "UPDATE deployments SET (commit_sha, commit_message, commit_author) =
                         (SELECT commit_sha, commit_message, commit_author FROM deployments
                          WHERE id = $1)
                     WHERE id = $2",
                )
                .bind(source)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
            audit!(
                tx,
                caller.team,
                caller.label(),
                AuditAction::DeploymentCreate,
                format!("{target}#{id}")
            );
            tx.commit().await?;
            id
        });
        self.deployment_by_id(id).await
    }

    /// A deployment if `team` owns its service.
    pub async fn deployment(&self, team: TeamId, id: i64) -> Result<Deployment> {
        let row: Option<DeploymentRow> = with_pool!(self, |pool| {
            sqlx::query_as(select_deployments!("d.id = $1 AND p.team_id = $2"))
                .bind(id)
                .bind(team.0)
                .fetch_optional(pool)
                .await?
        });
        row.ok_or_else(|| StoreError::NotFound(format!("deployment #{id}")))?
            .try_into()
    }

    /// A deployment by id, for the worker.
    pub async fn deployment_by_id(&self, id: i64) -> Result<Deployment> {
        let row: Option<DeploymentRow> = with_pool!(self, |pool| {
            sqlx::query_as(select_deployments!("d.id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        row.ok_or_else(|| StoreError::NotFound(format!("deployment #{id}")))?
            .try_into()
    }

    /// A service's deployments, newest first; `before` pages back from a deployment id.
    pub async fn list_deployments(
        &self,
        service: &Service,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Deployment>> {
        let rows: Vec<DeploymentRow> = with_pool!(self, |pool| {
            sqlx::query_as(select_deployments!(
                "d.service_id = $1 AND d.id < $2 ORDER BY d.id DESC LIMIT $3"
            ))
            .bind(service.id)
            .bind(before.unwrap_or(i64::MAX))
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(Deployment::try_from).collect()
    }

    /// The deployment currently serving a service, if any.
    pub async fn live_deployment(&self, service_id: i64) -> Result<Option<Deployment>> {
        let row: Option<DeploymentRow> = with_pool!(self, |pool| {
            sqlx::query_as(select_deployments!(
                "d.service_id = $1 AND d.status = 'live'"
            ))
            .bind(service_id)
            .fetch_optional(pool)
            .await?
        });
        row.map(Deployment::try_from).transpose()
    }

    /// Every deployment, of any team, whose job has not finished: what a restart must look at.
    pub async fn in_progress_deployments(&self) -> Result<Vec<Deployment>> {
        let rows: Vec<DeploymentRow> = with_pool!(self, |pool| {
            sqlx::query_as(select_deployments!(
                "d.status IN ('queued', 'cloning', 'building', 'starting', 'health_checking')
                 ORDER BY d.id"
            ))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(Deployment::try_from).collect()
    }

    /// The recorded state changes of a deployment, oldest first.
    pub async fn transitions(&self, deployment_id: i64) -> Result<Vec<Transition>> {
        let rows: Vec<TransitionRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT from_status, to_status, at, reason FROM deployment_transitions
                 WHERE deployment_id = $1 ORDER BY id",
            )
            .bind(deployment_id)
            .fetch_all(pool)
            .await?
        });
        let corrupt = |e| StoreError::corrupt("deployment status", e);
        rows.into_iter()
            .map(|row| {
                Ok(Transition {
                    from: row
                        .from_status
                        .map(|s| s.parse())
                        .transpose()
                        .map_err(corrupt)?,
                    to: row.to_status.parse().map_err(corrupt)?,
                    at: timestamp(row.at)?,
                    reason: row.reason,
                })
            })
            .collect()
    }

    /// Moves a deployment from `from` to `to`, recording `reason`. Fails with
    /// [`StoreError::Conflict`] when the deployment is no longer in `from` (someone else moved
    /// it first) and with [`StoreError::IllegalTransition`] when the state machine forbids it.
    ///
    /// Going `live` retires the service's previous live deployment in the same transaction, so
    /// a service never has two.
    pub async fn transition_deployment(
        &self,
        id: i64,
        from: DeploymentStatus,
        to: DeploymentStatus,
        reason: &str,
    ) -> Result<Deployment> {
        let current = self.deployment_by_id(id).await?;
        check_transition(current.kind, from, to)?;
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let now = now_millis();
            if to == DeploymentStatus::Live {
                let previous: Option<i64> = sqlx::query_scalar(
                    "SELECT id FROM deployments WHERE service_id = $1 AND status = 'live'",
                )
                .bind(current.service_id)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(previous) = previous {
                    let retire_reason = format!("replaced by deployment #{id}");
                    let live = DeploymentStatus::Live;
                    let retired = DeploymentStatus::Retired;
                    record_transition!(tx, previous, live, retired, &retire_reason, now);
                }
            }
            let changed = record_transition!(tx, id, from, to, reason, now);
            if changed == 0 {
                return Err(StoreError::Conflict(format!(
                    "deployment #{id} is no longer {from}"
                )));
            }
            if from == DeploymentStatus::Live && to == DeploymentStatus::Retired {
                // Retired without a successor (the service was stopped): its containers leave
                // the route and drain.
                sqlx::query(
                    "UPDATE containers SET state = 'draining', updated_at = $1
                     WHERE deployment_id = $2 AND state = 'serving'",
                )
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
            if to == DeploymentStatus::Live {
                // Traffic moves with the status: the new containers serve, the old drain.
                sqlx::query(
                    "UPDATE containers SET state = 'draining', updated_at = $1
                     WHERE service_id = $2 AND state = 'serving' AND deployment_id <> $3",
                )
                .bind(now)
                .bind(current.service_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "UPDATE containers SET state = 'serving', updated_at = $1
                     WHERE deployment_id = $2 AND state = 'ready'",
                )
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        self.deployment_by_id(id).await
    }

    /// Records the commit a deployment resolved to.
    pub async fn record_commit(
        &self,
        id: i64,
        sha: &str,
        message: &str,
        author: &str,
    ) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE deployments SET commit_sha = $1, commit_message = $2, commit_author = $3,
                                        updated_at = $4
                 WHERE id = $5",
            )
            .bind(sha)
            .bind(message)
            .bind(author)
            .bind(now_millis())
            .bind(id)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The message and author of `sha` as recorded by an earlier deployment of the service,
    /// for a deployment that reuses that build without fetching the commit again.
    pub async fn commit_details(
        &self,
        service_id: i64,
        sha: &str,
    ) -> Result<Option<(String, String)>> {
        let row: Option<(Option<String>, Option<String>)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT commit_message, commit_author FROM deployments
                 WHERE service_id = $1 AND commit_sha = $2 AND commit_message IS NOT NULL
                 ORDER BY id DESC LIMIT 1",
            )
            .bind(service_id)
            .bind(sha)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.and_then(|(message, author)| Some((message?, author.unwrap_or_default()))))
    }

    /// The images of a service's successful deployments, newest first (at most `limit`), and
    /// those that queued or running deployments are about to run.
    pub async fn deployment_images(
        &self,
        service_id: i64,
        limit: i64,
    ) -> Result<(Vec<String>, Vec<String>)> {
        let (successful, pending) = with_pool!(self, |pool| {
            let successful: Vec<String> = sqlx::query_scalar(
                "SELECT image FROM deployments
                 WHERE service_id = $1 AND status IN ('live', 'retired') AND image IS NOT NULL
                 ORDER BY id DESC LIMIT $2",
            )
            .bind(service_id)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            let pending: Vec<String> = sqlx::query_scalar(
                "SELECT image FROM deployments
                 WHERE service_id = $1 AND image IS NOT NULL
                   AND status IN ('queued', 'cloning', 'building', 'starting', 'health_checking')",
            )
            .bind(service_id)
            .fetch_all(pool)
            .await?;
            (successful, pending)
        });
        Ok((successful, pending))
    }

    /// The most recent deployment of a service that went live and was since replaced, whose
    /// image is known and, if `other_than_commit` is given, was built from another commit:
    /// what a rollback returns to by default (the previous version, skipping restarts and
    /// redeploys of the current one) and what `start` runs again.
    pub async fn previous_successful_deployment(
        &self,
        service_id: i64,
        other_than_commit: Option<&str>,
    ) -> Result<Option<Deployment>> {
        let row: Option<DeploymentRow> = with_pool!(self, |pool| {
            sqlx::query_as(select_deployments!(
                "d.service_id = $1 AND d.status = 'retired' AND d.image IS NOT NULL
                   AND ($2 IS NULL OR d.commit_sha IS NULL OR d.commit_sha <> $2)
                 ORDER BY d.id DESC LIMIT 1"
            ))
            .bind(service_id)
            .bind(other_than_commit)
            .fetch_optional(pool)
            .await?
        });
        row.map(Deployment::try_from).transpose()
    }

    /// Records the image a deployment runs.
    pub async fn record_image(&self, id: i64, image: &str) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query("UPDATE deployments SET image = $1, updated_at = $2 WHERE id = $3")
                .bind(image)
                .bind(now_millis())
                .bind(id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Cancels a deployment: at once when it is still queued, otherwise by asking the worker
    /// running it to stop (it then records `cancelled` itself). Returns the deployment as it is
    /// after the request.
    pub async fn cancel_deployment(&self, caller: &Caller, id: i64) -> Result<Deployment> {
        let deployment = self.deployment(caller.team, id).await?;
        let target = format!("{}/{}#{id}", deployment.project, deployment.service);
        if !deployment.status.is_in_progress() {
            return Err(StoreError::Conflict(format!(
                "deployment #{id} is already {}",
                deployment.status
            )));
        }
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let now = now_millis();
            let reason = format!("cancelled by {}", caller.label());
            let queued = DeploymentStatus::Queued;
            let cancelled = DeploymentStatus::Cancelled;
            let cancelled_while_queued = deployment.status == queued
                && record_transition!(tx, id, queued, cancelled, &reason, now) > 0;
            if cancelled_while_queued {
                cancel_queued_deployment_job!(tx, id, &reason, now);
            }
            request_deployment_job_cancel!(tx, id);
            audit!(
                tx,
                caller.team,
                caller.label(),
                AuditAction::DeploymentCancel,
                target
            );
            tx.commit().await?;
        });
        self.deployment_by_id(id).await
    }
}
