//! Metrics over HTTP: a service's container metrics as a time series, its current values with
//! a health summary, and a live stream, all read from the store; and `/metrics`, the
//! Prometheus exposition of the whole server.
//!
//! A series picks its source by its step (raw samples, minute or hour averages; see
//! `helvetia_core::metrics::plan_series`) and adds up the service's containers per step,
//! optionally narrowed to one deployment or one container. The stream polls the store at the
//! collection interval and carries each sample's time as its event id, so a client that
//! reconnects with `Last-Event-ID` misses nothing.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::response::sse::{Event, Sse};
use futures::Stream;
use helvetia_core::Timestamp;
use helvetia_core::container::ServiceEventKind;
use helvetia_core::metrics::{
    ContainerSample, Resolution, SeriesPoint, memory_near_limit, plan_series,
};
use helvetia_core::units::{parse_duration, parse_time};
use helvetia_core::validation::FieldErrors;
use helvetia_store::Store;
use helvetia_store::metrics::SeriesQuery;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Authenticated;
use super::error::ApiResult;
use super::json::{ApiPath, ApiQuery};
use super::services::owned_service;
use super::sse;
use crate::metrics::exposition;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(service_metrics))
        .routes(routes!(current_metrics))
        .routes(routes!(metrics_stream))
        .routes(routes!(prometheus))
}

/// The range a series covers when none is asked for.
const DEFAULT_RANGE: jiff::SignedDuration = jiff::SignedDuration::from_secs(3600);
/// The engine restarts counted in the health summary are those of the last hour.
const RESTARTS_WINDOW: jiff::SignedDuration = jiff::SignedDuration::from_secs(3600);

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

/// A service's usage over time.
#[derive(Serialize, utoipa::ToSchema)]
pub struct MetricsSeries {
    #[schema(value_type = String, format = DateTime)]
    from: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    to: Timestamp,
    /// The width of each point, in seconds.
    step_seconds: u64,
    /// What the points were averaged from.
    resolution: Resolution,
    /// Oldest first; steps in which no container reported are left out.
    points: Vec<SeriesPoint>,
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
    Authenticated(caller): Authenticated,
    ApiPath((project, service)): ApiPath<(String, String)>,
    ApiQuery(params): ApiQuery<SeriesParams>,
) -> ApiResult<Json<MetricsSeries>> {
    let service = owned_service(&state, caller.team, &project, &service).await?;
    let now = Timestamp::now();
    let mut errors = FieldErrors::new();
    let from = params
        .from
        .map_or(Ok(now - DEFAULT_RANGE), |from| parse_time(&from, now));
    let from = errors.check("from", from);
    let to = errors.check("to", params.to.map_or(Ok(now), |to| parse_time(&to, now)));
    let step = errors.check(
        "step",
        params.step.as_deref().map(parse_duration).transpose(),
    );
    let (from, to, step) = errors.finish(|| Some((from?, to?, step?)))?;
    let settings = &state.settings().metrics;
    let plan = plan_series(from, to, step, settings.interval, now, &settings.retention)
        .map_err(|e| FieldErrors::single("to", e))?;
    let points = state
        .store
        .service_metrics(&SeriesQuery {
            service_id: service.id,
            from,
            to,
            step: plan.step,
            resolution: plan.resolution,
            deployment_id: params.deployment,
            container: params.container.as_deref(),
        })
        .await?;
    Ok(Json(MetricsSeries {
        from,
        to,
        step_seconds: plan.step.as_secs(),
        resolution: plan.resolution,
        points,
    }))
}

