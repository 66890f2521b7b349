//! Logs over HTTP: a deployment's log and a service's runtime output, each as JSON pages and
//! as a Server-Sent Events stream.
//!
//! Streams carry event ids (a deployment log's line number; a runtime line's timestamp). A
//! client that reconnects with `Last-Event-ID` continues exactly after the last event it saw:
//! deployment lines come from the store, so nothing is lost or repeated however far behind a
//! client falls. Streams authenticate like every other route (the bearer header; never a
//! token in the URL) and send keep-alive comments.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, Sse};
use futures::Stream;
use helvetia_api_types::{DeploymentStatus, LogLine, LogLines, OutputLine, StatusEvent};
use helvetia_core::Timestamp;
use helvetia_core::units::parse_time;
use serde::Deserialize;
use tokio::sync::{broadcast, mpsc};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Authenticated;
use super::error::{ApiError, ApiResult};
use super::extract::ServicePath;
use super::json::{ApiPath, ApiQuery};
use super::sse;
use crate::logs::LogEvent;
use crate::logs::runtime::OutputQuery;
use crate::usecases::{deployments, logs};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(deployment_logs))
        .routes(routes!(deployment_log_stream))
        .routes(routes!(service_logs))
        .routes(routes!(service_log_stream))
}

/// Events buffered per stream before the stream task waits for a slow client (which then
/// catches up from the store).
const STREAM_BUFFER: usize = 512;
/// How often a stream waiting for a deployment's job re-checks its status.
const STATUS_RECHECK: Duration = Duration::from_secs(1);
const PAGE: i64 = 1000;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct LogPage {
    /// Only lines after this line number (default 0: from the start).
    after: Option<i64>,
    /// At most this many lines (default 1000, at most 10000).
    limit: Option<i64>,
}

/// Read a deployment's log, in pages.
#[utoipa::path(
    get, path = "/api/v1/deployments/{id}/logs", tag = "logs",
    params(("id" = i64, Path, description = "Deployment id"), LogPage),
    security(("token" = ["read"])),
    responses((status = OK, body = LogLines))
)]
async fn deployment_logs(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(page): ApiQuery<LogPage>,
) -> ApiResult<Json<LogLines>> {
    Ok(Json(
        logs::deployment_log(&state.app, &caller, id, page.after, page.limit).await?,
    ))
}

fn to_sse(receiver: mpsc::Receiver<Event>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|event| (Ok(event), receiver))
    });
    sse::respond(stream)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct StreamStart {
    /// Start after this line number when there is no `Last-Event-ID` (default 0).
    after: Option<i64>,
}

/// Follow a deployment's log live (Server-Sent Events). Events: `line` (id = line number, data
/// `{seq, at, line}`), `status` (`{status}`, on every state change), and a last `end`
/// (`{status}`) once the deployment's job is done. Reconnect with `Last-Event-ID` to resume.
#[utoipa::path(
    get, path = "/api/v1/deployments/{id}/logs/stream", tag = "logs",
    params(("id" = i64, Path, description = "Deployment id"), StreamStart),
    security(("token" = ["read"])),
    responses(
        (status = OK, description = "An event stream", content_type = "text/event-stream"),
    )
)]
async fn deployment_log_stream(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(start): ApiQuery<StreamStart>,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    deployments::find(&state.app, &caller, id).await?;
    let after =
        sse::resume_from::<i64>(&headers, "a line number")?.unwrap_or(start.after.unwrap_or(0));
    // Subscribe before reading the store, so no line falls between the two.
    let live = state.app.platform.logs.subscribe(id);
    let (sender, receiver) = mpsc::channel(STREAM_BUFFER);
    tokio::spawn(pump_deployment(state, id, after, live, sender));
    Ok(to_sse(receiver))
}

fn line_event(line: &LogLine) -> Event {
    Event::default()
        .id(line.seq.to_string())
        .event("line")
        .json_data(line)
        .unwrap_or_else(|_| Event::default().comment("unserialisable line"))
}

fn status_event(kind: &'static str, status: DeploymentStatus) -> Event {
    Event::default()
        .event(kind)
        .json_data(StatusEvent { status })
        .unwrap_or_else(|_| Event::default().comment("unserialisable status"))
}

/// Sends stored lines after `last`, returning the new last line number, or `None` when the
/// client went away.
async fn catch_up(
    state: &AppState,
    id: i64,
    mut last: i64,
    sender: &mpsc::Sender<Event>,
) -> Option<i64> {
    loop {
        let page = state.app.store.deployment_logs(id, last, PAGE).await.ok()?;
        if page.is_empty() {
            return Some(last);
        }
        for line in &page {
            sender.send(line_event(line)).await.ok()?;
            last = line.seq;
        }
    }
}

