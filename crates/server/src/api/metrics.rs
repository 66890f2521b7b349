//! Metrics over HTTP: a service's container metrics as a time series, its current values with
//! a health summary, and a live stream, all read from the store; and `/metrics`, the
//! Prometheus exposition of the whole server.
//!
//! A series picks its source by its step (raw samples, minute or hour averages; see
//! `helvetia_core::metrics::plan_series`) and adds up the service's containers per step,
//! optionally narrowed to one deployment or one container. The stream polls the store at the
//! collection interval and carries each sample's time as its event id, so a client that
//! reconnects with `Last-Event-ID` misses nothing.

use std::convert::Infallible;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::response::sse::{Event, Sse};
use futures::Stream;
use helvetia_api_types::{CurrentMetrics, MetricsSeries};
use helvetia_core::Timestamp;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Authenticated;
use super::error::ApiResult;
use super::extract::ServicePath;
use super::json::ApiQuery;
use super::sse;
use crate::metrics::exposition;
use crate::usecases::metrics::{self, SeriesRange};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(service_metrics))
        .routes(routes!(current_metrics))
        .routes(routes!(metrics_stream))
        .routes(routes!(prometheus))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct SeriesParams {
    /// Start: a duration ago (`1h`, `30m`, `7d`) or an RFC 3339 timestamp. Default: 1 hour ago.
    from: Option<String>,
    /// End, like `from`. Default: now.
    to: Option<String>,
    /// The width of each point (`30s`, `5m`), at least the collection interval. Default: the
    /// range in about 120 points.
    step: Option<String>,
    /// Only this deployment's containers.
    deployment: Option<i64>,
    /// Only this container.
    container: Option<String>,
}

/// A service's container metrics over time: per step, each container's average, added up
/// over the service's containers.
#[utoipa::path(
    get, path = "/api/v1/projects/{project}/services/{service}/metrics", tag = "metrics",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
        SeriesParams,
    ),
    security(("token" = ["read"])),
    responses(
        (status = OK, body = MetricsSeries),
    )
)]
async fn service_metrics(
    State(state): State<AppState>,
    ServicePath(service): ServicePath,
    ApiQuery(params): ApiQuery<SeriesParams>,
) -> ApiResult<Json<MetricsSeries>> {
    let range = SeriesRange {
        from: params.from.as_deref(),
        to: params.to.as_deref(),
        step: params.step.as_deref(),
        deployment: params.deployment,
        container: params.container.as_deref(),
    };
    Ok(Json(metrics::series(&state.app, &service, range).await?))
}

/// A service's current usage per container, with a health summary: containers near their
/// memory limit, restarts in the last hour.
#[utoipa::path(
    get, path = "/api/v1/projects/{project}/services/{service}/metrics/current", tag = "metrics",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
    ),
    security(("token" = ["read"])),
    responses((status = OK, body = CurrentMetrics))
)]
async fn current_metrics(
    State(state): State<AppState>,
    ServicePath(service): ServicePath,
) -> ApiResult<Json<CurrentMetrics>> {
    Ok(Json(metrics::current(&state.app, &service).await?))
}

/// Follow a service's container metrics live (Server-Sent Events): a `sample` event per
/// container and collection round (id = the sample's time, data as in `metrics/current`),
/// starting with the latest round. Reconnect with `Last-Event-ID` to resume after the last
/// sample seen.
#[utoipa::path(
    get, path = "/api/v1/projects/{project}/services/{service}/metrics/stream", tag = "metrics",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
    ),
    security(("token" = ["read"])),
    responses(
        (status = OK, description = "An event stream", content_type = "text/event-stream"),
    )
)]
async fn metrics_stream(
    State(state): State<AppState>,
    ServicePath(service): ServicePath,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let interval = state.app.platform.settings.metrics.interval;
    let sent_until = match sse::resume_from::<Timestamp>(&headers, "a timestamp")? {
        Some(at) => at,
        // Just before the latest round, so the client starts with it.
        None => Timestamp::now() - jiff::SignedDuration::try_from(interval * 2).unwrap_or_default(),
    };
    let follow = metrics::follow(&state.app, &service, sent_until);
    let events = futures::stream::unfold(follow, |mut follow| async move {
        let sample = follow.next().await?;
        let event = Event::default()
            .id(sample.at.to_string())
            .event("sample")
            .json_data(&sample)
            .unwrap_or_else(|_| Event::default().comment("unserialisable sample"));
        Some((Ok(event), follow))
    });
    Ok(sse::respond(events))
}

/// The Prometheus text exposition: platform metrics (deployments by status, queue depth,
/// build and deploy durations, API latency, SSE clients) and each running container's usage,
/// labelled with its project, service, deployment and container. Series of every team: for
/// instance administrators only.
#[utoipa::path(
    get, path = "/metrics", tag = "metrics",
    security(("token" = ["admin"])),
    responses((
        status = OK,
        description = "Prometheus text format 0.0.4",
        content_type = "text/plain; version=0.0.4",
        body = String,
    ))
)]
async fn prometheus(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ApiResult<Response> {
    let text = metrics::prometheus(&state.app, &caller).await?;
    Ok(exposition::text_response(text))
}
