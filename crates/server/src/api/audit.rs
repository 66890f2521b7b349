//! `/api/v1/audit`: the audit log.

use axum::Json;
use axum::extract::State;
use helvetia_api_types::AuditEntry;
use helvetia_store::audit::AuditFilter;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Authenticated;
use super::error::{ApiResult, ErrorBody};
use super::json::ApiQuery;
use crate::usecases::audit::{self, Whose};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(audit_log))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct AuditPage {
    /// At most this many entries (default 50, at most 500).
    limit: Option<i64>,
    /// Only entries older than this id.
    before: Option<i64>,
    /// A team's log (its admins only). Default: the caller's own entries (sign-ins, tokens,
    /// account changes).
    #[param(value_type = Option<helvetia_core::name::TeamName>)]
    team: Option<String>,
    /// The instance's own log — what belongs to no team and no user (break-glass tokens,
    /// sign-ins to unknown accounts) — for instance administrators.
    instance: Option<bool>,
    /// Only actions starting with this, ignoring case (`deployment` for every
    /// `deployment.…`).
    action: Option<String>,
    /// Only entries whose actor contains this, ignoring case (an e-mail address, `token:12`).
    actor: Option<String>,
    /// Only entries whose target contains this, ignoring case (`demo/web`).
    target: Option<String>,
}

/// The audit log, newest first.
#[utoipa::path(
    get, path = "/api/v1/audit", tag = "audit",
    params(AuditPage),
    security(("token" = ["admin"])),
    responses(
        (status = OK, body = Vec<AuditEntry>),
        (status = NOT_FOUND, body = ErrorBody, description = "No such team, or the caller is not in it"),
        (status = UNPROCESSABLE_ENTITY, body = ErrorBody, description = "Invalid team name"),
    )
)]
async fn audit_log(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiQuery(page): ApiQuery<AuditPage>,
) -> ApiResult<Json<Vec<AuditEntry>>> {
    Ok(Json(
        audit::log(
            &state.app,
            &caller,
            match (&page.team, page.instance) {
                (Some(team), _) => Whose::Team(team),
                (None, Some(true)) => Whose::Instance,
                (None, _) => Whose::Own,
            },
            &AuditFilter {
                action: page.action,
                actor: page.actor,
                target: page.target,
            },
            page.before,
            page.limit,
        )
        .await?,
    ))
}
