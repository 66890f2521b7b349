//! Services and their settings.

use helvetia_core::audit::AuditAction;
use helvetia_core::auth::{Actor, TeamId};
use helvetia_core::git::{GitRef, RepoUrl};
use helvetia_core::image::ImageRef;
use helvetia_core::name::{ProjectName, ServiceName};
use helvetia_core::preview::PreviewLabel;
use helvetia_core::runtime::RuntimeSettings;
use helvetia_core::security::ContainerSecurity;
use helvetia_core::service::{
    GitHubLink, Port, PreviewOf, RepoPath, Service, ServiceSettings, ServiceSource,
};

use crate::audit::audit;
use crate::queue::running_service_jobs;
use crate::{Result, Store, StoreError, WritePool, in_teams, now_millis, timestamp, with_pool};

/// `SELECT` of every service column, joined with the owning project, followed by `$where`.
macro_rules! select_services {
    ($where:literal) => {
        concat!(
            "SELECT s.id, s.project_id, p.name AS project, s.name, s.repo, s.branch, s.dockerfile,
                    s.context, s.port, s.runtime, s.created_at, s.updated_at, s.revision,
                    s.github_installation_id, s.github_repository_id, s.github_repository,
                    s.preview_of, parent.name AS preview_parent, pv.label AS preview_label,
                    s.image, s.registry_user
             FROM services s JOIN projects p ON p.id = s.project_id
                  LEFT JOIN services parent ON parent.id = s.preview_of
                  LEFT JOIN previews pv ON pv.service_id = s.id
             WHERE ",
            $where
        )
    };
}

#[derive(sqlx::FromRow)]
struct ServiceRow {
    id: i64,
    project_id: i64,
    project: String,
    name: String,
    repo: String,
    branch: String,
    dockerfile: String,
    context: String,
    /// `None` for a worker.
    port: Option<i64>,
    runtime: String,
    created_at: i64,
    updated_at: i64,
    revision: i64,
    github_installation_id: Option<i64>,
    github_repository_id: Option<i64>,
    github_repository: Option<String>,
    preview_of: Option<i64>,
    preview_parent: Option<String>,
    preview_label: Option<String>,
    /// Set for a service run from a registry image (its `repo` is empty).
    image: Option<String>,
    registry_user: Option<String>,
}

impl TryFrom<ServiceRow> for Service {
    type Error = StoreError;
    fn try_from(row: ServiceRow) -> Result<Service> {
        let corrupt = |what| move |e| StoreError::corrupt(what, e);
        Ok(Service {
            id: row.id,
            project_id: row.project_id,
            project: ProjectName::parse(&row.project).map_err(corrupt("project name"))?,
            name: ServiceName::parse(&row.name).map_err(corrupt("service name"))?,
            settings: ServiceSettings {
                source: match &row.image {
                    Some(image) => ServiceSource::Image(
                        ImageRef::parse_stored(image).map_err(corrupt("image"))?,
                    ),
                    None => ServiceSource::Repository(
                        RepoUrl::parse_stored(&row.repo).map_err(corrupt("repo"))?,
                    ),
                },
                branch: GitRef::parse(&row.branch).map_err(corrupt("branch"))?,
                dockerfile: RepoPath::parse(&row.dockerfile).map_err(corrupt("dockerfile"))?,
                context: RepoPath::parse(&row.context).map_err(corrupt("context"))?,
                port: row
                    .port
                    .map(|port| Port::new(port).map_err(corrupt("port")))
                    .transpose()?,
            },
            runtime: serde_json::from_str(&row.runtime)
                .map_err(|e| StoreError::corrupt("runtime settings", e))?,
            created_at: timestamp(row.created_at)?,
            updated_at: timestamp(row.updated_at)?,
            revision: row.revision,
            github: match (
                row.github_installation_id,
                row.github_repository_id,
                row.github_repository,
            ) {
                (Some(installation_id), Some(repository_id), Some(full_name)) => Some(GitHubLink {
                    installation_id,
                    repository_id,
                    full_name,
                }),
                _ => None,
            },
            preview: match (row.preview_of, row.preview_parent, row.preview_label) {
                (Some(parent_id), Some(parent), Some(label)) => Some(PreviewOf {
                    parent_id,
                    parent: ServiceName::parse(&parent).map_err(corrupt("service name"))?,
                    label: PreviewLabel::parse_stored(&label).map_err(corrupt("preview label"))?,
                }),
                _ => None,
            },
            registry_user: row.registry_user,
        })
    }
}

