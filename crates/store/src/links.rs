//! Single-use links: sign-up (the bootstrap owner's), password reset (issued by an admin or by
//! `helvetia server admin-token --reset-link`) and invitations to a team. Only a link's hash is
//! stored; using one marks it used in the same transaction as what it does, so a link works
//! once even when two requests race.

use helvetia_core::account::{Email, User};
use helvetia_core::audit::AuditAction;
use helvetia_core::auth::{Actor, Role, TeamId, UserId};
use helvetia_core::name::TeamName;
use jiff::Timestamp;

use crate::audit::{AuditBy, audit};
use crate::teams::unique_team_name;
use crate::tokens::DEFAULT_TEAM;
use crate::users::{NewUser, UserRow, insert_user, select_users};
use crate::{Result, Store, StoreError, WritePool, millis, now_millis, timestamp, with_pool};

/// What a link does when used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// Creates an account (the bootstrap owner's).
    Signup,
    /// Sets the password of one user.
    Reset,
    /// Joins a team with a role (creating an account first if need be).
    Invite,
}

impl LinkKind {
    fn as_str(self) -> &'static str {
        match self {
            LinkKind::Signup => "signup",
            LinkKind::Reset => "reset",
            LinkKind::Invite => "invite",
        }
    }
}

/// A link about to be stored: its hash, never the link.
#[derive(Debug, Clone)]
pub struct NewLink {
    pub kind: LinkKind,
    pub hash: String,
    /// The team an invitation joins, with `role`.
    pub team: Option<TeamId>,
    pub role: Option<Role>,
    /// The user a reset is for.
    pub user: Option<UserId>,
    /// The only address that may use an invitation.
    pub email: Option<Email>,
    pub expires_at: Timestamp,
}

/// An open invitation, as a team's admins see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    pub id: i64,
    pub role: Role,
    pub email: Option<Email>,
    pub created_by: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

#[derive(sqlx::FromRow)]
struct InvitationRow {
    id: i64,
    role: Option<String>,
    email: Option<String>,
    created_by: String,
    created_at: i64,
    expires_at: i64,
}

impl TryFrom<InvitationRow> for Invitation {
    type Error = StoreError;
    fn try_from(row: InvitationRow) -> Result<Invitation> {
        let role = row.role.as_deref().unwrap_or_default();
        Ok(Invitation {
            id: row.id,
            role: role.parse().map_err(|e| StoreError::corrupt("role", e))?,
            email: row
                .email
                .as_deref()
                .map(Email::parse)
                .transpose()
                .map_err(|e| StoreError::corrupt("e-mail", e))?,
            created_by: row.created_by,
            created_at: timestamp(row.created_at)?,
            expires_at: timestamp(row.expires_at)?,
        })
    }
}

/// A usable link found by its hash.
#[derive(sqlx::FromRow)]
struct LinkRow {
    id: i64,
    kind: String,
    team_id: Option<i64>,
    role: Option<String>,
    user_id: Option<i64>,
    email: Option<String>,
}

impl LinkRow {
    fn role(&self) -> Result<Role> {
        let role = self.role.as_deref().unwrap_or_default();
        role.parse().map_err(|e| StoreError::corrupt("role", e))
    }
}

/// "Not found" for a link that is unknown, used, revoked or expired: which of them is not said.
fn unusable() -> StoreError {
    StoreError::NotFound("link (unknown, already used or expired)".into())
}

/// Finds the usable link `$hash` of one of `$kinds` (SQL text) in `$tx` and marks it used.
macro_rules! take_link {
    ($tx:expr, $hash:expr, $kinds:literal, $now:expr) => {{
        let row: Option<LinkRow> = sqlx::query_as(concat!(
            "UPDATE links SET used_at = $1
             WHERE token_hash = $2 AND kind IN ",
            $kinds,
            " AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $1
             RETURNING id, kind, team_id, role, user_id, email"
        ))
        .bind($now)
        .bind($hash)
        .fetch_optional(&mut *$tx)
        .await?;
        row.ok_or_else(unusable)?
    }};
}

