//! The runtime output of a service's containers, from the engine, with secrets redacted.
//!
//! Each container's stdout and stderr are reassembled into lines (a secret split across
//! chunks is still found) and tagged with the engine's timestamp, which also serves as the
//! position a follower resumes from.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use helvetia_core::Timestamp;
use helvetia_core::container::ContainerState;
use helvetia_core::redact::{LineRedactor, Redactor};
use helvetia_core::service::Service;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::platform::Platform;

/// One line a container wrote.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OutputLine {
    pub container: String,
    /// `stdout` or `stderr`.
    pub stream: &'static str,
    /// When the engine received it.
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    pub line: String,
}

/// Which output to read.
#[derive(Debug, Clone, Copy)]
pub struct OutputQuery {
    /// At most this many lines per container from before now (all when `None`).
    pub tail: Option<usize>,
    /// Only lines written after this.
    pub since: Option<Timestamp>,
}

/// How often a follower looks for containers that started serving after it connected.
const NEW_CONTAINER_CHECK: Duration = Duration::from_secs(2);

/// The output so far of the service's serving containers, oldest first.
pub async fn read(
    platform: &Platform,
    service: &Service,
    redactor: Redactor,
    query: OutputQuery,
) -> Vec<OutputLine> {
    let (sender, mut receiver) = mpsc::channel(1024);
    let containers = serving(platform, service.id).await;
    let mut readers = vec![];
    for (engine_id, name) in containers {
        readers.push(tokio::spawn(pump(
            platform.engine.clone(),
            engine_id,
            name,
            query,
            false,
            redactor.clone(),
            sender.clone(),
        )));
    }
    drop(sender);
    let mut lines = vec![];
    while let Some(line) = receiver.recv().await {
        lines.push(line);
    }
    lines.sort_by_key(|line: &OutputLine| line.at);
    if let Some(tail) = query.tail {
        let skip = lines.len().saturating_sub(tail);
        lines.drain(..skip);
    }
    lines
}

/// Follows the service's output: first what `query` selects, then everything written from
/// now on, also by containers that start serving later (a redeploy). Ends when the receiver
/// is dropped.
pub fn follow(
    platform: Arc<Platform>,
    service: Service,
    redactor: Redactor,
    query: OutputQuery,
) -> mpsc::Receiver<OutputLine> {
    let (sender, receiver) = mpsc::channel(1024);
    tokio::spawn(async move {
        let mut attached: HashSet<String> = HashSet::new();
        let mut first_round = true;
        while !sender.is_closed() {
            let attach_query = if first_round {
                query
            } else {
                OutputQuery {
                    tail: None,
                    since: Some(Timestamp::now() - jiff::SignedDuration::from_secs(2)),
                }
            };
            for (engine_id, name) in serving(&platform, service.id).await {
                if attached.insert(engine_id.clone()) {
                    tokio::spawn(pump(
                        platform.engine.clone(),
                        engine_id,
                        name,
                        attach_query,
                        true,
                        redactor.clone(),
                        sender.clone(),
                    ));
                }
            }
            first_round = false;
            tokio::select! {
                () = sender.closed() => return,
                () = tokio::time::sleep(NEW_CONTAINER_CHECK) => {}
            }
        }
    });
    receiver
}

async fn serving(platform: &Platform, service_id: i64) -> Vec<(String, String)> {
    match platform
        .store
        .service_containers(service_id, ContainerState::Serving)
        .await
    {
        Ok(containers) => containers
            .into_iter()
            .filter_map(|c| Some((c.engine_id?, c.name)))
            .collect(),
        Err(error) => {
            tracing::warn!(%error, "listing containers for their output failed");
            vec![]
        }
    }
}

/// Reads one container's output into `sender`, line by line, redacted.
async fn pump(
    engine: helvetia_engine::docker::Engine,
    engine_id: String,
    name: String,
    query: OutputQuery,
    follow: bool,
    redactor: Redactor,
    sender: mpsc::Sender<OutputLine>,
) {
    // The engine's `since` has a resolution of seconds; finer filtering happens per line.
    let since = query.since.map(|t| t.as_second());
    let mut chunks = Box::pin(engine.container_output(&engine_id, query.tail, since, follow));
    let mut stdout = LineRedactor::new(redactor.clone());
    let mut stderr = LineRedactor::new(redactor);
    while let Some(chunk) = chunks.next().await {
        let Ok(chunk) = chunk else { break };
        let (lines, stream) = if chunk.stderr {
            (stderr.push(&chunk.bytes), "stderr")
        } else {
            (stdout.push(&chunk.bytes), "stdout")
        };
        for line in lines {
            let Some(output) = parse(&name, stream, &line) else {
                continue;
            };
            if query.since.is_some_and(|since| output.at <= since) {
                continue;
            }
            if sender.send(output).await.is_err() {
                return;
            }
        }
    }
}

/// Splits the engine's `<RFC 3339 timestamp> <text>` line.
fn parse(container: &str, stream: &'static str, line: &str) -> Option<OutputLine> {
    let (at, text) = line.split_once(' ').unwrap_or((line, ""));
    Some(OutputLine {
        container: container.to_owned(),
        stream,
        at: at.parse().ok()?,
        line: text.to_owned(),
    })
}
