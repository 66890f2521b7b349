//! The audit log.

use helvetia_api_types::AuditEntry;
use helvetia_core::auth::Caller;

use super::{App, Result};

/// The caller's team's audit log, newest first: at most `limit` entries (default 50, at most
/// 500), older than `before` when given.
pub async fn log(
    app: &App,
    caller: &Caller,
    before: Option<i64>,
    limit: Option<i64>,
) -> Result<Vec<AuditEntry>> {
    let limit = limit.unwrap_or(50).clamp(1, 500);
    Ok(app.store.audit_log(caller.team, before, limit).await?)
}
