//! Deployments and their recorded state changes: the rows and the queries here, the changes
//! of status (with the job and audit entry each writes) in `transitions.rs`.
//!
//! Every status change goes through [`Store::transition_deployment`]: a compare-and-set on the
//! current status (so two actors cannot both move one deployment), checked against the core's
//! state machine, recorded with its time and reason in the same transaction.

use helvetia_core::auth::TeamId;
use helvetia_core::deployment::{Deployment, DeploymentCause, Transition};
use helvetia_core::git::{CommitSha, GitRef};
use helvetia_core::name::{ProjectName, ServiceName};
use helvetia_core::service::Service;

use crate::{Result, Store, StoreError, now_millis, opt_timestamp, timestamp, with_pool};

macro_rules! select_deployments {
    ($where:literal) => {
        concat!(
            "SELECT d.id, d.service_id, p.name AS project, s.name AS service, d.kind, d.cause, d.status,
                    d.status_reason, d.git_ref, d.requested_commit, d.commit_sha, d.commit_message,
                    d.commit_author, d.image, d.image_digest, d.source_deployment_id, d.created_by, d.created_at,
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
    image_digest: Option<String>,
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
            image_digest: row.image_digest,
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

mod transitions;

impl Store {
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

    /// The team that owns deployment `id`, if there is one. Only for deciding whether a caller
    /// may see it: answering the caller goes through [`Store::deployment`].
    pub async fn deployment_team(&self, id: i64) -> Result<Option<TeamId>> {
        let team: Option<i64> = with_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT p.team_id FROM deployments d JOIN services s ON s.id = d.service_id
                 JOIN projects p ON p.id = s.project_id WHERE d.id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        Ok(team.map(TeamId))
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

    /// Whether a deployment of another service than `service_id` recorded image `tag` (a
    /// preview running an image its parent built).
    pub async fn tag_recorded_by_others(&self, tag: &str, service_id: i64) -> Result<bool> {
        let found: Option<i64> = with_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT id FROM deployments WHERE image = $1 AND service_id <> $2 LIMIT 1",
            )
            .bind(tag)
            .bind(service_id)
            .fetch_optional(pool)
            .await?
        });
        Ok(found.is_some())
    }

    /// Every registry digest a deployment recorded, with the deployment's image tag and
    /// whether the deployment is still in progress.
    pub async fn recorded_digests(&self) -> Result<Vec<RecordedDigest>> {
        let rows: Vec<(Option<String>, String, String)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT image, image_digest, status FROM deployments
                 WHERE image_digest IS NOT NULL ORDER BY id",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(image, digest, status)| RecordedDigest {
                image,
                digest,
                // An unknown status is treated as in progress: its image is kept.
                in_progress: status
                    .parse::<helvetia_core::deployment::DeploymentStatus>()
                    .map_or(true, |status| status.is_in_progress()),
            })
            .collect())
    }

    /// Every image tag a service's deployments recorded, each once.
    pub async fn service_image_tags(&self, service_id: i64) -> Result<Vec<String>> {
        let tags = with_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT DISTINCT image FROM deployments
                 WHERE service_id = $1 AND image IS NOT NULL ORDER BY image",
            )
            .bind(service_id)
            .fetch_all(pool)
            .await?
        });
        Ok(tags)
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
    /// Records the digest of the deployment's image in Helvetia's registry.
    pub async fn record_image_digest(&self, id: i64, digest: &str) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query("UPDATE deployments SET image_digest = $1, updated_at = $2 WHERE id = $3")
                .bind(digest)
                .bind(now_millis())
                .bind(id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

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
}

/// A registry digest a deployment recorded ([`Store::recorded_digests`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedDigest {
    /// The deployment's image tag in the host engine, once recorded.
    pub image: Option<String>,
    pub digest: String,
    pub in_progress: bool,
}
