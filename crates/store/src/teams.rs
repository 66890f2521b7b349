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

/// Fails (rolling back `$tx`) when team `$team` has no owner left.
macro_rules! keep_an_owner {
    ($tx:expr, $team:expr) => {{
        let owners: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM team_members WHERE team_id = $1 AND role = $2",
        )
        .bind($team.0)
        .bind(Role::Owner.as_str())
        .fetch_one(&mut *$tx)
        .await?;
        if owners == 0 {
            return Err(StoreError::Conflict(
                "a team needs an owner: make someone else owner first".into(),
            ));
        }
    }};
}

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

    /// Changes the role of `member` of the actor's team. A team keeps at least one owner.
    pub async fn change_role(&self, actor: &Actor, member: &Member, role: Role) -> Result<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let changed = sqlx::query(
                "UPDATE team_members SET role = $1 WHERE team_id = $2 AND user_id = $3",
            )
            .bind(role.as_str())
            .bind(actor.team.0)
            .bind(member.user.0)
            .execute(&mut *tx)
            .await?;
            if changed.rows_affected() == 0 {
                return Err(StoreError::NotFound(format!("member {}", member.email)));
            }
            keep_an_owner!(tx, actor.team);
            audit!(
                tx,
                actor,
                AuditAction::MemberRole,
                format!("{} {role}", member.email)
            );
            tx.commit().await?;
        });
        Ok(())
    }

    /// Removes `member` from the actor's team (the actor itself: leaving). A team keeps at
    /// least one owner; a user's personal team keeps that user.
    pub async fn remove_member(&self, actor: &Actor, member: &Member) -> Result<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let personal: Option<i64> =
                sqlx::query_scalar("SELECT personal_user_id FROM teams WHERE id = $1")
                    .bind(actor.team.0)
                    .fetch_one(&mut *tx)
                    .await?;
            if personal == Some(member.user.0) {
                return Err(StoreError::Conflict(
                    "a personal team cannot lose the user it was made for".into(),
                ));
            }
            let removed =
                sqlx::query("DELETE FROM team_members WHERE team_id = $1 AND user_id = $2")
                    .bind(actor.team.0)
                    .bind(member.user.0)
                    .execute(&mut *tx)
                    .await?;
            if removed.rows_affected() == 0 {
                return Err(StoreError::NotFound(format!("member {}", member.email)));
            }
            keep_an_owner!(tx, actor.team);
            // Tokens limited to this team act nowhere once their user is out of it.
            sqlx::query(
                "UPDATE api_tokens SET revoked_at = $1
                 WHERE user_id = $2 AND team_id = $3 AND revoked_at IS NULL",
            )
            .bind(now_millis())
            .bind(member.user.0)
            .bind(actor.team.0)
            .execute(&mut *tx)
            .await?;
            audit!(
                tx,
                actor,
                AuditAction::MemberRemove,
                member.email.as_str().to_owned()
            );
            tx.commit().await?;
        });
        Ok(())
    }

    /// Deletes the actor's team, if it owns no projects and is nobody's personal team. The
    /// entry goes to the actor's own log (the team's goes with it).
    pub async fn delete_team(&self, actor: &Actor) -> Result<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let projects: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM projects WHERE team_id = $1")
                    .bind(actor.team.0)
                    .fetch_one(&mut *tx)
                    .await?;
            if projects > 0 {
                return Err(StoreError::Conflict(format!(
                    "the team still owns {projects} project(s): delete them first"
                )));
            }
            let name: Option<String> = sqlx::query_scalar(
                "DELETE FROM teams WHERE id = $1 AND personal_user_id IS NULL RETURNING name",
            )
            .bind(actor.team.0)
            .fetch_optional(&mut *tx)
            .await?;
            let name = name
                .ok_or_else(|| StoreError::Conflict("a personal team cannot be deleted".into()))?;
            audit!(
                tx,
                AuditBy {
                    team: None,
                    ..AuditBy::from(actor)
                },
                AuditAction::TeamDelete,
                name
            );
            tx.commit().await?;
        });
        Ok(())
    }
}
