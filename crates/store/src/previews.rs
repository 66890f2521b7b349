//! Previews: services marked as the preview of another (`services.preview_of`), with what they
//! preview in `previews`, and each service's preview settings.

use helvetia_core::audit::AuditAction;
use helvetia_core::auth::Actor;
use helvetia_core::name::ServiceName;
use helvetia_core::preview::{PreviewLabel, PreviewSettings};
use helvetia_core::runtime::RuntimeSettings;
use helvetia_core::service::{Service, ServiceSettings};
use jiff::Timestamp;

use crate::audit::audit;
use crate::services::{require_team_service, target};
use crate::{Result, Store, StoreError, WritePool, now_millis, timestamp, with_pool};

/// A preview with what it previews.
#[derive(Debug, Clone, PartialEq)]
pub struct Preview {
    /// The preview's own service (its `preview` names the parent).
    pub service: Service,
    pub pull_request: Option<u64>,
    pub title: String,
    /// The branch previewed (for a pull request: its head branch, maybe in a fork).
    pub branch: String,
    /// The head commit last seen for a pull request; `None` for a branch's preview, which
    /// deploys the branch as it is.
    pub head_sha: Option<String>,
    pub fork: bool,
    /// The head commit of a fork someone approved, and who.
    pub approved_sha: Option<String>,
    pub approved_by: Option<String>,
    /// The pull-request comment that shows the preview's state, once made.
    pub comment_id: Option<i64>,
    pub created_at: Timestamp,
}

/// What a preview previews, as a pull-request event or a request names it.
#[derive(Debug, Clone)]
pub struct PreviewHead<'a> {
    pub pull_request: Option<u64>,
    pub title: &'a str,
    pub branch: &'a str,
    pub head_sha: Option<&'a str>,
    pub fork: bool,
}

/// A preview to make for `parent`.
pub struct NewPreview<'a> {
    pub parent: &'a Service,
    pub label: &'a PreviewLabel,
    pub name: &'a ServiceName,
    pub hostname: &'a str,
    pub settings: &'a ServiceSettings,
    pub runtime: &'a RuntimeSettings,
    pub head: PreviewHead<'a>,
}

#[derive(sqlx::FromRow)]
struct PreviewRow {
    service_id: i64,
    pull_request: Option<i64>,
    title: String,
    branch: String,
    head_sha: Option<String>,
    fork: bool,
    approved_sha: Option<String>,
    approved_by: Option<String>,
    comment_id: Option<i64>,
    created_at: i64,
}

const SELECT_PREVIEWS: &str = "SELECT pv.service_id, pv.pull_request, pv.title, pv.branch, \
     pv.head_sha, pv.fork, pv.approved_sha, pv.approved_by, pv.comment_id, pv.created_at \
     FROM previews pv JOIN services s ON s.id = pv.service_id";

