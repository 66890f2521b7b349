//! Teams and API tokens: authentication's storage side. Tokens are stored as SHA-256 hashes;
//! the plaintext exists only in the response that created it.

use helvetia_core::audit::AuditAction;
use helvetia_core::auth::{ApiToken, Caller, Scopes, TeamId};
use jiff::Timestamp;

use crate::audit::audit;
use crate::{
    Result, Store, StoreError, WritePool, millis, now_millis, opt_timestamp, timestamp, with_pool,
};

/// The team that owns everything until user accounts exist.
pub const DEFAULT_TEAM: &str = "default";

/// How stale `last_used_at` may get before a request refreshes it; keeps authentication from
/// turning every read into a write.
const LAST_USED_RESOLUTION_MS: i64 = 60_000;

#[derive(sqlx::FromRow)]
struct TokenRow {
    id: i64,
    name: String,
    hint: String,
    scopes: String,
    created_at: i64,
    expires_at: Option<i64>,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl TryFrom<TokenRow> for ApiToken {
    type Error = StoreError;
    fn try_from(row: TokenRow) -> Result<ApiToken> {
        Ok(ApiToken {
            id: row.id,
            name: row.name,
            hint: row.hint,
            scopes: Scopes::from_list(&row.scopes).map_err(|e| StoreError::corrupt("scopes", e))?,
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
    team_id: i64,
    name: String,
    scopes: String,
    last_used_at: Option<i64>,
}

/// A token about to be stored: its hash and display hint, never the token.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub name: String,
    pub hash: String,
    pub hint: String,
    pub scopes: Scopes,
    pub expires_at: Option<Timestamp>,
}

impl Store {
    /// The default team, created on first use.
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

    /// A new, empty team. Until user accounts exist only tests create more than the default.
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

    /// Stores `token` as the first admin token if the server has never had a token. Returns
    /// `None` (and stores nothing) otherwise, so restarts never mint new credentials.
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
            let row: TokenRow = insert_token(&mut tx, team, token).await?;
            audit!(
                tx,
                team,
                "system",
                AuditAction::TokenCreate,
                format!("token:{}({})", row.id, row.name)
            );
            tx.commit().await?;
            Some(row)
        });
        row.map(ApiToken::try_from).transpose()
    }

    /// Stores `token` for `helvetia server admin-token`, the way back in when no admin token is
    /// left: run on the server itself, so the audit log names the system as its author.
    pub async fn issue_system_token(&self, team: TeamId, token: &NewToken) -> Result<ApiToken> {
        self.create_audited_token(team, "system (helvetia server admin-token)".into(), token)
            .await
    }

    pub async fn create_token(&self, caller: &Caller, token: &NewToken) -> Result<ApiToken> {
        self.create_audited_token(caller.team, caller.label(), token)
            .await
    }

    async fn create_audited_token(
        &self,
        team: TeamId,
        actor: String,
        token: &NewToken,
    ) -> Result<ApiToken> {
        let row: TokenRow = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let row: TokenRow = insert_token(&mut tx, team, token).await?;
            audit!(
                tx,
                team,
                &actor,
                AuditAction::TokenCreate,
                format!("token:{}({})", row.id, row.name)
            );
            tx.commit().await?;
            row
        });
        row.try_into()
    }

    pub async fn list_tokens(&self, team: TeamId) -> Result<Vec<ApiToken>> {
        let rows: Vec<TokenRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, name, hint, scopes, created_at, expires_at, last_used_at, revoked_at
                 FROM api_tokens WHERE team_id = $1 ORDER BY id",
            )
            .bind(team.0)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(ApiToken::try_from).collect()
    }

    /// Revokes a token; it stops authenticating with the next request. Unless `force`d, the
    /// caller's own token is refused when it is the team's last usable admin token: revoking
    /// it would leave nobody able to manage tokens (only `helvetia server admin-token`, on the
    /// server, gets back in).
    pub async fn revoke_token(&self, caller: &Caller, id: i64, force: bool) -> Result<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            if !force && id == caller.token_id {
                // Touching the team's row serialises concurrent revocations on both backends,
                // so two admins revoking themselves at once cannot both see the other's token.
                sqlx::query("UPDATE teams SET name = name WHERE id = $1")
                    .bind(caller.team.0)
                    .execute(&mut *tx)
                    .await?;
                let other_admins: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM api_tokens
                     WHERE team_id = $1 AND id <> $2 AND revoked_at IS NULL
                       AND (expires_at IS NULL OR expires_at > $3)
                       AND (',' || scopes || ',') LIKE '%,admin,%'",
                )
                .bind(caller.team.0)
                .bind(id)
                .bind(now_millis())
                .fetch_one(&mut *tx)
                .await?;
                if other_admins == 0 {
                    return Err(StoreError::Conflict(
                        "this is your own and the last admin token: revoking it locks everyone \
                         out. Create another admin token first, or revoke it anyway with \
                         force (`?force=true`, `helvetia tokens revoke --force`)"
                            .into(),
                    ));
                }
            }
            let name: Option<String> = sqlx::query_scalar(
                "UPDATE api_tokens SET revoked_at = $1
                 WHERE id = $2 AND team_id = $3 AND revoked_at IS NULL RETURNING name",
            )
            .bind(now_millis())
            .bind(id)
            .bind(caller.team.0)
            .fetch_optional(&mut *tx)
            .await?;
            let name = name.ok_or_else(|| StoreError::NotFound(format!("active token #{id}")))?;
            audit!(
                tx,
                caller.team,
                caller.label(),
                AuditAction::TokenRevoke,
                format!("token:{id}({name})")
            );
            tx.commit().await?;
        });
        Ok(())
    }

    /// The caller a token hash belongs to, if the token exists, is not revoked and has not
    /// expired at `now`.
    pub async fn authenticate(&self, token_hash: &str, now: Timestamp) -> Result<Option<Caller>> {
        let now = millis(now);
        let row: Option<CallerRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, team_id, name, scopes, last_used_at FROM api_tokens
                 WHERE token_hash = $1 AND revoked_at IS NULL
                   AND (expires_at IS NULL OR expires_at > $2)",
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
        Ok(Some(Caller {
            team: TeamId(row.team_id),
            token_id: row.id,
            token_name: row.name,
            scopes: Scopes::from_list(&row.scopes).map_err(|e| StoreError::corrupt("scopes", e))?,
        }))
    }
}

/// Inserts a token row in `tx`; shared by the bootstrap and the API path.
async fn insert_token<'c, DB>(
    tx: &mut sqlx::Transaction<'c, DB>,
    team: TeamId,
    token: &NewToken,
) -> Result<TokenRow>
where
    DB: sqlx::Database,
    for<'e> &'e mut DB::Connection: sqlx::Executor<'e, Database = DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> <DB as sqlx::Database>::Arguments: sqlx::IntoArguments<DB>,
    for<'r> TokenRow: sqlx::FromRow<'r, DB::Row>,
{
    sqlx::query_as(
        "INSERT INTO api_tokens (team_id, name, token_hash, hint, scopes, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         RETURNING id, name, hint, scopes, created_at, expires_at, last_used_at, revoked_at",
    )
    .bind(team.0)
    .bind(token.name.clone())
    .bind(token.hash.clone())
    .bind(token.hint.clone())
    .bind(token.scopes.to_list())
    .bind(now_millis())
    .bind(token.expires_at.map(millis))
    .fetch_one(&mut **tx)
    .await
    .map_err(StoreError::unique("a token with this value already exists"))
}

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
