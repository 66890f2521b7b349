//! API tokens: authentication's storage side. Tokens are stored as SHA-256 hashes; the
//! plaintext exists only in the response that created it. A token belongs to a user (limited to
//! one of the user's teams, or not) or, for server administration, to no one.

use std::collections::BTreeMap;

use helvetia_core::audit::AuditAction;
use helvetia_core::auth::{ApiToken, Caller, Credential, Principal, Role, Scopes, TeamId, UserId};
use jiff::Timestamp;

use crate::audit::{AuditBy, audit};
use crate::{
    Result, Store, StoreError, WritePool, millis, now_millis, opt_timestamp, timestamp, with_pool,
};

/// The team that owned everything before user accounts existed; the first owner adopts it as
/// their personal team.
pub const DEFAULT_TEAM: &str = "default";

/// How stale `last_used_at` may get before a request refreshes it; keeps authentication from
/// turning every read into a write.
const LAST_USED_RESOLUTION_MS: i64 = 60_000;

/// `SELECT` of what a listing shows of a token, followed by `$where`.
macro_rules! select_tokens {
    ($where:literal) => {
        concat!(
            "SELECT t.id, t.name, t.hint, t.scopes, t.created_at, t.expires_at, t.last_used_at,
                    t.revoked_at, u.email AS owner, tm.name AS team, t.user_id, t.team_id
             FROM api_tokens t LEFT JOIN users u ON u.id = t.user_id
                               LEFT JOIN teams tm ON tm.id = t.team_id WHERE ",
            $where
        )
    };
}

pub(crate) use select_tokens;

#[derive(sqlx::FromRow)]
pub(crate) struct TokenRow {
    id: i64,
    name: String,
    hint: String,
    scopes: String,
    created_at: i64,
    expires_at: Option<i64>,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
    owner: Option<String>,
    team: Option<String>,
    user_id: Option<i64>,
    team_id: Option<i64>,
}