/// Adds `$user` to the team of invitation `$link` (keeping a role they already have there) and
/// audits the acceptance in the team's log.
macro_rules! join_team {
    ($tx:expr, $link:expr, $user:expr, $email:expr, $by:expr) => {{
        let link: &LinkRow = $link;
        let team = link
            .team_id
            .ok_or_else(|| StoreError::corrupt("invitation", "no team"))?;
        let role = link.role()?;
        sqlx::query(
            "INSERT INTO team_members (team_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (team_id, user_id) DO NOTHING",
        )
        .bind(team)
        .bind($user)
        .bind(role.as_str())
        .bind(now_millis())
        .execute(&mut *$tx)
        .await?;
        audit!(
            $tx,
            AuditBy {
                team: Some(TeamId(team)),
                user: Some(UserId($user)),
                ..$by
            },
            AuditAction::InvitationAccept,
            format!("invitation:{} {} {role}", link.id, $email)
        );
    }};
}

impl Store {
    /// Stores a link, audited in `by`'s log (an invitation in its team's).
    pub async fn create_link(&self, by: AuditBy, link: &NewLink) -> Result<i64> {
        let action = match link.kind {
            LinkKind::Invite => AuditAction::InvitationCreate,
            LinkKind::Signup | LinkKind::Reset => AuditAction::LinkCreate,
        };
        let id: i64 = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO links (kind, token_hash, team_id, role, user_id, email, created_by,
                                    created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
            )
            .bind(link.kind.as_str())
            .bind(&link.hash)
            .bind(link.team.map(|team| team.0))
            .bind(link.role.map(Role::as_str))
            .bind(link.user.map(|user| user.0))
            .bind(link.email.as_ref().map(Email::as_str))
            .bind(&by.actor)
            .bind(now_millis())
            .bind(millis(link.expires_at))
            .fetch_one(&mut *tx)
            .await?;
            let target = match (link.kind, &link.email, link.user) {
                (LinkKind::Invite, email, _) => format!(
                    "invitation:{id} {} {}",
                    email.as_ref().map_or("anyone", Email::as_str),
                    link.role.map_or("", Role::as_str)
                ),
                (kind, _, Some(user)) => format!("{}:{id} user:{}", kind.as_str(), user.0),
                (kind, _, None) => format!("{}:{id}", kind.as_str()),
            };
            audit!(tx, by, action, target);
            tx.commit().await?;
            id
        });
        Ok(id)
    }

    /// Whether link `hash` exists and can still be used: checked before the (deliberately slow)
    /// password hashing, so a made-up link costs the server nothing. Using it decides again.
    pub async fn link_is_usable(&self, hash: &str) -> Result<bool> {
        let usable: i64 = with_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM links
                 WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL
                   AND expires_at > $2",
            )
            .bind(hash)
            .bind(now_millis())
            .fetch_one(pool)
            .await?
        });
        Ok(usable > 0)
    }

    /// Revokes the unused sign-up links no user has consumed: a new bootstrap link replaces the
    /// one printed at an earlier start.
    pub async fn revoke_signup_links(&self) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE links SET revoked_at = $1
                 WHERE kind = 'signup' AND used_at IS NULL AND revoked_at IS NULL",
            )
            .bind(now_millis())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Creates an account with `name` and `password_hash` through a sign-up link or an
    /// invitation, and uses the link up. The address is the invitation's, if it names one
    /// (`email`, if given, must be it); an invitation also joins its team.
    pub async fn sign_up_with_link(
        &self,
        hash: &str,
        email: Option<Email>,
        name: String,
        password_hash: String,
        client: Option<String>,
    ) -> Result<User> {
        let now = now_millis();
        let row: UserRow = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let link: LinkRow = take_link!(tx, hash, "('signup', 'invite')", now);
            // A sign-up link is the first owner's: once anyone has an account, it is spent.
            let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
                .fetch_one(&mut *tx)
                .await?;
            if link.kind == LinkKind::Signup.as_str() && users > 0 {
                return Err(unusable());
            }
            let bound = link
                .email
                .as_deref()
                .map(Email::parse)
                .transpose()
                .map_err(|e| StoreError::corrupt("e-mail", e))?;
            let email = match (bound, email) {
                (Some(bound), Some(given)) if bound != given => {
                    return Err(StoreError::Conflict(
                        "this invitation is for another e-mail address".into(),
                    ));
                }
                (Some(address), _) | (None, Some(address)) => address,
                (None, None) => {
                    return Err(StoreError::Conflict(
                        "an e-mail address is needed to sign up".into(),
                    ));
                }
            };
            let user = NewUser {
                email,
                name: name.clone(),
                password_hash: Some(password_hash.clone()),
                instance_admin: false,
            };
            let by = AuditBy {
                actor: format!("{} ({} link)", user.email, link.kind),
                client,
                ..AuditBy::default()
            };
            let row: UserRow = insert_user!(tx, by, user);
            if link.kind == LinkKind::Invite.as_str() {
                join_team!(tx, &link, row.id, user.email, by.clone());
            }
            tx.commit().await?;
            row
        });
        row.try_into()
    }

    /// Uses invitation `hash` for `user` (signed in): they join its team. An invitation for
    /// an address accepts only that address.
    pub async fn accept_invitation(&self, hash: &str, user: &User, by: AuditBy) -> Result<TeamId> {
        let now = now_millis();
        let team: i64 = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let link: LinkRow = take_link!(tx, hash, "('invite')", now);
            if link
                .email
                .as_deref()
                .is_some_and(|bound| bound != user.email.as_str())
            {
                return Err(StoreError::Conflict(
                    "this invitation is for another e-mail address".into(),
                ));
            }
            join_team!(tx, &link, user.id.0, user.email, by);
            tx.commit().await?;
            link.team_id.unwrap_or_default()
        });
        Ok(TeamId(team))
    }

    /// Sets a user's password through reset link `hash`, uses the link up, clears a lockout
    /// and ends the user's sessions (whoever held the old password is signed out).
    pub async fn reset_password(
        &self,
        hash: &str,
        password_hash: &str,
        client: Option<String>,
    ) -> Result<User> {
        let now = now_millis();
        let row: UserRow = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let link: LinkRow = take_link!(tx, hash, "('reset')", now);
            let user = link
                .user_id
                .ok_or_else(|| StoreError::corrupt("reset link", "no user"))?;
            let updated = sqlx::query(
                "UPDATE users SET password_hash = $1, failed_signins = 0, locked_until = NULL
                 WHERE id = $2 AND disabled_at IS NULL",
            )
            .bind(password_hash)
            .bind(user)
            .execute(&mut *tx)
            .await?;
            if updated.rows_affected() == 0 {
                return Err(unusable());
            }
            sqlx::query(
                "UPDATE sessions SET revoked_at = $1, revoked_reason = 'password reset'
                 WHERE user_id = $2 AND revoked_at IS NULL",
            )
            .bind(now)
            .bind(user)
            .execute(&mut *tx)
            .await?;
            let row: UserRow = sqlx::query_as(select_users!("id = $1"))
                .bind(user)
                .fetch_one(&mut *tx)
                .await?;
            audit!(
                tx,
                AuditBy {
                    user: Some(UserId(user)),
                    actor: format!("{} (reset link)", row.email),
                    client,
                    ..AuditBy::default()
                },
                AuditAction::PasswordChange,
                format!("reset:{}", link.id)
            );
            tx.commit().await?;
            row
        });
        row.try_into()
    }

    /// The open invitations of the actor's team.
    pub async fn invitations(&self, team: TeamId) -> Result<Vec<Invitation>> {
        let rows: Vec<InvitationRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, role, email, created_by, created_at, expires_at FROM links
                 WHERE kind = 'invite' AND team_id = $1 AND used_at IS NULL
                   AND revoked_at IS NULL AND expires_at > $2
                 ORDER BY id",
            )
            .bind(team.0)
            .bind(now_millis())
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(Invitation::try_from).collect()
    }

    /// Revokes an open invitation of the actor's team.
    pub async fn revoke_invitation(&self, actor: &Actor, id: i64) -> Result<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let revoked = sqlx::query(
                "UPDATE links SET revoked_at = $1
                 WHERE id = $2 AND kind = 'invite' AND team_id = $3 AND used_at IS NULL
                   AND revoked_at IS NULL",
            )
            .bind(now_millis())
            .bind(id)
            .bind(actor.team.0)
            .execute(&mut *tx)
            .await?;
            if revoked.rows_affected() == 0 {
                return Err(StoreError::NotFound(format!("open invitation #{id}")));
            }
            audit!(
                tx,
                actor,
                AuditAction::InvitationRevoke,
                format!("invitation:{id}")
            );
            tx.commit().await?;
        });
        Ok(())
    }
}
