//! Changes of a deployment's status: creating one (with its job), moving it through the state
//! machine, cancelling it.

use helvetia_core::audit::AuditAction;
use helvetia_core::auth::Actor;
use helvetia_core::deployment::{
    Deployment, DeploymentCause, DeploymentKind, DeploymentStatus, check_transition,
};
use helvetia_core::git::CommitSha;
use helvetia_core::job::JobKind;
use helvetia_core::service::Service;

use super::DeploymentRequest;
use crate::audit::audit;
use crate::queue::{cancel_queued_deployment_job, enqueue_job, request_deployment_job_cancel};
use crate::services::require_team_service;
use crate::{Result, Store, StoreError, WritePool, now_millis, with_pool};

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
        actor: &Actor,
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
            require_team_service!(tx, service.id, actor.team, format!("service `{target}`"));
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
            .bind(&actor.label)
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
            .bind(format!("requested by {}", actor.label))
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
                actor,
                AuditAction::DeploymentCreate,
                format!("{target}#{id}")
            );
            tx.commit().await?;
            id
        });
        self.changed(service.id);
        self.deployment_by_id(id).await
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
        self.changed(current.service_id);
        self.deployment_by_id(id).await
    }

    /// Cancels a deployment: at once when it is still queued, otherwise by asking the worker
    /// running it to stop (it then records `cancelled` itself). Returns the deployment as it is
    /// after the request.
    pub async fn cancel_deployment(&self, actor: &Actor, id: i64) -> Result<Deployment> {
        let deployment = self.deployment(actor.team, id).await?;
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
            let reason = format!("cancelled by {}", actor.label);
            let queued = DeploymentStatus::Queued;
            let cancelled = DeploymentStatus::Cancelled;
            let cancelled_while_queued = deployment.status == queued
                && record_transition!(tx, id, queued, cancelled, &reason, now) > 0;
            if cancelled_while_queued {
                cancel_queued_deployment_job!(tx, id, &reason, now);
            }
            request_deployment_job_cancel!(tx, id);
            audit!(tx, actor, AuditAction::DeploymentCancel, target);
            tx.commit().await?;
        });
        self.changed(deployment.service_id);
        self.deployment_by_id(id).await
    }
}