impl TryFrom<TokenRow> for ApiToken {
    type Error = StoreError;
    fn try_from(row: TokenRow) -> Result<ApiToken> {
        Ok(ApiToken {
            id: row.id,
            name: row.name,
            hint: row.hint,
            scopes: Scopes::from_list(&row.scopes).map_err(|e| StoreError::corrupt("scopes", e))?,
            owner: row.owner,
            team: row.team,
            created_at: timestamp(row.created_at)?,
            expires_at: opt_timestamp(row.expires_at)?,
            last_used_at: opt_timestamp(row.last_used_at)?,
            revoked_at: opt_timestamp(row.revoked_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct CallerRow {
    id: i64,
    name: String,
    scopes: String,
    last_used_at: Option<i64>,
    team_id: Option<i64>,
    user_id: Option<i64>,
    email: Option<String>,
    instance_admin: Option<bool>,
}

/// A token about to be stored: its hash and display hint, never the token.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub name: String,
    pub hash: String,
    pub hint: String,
    pub scopes: Scopes,
    pub expires_at: Option<Timestamp>,
    /// Whose token it is; `None` for a server-administration token.
    pub user: Option<UserId>,
    /// The one team it may act in; `None` for every team of its user.
    pub team: Option<TeamId>,
}

/// Whose a stored token is: what deciding who may revoke it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenOwnership {
    pub user: Option<UserId>,
    pub team: Option<TeamId>,
    pub revoked: bool,
}

/// Which tokens a listing shows.
#[derive(Debug, Clone, Copy)]
pub enum TokenListing {
    /// A user's own tokens.
    User(UserId),
    /// The tokens that can act in a team: limited to it, or belonging to one of its members
    /// and not limited to another team.
    Team(TeamId),
    /// Server-administration tokens.
    System,
}

impl Store {
    /// The pre-accounts team, created on first use.
    pub async fn default_team(&self) -> Result<TeamId> {
        let id: i64 = with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO teams (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            )
            .bind(DEFAULT_TEAM)
            .bind(now_millis())
            .execute(pool)
            .await?;
            sqlx::query_scalar("SELECT id FROM teams WHERE name = $1")
                .bind(DEFAULT_TEAM)
                .fetch_one(pool)
                .await?
        });
        Ok(TeamId(id))
    }

    /// Stores `token` as the first admin token if the server has never had a token. Returns
    /// `None` (and stores nothing) otherwise, so restarts never mint new credentials. The token
    /// belongs to no user and acts in `team` (the pre-accounts team); the first owner inherits
    /// it.
    pub async fn bootstrap_admin_token(
        &self,
        team: TeamId,
        token: &NewToken,
    ) -> Result<Option<ApiToken>> {
        let row: Option<TokenRow> = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_tokens")
                .fetch_one(&mut *tx)
                .await?;
            if existing > 0 {
                return Ok(None);
            }
            let token = NewToken {
                user: None,
                team: Some(team),
                ..token.clone()
            };
            let row: TokenRow = insert_token!(tx, &token);
            audit!(
                tx,
                AuditBy::system(team, "system"),
                AuditAction::TokenCreate,
                format!("token:{}({})", row.id, row.name)
            );
            tx.commit().await?;
            Some(row)
        });
        row.map(ApiToken::try_from).transpose()
    }

    /// Stores `token` for `helvetia server admin-token`, the way back in: a
    /// server-administration token that belongs to no user, run on the server itself, so the
    /// audit log names the system as its author.
    pub async fn issue_system_token(&self, token: &NewToken) -> Result<ApiToken> {
        let token = NewToken {
            user: None,
            team: None,
            ..token.clone()
        };
        let by = AuditBy {
            actor: "system (helvetia server admin-token)".into(),
            ..AuditBy::default()
        };
        self.insert_audited_token(by, &token).await
    }

    /// Stores a token the caller made for themselves (its `user` is the caller's).
    pub async fn create_token(&self, caller: &Caller, token: &NewToken) -> Result<ApiToken> {
        let by = AuditBy {
            team: token.team,
            ..AuditBy::from(caller)
        };
        self.insert_audited_token(by, token).await
    }

    async fn insert_audited_token(&self, by: AuditBy, token: &NewToken) -> Result<ApiToken> {
        let row: TokenRow = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let row: TokenRow = insert_token!(tx, token);
            audit!(
                tx,
                by.clone(),
                AuditAction::TokenCreate,
                format!("token:{}({})", row.id, row.name)
            );
            tx.commit().await?;
            row
        });
        row.try_into()
    }

    pub async fn list_tokens(&self, listing: TokenListing) -> Result<Vec<ApiToken>> {
        let rows: Vec<TokenRow> = with_pool!(self, |pool| {
            match listing {
                TokenListing::User(user) => {
                    sqlx::query_as(select_tokens!("t.user_id = $1 ORDER BY t.id"))
                        .bind(user.0)
                        .fetch_all(pool)
                        .await?
                }
                TokenListing::Team(team) => {
                    sqlx::query_as(select_tokens!(
                        "t.team_id = $1
                         OR (t.team_id IS NULL AND t.user_id IN
                             (SELECT user_id FROM team_members WHERE team_id = $1))
                         ORDER BY t.id"
                    ))
                    .bind(team.0)
                    .fetch_all(pool)
                    .await?
                }
                TokenListing::System => {
                    sqlx::query_as(select_tokens!("t.user_id IS NULL ORDER BY t.id"))
                        .fetch_all(pool)
                        .await?
                }
            }
        });
        rows.into_iter().map(ApiToken::try_from).collect()
    }

    /// Whose token `id` is, if it exists.
    pub async fn token_ownership(&self, id: i64) -> Result<Option<TokenOwnership>> {
        let row: Option<TokenRow> = with_pool!(self, |pool| {
            sqlx::query_as(select_tokens!("t.id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(|row| TokenOwnership {
            user: row.user_id.map(UserId),
            team: row.team_id.map(TeamId),
            revoked: row.revoked_at.is_some(),
        }))
    }

    /// Revokes a token; it stops authenticating with the next request. Unless `force`d, the
    /// caller's own token is refused when nothing else would let the caller back in: it is
    /// their last usable admin token and they have no password to sign in with (only
    /// `helvetia server admin-token`, on the server, would get back in). The entry goes into
    /// `team`'s log (the token's own team, or the one whose admin revoked it).
    pub async fn revoke_token(
        &self,
        caller: &Caller,
        id: i64,
        force: bool,
        team: Option<TeamId>,
    ) -> Result<()> {
        let by = AuditBy::from(caller);
        let user = caller.user().map(|user| user.0);
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            if !force && Some(id) == caller.token_id() {
                // Touching the token's row first serialises concurrent revocations on both
                // backends, so two callers revoking themselves at once cannot both see the
                // other's token.
                sqlx::query("UPDATE api_tokens SET name = name WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                let other_ways_in: i64 = sqlx::query_scalar(
                    "SELECT (SELECT COUNT(*) FROM api_tokens
                             WHERE user_id IS NOT DISTINCT FROM $1 AND id <> $2
                               AND revoked_at IS NULL
                               AND (expires_at IS NULL OR expires_at > $3)
                               AND (',' || scopes || ',') LIKE '%,admin,%')
                          + (SELECT COUNT(*) FROM users
                             WHERE id = $1 AND password_hash IS NOT NULL)",
                )
                .bind(user)
                .bind(id)
                .bind(now_millis())
                .fetch_one(&mut *tx)
                .await?;
                if other_ways_in == 0 {
                    return Err(StoreError::Conflict(
                        "this is your own and the last admin token: revoking it locks you \
                         out. Create another admin token first, or revoke it anyway with \
                         force (`?force=true`, `helvetia tokens revoke --force`)"
                            .into(),
                    ));
                }
            }
            let name: Option<String> = sqlx::query_scalar(
                "UPDATE api_tokens SET revoked_at = $1
                 WHERE id = $2 AND revoked_at IS NULL RETURNING name",
            )
            .bind(now_millis())
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            let name = name.ok_or_else(|| StoreError::NotFound(format!("active token #{id}")))?;
            audit!(
                tx,
                AuditBy { team, ..by.clone() },
                AuditAction::TokenRevoke,
                format!("token:{id}({name})")
            );
            tx.commit().await?;
        });
        Ok(())
    }

    /// The caller a token hash belongs to, if the token exists, is not revoked, has not
    /// expired at `now` and its user is not disabled. The caller's `client` is left for the
    /// entry point to fill in.
    pub async fn authenticate(&self, token_hash: &str, now: Timestamp) -> Result<Option<Caller>> {
        let now = millis(now);
        let row: Option<CallerRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT t.id, t.name, t.scopes, t.last_used_at, t.team_id, t.user_id, u.email,
                        u.instance_admin
                 FROM api_tokens t LEFT JOIN users u ON u.id = t.user_id
                 WHERE t.token_hash = $1 AND t.revoked_at IS NULL
                   AND (t.expires_at IS NULL OR t.expires_at > $2)
                   AND (t.user_id IS NULL OR u.disabled_at IS NULL)",
            )
            .bind(token_hash)
            .bind(now)
            .fetch_optional(pool)
            .await?
        });
        let Some(row) = row else { return Ok(None) };
        if row
            .last_used_at
            .is_none_or(|at| now - at > LAST_USED_RESOLUTION_MS)
        {
            with_pool!(self, |pool| {
                sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
                    .bind(now)
                    .bind(row.id)
                    .execute(pool)
                    .await?;
            });
        }
        let scopes =
            Scopes::from_list(&row.scopes).map_err(|e| StoreError::corrupt("scopes", e))?;
        let credential = Credential::Token {
            id: row.id,
            name: row.name,
        };
        let (principal, teams) = match (row.user_id, row.email) {
            (Some(user), Some(email)) => {
                let mut teams = self.memberships(UserId(user)).await?;
                if let Some(only) = row.team_id {
                    teams.retain(|team, _| team.0 == only);
                }
                let principal = Principal::User {
                    id: UserId(user),
                    email,
                    instance_admin: row.instance_admin.unwrap_or(false),
                };
                (principal, teams)
            }
            _ => (Principal::System, BTreeMap::new()),
        };
        Ok(Some(Caller {
            principal,
            credential,
            scopes,
            teams,
            client: None,
        }))
    }

    /// The teams `user` is in, with the role in each.
    pub async fn memberships(&self, user: UserId) -> Result<BTreeMap<TeamId, Role>> {
        let rows: Vec<(i64, String)> = with_pool!(self, |pool| {
            sqlx::query_as("SELECT team_id, role FROM team_members WHERE user_id = $1")
                .bind(user.0)
                .fetch_all(pool)
                .await?
        });
        rows.into_iter()
            .map(|(team, role)| {
                let role: Role = role.parse().map_err(|e| StoreError::corrupt("role", e))?;
                Ok((TeamId(team), role))
            })
            .collect()
    }
}

