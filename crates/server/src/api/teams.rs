//! `/api/v1/teams`: teams, their members and invitations; `/api/v1/invitations/accept`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use helvetia_api_types::{
    AcceptInvitation, CreateInvitation, CreateTeam, CreatedInvitation, InvitationView, MemberView,
    SetRole, TeamView,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Authenticated;
use super::error::{ApiResult, ErrorBody};
use super::json::{ApiJson, ApiPath};
use crate::usecases::teams;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_teams, create_team))
        .routes(routes!(get_team, delete_team))
        .routes(routes!(list_members))
        .routes(routes!(set_role, remove_member))
        .routes(routes!(list_invitations, create_invitation))
        .routes(routes!(revoke_invitation))
        .routes(routes!(accept_invitation))
}

/// The teams the caller is in, with its role in each.
#[utoipa::path(
    get, path = "/api/v1/teams", tag = "teams",
    security(("token" = ["read"])),
    responses((status = OK, body = Vec<TeamView>))
)]
async fn list_teams(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ApiResult<Json<Vec<TeamView>>> {
    Ok(Json(teams::list(&state.app, &caller).await?))
}

/// Create a team; the caller becomes its owner.
#[utoipa::path(
    post, path = "/api/v1/teams", tag = "teams",
    request_body = CreateTeam,
    security(("token" = ["write"])),
    responses(
        (status = CREATED, body = TeamView),
        (status = CONFLICT, body = ErrorBody, description = "The name is not available"),
    )
)]
async fn create_team(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(body): ApiJson<CreateTeam>,
) -> ApiResult<(StatusCode, Json<TeamView>)> {
    let team = teams::create(&state.app, &caller, body).await?;
    Ok((StatusCode::CREATED, Json(team)))
}

/// A team the caller is in.
#[utoipa::path(
    get, path = "/api/v1/teams/{team}", tag = "teams",
    params(("team" = helvetia_core::name::TeamName, Path, description = "Team name")),
    security(("token" = ["read"])),
    responses((status = OK, body = TeamView))
)]
async fn get_team(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(team): ApiPath<String>,
) -> ApiResult<Json<TeamView>> {
    Ok(Json(teams::get(&state.app, &caller, &team).await?))
}

/// Delete a team that owns no projects (owners only; personal teams stay).
#[utoipa::path(
    delete, path = "/api/v1/teams/{team}", tag = "teams",
    params(("team" = helvetia_core::name::TeamName, Path, description = "Team name")),
    security(("token" = ["admin"])),
    responses(
        (status = NO_CONTENT),
        (status = CONFLICT, body = ErrorBody, description = "The team still owns projects, or is a personal team"),
    )
)]
async fn delete_team(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(team): ApiPath<String>,
) -> ApiResult<StatusCode> {
    teams::delete(&state.app, &caller, &team).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The members of a team and their roles.
#[utoipa::path(
    get, path = "/api/v1/teams/{team}/members", tag = "teams",
    params(("team" = helvetia_core::name::TeamName, Path, description = "Team name")),
    security(("token" = ["read"])),
    responses((status = OK, body = Vec<MemberView>))
)]
async fn list_members(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(team): ApiPath<String>,
) -> ApiResult<Json<Vec<MemberView>>> {
    Ok(Json(teams::members(&state.app, &caller, &team).await?))
}

/// Change a member's role. Admins manage everyone below owner; only owners touch owners.
#[utoipa::path(
    put, path = "/api/v1/teams/{team}/members/{member}", tag = "teams",
    params(
        ("team" = helvetia_core::name::TeamName, Path, description = "Team name"),
        ("member" = String, Path, description = "The member's user id or e-mail address"),
    ),
    request_body = SetRole,
    security(("token" = ["admin"])),
    responses(
        (status = OK, body = MemberView),
        (status = CONFLICT, body = ErrorBody, description = "The team would have no owner left"),
    )
)]
async fn set_role(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((team, member)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<SetRole>,
) -> ApiResult<Json<MemberView>> {
    Ok(Json(
        teams::set_role(&state.app, &caller, &team, &member, body.role).await?,
    ))
}

/// Remove a member; a member may remove themself (leave the team). The last owner cannot.
#[utoipa::path(
    delete, path = "/api/v1/teams/{team}/members/{member}", tag = "teams",
    params(
        ("team" = helvetia_core::name::TeamName, Path, description = "Team name"),
        ("member" = String, Path, description = "The member's user id or e-mail address"),
    ),
    security(("token" = ["read"])),
    responses(
        (status = NO_CONTENT),
        (status = CONFLICT, body = ErrorBody, description = "The team would have no owner left, or it is the member's personal team"),
    )
)]
async fn remove_member(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((team, member)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    teams::remove(&state.app, &caller, &team, &member).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The team's open invitations.
#[utoipa::path(
    get, path = "/api/v1/teams/{team}/invitations", tag = "teams",
    params(("team" = helvetia_core::name::TeamName, Path, description = "Team name")),
    security(("token" = ["admin"])),
    responses((status = OK, body = Vec<InvitationView>))
)]
async fn list_invitations(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(team): ApiPath<String>,
) -> ApiResult<Json<Vec<InvitationView>>> {
    Ok(Json(teams::invitations(&state.app, &caller, &team).await?))
}

/// Invite someone: a single-use link, valid for 7 days, shown once.
#[utoipa::path(
    post, path = "/api/v1/teams/{team}/invitations", tag = "teams",
    params(("team" = helvetia_core::name::TeamName, Path, description = "Team name")),
    request_body = CreateInvitation,
    security(("token" = ["admin"])),
    responses((status = CREATED, body = CreatedInvitation))
)]
async fn create_invitation(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(team): ApiPath<String>,
    ApiJson(body): ApiJson<CreateInvitation>,
) -> ApiResult<(StatusCode, Json<CreatedInvitation>)> {
    let created = teams::invite(&state.app, &caller, &team, body).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Revoke an open invitation.
#[utoipa::path(
    delete, path = "/api/v1/teams/{team}/invitations/{id}", tag = "teams",
    params(
        ("team" = helvetia_core::name::TeamName, Path, description = "Team name"),
        ("id" = i64, Path, description = "Invitation id"),
    ),
    security(("token" = ["admin"])),
    responses((status = NO_CONTENT))
)]
async fn revoke_invitation(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((team, id)): ApiPath<(String, i64)>,
) -> ApiResult<StatusCode> {
    teams::revoke_invitation(&state.app, &caller, &team, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Accept an invitation: the signed-in caller joins its team.
#[utoipa::path(
    post, path = "/api/v1/invitations/accept", tag = "teams",
    request_body = AcceptInvitation,
    security(("token" = ["read"])),
    responses(
        (status = OK, body = TeamView),
        (status = NOT_FOUND, body = ErrorBody, description = "The invitation is unknown, used, revoked or expired"),
        (status = CONFLICT, body = ErrorBody, description = "The invitation is for another e-mail address"),
    )
)]
async fn accept_invitation(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(body): ApiJson<AcceptInvitation>,
) -> ApiResult<Json<TeamView>> {
    Ok(Json(teams::accept(&state.app, &caller, &body.token).await?))
}