/// The columns a service's source is stored in: `repo` (empty for an image) and `image`.
pub(crate) fn source_columns(settings: &ServiceSettings) -> (&str, Option<String>) {
    match &settings.source {
        ServiceSource::Repository(repo) => (repo.as_str(), None),
        ServiceSource::Image(image) => ("", Some(image.to_string())),
    }
}

/// Returns `Err(StoreError::NotFound(what))` from the enclosing function unless service `id`
/// belongs to `team` — checked inside the transaction `tx` that changes it.
macro_rules! require_team_service {
    ($tx:expr, $id:expr, $team:expr, $what:expr) => {{
        let owned: Option<i64> = sqlx::query_scalar(
            "SELECT s.id FROM services s JOIN projects p ON p.id = s.project_id
             WHERE s.id = $1 AND p.team_id = $2",
        )
        .bind($id)
        .bind($team.0)
        .fetch_optional(&mut *$tx)
        .await?;
        if owned.is_none() {
            return Err($crate::StoreError::NotFound($what));
        }
    }};
}
pub(crate) use require_team_service;

/// A service to create: where it belongs, its settings and its first hostname.
pub struct NewService<'a> {
    pub project: &'a ProjectName,
    pub name: &'a ServiceName,
    pub settings: &'a ServiceSettings,
    pub runtime: &'a RuntimeSettings,
    pub hostname: &'a str,
    /// The GitHub repository it is created from, if any.
    pub github: Option<&'a GitHubLink>,
}

/// The audit target of a service's link to GitHub: the service and its repository.
pub(crate) fn github_target(
    project: &ProjectName,
    name: &ServiceName,
    link: Option<&GitHubLink>,
) -> String {
    let repository = link.map_or("none", |link| link.full_name.as_str());
    format!("{}: github {repository}", target(project, name))
}

pub(crate) fn target(project: &ProjectName, name: &ServiceName) -> String {
    format!("{project}/{name}")
}

/// The audit target of a change of one of a service's domains.
pub(crate) fn domain_target(service: &Service, name: &str) -> String {
    format!("{} domain {name}", target(&service.project, &service.name))
}

/// The audit target of a change of a service's privileges: the service and what it now has.
fn privileges_target(
    project: &ProjectName,
    name: &ServiceName,
    runtime: &RuntimeSettings,
) -> String {
    format!("{}: {}", target(project, name), runtime.security)
}

