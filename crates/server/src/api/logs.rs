//! Logs over HTTP: a deployment's log and a service's runtime output, each as JSON pages and
//! as a Server-Sent Events stream.
//!
//! Streams carry event ids (a deployment log's line number; a runtime line's timestamp). A
//! client that reconnects with `Last-Event-ID` continues exactly after the last event it saw:
//! deployment lines come from the store, so nothing is lost or repeated however far behind a
//! client falls. Streams authenticate like every other route (the bearer header; never a
//! token in the URL) and send keep-alive comments.

use std::convert::Infallible;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, Sse};
use futures::Stream;
use helvetia_api_types::{DeploymentStatus, LogLine, LogLines, OutputLine, StatusEvent};
use helvetia_core::Timestamp;
use helvetia_core::units::parse_time;
use serde::Deserialize;
use tokio::sync::mpsc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Authenticated;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::ServicePath;
use super::json::{ApiPath, ApiQuery};
use super::sse;
use crate::logs::LogEvent;
use crate::logs::runtime::OutputQuery;
use crate::usecases::logs;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(deployment_logs))
        .routes(routes!(deployment_log_stream))
        .routes(routes!(service_logs))
        .routes(routes!(service_log_stream))
}

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

/// What `receiver` yields, as events, until it ends.
fn to_sse<T: Send + 'static>(
    receiver: mpsc::Receiver<T>,
    event: fn(T) -> Event,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = futures::stream::unfold(receiver, move |mut receiver| async move {
        receiver
            .recv()
            .await
            .map(|item| (Ok(event(item)), receiver))
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
        (status = TOO_MANY_REQUESTS, body = ErrorBody, description = "The service's logs already have the most followers the server allows (`--max-log-followers`, default 100)"),
    )
)]
async fn deployment_log_stream(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(start): ApiQuery<StreamStart>,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let after =
        sse::resume_from::<i64>(&headers, "a line number")?.unwrap_or(start.after.unwrap_or(0));
    let events = logs::follow_deployment_log(&state.app, &caller, id, after).await?;
    Ok(to_sse(events, deployment_event))
}

fn deployment_event(event: LogEvent) -> Event {
    match event {
        LogEvent::Line(line) => line_event(&line),
        LogEvent::Status(status) => status_event("status", status),
        LogEvent::End(status) => status_event("end", status),
    }
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

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct OutputParams {
    /// At most this many lines per container from before now (default 100; `all` for all). A
    /// read (not the stream) answers the newest of them: at most 10000 lines and 8 MiB of
    /// text, also for `all`.
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
        (status = TOO_MANY_REQUESTS, body = ErrorBody, description = "The service's logs already have the most followers the server allows (`--max-log-followers`, default 100)"),
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
    let lines = logs::follow_service_output(&state.app, service, query).await?;
    Ok(to_sse(lines, output_event))
}

fn output_event(line: OutputLine) -> Event {
    Event::default()
        .id(line.at.to_string())
        .event("line")
        .json_data(&line)
        .unwrap_or_else(|_| Event::default().comment("unserialisable line"))
}
