//! Following Server-Sent Events streams, reconnecting with `Last-Event-ID` when the
//! connection drops, so a follower sees every event exactly once.

use std::ops::ControlFlow;
use std::time::Duration;

use anyhow::{Context, anyhow};
use futures::StreamExt;
use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::client::{Client, describe_error, understand};

/// One event of a stream.
#[derive(Debug, Default, Clone)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: String,
    pub data: String,
}

impl SseEvent {
    /// The event's data as a `T` that finds every one of its fields in it (see
    /// [`understand`]).
    pub fn data<T: DeserializeOwned + Serialize>(&self) -> anyhow::Result<T> {
        let what = || format!("the server sent a `{}` event", self.event);
        let json: serde_json::Value = serde_json::from_str(&self.data)
            .with_context(|| format!("{} that is not JSON", what()))?;
        understand(&json).map_err(|why| anyhow!("{} this CLI does not understand: {why}", what()))
    }
}

/// Attempts to reconnect before giving up on a stream.
const RECONNECTS: u32 = 20;
const FIRST_RETRY: Duration = Duration::from_millis(200);
const MAX_RETRY: Duration = Duration::from_secs(5);

/// Follows the stream at `path` until `on_event` breaks, reconnecting after a dropped
/// connection from the last event id seen.
pub async fn follow(
    client: &Client,
    path: &str,
    on_event: impl FnMut(&SseEvent) -> ControlFlow<()>,
) -> anyhow::Result<()> {
    follow_from(client, path, None, on_event).await
}

/// [`follow`] with a handler that may fail (on an event it does not understand, say): the
/// first failure ends the stream and is returned.
pub async fn follow_checked(
    client: &Client,
    path: &str,
    mut on_event: impl FnMut(&SseEvent) -> anyhow::Result<ControlFlow<()>>,
) -> anyhow::Result<()> {
    let mut failure = None;
    follow(client, path, |event| match on_event(event) {
        Ok(flow) => flow,
        Err(error) => {
            failure = Some(error);
            ControlFlow::Break(())
        }
    })
    .await?;
    failure.map_or(Ok(()), Err)
}

/// [`follow`], starting after the event `last_id` (as a reconnecting client does).
pub async fn follow_from(
    client: &Client,
    path: &str,
    mut last_id: Option<String>,
    mut on_event: impl FnMut(&SseEvent) -> ControlFlow<()>,
) -> anyhow::Result<()> {
    let mut failures = 0;
    let mut delay = FIRST_RETRY;
    loop {
        match follow_once(client, path, &mut last_id, &mut on_event).await {
            Ok(ControlFlow::Break(())) => return Ok(()),
            // The server ended the stream without the event we wait for: reconnect.
            Ok(ControlFlow::Continue(())) => {}
            Err(Failure::Refused(error)) => return Err(error),
            Err(Failure::Dropped(error)) if failures >= RECONNECTS => return Err(error),
            Err(Failure::Dropped(_)) => {}
        }
        failures += 1;
        if failures > RECONNECTS {
            anyhow::bail!("the event stream keeps ending; gave up after {RECONNECTS} reconnects");
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_RETRY);
    }
}

/// Why one connection ended without the awaited event.
enum Failure {
    /// The server refused the request: retrying cannot help.
    Refused(anyhow::Error),
    /// The connection failed or dropped: reconnect.
    Dropped(anyhow::Error),
}

async fn follow_once(
    client: &Client,
    path: &str,
    last_id: &mut Option<String>,
    on_event: &mut impl FnMut(&SseEvent) -> ControlFlow<()>,
) -> Result<ControlFlow<()>, Failure> {
    let mut request = client
        .request(Method::GET, path)
        .header("Accept", "text/event-stream");
    if let Some(id) = last_id.as_deref() {
        request = request.header("Last-Event-ID", id);
    }
    let response = request
        .send()
        .await
        .map_err(|e| Failure::Dropped(e.into()))?;
    if !response.status().is_success() {
        let status = response.status();
        let body = response.bytes().await.unwrap_or_default();
        let error = anyhow::anyhow!(describe_error(status, &body));
        return Err(if status.is_client_error() {
            Failure::Refused(error)
        } else {
            Failure::Dropped(error)
        });
    }
    let mut bytes = response.bytes_stream();
    let mut buffer: Vec<u8> = Vec::new();
    let mut event = SseEvent::default();
    while let Some(chunk) = bytes.next().await {
        buffer.extend_from_slice(&chunk.map_err(|e| Failure::Dropped(e.into()))?);
        while let Some(end) = buffer.iter().position(|&b| b == b'\n') {
            let raw: Vec<u8> = buffer.drain(..=end).collect();
            let line = String::from_utf8_lossy(&raw[..end]);
            let line = line.trim_end_matches('\r');
            if line.is_empty() {
                if !event.data.is_empty() || !event.event.is_empty() {
                    let done = std::mem::take(&mut event);
                    if done.id.is_some() {
                        last_id.clone_from(&done.id);
                    }
                    if on_event(&done).is_break() {
                        return Ok(ControlFlow::Break(()));
                    }
                }
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "id" => event.id = Some(value.to_owned()),
                "event" => event.event = value.to_owned(),
                "data" => {
                    if !event.data.is_empty() {
                        event.data.push('\n');
                    }
                    event.data.push_str(value);
                }
                _ => {}
            }
        }
    }
    Ok(ControlFlow::Continue(()))
}