/// What a service uses now, and whether that needs attention.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CurrentMetrics {
    /// The latest sample of each container that reported recently.
    containers: Vec<ContainerSample>,
    health: MetricsHealth,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MetricsHealth {
    /// Nothing below needs attention.
    ok: bool,
    /// Containers using at least 90 % of their memory limit.
    memory_near_limit: Vec<String>,
    /// Times the engine restarted one of the service's containers in the last hour.
    restarts_last_hour: i64,
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
    Authenticated(caller): Authenticated,
    ApiPath((project, service)): ApiPath<(String, String)>,
) -> ApiResult<Json<CurrentMetrics>> {
    let service = owned_service(&state, caller.team, &project, &service).await?;
    let now = Timestamp::now();
    // Three rounds, so a slow round does not make a running container vanish.
    let recent = jiff::SignedDuration::try_from(state.settings().metrics.interval * 3)
        .unwrap_or(jiff::SignedDuration::from_secs(15));
    let mut latest = BTreeMap::new();
    for sample in state
        .store
        .service_samples_since(service.id, now - recent)
        .await?
    {
        // Oldest first: each container ends with its newest sample.
        latest.insert(sample.container.clone(), sample);
    }
    let containers: Vec<ContainerSample> = latest.into_values().collect();
    let near_limit: Vec<String> = containers
        .iter()
        .filter(|c| memory_near_limit(c.usage.memory_bytes, c.usage.memory_limit_bytes))
        .map(|c| c.container.clone())
        .collect();
    let restarts_last_hour = state
        .store
        .count_service_events(
            service.id,
            ServiceEventKind::Restarted,
            now - RESTARTS_WINDOW,
        )
        .await?;
    Ok(Json(CurrentMetrics {
        health: MetricsHealth {
            ok: near_limit.is_empty() && restarts_last_hour == 0,
            memory_near_limit: near_limit,
            restarts_last_hour,
        },
        containers,
    }))
}

/// The stream's state between events.
struct Follow {
    store: Store,
    service_id: i64,
    /// Samples up to this time were sent.
    sent_until: Timestamp,
    pending: VecDeque<ContainerSample>,
    polls: tokio::time::Interval,
}

impl Follow {
    /// The next event, waiting for the collector's next round when all was sent; `None` ends
    /// the stream (the store failed).
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(sample) = self.pending.pop_front() {
                return Some(
                    Event::default()
                        .id(sample.at.to_string())
                        .event("sample")
                        .json_data(&sample)
                        .unwrap_or_else(|_| Event::default().comment("unserialisable sample")),
                );
            }
            self.polls.tick().await;
            let after = self.sent_until + jiff::SignedDuration::from_millis(1);
            match self
                .store
                .service_samples_since(self.service_id, after)
                .await
            {
                Ok(samples) => {
                    if let Some(last) = samples.last() {
                        self.sent_until = last.at;
                    }
                    self.pending.extend(samples);
                }
                Err(error) => {
                    tracing::warn!(%error, "reading metrics for a stream failed");
                    return None;
                }
            }
        }
    }
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
    Authenticated(caller): Authenticated,
    ApiPath((project, service)): ApiPath<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let service = owned_service(&state, caller.team, &project, &service).await?;
    let interval = state.settings().metrics.interval;
    let sent_until = match sse::resume_from::<Timestamp>(&headers, "a timestamp")? {
        Some(at) => at,
        // Just before the latest round, so the client starts with it.
        None => Timestamp::now() - jiff::SignedDuration::try_from(interval * 2).unwrap_or_default(),
    };
    let follow = Follow {
        store: state.store.clone(),
        service_id: service.id,
        sent_until,
        pending: VecDeque::new(),
        polls: tokio::time::interval(interval),
    };
    let events = futures::stream::unfold(follow, |mut follow| async move {
        let event = follow.next().await?;
        Some((Ok(event), follow))
    });
    Ok(sse::respond(events))
}

/// The Prometheus text exposition: platform metrics (deployments by status, queue depth,
/// build and deploy durations, API latency, SSE clients) and each running container's usage,
/// labelled with its project, service, deployment and container.
#[utoipa::path(
    get, path = "/metrics", tag = "metrics",
    security(("token" = ["read"])),
    responses((
        status = OK,
        description = "Prometheus text format 0.0.4",
        content_type = "text/plain; version=0.0.4",
        body = String,
    ))
)]
async fn prometheus(State(state): State<AppState>) -> ApiResult<Response> {
    let text = crate::metrics::exporter().scrape(&state.store).await?;
    Ok(exposition::text_response(text))
}
