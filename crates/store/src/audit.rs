//! The audit log. Mutating store calls write their entry with [`audit!`] inside their own
//! transaction, so the entry and the change commit or roll back together.

use helvetia_core::audit::{AuditAction, AuditEntry};
use helvetia_core::auth::{Actor, Caller, TeamId, UserId};

use crate::{Result, Store, timestamp, with_pool};

/// Appends an audit entry by `$by` (anything that is `Into<AuditBy>`: an `&Actor`, or an
/// [`AuditBy`] built for an entry outside a team) inside the transaction `$tx`.
macro_rules! audit {
    ($tx:expr, $by:expr, $action:expr, $target:expr) => {{
        let by: $crate::audit::AuditBy = $by.into();
        sqlx::query(
            "INSERT INTO audit_log (team_id, user_id, actor, action, target, client_addr, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(by.team.map(|team| team.0))
        .bind(by.user.map(|user| user.0))
        .bind(by.actor)
        .bind($action.as_str())
        .bind($target)
        .bind(by.client)
        .bind($crate::now_millis())
        .execute(&mut *$tx)
        .await?
    }};
}
pub(crate) use audit;

/// Who an audit entry is by, where it came from, and which team's log it belongs to.
#[derive(Debug, Clone, Default)]
pub struct AuditBy {
    /// `None` for entries about a user rather than a team (a sign-in, a failed one).
    pub team: Option<TeamId>,
    pub user: Option<UserId>,
    pub actor: String,
    pub client: Option<String>,
}

impl AuditBy {
    /// The server acting on its own, in `team`.
    pub fn system(team: TeamId, actor: impl Into<String>) -> AuditBy {
        AuditBy {
            team: Some(team),
            actor: actor.into(),
            ..AuditBy::default()
        }
    }
}

impl From<&Caller> for AuditBy {
    /// The caller, outside any team: the entry belongs to the user's own log.
    fn from(caller: &Caller) -> AuditBy {
        AuditBy {
            team: None,
            user: caller.user(),
            actor: caller.label(),
            client: caller.client.clone(),
        }
    }
}

impl From<&Actor> for AuditBy {
    fn from(actor: &Actor) -> AuditBy {
        AuditBy {
            team: Some(actor.team),
            user: actor.user,
            actor: actor.label.clone(),
            client: actor.client.clone(),
        }
    }
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    id: i64,
    actor: String,
    action: String,
    target: String,
    client_addr: Option<String>,
    at: i64,
}

/// Whose log to read.
#[derive(Debug, Clone, Copy)]
pub enum AuditLog {
    Team(TeamId),
    /// What a user did and what was done to their account (sign-ins, failed ones).
    User(UserId),
    /// What belongs to no team and no user: the server's own acts (a break-glass token), sign-in
    /// attempts for unknown accounts. For instance administrators.
    Instance,
}

/// Which entries of a log to read: every given part must match, ignoring case — `action` as a
/// prefix (`deployment` matches `deployment.create`), `actor` and `target` anywhere in theirs.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub action: Option<String>,
    pub actor: Option<String>,
    pub target: Option<String>,
}

impl AuditFilter {
    /// The `LIKE` patterns (lower-cased, `\` escaping `%`, `_` and itself) of each part.
    fn patterns(&self) -> [Option<String>; 3] {
        let escaped = |text: &str| {
            text.to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        };
        let given = |part: &Option<String>, pattern: fn(String) -> String| {
            part.as_deref()
                .filter(|text| !text.is_empty())
                .map(|text| pattern(escaped(text)))
        };
        [
            given(&self.action, |text| format!("{text}%")),
            given(&self.actor, |text| format!("%{text}%")),
            given(&self.target, |text| format!("%{text}%")),
        ]
    }
}

impl Store {
    /// Records an action that changes nothing else (reading a secret, say).
    pub async fn record_audit(
        &self,
        by: impl Into<AuditBy>,
        action: AuditAction,
        target: &str,
    ) -> Result<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            audit!(tx, by, action, target);
            tx.commit().await?;
        });
        Ok(())
    }

    /// The newest entries first; `before` pages back from an entry id.
    pub async fn audit_log(
        &self,
        log: AuditLog,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>> {
        self.audit_log_filtered(log, &AuditFilter::default(), before, limit)
            .await
    }

    /// A log's entries that `filter` matches, newest first: at most `limit`, older than entry
    /// `before` when given.
    pub async fn audit_log_filtered(
        &self,
        log: AuditLog,
        filter: &AuditFilter,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>> {
        let [action, actor, target] = filter.patterns();
        let (whose, id) = match log {
            AuditLog::Team(team) => ("team_id = $1", team.0),
            AuditLog::User(user) => ("user_id = $1", user.0),
            AuditLog::Instance => ("team_id IS NULL AND user_id IS NULL AND $1 = 0", 0),
        };
        let query = format!(
            "SELECT id, actor, action, target, client_addr, at FROM audit_log
             WHERE {whose} AND id < $2
               AND ($4 IS NULL OR LOWER(action) LIKE $4 ESCAPE '\\')
               AND ($5 IS NULL OR LOWER(actor) LIKE $5 ESCAPE '\\')
               AND ($6 IS NULL OR LOWER(target) LIKE $6 ESCAPE '\\')
             ORDER BY id DESC LIMIT $3"
        );
        let rows: Vec<AuditRow> = with_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(query.clone()))
                .bind(id)
                .bind(before.unwrap_or(i64::MAX))
                .bind(limit)
                .bind(action.clone())
                .bind(actor.clone())
                .bind(target.clone())
                .fetch_all(pool)
                .await?
        });
        rows.into_iter()
            .map(|row| {
                Ok(AuditEntry {
                    id: row.id,
                    actor: row.actor,
                    action: row.action,
                    target: row.target,
                    client: row.client_addr,
                    at: timestamp(row.at)?,
                })
            })
            .collect()
    }
}
