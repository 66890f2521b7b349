//! Teams and their members. Every user has a personal team; more can be made and shared.

use helvetia_core::account::{Email, Member, Team};
use helvetia_core::audit::AuditAction;
use helvetia_core::auth::{Actor, Caller, Role, TeamId, UserId};
use helvetia_core::name::TeamName;

use crate::audit::{AuditBy, audit};
use crate::{Result, Store, StoreError, WritePool, now_millis, timestamp, with_pool};

/// The first of `$wanted`, `$wanted-2`, `$wanted-3`, … that no team has, looked up in `$tx`.
macro_rules! unique_team_name {
    ($tx:expr, $wanted:expr) => {{
        let wanted: helvetia_core::name::TeamName = $wanted;
        let mut candidate = wanted.clone();
        let mut n = 1;
        loop {
            let taken: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM teams WHERE name = $1")
                .bind(candidate.as_str())
                .fetch_one(&mut *$tx)
                .await?;
            if taken == 0 {
                break candidate;
            }
            n += 1;
            candidate = wanted.numbered(n);
        }
    }};
}
pub(crate) use unique_team_name;

#[derive(sqlx::FromRow)]
struct TeamRow {
    id: i64,
    name: String,
    personal_user_id: Option<i64>,
    created_at: i64,
}

impl TryFrom<TeamRow> for Team {
    type Error = StoreError;
    fn try_from(row: TeamRow) -> Result<Team> {
        Ok(Team {
            id: TeamId(row.id),
            name: TeamName::parse(&row.name).map_err(|e| StoreError::corrupt("team name", e))?,
            personal_of: row.personal_user_id.map(UserId),
            created_at: timestamp(row.created_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct MemberRow {
    user_id: i64,
    email: String,
    name: String,
    role: String,
    created_at: i64,
}

impl TryFrom<MemberRow> for Member {
    type Error = StoreError;
    fn try_from(row: MemberRow) -> Result<Member> {
        Ok(Member {
            user: UserId(row.user_id),
            email: Email::parse(&row.email).map_err(|e| StoreError::corrupt("e-mail", e))?,
            name: row.name,
            role: row
                .role
                .parse()
                .map_err(|e| StoreError::corrupt("role", e))?,
            since: timestamp(row.created_at)?,
        })
    }
}

impl Store {
    /// A new team with no members: for tests and the system. Users create teams with
    /// [`Store::create_team_for`].
    pub async fn create_team(&self, name: &str) -> Result<TeamId> {
        let id: i64 = with_pool!(self, |pool| {
            sqlx::query_scalar("INSERT INTO teams (name, created_at) VALUES ($1, $2) RETURNING id")
                .bind(name)
                .bind(now_millis())
                .fetch_one(pool)
                .await
                .map_err(StoreError::unique(format!("team `{name}` already exists")))?
        });
        Ok(TeamId(id))
    }

    /// A new team with `caller` (a user) as its owner.
    pub async fn create_team_for(&self, caller: &Caller, name: &TeamName) -> Result<Team> {
        let user = caller
            .user()
            .ok_or_else(|| StoreError::Conflict("only a user can own a team".into()))?;
        let row: TeamRow = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let now = now_millis();
            let row: TeamRow = sqlx::query_as(
                "INSERT INTO teams (name, created_at) VALUES ($1, $2)
                 RETURNING id, name, personal_user_id, created_at",
            )
            .bind(name.as_str())
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::unique(format!(
                "the name `{name}` is not available"
            )))?;
            sqlx::query(
                "INSERT INTO team_members (team_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(row.id)
            .bind(user.0)
            .bind(Role::Owner.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            audit!(
                tx,
                AuditBy {
                    team: Some(TeamId(row.id)),
                    ..AuditBy::from(caller)
                },
                AuditAction::TeamCreate,
                name.as_str()
            );
            tx.commit().await?;
            row
        });
        row.try_into()
    }

    pub async fn team_by_name(&self, name: &TeamName) -> Result<Option<Team>> {
        let row: Option<TeamRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, name, personal_user_id, created_at FROM teams WHERE name = $1",
            )
            .bind(name.as_str())
            .fetch_optional(pool)
            .await?
        });
        row.map(Team::try_from).transpose()
    }

    pub async fn team(&self, id: TeamId) -> Result<Team> {
        let row: Option<TeamRow> = with_pool!(self, |pool| {
            sqlx::query_as("SELECT id, name, personal_user_id, created_at FROM teams WHERE id = $1")
                .bind(id.0)
                .fetch_optional(pool)
                .await?
        });
        row.ok_or_else(|| StoreError::NotFound(format!("team #{}", id.0)))?
            .try_into()
    }

    /// Every team, by name: what the system sees.
    pub async fn list_teams(&self) -> Result<Vec<Team>> {
        let rows: Vec<TeamRow> = with_pool!(self, |pool| {
            sqlx::query_as("SELECT id, name, personal_user_id, created_at FROM teams ORDER BY name")
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(Team::try_from).collect()
    }

    /// The team made for `user` at sign-up.
    pub async fn personal_team(&self, user: UserId) -> Result<Option<TeamId>> {
        let team: Option<i64> = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT id FROM teams WHERE personal_user_id = $1")
                .bind(user.0)
                .fetch_optional(pool)
                .await?
        });
        Ok(team.map(TeamId))
    }

    pub async fn members(&self, team: TeamId) -> Result<Vec<Member>> {
        let rows: Vec<MemberRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT m.user_id, u.email, u.name, m.role, m.created_at
                 FROM team_members m JOIN users u ON u.id = m.user_id
                 WHERE m.team_id = $1 ORDER BY u.email",
            )
            .bind(team.0)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(Member::try_from).collect()
    }

    /// Makes `user` a member of the actor's team with `role`, or changes their role.
    pub async fn set_member(&self, actor: &Actor, user: UserId, role: Role) -> Result<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "INSERT INTO team_members (team_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (team_id, user_id) DO UPDATE SET role = excluded.role",
            )
            .bind(actor.team.0)
            .bind(user.0)
            .bind(role.as_str())
            .bind(now_millis())
            .execute(&mut *tx)
            .await?;
            audit!(
                tx,
                actor,
                AuditAction::MemberRole,
                format!("user:{} {role}", user.0)
            );
            tx.commit().await?;
        });
        Ok(())
    }
}
