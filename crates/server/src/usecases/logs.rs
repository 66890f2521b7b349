//! Reading logs: a deployment's log in pages, and a service's runtime output (read once, or
//! followed). The streams' framing (Server-Sent Events, resuming) belongs to the entry point.

use helvetia_api_types::{LogLines, OutputLine};
use helvetia_core::auth::Caller;
use helvetia_core::redact::Redactor;
use tokio::sync::mpsc;

use super::access::OwnedService;
use super::deployments;
use super::{App, Result, UseCaseError};
use crate::logs::runtime::{self, OutputQuery};

/// A page of a deployment's log: the lines after `after` (default 0: from the start), at most
/// `limit` (default 1000, at most 10000).
pub async fn deployment_log(
    app: &App,
    caller: &Caller,
    id: i64,
    after: Option<i64>,
    limit: Option<i64>,
) -> Result<LogLines> {
    let deployment = deployments::find(app, caller, id).await?;
    let lines = app
        .store
        .deployment_logs(
            id,
            after.unwrap_or(0),
            limit.unwrap_or(1000).clamp(1, 10_000),
        )
        .await?;
    Ok(LogLines {
        lines,
        status: deployment.status,
    })
}

/// The redactor for a service's output. Without it nothing is shown: output that cannot be
/// redacted is not output that may be shown.
async fn redactor(app: &App, service: &OwnedService) -> Result<Redactor> {
    app.platform
        .redactor_for(service)
        .await
        .map_err(|e| UseCaseError::Internal(format!("opening the service's secrets failed: {e}")))
}

/// The output of the service's serving containers that `query` selects, oldest first.
pub async fn service_output(
    app: &App,
    service: &OwnedService,
    query: OutputQuery,
) -> Result<Vec<OutputLine>> {
    let redactor = redactor(app, service).await?;
    Ok(runtime::read(&app.platform, service, redactor, query).await)
}

/// Follows the service's output, also of containers that start serving later; ends when the
/// receiver is dropped.
pub async fn follow_service_output(
    app: &App,
    service: OwnedService,
    query: OutputQuery,
) -> Result<mpsc::Receiver<OutputLine>> {
    let redactor = redactor(app, &service).await?;
    Ok(runtime::follow(
        app.platform.clone(),
        helvetia_core::service::Service::clone(&service),
        redactor,
        query,
    ))
}