/// Inserts the token `$token` in the transaction `$tx`; answers its [`TokenRow`].
macro_rules! insert_token {
    ($tx:expr, $token:expr) => {{
        let token: &NewToken = $token;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO api_tokens (user_id, team_id, name, token_hash, hint, scopes, created_at,
                                     expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(token.user.map(|user| user.0))
        .bind(token.team.map(|team| team.0))
        .bind(&token.name)
        .bind(&token.hash)
        .bind(&token.hint)
        .bind(token.scopes.to_list())
        .bind(now_millis())
        .bind(token.expires_at.map(millis))
        .fetch_one(&mut *$tx)
        .await
        .map_err(StoreError::unique("a token with this value already exists"))?;
        let row: TokenRow = sqlx::query_as(select_tokens!("t.id = $1"))
            .bind(id)
            .fetch_one(&mut *$tx)
            .await?;
        row
    }};
}
pub(crate) use insert_token;

impl Store {
    /// This installation's id: random, created on first use, kept with the data. Engine
    /// objects carry it so that two installations sharing one engine never touch each
    /// other's containers.
    pub async fn instance_id(&self) -> Result<String> {
        let candidate = format!("{:016x}", rand::random::<u64>());
        let id: String = with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO server_settings (name, value) VALUES ('instance_id', $1)
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(&candidate)
            .execute(pool)
            .await?;
            sqlx::query_scalar("SELECT value FROM server_settings WHERE name = 'instance_id'")
                .fetch_one(pool)
                .await?
        });
        Ok(id)
    }
}