impl Store {
    /// A service's preview settings (the defaults until changed).
    pub async fn preview_settings(&self, service_id: i64) -> Result<PreviewSettings> {
        let stored: Option<String> = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT settings FROM preview_settings WHERE service_id = $1")
                .bind(service_id)
                .fetch_optional(pool)
                .await?
        });
        match stored {
            Some(json) => {
                serde_json::from_str(&json).map_err(|e| StoreError::corrupt("preview settings", e))
            }
            None => Ok(PreviewSettings::default()),
        }
    }

    /// Replaces a service's preview settings.
    pub async fn set_preview_settings(
        &self,
        actor: &Actor,
        service: &Service,
        settings: &PreviewSettings,
    ) -> Result<()> {
        let json = serde_json::to_string(settings)
            .map_err(|e| StoreError::corrupt("preview settings", e))?;
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let what = format!("service `{}`", target(&service.project, &service.name));
            require_team_service!(tx, service.id, actor.team, what);
            sqlx::query(
                "INSERT INTO preview_settings (service_id, settings, updated_at)
                 VALUES ($1, $2, $3)
                 ON CONFLICT (service_id) DO UPDATE
                 SET settings = excluded.settings, updated_at = excluded.updated_at",
            )
            .bind(service.id)
            .bind(&json)
            .bind(now_millis())
            .execute(&mut *tx)
            .await?;
            let what = format!("{}: {json}", target(&service.project, &service.name));
            audit!(tx, actor, AuditAction::PreviewSettings, what);
            tx.commit().await?;
        });
        Ok(())
    }

    /// Makes a preview: its service (linked to the parent's GitHub repository, so it clones
    /// and reports as the parent does), its hostname and what it previews.
    pub async fn create_preview(&self, actor: &Actor, new: &NewPreview<'_>) -> Result<Service> {
        let parent = new.parent;
        let runtime = serde_json::to_string(new.runtime)
            .map_err(|e| StoreError::corrupt("runtime settings", e))?;
        let github = parent.github.as_ref();
        let what = target(&parent.project, new.name);
        let (repo, image) = crate::services::source_columns(new.settings);
        let id: i64 = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let owner = format!("service `{}`", target(&parent.project, &parent.name));
            require_team_service!(tx, parent.id, actor.team, owner);
            let now = now_millis();
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO services (project_id, name, repo, branch, dockerfile, context, port,
                                       created_at, updated_at, runtime, github_installation_id,
                                       github_repository_id, github_repository, preview_of,
                                       image)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10, $11, $12, $13, $14)
                 RETURNING id",
            )
            .bind(parent.project_id)
            .bind(new.name.as_str())
            .bind(repo)
            .bind(new.settings.branch.as_str())
            .bind(new.settings.dockerfile.as_str())
            .bind(new.settings.context.as_str())
            .bind(new.settings.port.map(|port| i64::from(port.get())))
            .bind(now)
            .bind(&runtime)
            .bind(github.map(|link| link.installation_id))
            .bind(github.map(|link| link.repository_id))
            .bind(github.map(|link| link.full_name.as_str()))
            .bind(parent.id)
            .bind(&image)
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::unique(format!(
                "service `{what}` already exists: the preview's name is taken"
            )))?;
            sqlx::query(
                "INSERT INTO hostnames (service_id, hostname, generated, created_at)
                 VALUES ($1, $2, TRUE, $3)",
            )
            .bind(id)
            .bind(new.hostname)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::unique(format!(
                "hostname `{}` is already in use",
                new.hostname
            )))?;
            let head = &new.head;
            sqlx::query(
                "INSERT INTO previews (service_id, label, pull_request, title, branch, head_sha,
                                       fork, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(id)
            .bind(new.label.as_str())
            .bind(head.pull_request.map(|n| n as i64))
            .bind(head.title)
            .bind(head.branch)
            .bind(head.head_sha)
            .bind(head.fork)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            audit!(tx, actor, AuditAction::PreviewCreate, &what);
            tx.commit().await?;
            id
        });
        self.service_by_id(id).await
    }

    /// Records a preview's new head (a push to its pull request, or a new deploy of its
    /// branch) and the settings it now deploys with: the parent's, as they are now.
    pub async fn update_preview(
        &self,
        preview: &Service,
        head: &PreviewHead<'_>,
        settings: &ServiceSettings,
        runtime: &RuntimeSettings,
    ) -> Result<Service> {
        let runtime = serde_json::to_string(runtime)
            .map_err(|e| StoreError::corrupt("runtime settings", e))?;
        let (repo, image) = crate::services::source_columns(settings);
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "UPDATE services SET repo = $1, branch = $2, dockerfile = $3, context = $4,
                                     port = $5, runtime = $6, updated_at = $7,
                                     revision = revision + 1, image = $9
                 WHERE id = $8 AND preview_of IS NOT NULL",
            )
            .bind(repo)
            .bind(settings.branch.as_str())
            .bind(settings.dockerfile.as_str())
            .bind(settings.context.as_str())
            .bind(settings.port.map(|port| i64::from(port.get())))
            .bind(&runtime)
            .bind(now_millis())
            .bind(preview.id)
            .bind(&image)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE previews SET title = $1, branch = $2, head_sha = $3, fork = $4
                 WHERE service_id = $5",
            )
            .bind(head.title)
            .bind(head.branch)
            .bind(head.head_sha)
            .bind(head.fork)
            .bind(preview.id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        self.service_by_id(preview.id).await
    }

    /// Records that `sha`, a fork's head commit, may be deployed to `preview`, approved `by`.
    pub async fn approve_preview(
        &self,
        actor: &Actor,
        preview: &Service,
        sha: &str,
        by: &str,
    ) -> Result<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let updated = sqlx::query(
                "UPDATE previews SET approved_sha = $1, approved_by = $2
                 WHERE service_id = $3 AND service_id IN (
                     SELECT s.id FROM services s JOIN projects p ON p.id = s.project_id
                     WHERE p.team_id = $4)",
            )
            .bind(sha)
            .bind(by)
            .bind(preview.id)
            .bind(actor.team.0)
            .execute(&mut *tx)
            .await?;
            if updated.rows_affected() == 0 {
                return Err(StoreError::NotFound(format!(
                    "preview `{}`",
                    target(&preview.project, &preview.name)
                )));
            }
            let what = format!("{} commit {sha}", target(&preview.project, &preview.name));
            audit!(tx, actor, AuditAction::PreviewApprove, what);
            tx.commit().await?;
        });
        Ok(())
    }

    /// Remembers the pull-request comment a preview updates.
    pub async fn set_preview_comment(&self, preview_id: i64, comment_id: i64) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query("UPDATE previews SET comment_id = $1 WHERE service_id = $2")
                .bind(comment_id)
                .bind(preview_id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The preview whose service is `preview_id`, if it is one.
    pub async fn preview(&self, preview_id: i64) -> Result<Option<Preview>> {
        let query = format!("{SELECT_PREVIEWS} WHERE pv.service_id = $1");
        let row: Option<PreviewRow> = with_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(query.clone()))
                .bind(preview_id)
                .fetch_optional(pool)
                .await?
        });
        match row {
            Some(row) => Ok(Some(self.preview_of_row(row).await?)),
            None => Ok(None),
        }
    }

    /// The preview of the service `parent_id` named `preview_name` (`<parent>--<label>`), if
    /// there is one: a service of that name that is not its preview is not it.
    pub async fn preview_named(
        &self,
        parent_id: i64,
        preview_name: &ServiceName,
    ) -> Result<Option<Preview>> {
        let query = format!("{SELECT_PREVIEWS} WHERE s.preview_of = $1 AND s.name = $2");
        let row: Option<PreviewRow> = with_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(query.clone()))
                .bind(parent_id)
                .bind(preview_name.as_str())
                .fetch_optional(pool)
                .await?
        });
        match row {
            Some(row) => Ok(Some(self.preview_of_row(row).await?)),
            None => Ok(None),
        }
    }

    /// The previews of `parent_id`, oldest first; of every service when `None` (for the idle
    /// sweep).
    pub async fn previews(&self, parent_id: Option<i64>) -> Result<Vec<Preview>> {
        let query = format!(
            "{SELECT_PREVIEWS} WHERE ($1 IS NULL OR s.preview_of = $1)
             ORDER BY pv.created_at, pv.service_id"
        );
        let rows: Vec<PreviewRow> = with_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(query.clone()))
                .bind(parent_id)
                .fetch_all(pool)
                .await?
        });
        let mut previews = Vec::with_capacity(rows.len());
        for row in rows {
            previews.push(self.preview_of_row(row).await?);
        }
        Ok(previews)
    }

    async fn preview_of_row(&self, row: PreviewRow) -> Result<Preview> {
        Ok(Preview {
            service: self.service_by_id(row.service_id).await?,
            pull_request: row.pull_request.map(|n| n as u64),
            title: row.title,
            branch: row.branch,
            head_sha: row.head_sha,
            fork: row.fork,
            approved_sha: row.approved_sha,
            approved_by: row.approved_by,
            comment_id: row.comment_id,
            created_at: timestamp(row.created_at)?,
        })
    }

    /// Deletes a preview's service, with its deployments, hostname and jobs — the removal
    /// job's own too, so it is the job's last step.
    pub async fn delete_preview_service(&self, preview_id: i64) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query("DELETE FROM services WHERE id = $1 AND preview_of IS NOT NULL")
                .bind(preview_id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }
}
