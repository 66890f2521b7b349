//! User accounts. The first user becomes the instance's administrator and adopts the team that
//! owned everything before accounts existed, with its projects and tokens: nothing is lost.

use helvetia_core::account::{Email, User};
use helvetia_core::audit::AuditAction;
use helvetia_core::auth::{Role, UserId};
use helvetia_core::name::TeamName;

use crate::audit::{AuditBy, audit};
use crate::teams::unique_team_name;
use crate::tokens::DEFAULT_TEAM;
use crate::{Result, Store, StoreError, WritePool, now_millis, timestamp, with_pool};

/// `SELECT` of every column a [`User`] needs, followed by `$where`.
macro_rules! select_users {
    ($where:literal) => {
        concat!(
            "SELECT id, email, name, instance_admin, password_hash IS NOT NULL AS has_password,
                    totp_enabled_at IS NOT NULL AS totp_enabled, created_at,
                    disabled_at IS NOT NULL AS disabled
             FROM users WHERE ",
            $where
        )
    };
}

pub(crate) use select_users;

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    pub(crate) id: i64,
    pub(crate) email: String,
    pub(crate) name: String,
    pub(crate) instance_admin: bool,
    pub(crate) has_password: bool,
    pub(crate) totp_enabled: bool,
    pub(crate) created_at: i64,
    pub(crate) disabled: bool,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;
    fn try_from(row: UserRow) -> Result<User> {
        Ok(User {
            id: UserId(row.id),
            email: Email::parse(&row.email).map_err(|e| StoreError::corrupt("e-mail", e))?,
            name: row.name,
            instance_admin: row.instance_admin,
            has_password: row.has_password,
            totp_enabled: row.totp_enabled,
            created_at: timestamp(row.created_at)?,
            disabled: row.disabled,
        })
    }
}

/// A user about to be created.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: Email,
    pub name: String,
    /// An argon2id PHC string, or `None` until the user sets one through a link.
    pub password_hash: Option<String>,
    pub instance_admin: bool,
}

/// Inserts `$user` in the transaction `$tx` as [`Store::create_user`] describes, audited by
/// `$by`; answers its [`UserRow`].
macro_rules! insert_user {
    ($tx:expr, $by:expr, $user:expr) => {{
        let now = now_millis();
        let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&mut *$tx)
            .await?;
        let first = existing == 0;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO users (email, name, password_hash, instance_admin, created_at)
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind($user.email.as_str())
        .bind(&$user.name)
        .bind(&$user.password_hash)
        .bind(first || $user.instance_admin)
        .bind(now)
        .fetch_one(&mut *$tx)
        .await
        .map_err(StoreError::unique(format!(
            "an account for {} already exists",
            $user.email
        )))?;
        let wanted = TeamName::derive($user.email.local_part());
        let adopted: Option<i64> = if first {
            sqlx::query_scalar("SELECT id FROM teams WHERE name = $1 AND personal_user_id IS NULL")
                .bind(DEFAULT_TEAM)
                .fetch_optional(&mut *$tx)
                .await?
        } else {
            None
        };
        let team: i64 = match adopted {
            Some(team) => {
                let name = unique_team_name!($tx, wanted);
                sqlx::query("UPDATE teams SET name = $1, personal_user_id = $2 WHERE id = $3")
                    .bind(name.as_str())
                    .bind(id)
                    .bind(team)
                    .execute(&mut *$tx)
                    .await?;
                // Every token from before the first user: the bootstrap token, those it made
                // and break-glass tokens — all acted for the pre-accounts team.
                sqlx::query(
                    "UPDATE api_tokens SET user_id = $1, team_id = NULL
                     WHERE user_id IS NULL AND (team_id = $2 OR team_id IS NULL)",
                )
                .bind(id)
                .bind(team)
                .execute(&mut *$tx)
                .await?;
                team
            }
            None => {
                let name = unique_team_name!($tx, wanted);
                sqlx::query_scalar(
                    "INSERT INTO teams (name, created_at, personal_user_id) VALUES ($1, $2, $3)
                     RETURNING id",
                )
                .bind(name.as_str())
                .bind(now)
                .bind(id)
                .fetch_one(&mut *$tx)
                .await?
            }
        };
        sqlx::query(
            "INSERT INTO team_members (team_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(team)
        .bind(id)
        .bind(Role::Owner.as_str())
        .bind(now)
        .execute(&mut *$tx)
        .await?;
        let target = $user.email.as_str().to_owned();
        audit!(
            $tx,
            AuditBy {
                team: Some(helvetia_core::auth::TeamId(team)),
                ..$by.clone()
            },
            AuditAction::UserCreate,
            target
        );
        let row: UserRow = sqlx::query_as(select_users!("id = $1"))
            .bind(id)
            .fetch_one(&mut *$tx)
            .await?;
        row
    }};
}
pub(crate) use insert_user;

impl Store {
    /// Creates a user with a personal team they own. The first user of the instance is its
    /// administrator whatever `user.instance_admin` says, and their personal team is the
    /// pre-accounts team (renamed after them): its projects stay where they are and its tokens
    /// become theirs.
    pub async fn create_user(&self, by: AuditBy, user: &NewUser) -> Result<User> {
        let row: UserRow = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let row: UserRow = insert_user!(tx, by, user);
            tx.commit().await?;
            row
        });
        row.try_into()
    }

    pub async fn user(&self, id: UserId) -> Result<User> {
        let row: Option<UserRow> = with_pool!(self, |pool| {
            sqlx::query_as(select_users!("id = $1"))
                .bind(id.0)
                .fetch_optional(pool)
                .await?
        });
        row.ok_or_else(|| StoreError::NotFound(format!("user #{}", id.0)))?
            .try_into()
    }

    pub async fn user_by_email(&self, email: &Email) -> Result<Option<User>> {
        let row: Option<UserRow> = with_pool!(self, |pool| {
            sqlx::query_as(select_users!("email = $1"))
                .bind(email.as_str())
                .fetch_optional(pool)
                .await?
        });
        row.map(User::try_from).transpose()
    }

    pub async fn list_users(&self) -> Result<Vec<User>> {
        let rows: Vec<UserRow> = with_pool!(self, |pool| {
            sqlx::query_as(select_users!("TRUE ORDER BY id"))
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(User::try_from).collect()
    }

    pub async fn count_users(&self) -> Result<i64> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM users")
                .fetch_one(pool)
                .await?
        }))
    }

    /// Disables `user`: their tokens and sessions stop working at once (the account and what it
    /// did stay, for the audit log). Audited in `by`'s log.
    pub async fn disable_user(&self, by: AuditBy, user: UserId) -> Result<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let now = now_millis();
            let email: Option<String> = sqlx::query_scalar(
                "UPDATE users SET disabled_at = $1 WHERE id = $2 AND disabled_at IS NULL
                 RETURNING email",
            )
            .bind(now)
            .bind(user.0)
            .fetch_optional(&mut *tx)
            .await?;
            let email =
                email.ok_or_else(|| StoreError::NotFound(format!("active user #{}", user.0)))?;
            sqlx::query(
                "UPDATE sessions SET revoked_at = $1, revoked_reason = 'user disabled'
                 WHERE user_id = $2 AND revoked_at IS NULL",
            )
            .bind(now)
            .bind(user.0)
            .execute(&mut *tx)
            .await?;
            audit!(tx, by, AuditAction::UserDisable, email);
            tx.commit().await?;
        });
        Ok(())
    }
}
