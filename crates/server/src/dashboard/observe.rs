//! Watching a running service: its runtime output (the log viewer on the API's stream, the
//! latest lines in the page for reading without JavaScript) and its metrics (uPlot charts of
//! the API's series, live from its stream).

use askama::Template;
use axum::extract::{Path, State};

use super::page::{Chrome, PageResult, Viewer, render};
use super::services::ServiceNav;
use super::views::bytes_or_none;
use crate::api::AppState;
use crate::logs::runtime::OutputQuery;
use crate::usecases::{access, logs, services};

/// How many lines per container the page itself holds, for reading without JavaScript.
const STATIC_TAIL: usize = 200;
/// How many lines per container the live viewer starts with.
const LIVE_TAIL: usize = 1000;

#[derive(Template)]
#[template(path = "logs.html")]
struct LogsPage {
    chrome: Chrome,
    nav: ServiceNav,
    stream: String,
    lines: Vec<String>,
}

/// `GET /p/{project}/s/{service}/logs`.
pub async fn logs(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((project, service)): Path<(String, String)>,
) -> PageResult {
    let owned = access::service(&state.app, &viewer.caller, &project, &service).await?;
    let query = OutputQuery {
        tail: Some(STATIC_TAIL),
        since: None,
    };
    let lines = logs::service_output(&state.app, &owned, query)
        .await?
        .into_iter()
        .map(|line| line.line)
        .collect();
    Ok(render(&LogsPage {
        chrome: viewer.chrome(format!("Logs of {project}/{service}")),
        nav: ServiceNav::new(&project, &service, "logs"),
        stream: format!(
            "/api/v1/projects/{project}/services/{service}/logs/stream?tail={LIVE_TAIL}"
        ),
        lines,
    }))
}

#[derive(Template)]
#[template(path = "metrics.html")]
struct MetricsPage {
    chrome: Chrome,
    nav: ServiceNav,
    api: String,
    memory_limit: String,
    cpus: String,
}

/// `GET /p/{project}/s/{service}/metrics`.
pub async fn metrics(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((project, service)): Path<(String, String)>,
) -> PageResult {
    let owned = access::service(&state.app, &viewer.caller, &project, &service).await?;
    let (view, _) = services::get(&state.app, owned).await?;
    let limits = view
        .runtime
        .limits
        .or(state.app.platform.settings.default_limits);
    Ok(render(&MetricsPage {
        chrome: viewer.chrome(format!("Metrics of {project}/{service}")),
        nav: ServiceNav::new(&project, &service, "metrics"),
        api: format!("/api/v1/projects/{project}/services/{service}/metrics"),
        memory_limit: bytes_or_none(limits.memory_bytes),
        cpus: limits
            .cpus
            .map_or_else(|| "all of the host's".to_owned(), |cpus| cpus.to_string()),
    }))
}
