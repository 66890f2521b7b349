//! Reading logs: a deployment's log in pages or followed live, and a service's runtime output
//! read once or followed. The streams' framing (Server-Sent Events, resuming) belongs to the
//! entry point.

use std::time::Duration;

use helvetia_api_types::{LogLines, OutputLine};
use helvetia_core::auth::Caller;
use helvetia_core::redact::Redactor;
use tokio::sync::{broadcast, mpsc};

use super::access::OwnedService;
use super::deployments;
use super::{App, Result, UseCaseError};
use crate::logs::runtime::{self, OutputQuery};
use crate::logs::{Follower, LogEvent};

/// Events buffered per follower before the follower's task waits for a slow reader (which
/// then catches up from the store).
const FOLLOW_BUFFER: usize = 512;
/// How often a follower waiting for a deployment's job re-checks its status.
const STATUS_RECHECK: Duration = Duration::from_secs(1);
/// Lines read from the store at once while catching up.
const PAGE: i64 = 1000;

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

/// A new follower of the service's logs, unless it already has the most the server allows.
fn admit_follower(app: &App, service_id: i64) -> Result<Follower> {
    let followers = &app.platform.followers;
    followers.admit(service_id).ok_or_else(|| {
        UseCaseError::Busy(format!(
            "this service's logs already have {} followers, the most the server allows \
             (its --max-log-followers); close one or try again later",
            followers.max_per_service()
        ))
    })
}

/// Follows a deployment's log from after line `after`: every line once and in order, however
/// far behind the reader falls (missed lines come from the store), its status changes, and a
/// last [`LogEvent::End`] once its job is done. Ends early when the receiver is dropped.
pub async fn follow_deployment_log(
    app: &App,
    caller: &Caller,
    id: i64,
    after: i64,
) -> Result<mpsc::Receiver<LogEvent>> {
    let deployment = deployments::find(app, caller, id).await?;
    let follower = admit_follower(app, deployment.service_id)?;
    // Subscribe before reading the store, so no line falls between the two.
    let live = app.platform.logs.subscribe(id);
    let (sender, receiver) = mpsc::channel(FOLLOW_BUFFER);
    let app = app.clone();
    tokio::spawn(async move {
        let _counted = follower;
        pump_deployment(app, id, after, live, sender).await;
    });
    Ok(receiver)
}

/// Sends stored lines after `last`, returning the new last line number, or `None` when the
/// client went away.
async fn catch_up(
    app: &App,
    id: i64,
    mut last: i64,
    sender: &mpsc::Sender<LogEvent>,
) -> Option<i64> {
    loop {
        let page = app.store.deployment_logs(id, last, PAGE).await.ok()?;
        if page.is_empty() {
            return Some(last);
        }
        for line in &page {
            sender.send(LogEvent::Line(line.clone())).await.ok()?;
            last = line.seq;
        }
    }
}

async fn pump_deployment(
    app: App,
    id: i64,
    after: i64,
    mut live: broadcast::Receiver<LogEvent>,
    sender: mpsc::Sender<LogEvent>,
) {
    let Some(mut last) = catch_up(&app, id, after, &sender).await else {
        return;
    };
    if let Ok(deployment) = app.store.deployment_by_id(id).await
        && sender
            .send(LogEvent::Status(deployment.status))
            .await
            .is_err()
    {
        return;
    }
    loop {
        if !app.platform.logs.is_writing(id) {
            // No job writes this log now: it either has not started (queued) or is done.
            let Some(caught_up) = catch_up(&app, id, last, &sender).await else {
                return;
            };
            last = caught_up;
            match app.store.deployment_by_id(id).await {
                Ok(d) if !d.status.is_in_progress() => {
                    let _ = sender.send(LogEvent::End(d.status)).await;
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
                if sender.send(LogEvent::Line(line)).await.is_err() {
                    return;
                }
            }
            Ok(LogEvent::Line(_)) => {}
            Ok(LogEvent::Status(status)) => {
                if sender.send(LogEvent::Status(status)).await.is_err() {
                    return;
                }
            }
            Ok(LogEvent::End(status)) => {
                if catch_up(&app, id, last, &sender).await.is_some() {
                    let _ = sender.send(LogEvent::End(status)).await;
                }
                return;
            }
            // Fell behind the broadcast: the store has every line it missed.
            Err(broadcast::error::RecvError::Lagged(_)) => {
                let Some(caught_up) = catch_up(&app, id, last, &sender).await else {
                    return;
                };
                last = caught_up;
            }
            Err(broadcast::error::RecvError::Closed) => live = app.platform.logs.subscribe(id),
        }
    }
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
    let follower = admit_follower(app, service.id)?;
    let redactor = redactor(app, &service).await?;
    Ok(runtime::follow(
        app.platform.clone(),
        service.into_service(),
        redactor,
        query,
        follower,
    ))
}
