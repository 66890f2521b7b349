//! The audit log. Mutating store calls write their entry with [`audit!`] inside their own
//! transaction, so the entry and the change commit or roll back together.

use helvetia_core::audit::{AuditAction, AuditEntry};
use helvetia_core::auth::TeamId;

use crate::{Result, Store, timestamp, with_pool};

/// Appends an audit entry inside the transaction `$tx`.
macro_rules! audit {
    ($tx:expr, $team:expr, $actor:expr, $action:expr, $target:expr) => {
        sqlx::query(
            "INSERT INTO audit_log (team_id, actor, action, target, at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind($team.0)
        .bind($actor)
        .bind($action.as_str())
        .bind($target)
        .bind($crate::now_millis())
        .execute(&mut *$tx)
        .await?
    };
}
pub(crate) use audit;

#[derive(sqlx::FromRow)]
struct AuditRow {
    id: i64,
    actor: String,
    action: String,
    target: String,
    at: i64,
}

impl Store {
    /// Records an action that changes nothing else (reading a secret, say).
    pub async fn record_audit(
        &self,
        caller: &helvetia_core::auth::Caller,
        action: AuditAction,
        target: &str,
    ) -> Result<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            audit!(tx, caller.team, caller.label(), action, target);
            tx.commit().await?;
        });
        Ok(())
    }

    /// The newest entries first; `before` pages back from an entry id.
    pub async fn audit_log(
        &self,
        team: TeamId,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>> {
        let rows: Vec<AuditRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, actor, action, target, at FROM audit_log
                 WHERE team_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
            )
            .bind(team.0)
            .bind(before.unwrap_or(i64::MAX))
            .bind(limit)
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
                    at: timestamp(row.at)?,
                })
            })
            .collect()
    }
}
