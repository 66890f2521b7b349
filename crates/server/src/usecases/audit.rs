//! The audit log: a team's (for its admins) or the caller's own (sign-ins, tokens, account
//! changes).

use helvetia_api_types::AuditEntry;
use helvetia_core::auth::{Caller, Scope};
use helvetia_store::audit::{AuditFilter, AuditLog};

use super::access;
use super::{App, Result, UseCaseError};

/// Which log to read.
pub enum Whose<'a> {
    Own,
    Team(&'a str),
    Instance,
}

/// Newest first, those `filter` matches: at most `limit` entries (default 50, at most 500),
/// older than `before` when given. With `team`, that team's log (the caller must be an admin there); for the
/// `Instance`, what belongs to no team and no user — break-glass tokens, sign-ins to unknown
/// accounts — (instance administrators only); otherwise the caller's own, and for a
/// server-administration token the oldest team's.
pub async fn log(
    app: &App,
    caller: &Caller,
    whose: Whose<'_>,
    filter: &AuditFilter,
    before: Option<i64>,
    limit: Option<i64>,
) -> Result<Vec<AuditEntry>> {
    let limit = limit.unwrap_or(50).clamp(1, 500);
    let team = match whose {
        Whose::Instance if caller.is_instance_admin() => {
            return Ok(app
                .store
                .audit_log_filtered(AuditLog::Instance, filter, before, limit)
                .await?);
        }
        Whose::Instance => {
            return Err(UseCaseError::Forbidden(
                "the instance's log is for instance administrators".into(),
            ));
        }
        Whose::Team(team) => Some(team),
        Whose::Own => None,
    };
    let log = match (team, caller.user()) {
        (Some(team), _) => {
            let name = access::team_name(team)?;
            AuditLog::Team(access::team(app, caller, &name, Scope::Admin).await?.0.id)
        }
        (None, Some(user)) => AuditLog::User(user),
        (None, None) => {
            let teams = app.store.list_teams().await?;
            let oldest = teams.iter().map(|team| team.id).min();
            AuditLog::Team(oldest.ok_or_else(|| UseCaseError::NotFound("team".into()))?)
        }
    };
    Ok(app
        .store
        .audit_log_filtered(log, filter, before, limit)
        .await?)
}