async fn pump_deployment(
    state: AppState,
    id: i64,
    after: i64,
    mut live: broadcast::Receiver<LogEvent>,
    sender: mpsc::Sender<Event>,
) {
    let Some(mut last) = catch_up(&state, id, after, &sender).await else {
        return;
    };
    if let Ok(deployment) = state.app.store.deployment_by_id(id).await
        && sender
            .send(status_event("status", deployment.status))
            .await
            .is_err()
    {
        return;
    }
    loop {
        if !state.app.platform.logs.is_writing(id) {
            // No job writes this log now: it either has not started (queued) or is done.
            let Some(caught_up) = catch_up(&state, id, last, &sender).await else {
                return;
            };
            last = caught_up;
            match state.app.store.deployment_by_id(id).await {
                Ok(d) if !d.status.is_in_progress() => {
                    let _ = sender.send(status_event("end", d.status)).await;
                    return;
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
        let event = tokio::select! {
            () = sender.closed() => return,
            event = live.recv() => event,
            () = tokio::time::sleep(STATUS_RECHECK) => continue,
        };
        match event {
            Ok(LogEvent::Line(line)) if line.seq > last => {
                last = line.seq;
                if sender.send(line_event(&line)).await.is_err() {
                    return;
                }
            }
            Ok(LogEvent::Line(_)) => {}
            Ok(LogEvent::Status(status)) => {
                if sender.send(status_event("status", status)).await.is_err() {
                    return;
                }
            }
            Ok(LogEvent::End(status)) => {
                if catch_up(&state, id, last, &sender).await.is_some() {
                    let _ = sender.send(status_event("end", status)).await;
                }
                return;
            }
            // Fell behind the broadcast: the store has every line it missed.
            Err(broadcast::error::RecvError::Lagged(_)) => {
                let Some(caught_up) = catch_up(&state, id, last, &sender).await else {
                    return;
                };
                last = caught_up;
            }
            Err(broadcast::error::RecvError::Closed) => {
                live = state.app.platform.logs.subscribe(id)
            }
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct OutputParams {
    /// At most this many lines per container from before now (default 100; `all` for all).
    #[param(pattern = r"^(all|\+?[0-9]{1,15})$")]
    tail: Option<String>,
    /// Only lines since then: a duration ago (`10m`, `2h`) or a timestamp (RFC 3339).
    since: Option<String>,
}

impl OutputParams {
    fn query(&self) -> Result<OutputQuery, ApiError> {
        let tail = match self.tail.as_deref() {
            None => Some(100),
            Some("all") => None,
            Some(n) => Some(
                n.parse()
                    .map_err(|_| ApiError::BadRequest("tail must be a number or `all`".into()))?,
            ),
        };
        let since = self
            .since
            .as_deref()
            .map(|since| {
                parse_time(since, Timestamp::now())
                    .map_err(|why| ApiError::BadRequest(format!("since: {why}")))
            })
            .transpose()?;
        Ok(OutputQuery { tail, since })
    }
}

/// A service's runtime output (stdout and stderr of its serving containers), oldest first.
#[utoipa::path(
    get, path = "/api/v1/projects/{project}/services/{service}/logs", tag = "logs",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
        OutputParams,
    ),
    security(("token" = ["read"])),
    responses((status = OK, body = Vec<OutputLine>))
)]
async fn service_logs(
    State(state): State<AppState>,
    ServicePath(service): ServicePath,
    ApiQuery(params): ApiQuery<OutputParams>,
) -> ApiResult<Json<Vec<OutputLine>>> {
    let query = params.query()?;
    Ok(Json(
        logs::service_output(&state.app, &service, query).await?,
    ))
}

/// Follow a service's runtime output live (Server-Sent Events): `line` events (id = the
/// line's timestamp, data `{container, stream, at, line}`), including containers that start
/// serving later. Reconnect with `Last-Event-ID` to resume after the last line seen.
#[utoipa::path(
    get, path = "/api/v1/projects/{project}/services/{service}/logs/stream", tag = "logs",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
        OutputParams,
    ),
    security(("token" = ["read"])),
    responses(
        (status = OK, description = "An event stream", content_type = "text/event-stream"),
    )
)]
async fn service_log_stream(
    State(state): State<AppState>,
    ServicePath(service): ServicePath,
    ApiQuery(params): ApiQuery<OutputParams>,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let mut query = params.query()?;
    if let Some(at) = sse::resume_from::<Timestamp>(&headers, "a timestamp")? {
        query = OutputQuery {
            tail: None,
            since: Some(at),
        };
    }
    let mut lines = logs::follow_service_output(&state.app, service, query).await?;
    let (sender, receiver) = mpsc::channel(STREAM_BUFFER);
    tokio::spawn(async move {
        while let Some(line) = lines.recv().await {
            let event = Event::default()
                .id(line.at.to_string())
                .event("line")
                .json_data(&line)
                .unwrap_or_else(|_| Event::default().comment("unserialisable line"));
            if sender.send(event).await.is_err() {
                return;
            }
        }
    });
    Ok(to_sse(receiver))
}