impl Store {
    pub async fn create_service(&self, actor: &Actor, new: &NewService<'_>) -> Result<Service> {
        let NewService {
            project,
            name,
            settings,
            runtime,
            hostname,
            github,
        } = *new;
        // Privileges beyond the default are a decision someone must be accountable for.
        let privileged = (runtime.security != ContainerSecurity::default())
            .then(|| privileges_target(project, name, runtime));
        let runtime = serde_json::to_string(runtime)
            .map_err(|e| StoreError::corrupt("runtime settings", e))?;
        let (repo, image) = source_columns(settings);
        let id: i64 = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let project_id: Option<i64> =
                sqlx::query_scalar("SELECT id FROM projects WHERE team_id = $1 AND name = $2")
                    .bind(actor.team.0)
                    .bind(project.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
            let project_id =
                project_id.ok_or_else(|| StoreError::NotFound(format!("project `{project}`")))?;
            let now = now_millis();
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO services (project_id, name, repo, branch, dockerfile, context, port,
                                       created_at, updated_at, runtime, github_installation_id,
                                       github_repository_id, github_repository, image)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10, $11, $12, $13) RETURNING id",
            )
            .bind(project_id)
            .bind(name.as_str())
            .bind(repo)
            .bind(settings.branch.as_str())
            .bind(settings.dockerfile.as_str())
            .bind(settings.context.as_str())
            .bind(settings.port.map(|port| i64::from(port.get())))
            .bind(now)
            .bind(&runtime)
            .bind(github.map(|link| link.installation_id))
            .bind(github.map(|link| link.repository_id))
            .bind(github.map(|link| link.full_name.as_str()))
            .bind(&image)
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::unique(format!(
                "service `{}` already exists",
                target(project, name)
            )))?;
            sqlx::query(
                "INSERT INTO hostnames (service_id, hostname, generated, created_at)
                 VALUES ($1, $2, TRUE, $3)",
            )
            .bind(id)
            .bind(hostname)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::unique(format!(
                "hostname `{hostname}` is already in use"
            )))?;
            audit!(tx, actor, AuditAction::ServiceCreate, target(project, name));
            if let Some(link) = github {
                let linked = github_target(project, name, Some(link));
                audit!(tx, actor, AuditAction::ServiceGitHubInstallation, linked);
            }
            if let Some(privileges) = &privileged {
                audit!(tx, actor, AuditAction::ServicePrivileges, privileges);
            }
            tx.commit().await?;
            id
        });
        self.service_by_id(id).await
    }

    /// Every service of the team, or of one of its projects, ordered by project and name.
    /// The services of `teams` (`None`: of every team), of one project or of all. A project
    /// named is first looked up in `teams`, to tell "no such project" from "no services".
    pub async fn list_services(
        &self,
        teams: Option<&[TeamId]>,
        project: Option<&ProjectName>,
    ) -> Result<Vec<Service>> {
        if let Some(project) = project {
            let owner = self.project_team(project).await?;
            if owner.is_none_or(|owner| teams.is_some_and(|teams| !teams.contains(&owner))) {
                return Err(StoreError::NotFound(format!("project `{project}`")));
            }
        }
        let query = format!(
            select_services!(
                "{} AND ($1 IS NULL OR p.name = $1) AND s.preview_of IS NULL ORDER BY p.name, s.name"
            ),
            in_teams("p.team_id", teams)
        );
        let rows: Vec<ServiceRow> = with_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(query.clone()))
                .bind(project.map(ProjectName::as_str))
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(Service::try_from).collect()
    }

    pub async fn service(
        &self,
        team: TeamId,
        project: &ProjectName,
        name: &ServiceName,
    ) -> Result<Service> {
        let row: Option<ServiceRow> = with_pool!(self, |pool| {
            sqlx::query_as(select_services!(
                "p.team_id = $1 AND p.name = $2 AND s.name = $3"
            ))
            .bind(team.0)
            .bind(project.as_str())
            .bind(name.as_str())
            .fetch_optional(pool)
            .await?
        });
        row.ok_or_else(|| StoreError::NotFound(format!("service `{}`", target(project, name))))?
            .try_into()
    }

    /// A service by id, for the worker, which acts on jobs rather than on behalf of a caller.
    pub async fn service_by_id(&self, id: i64) -> Result<Service> {
        let row: Option<ServiceRow> = with_pool!(self, |pool| {
            sqlx::query_as(select_services!("s.id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        row.ok_or_else(|| StoreError::NotFound(format!("service #{id}")))?
            .try_into()
    }

    /// The services created from GitHub repository `repository_id` (GitHub's id), of every
    /// team: where a webhook delivery about that repository goes.
    pub async fn services_linked_to_repository(&self, repository_id: i64) -> Result<Vec<Service>> {
        let rows: Vec<ServiceRow> = with_pool!(self, |pool| {
            sqlx::query_as(select_services!(
                "s.github_repository_id = $1 AND s.preview_of IS NULL ORDER BY s.id"
            ))
            .bind(repository_id)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(Service::try_from).collect()
    }

    /// Replaces a service's settings, if it is still at the revision `service` was read at:
    /// the check is part of the `UPDATE`, so of two changes made from one read exactly one
    /// applies, and the other is [`StoreError::Stale`]. The revision goes up by one. A new
    /// repository ends the service's link to GitHub.
    pub async fn update_service(
        &self,
        actor: &Actor,
        service: &Service,
        settings: &ServiceSettings,
        runtime: &RuntimeSettings,
    ) -> Result<Service> {
        let privileges = (runtime.security != service.runtime.security)
            .then(|| privileges_target(&service.project, &service.name, runtime));
        // The installation's tokens are for the repository the link was made with: another
        // one is reached without them.
        let unlinked = service.github.is_some() && settings.source != service.settings.source;
        let runtime = serde_json::to_string(runtime)
            .map_err(|e| StoreError::corrupt("runtime settings", e))?;
        let (repo, image) = source_columns(settings);
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let updated = sqlx::query(
                "UPDATE services SET repo = $1, branch = $2, dockerfile = $3, context = $4,
                                     port = $5, updated_at = $6, runtime = $9,
                                     revision = revision + 1, image = $11
                 WHERE id = $7 AND revision = $10
                   AND project_id IN (SELECT id FROM projects WHERE team_id = $8)",
            )
            .bind(repo)
            .bind(settings.branch.as_str())
            .bind(settings.dockerfile.as_str())
            .bind(settings.context.as_str())
            .bind(settings.port.map(|port| i64::from(port.get())))
            .bind(now_millis())
            .bind(service.id)
            .bind(actor.team.0)
            .bind(&runtime)
            .bind(service.revision)
            .bind(&image)
            .execute(&mut *tx)
            .await?;
            if updated.rows_affected() == 0 {
                let exists: Option<i64> = sqlx::query_scalar(
                    "SELECT id FROM services
                     WHERE id = $1 AND project_id IN (SELECT id FROM projects WHERE team_id = $2)",
                )
                .bind(service.id)
                .bind(actor.team.0)
                .fetch_optional(&mut *tx)
                .await?;
                let what = format!("service `{}`", target(&service.project, &service.name));
                return Err(match exists {
                    Some(_) => StoreError::Stale(what),
                    None => StoreError::NotFound(what),
                });
            }
            audit!(
                tx,
                actor,
                AuditAction::ServiceUpdate,
                target(&service.project, &service.name)
            );
            if let Some(privileges) = &privileges {
                audit!(tx, actor, AuditAction::ServicePrivileges, privileges);
            }
            if unlinked {
                sqlx::query(
                    "UPDATE services SET github_installation_id = NULL,
                            github_repository_id = NULL, github_repository = NULL
                     WHERE id = $1",
                )
                .bind(service.id)
                .execute(&mut *tx)
                .await?;
                let what = github_target(&service.project, &service.name, None);
                audit!(tx, actor, AuditAction::ServiceGitHubInstallation, what);
            }
            tx.commit().await?;
        });
        self.service_by_id(service.id).await
    }

    /// Sets the login a service's image is pulled with (`user` and the password sealed by the
    /// caller), or removes it (`None`). Audited with the user's name, never the password.
    pub async fn set_registry_login(
        &self,
        actor: &Actor,
        service: &Service,
        login: Option<(&str, &str)>,
    ) -> Result<()> {
        let what = format!(
            "{}: registry user {}",
            target(&service.project, &service.name),
            login.map_or("none", |(user, _)| user)
        );
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let updated = sqlx::query(
                "UPDATE services SET registry_user = $1, registry_password = $2, updated_at = $3
                 WHERE id = $4 AND project_id IN (SELECT id FROM projects WHERE team_id = $5)",
            )
            .bind(login.map(|(user, _)| user))
            .bind(login.map(|(_, sealed)| sealed))
            .bind(now_millis())
            .bind(service.id)
            .bind(actor.team.0)
            .execute(&mut *tx)
            .await?;
            if updated.rows_affected() == 0 {
                return Err(StoreError::NotFound(format!(
                    "service `{}`",
                    target(&service.project, &service.name)
                )));
            }
            audit!(tx, actor, AuditAction::ServiceRegistryLogin, what);
            tx.commit().await?;
        });
        Ok(())
    }

    /// The sealed password of a service's registry login, for the worker that pulls its image.
    pub async fn registry_password(&self, service_id: i64) -> Result<Option<String>> {
        let sealed: Option<Option<String>> = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT registry_password FROM services WHERE id = $1")
                .bind(service_id)
                .fetch_optional(pool)
                .await?
        });
        Ok(sealed.flatten())
    }

    /// Deletes a service with its deployment history and queued jobs. Refused while one of its
    /// jobs is running: cancel the deployment first.
    pub async fn delete_service(&self, actor: &Actor, service: &Service) -> Result<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            if running_service_jobs!(tx, service.id) > 0 {
                return Err(StoreError::Conflict(format!(
                    "service `{}` has a deployment in progress; cancel it first",
                    target(&service.project, &service.name)
                )));
            }
            let deleted = sqlx::query(
                "DELETE FROM services
                 WHERE id = $1 AND project_id IN (SELECT id FROM projects WHERE team_id = $2)",
            )
            .bind(service.id)
            .bind(actor.team.0)
            .execute(&mut *tx)
            .await?;
            if deleted.rows_affected() == 0 {
                return Err(StoreError::NotFound(format!(
                    "service `{}`",
                    target(&service.project, &service.name)
                )));
            }
            audit!(
                tx,
                actor,
                AuditAction::ServiceDelete,
                target(&service.project, &service.name)
            );
            tx.commit().await?;
        });
        Ok(())
    }
}
