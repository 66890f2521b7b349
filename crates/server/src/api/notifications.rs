//! `/api/v1/projects/{project}/notifications`: a project's notification channels (list, add,
//! show, change, remove), a test message to one, and a channel's messages with every attempt.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use helvetia_api_types::{
    ChannelView, CreateChannel, CreatedChannel, MessageView, TestQueued, UpdateChannel,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Authenticated;
use super::deployments::Page;
use super::error::{ApiResult, ErrorBody};
use super::json::{ApiJson, ApiPath, ApiQuery};
use crate::usecases::notifications;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_channels, create_channel))
        .routes(routes!(get_channel, update_channel, delete_channel))
        .routes(routes!(test_channel))
        .routes(routes!(list_messages))
}

/// A project's notification channels, by name (never their secrets).
#[utoipa::path(
    get, path = "/api/v1/projects/{project}/notifications", tag = "notifications",
    params(("project" = helvetia_core::name::ProjectName, Path, description = "Project name")),
    security(("token" = ["read"])),
    responses((status = OK, body = Vec<ChannelView>))
)]
async fn list_channels(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(project): ApiPath<String>,
) -> ApiResult<Json<Vec<ChannelView>>> {
    Ok(Json(
        notifications::list(&state.app, &caller, &project).await?,
    ))
}

/// Add a notification channel: a Slack- or Discord-compatible incoming webhook (`url`, a
/// secret), a generic webhook (`url`; its signing secret is in this answer only) or e-mail
/// (`smtp`). A host the server's outbound policy refuses is invalid.
#[utoipa::path(
    post, path = "/api/v1/projects/{project}/notifications", tag = "notifications",
    params(("project" = helvetia_core::name::ProjectName, Path, description = "Project name")),
    request_body = CreateChannel,
    security(("token" = ["write"])),
    responses(
        (status = CREATED, body = CreatedChannel),
        (status = CONFLICT, body = ErrorBody, description = "The project has a channel of that name"),
    )
)]
async fn create_channel(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(project): ApiPath<String>,
    ApiJson(body): ApiJson<CreateChannel>,
) -> ApiResult<(StatusCode, Json<CreatedChannel>)> {
    let created = notifications::create(&state.app, &caller, &project, body).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Show a notification channel.
#[utoipa::path(
    get, path = "/api/v1/projects/{project}/notifications/{channel}", tag = "notifications",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("channel" = helvetia_core::name::ChannelName, Path, description = "Channel name"),
    ),
    security(("token" = ["read"])),
    responses((status = OK, body = ChannelView))
)]
async fn get_channel(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((project, channel)): ApiPath<(String, String)>,
) -> ApiResult<Json<ChannelView>> {
    Ok(Json(
        notifications::get(&state.app, &caller, &project, &channel).await?,
    ))
}

/// Change a notification channel: its events, whether it is enabled, where it delivers.
#[utoipa::path(
    patch, path = "/api/v1/projects/{project}/notifications/{channel}", tag = "notifications",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("channel" = helvetia_core::name::ChannelName, Path, description = "Channel name"),
    ),
    request_body = UpdateChannel,
    security(("token" = ["write"])),
    responses((status = OK, body = ChannelView))
)]
async fn update_channel(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((project, channel)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<UpdateChannel>,
) -> ApiResult<Json<ChannelView>> {
    Ok(Json(
        notifications::update(&state.app, &caller, &project, &channel, body).await?,
    ))
}

/// Remove a notification channel and its messages.
#[utoipa::path(
    delete, path = "/api/v1/projects/{project}/notifications/{channel}", tag = "notifications",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("channel" = helvetia_core::name::ChannelName, Path, description = "Channel name"),
    ),
    security(("token" = ["write"])),
    responses((status = NO_CONTENT))
)]
async fn delete_channel(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((project, channel)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    notifications::remove(&state.app, &caller, &project, &channel).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Send a test message to a channel (enabled or not); its attempts show in `…/messages`.
#[utoipa::path(
    post, path = "/api/v1/projects/{project}/notifications/{channel}/test", tag = "notifications",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("channel" = helvetia_core::name::ChannelName, Path, description = "Channel name"),
    ),
    security(("token" = ["write"])),
    responses((status = ACCEPTED, body = TestQueued))
)]
async fn test_channel(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((project, channel)): ApiPath<(String, String)>,
) -> ApiResult<(StatusCode, Json<TestQueued>)> {
    let queued = notifications::test(&state.app, &caller, &project, &channel).await?;
    Ok((StatusCode::ACCEPTED, Json(queued)))
}

/// A channel's messages, newest first, each with every attempt (when, the receiver's HTTP
/// status, what went wrong) and, while pending, when it is tried again.
#[utoipa::path(
    get, path = "/api/v1/projects/{project}/notifications/{channel}/messages", tag = "notifications",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("channel" = helvetia_core::name::ChannelName, Path, description = "Channel name"),
        Page,
    ),
    security(("token" = ["read"])),
    responses((status = OK, body = Vec<MessageView>))
)]
async fn list_messages(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((project, channel)): ApiPath<(String, String)>,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<Json<Vec<MessageView>>> {
    let messages = notifications::messages(
        &state.app,
        &caller,
        &project,
        &channel,
        page.before,
        page.limit,
    )
    .await?;
    Ok(Json(messages))
}
