//! The runtime output of a service's containers, from the engine, with secrets redacted.
//!
//! Each container's stdout and stderr are reassembled into lines (a secret split across
//! chunks is still found) and tagged with the engine's timestamp, which also serves as the
//! position a follower resumes from.

use std::collections::{HashSet, VecDeque};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use helvetia_core::Timestamp;
use helvetia_core::container::{ContainerState, OutputLine, OutputStream};
use helvetia_core::redact::{LineRedactor, Redactor};
use helvetia_core::service::Service;
use helvetia_engine::docker::{Engine, EngineError, OutputChunk};
use tokio::sync::mpsc;

use crate::platform::Platform;

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
    engine: Engine,
    engine_id: String,
    name: String,
    query: OutputQuery,
    follow: bool,
    redactor: Redactor,
    sender: mpsc::Sender<OutputLine>,
) {
    // The engine's `since` has a resolution of seconds; finer filtering happens per line.
    let since = query.since.map(|t| t.as_second());
    let mut lines = Box::pin(container_lines(
        &engine, &engine_id, query.tail, since, follow, redactor,
    ));
    while let Some((stream, line)) = lines.next().await {
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

/// A container's output (as [`Engine::container_output`] selects it) in whole lines, each
/// with its stream, and still led by the engine's timestamp. Each stream
/// has its own [`LineRedactor`], so chunks of the two that interleave never splice one line
/// into another, and a secret split across chunks is still found. The output ends at the
/// engine's first read error, as at its end; a last line without a newline is kept.
pub(crate) fn container_lines(
    engine: &Engine,
    engine_id: &str,
    tail: Option<usize>,
    since: Option<i64>,
    follow: bool,
    redactor: Redactor,
) -> impl Stream<Item = (OutputStream, String)> + use<> {
    lines_of(
        engine.container_output(engine_id, tail, since, follow),
        redactor,
    )
}

/// [`container_lines`] of any stream of output chunks.
fn lines_of<S>(chunks: S, redactor: Redactor) -> impl Stream<Item = (OutputStream, String)>
where
    S: Stream<Item = Result<OutputChunk, EngineError>>,
{
    let lines = Lines {
        chunks: Box::pin(chunks),
        stdout: LineRedactor::new(redactor.clone()),
        stderr: LineRedactor::new(redactor),
        ready: VecDeque::new(),
        ended: false,
    };
    futures::stream::unfold(lines, |mut lines| async move {
        loop {
            if let Some(line) = lines.ready.pop_front() {
                return Some((line, lines));
            }
            if lines.ended {
                return None;
            }
            match lines.chunks.next().await {
                Some(Ok(chunk)) => {
                    let (redactor, stream) = if chunk.stderr {
                        (&mut lines.stderr, OutputStream::Stderr)
                    } else {
                        (&mut lines.stdout, OutputStream::Stdout)
                    };
                    let complete = redactor.push(&chunk.bytes);
                    lines
                        .ready
                        .extend(complete.into_iter().map(|line| (stream, line)));
                }
                Some(Err(_)) | None => {
                    lines.ended = true;
                    let stdout = lines
                        .stdout
                        .finish()
                        .map(|rest| (OutputStream::Stdout, rest));
                    let stderr = lines
                        .stderr
                        .finish()
                        .map(|rest| (OutputStream::Stderr, rest));
                    lines.ready.extend(stdout.into_iter().chain(stderr));
                }
            }
        }
    })
}

/// The state of [`container_lines`].
struct Lines<S> {
    chunks: Pin<Box<S>>,
    stdout: LineRedactor,
    stderr: LineRedactor,
    ready: VecDeque<(OutputStream, String)>,
    ended: bool,
}

/// Splits the engine's `<RFC 3339 timestamp> <text>` line.
fn parse(container: &str, stream: OutputStream, line: &str) -> Option<OutputLine> {
    let (at, text) = line.split_once(' ').unwrap_or((line, ""));
    Some(OutputLine {
        container: container.to_owned(),
        stream,
        at: at.parse().ok()?,
        line: text.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(stderr: bool, text: &'static str) -> Result<OutputChunk, EngineError> {
        Ok(OutputChunk {
            stderr,
            bytes: text.as_bytes().to_vec().into(),
        })
    }

    #[tokio::test]
    async fn interleaved_stdout_and_stderr_chunks_stay_separate_lines() {
        let chunks = futures::stream::iter([
            chunk(false, "t1 out: hal"),
            chunk(true, "t2 err: whole\n"),
            chunk(false, "f done\n"),
            chunk(true, "t3 no newline"),
        ]);
        let lines: Vec<_> = lines_of(chunks, Redactor::default()).collect().await;
        assert_eq!(
            lines,
            [
                (OutputStream::Stderr, "t2 err: whole".to_owned()),
                (OutputStream::Stdout, "t1 out: half done".to_owned()),
                (OutputStream::Stderr, "t3 no newline".to_owned()),
            ]
        );
    }

    #[tokio::test]
    async fn a_secret_split_across_chunks_of_one_stream_is_redacted() {
        let chunks = futures::stream::iter([
            chunk(false, "t1 token=hun"),
            chunk(true, "t2 other\n"),
            chunk(false, "ter2\n"),
        ]);
        let redactor = Redactor::new(["hunter2"]);
        let lines: Vec<_> = lines_of(chunks, redactor).collect().await;
        assert!(
            lines.iter().all(|(_, line)| !line.contains("hunter2")),
            "{lines:?}"
        );
        assert_eq!(lines.len(), 2);
    }
}
