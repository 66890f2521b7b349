//! Deploys on push: a service's settings, its receiver's secret and its delivery log (token
//! routes under the service), and the public receivers that deliveries reach — a service's
//! own (`/api/v1/hooks/{hook}/{source}`) and the GitHub App's. A receiver reads the raw body
//! (its signature covers those bytes) up to its own limit, so an oversized delivery is logged
//! before it is refused.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use helvetia_api_types::{Delivery, HookReceipt, HookSecret, HookView, Source, UpdateHook};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Authenticated;
use super::deployments::Page;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::ServicePath;
use super::json::{ApiJson, ApiPath, ApiQuery};
use crate::usecases::hooks;
use crate::usecases::receivers::{self, MAX_BODY_BYTES};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_hook, update_hook))
        .routes(routes!(rotate_hook_secret))
        .routes(routes!(list_deliveries))
        .routes(routes!(receive_hook))
        .routes(routes!(receive_github))
        .routes(routes!(list_app_deliveries))
}

/// A service's deploy-on-push settings and its receiver's URL (never its secret).
#[utoipa::path(
    get, path = "/api/v1/projects/{project}/services/{service}/hook", tag = "hooks",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
    ),
    security(("token" = ["read"])),
    responses((status = OK, body = HookView))
)]
async fn get_hook(
    State(state): State<AppState>,
    ServicePath(service): ServicePath,
) -> ApiResult<Json<HookView>> {
    Ok(Json(hooks::get(&state.app, &service).await?))
}

/// Change a service's deploy-on-push settings: auto-deploy, watch paths, cancelling a running
/// build of an older commit.
#[utoipa::path(
    patch, path = "/api/v1/projects/{project}/services/{service}/hook", tag = "hooks",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
    ),
    request_body = UpdateHook,
    security(("token" = ["write"])),
    responses((status = OK, body = HookView))
)]
async fn update_hook(
    State(state): State<AppState>,
    ServicePath(service): ServicePath,
    ApiJson(body): ApiJson<UpdateHook>,
) -> ApiResult<Json<HookView>> {
    Ok(Json(hooks::update(&state.app, &service, body).await?))
}

/// Make the service's receiver, or replace its URL and secret (the old ones stop working at
/// once). The secret is in this answer only.
#[utoipa::path(
    post, path = "/api/v1/projects/{project}/services/{service}/hook/secret", tag = "hooks",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
    ),
    security(("token" = ["write"])),
    responses((status = CREATED, body = HookSecret))
)]
async fn rotate_hook_secret(
    State(state): State<AppState>,
    ServicePath(service): ServicePath,
) -> ApiResult<(StatusCode, Json<HookSecret>)> {
    let secret = hooks::rotate_secret(&state.app, &service).await?;
    Ok((StatusCode::CREATED, Json(secret)))
}

/// The webhook deliveries a service received (kept 30 days), newest first, with what each
/// did: deployed, ignored and why, refused and why, a duplicate, or waiting.
#[utoipa::path(
    get, path = "/api/v1/projects/{project}/services/{service}/hook/deliveries", tag = "hooks",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
        Page,
    ),
    security(("token" = ["read"])),
    responses((status = OK, body = Vec<Delivery>))
)]
async fn list_deliveries(
    State(state): State<AppState>,
    ServicePath(service): ServicePath,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<Json<Vec<Delivery>>> {
    let deliveries = hooks::deliveries(&state.app, &service, page.before, page.limit).await?;
    Ok(Json(deliveries))
}

/// The deliveries that reached no service (instance administrators): the GitHub App's
/// refused ones and pushes to a repository no service is linked to, newest first.
#[utoipa::path(
    get, path = "/api/v1/github/deliveries", tag = "github",
    params(Page),
    security(("token" = ["admin"])),
    responses((status = OK, body = Vec<Delivery>))
)]
async fn list_app_deliveries(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<Json<Vec<Delivery>>> {
    let deliveries = hooks::app_deliveries(&state.app, &caller, page.before, page.limit).await?;
    Ok(Json(deliveries))
}

/// The body, or `None` when it is over the receivers' limit.
async fn read_body(body: Body) -> Result<Option<Vec<u8>>, ApiError> {
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(Some(collected.to_bytes().to_vec())),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => Ok(None),
        Err(error) => Err(ApiError::BadRequest(format!(
            "reading the body failed: {error}"
        ))),
    }
}

