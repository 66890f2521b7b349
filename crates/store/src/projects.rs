//! Projects, always read and written on behalf of their owning team.

use helvetia_core::audit::AuditAction;
use helvetia_core::auth::{Actor, TeamId};
use helvetia_core::name::ProjectName;
use helvetia_core::project::Project;

use crate::audit::audit;
use crate::{Result, Store, StoreError, WritePool, in_teams, now_millis, timestamp, with_pool};

#[derive(sqlx::FromRow)]
pub(crate) struct ProjectRow {
    id: i64,
    name: String,
    created_at: i64,
}

impl TryFrom<ProjectRow> for Project {
    type Error = StoreError;
    fn try_from(row: ProjectRow) -> Result<Project> {
        Ok(Project {
            id: row.id,
            name: ProjectName::parse(&row.name)
                .map_err(|e| StoreError::corrupt("project name", e))?,
            created_at: timestamp(row.created_at)?,
        })
    }
}

impl Store {
    pub async fn create_project(&self, actor: &Actor, name: &ProjectName) -> Result<Project> {
        let row: ProjectRow = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let row = sqlx::query_as(
                "INSERT INTO projects (team_id, name, created_at) VALUES ($1, $2, $3)
                 RETURNING id, name, created_at",
            )
            .bind(actor.team.0)
            .bind(name.as_str())
            .bind(now_millis())
            .fetch_one(&mut *tx)
            .await
            // Whose it is stays unsaid: project names are unique across teams.
            .map_err(StoreError::unique(format!(
                "the project name `{name}` is not available"
            )))?;
            audit!(tx, actor, AuditAction::ProjectCreate, name.as_str());
            tx.commit().await?;
            row
        });
        row.try_into()
    }

    /// The projects of `teams` (`None`: of every team).
    pub async fn list_projects(&self, teams: Option<&[TeamId]>) -> Result<Vec<Project>> {
        let query = format!(
            "SELECT id, name, created_at FROM projects WHERE {} ORDER BY name",
            in_teams("team_id", teams)
        );
        let rows: Vec<ProjectRow> = with_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(query.clone()))
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(Project::try_from).collect()
    }

    /// The team that owns the project called `name`, if there is one. Only for deciding
    /// whether a caller may see it: answering the caller goes through [`Store::project`].
    pub async fn project_team(&self, name: &ProjectName) -> Result<Option<TeamId>> {
        let team: Option<i64> = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT team_id FROM projects WHERE name = $1")
                .bind(name.as_str())
                .fetch_optional(pool)
                .await?
        });
        Ok(team.map(TeamId))
    }

    /// The project called `name` if `team` owns it. Another team's project is "not found", so
    /// a caller cannot even learn that it exists.
    pub async fn project(&self, team: TeamId, name: &ProjectName) -> Result<Project> {
        let row: Option<ProjectRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, name, created_at FROM projects WHERE team_id = $1 AND name = $2",
            )
            .bind(team.0)
            .bind(name.as_str())
            .fetch_optional(pool)
            .await?
        });
        row.ok_or_else(|| StoreError::NotFound(format!("project `{name}`")))?
            .try_into()
    }

    /// Deletes an empty project. A project with services is refused: deleting them is a
    /// separate, deliberate step because it stops running apps.
    pub async fn delete_project(&self, actor: &Actor, name: &ProjectName) -> Result<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let id: Option<i64> =
                sqlx::query_scalar("SELECT id FROM projects WHERE team_id = $1 AND name = $2")
                    .bind(actor.team.0)
                    .bind(name.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
            let id = id.ok_or_else(|| StoreError::NotFound(format!("project `{name}`")))?;
            let services: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM services WHERE project_id = $1")
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
            if services > 0 {
                return Err(StoreError::Conflict(format!(
                    "project `{name}` still has {services} service(s); delete them first"
                )));
            }
            sqlx::query("DELETE FROM projects WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            audit!(tx, actor, AuditAction::ProjectDelete, name.as_str());
            tx.commit().await?;
        });
        Ok(())
    }
}