/// What a receiver is handed: the body [`read_body`] read, or that it was too large.
fn received(body: &Option<Vec<u8>>) -> receivers::Body<'_> {
    match body {
        Some(bytes) => receivers::Body::Read(bytes),
        None => receivers::Body::TooLarge,
    }
}

/// A header's value, if it is text.
fn header<'a>(headers: &'a HeaderMap) -> impl Fn(&str) -> Option<&'a str> + Copy {
    move |name| headers.get(name).and_then(|value| value.to_str().ok())
}

/// Receive a webhook delivery for the service whose receiver this is (public: the
/// signature proves the sender, as `source` signs — Gitea's `X-Gitea-Signature`, Forgejo's
/// `X-Forgejo-Signature`, GitLab's `X-Gitlab-Token`, or Helvetia's generic
/// `X-Helvetia-Signature-256` over `<X-Helvetia-Timestamp>.<body>`). A verified push to the
/// service's branch is queued for deployment; everything is in the service's delivery log.
#[utoipa::path(
    post, path = "/api/v1/hooks/{hook}/{source}", tag = "hooks",
    params(
        ("hook" = String, Path, description = "The receiver's id, from its URL"),
        ("source" = Source, Path, description = "Who sends: gitea, forgejo, gitlab or generic"),
    ),
    request_body(content = serde_json::Value, description = "The sender's payload, as it sends it"),
    responses(
        (status = ACCEPTED, body = HookReceipt, description = "Verified; what it did"),
        (status = UNAUTHORIZED, body = ErrorBody, description = "No signature, or a wrong or expired one: nothing was done"),
        (status = NOT_FOUND, body = ErrorBody, description = "No such receiver"),
        (status = BAD_REQUEST, body = ErrorBody, description = "Verified, but the push payload cannot be read: nothing was done"),
        (status = PAYLOAD_TOO_LARGE, body = ErrorBody, description = "The body is over 4 MiB: nothing was done"),
    )
)]
async fn receive_hook(
    State(state): State<AppState>,
    ApiPath((hook, source)): ApiPath<(String, Source)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<HookReceipt>)> {
    let body = read_body(body).await?;
    let (header, body) = (header(&headers), received(&body));
    let receipt = receivers::receive_service_hook(&state.app, &hook, source, header, body).await?;
    Ok((StatusCode::ACCEPTED, Json(receipt)))
}

/// Receive a webhook delivery of the instance's GitHub App (public: `X-Hub-Signature-256`, the
/// HMAC-SHA256 of the body with the App's webhook secret, proves it). `ping` is answered; a
/// push reaches every service linked to its repository, each recording what it did in its
/// delivery log.
#[utoipa::path(
    post, path = "/api/v1/github/webhook", tag = "github",
    request_body(content = serde_json::Value, description = "GitHub's payload, as it sends it"),
    responses(
        (status = ACCEPTED, body = HookReceipt, description = "Verified; what it did"),
        (status = UNAUTHORIZED, body = ErrorBody, description = "No signature or a wrong one: nothing was done"),
        (status = NOT_FOUND, body = ErrorBody, description = "No GitHub App is configured"),
        (status = BAD_REQUEST, body = ErrorBody, description = "Verified, but the push payload cannot be read: nothing was done"),
        (status = PAYLOAD_TOO_LARGE, body = ErrorBody, description = "The body is over 4 MiB: nothing was done"),
    )
)]
async fn receive_github(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<HookReceipt>)> {
    let body = read_body(body).await?;
    let (header, body) = (header(&headers), received(&body));
    let receipt = receivers::receive_github(&state.app, header, body).await?;
    Ok((StatusCode::ACCEPTED, Json(receipt)))
}
