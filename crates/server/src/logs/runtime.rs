//! The runtime output of a service's containers, from the engine, with secrets redacted.
//!
//! Each container's stdout and stderr are reassembled into lines (a secret split across
//! chunks is still found) and tagged with the engine's timestamp, which also serves as the
//! position a follower resumes from.
//!
//! Every reader of the engine runs in a task set its caller owns: when the client goes away
//! (its receiver, or the future reading, is dropped), the set goes with it and aborts the
//! readers, which closes their engine connections even on a container that prints nothing.
//! A one-time read keeps only the newest lines it answers ([`MAX_READ_LINES`],
//! [`MAX_READ_BYTES`]), whatever the containers printed.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet, VecDeque};
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
use tokio::task::JoinSet;

use super::followers::Follower;
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

/// The most lines a one-time read answers, `tail=all` included: the newest ones. (A follower
/// gets everything it asks for, as it is written, at the pace the client reads.)
pub const MAX_READ_LINES: usize = 10_000;
/// The most text a one-time read answers: the newest lines that fit.
pub const MAX_READ_BYTES: usize = 8 * 1024 * 1024;

/// The output so far of the service's serving containers, oldest first: the newest `tail`
/// lines (at most [`MAX_READ_LINES`] and [`MAX_READ_BYTES`]).
pub async fn read(
    platform: &Platform,
    service: &Service,
    redactor: Redactor,
    query: OutputQuery,
) -> Vec<OutputLine> {
    let most = query
        .tail
        .map_or(MAX_READ_LINES, |tail| tail.min(MAX_READ_LINES));
    let query = OutputQuery {
        tail: Some(most),
        ..query
    };
    let (sender, mut receiver) = mpsc::channel(1024);
    let mut readers = JoinSet::new();
    for (engine_id, name) in serving(platform, service.id).await {
        readers.spawn(pump(
            platform.engine.clone(),
            engine_id,
            name,
            query,
            false,
            redactor.clone(),
            sender.clone(),
        ));
    }
    drop(sender);
    let mut newest = Newest::new(most, MAX_READ_BYTES);
    while let Some(line) = receiver.recv().await {
        newest.push(line);
    }
    newest.into_sorted()
}

/// The newest lines seen, within a count and a size: older ones are dropped as newer ones
/// arrive, so memory stays bounded however much the containers printed.
struct Newest {
    heap: BinaryHeap<Reverse<Ordered>>,
    bytes: usize,
    arrivals: usize,
    max_lines: usize,
    max_bytes: usize,
}

/// An output line ordered by its time (and, for equal times, its arrival).
struct Ordered {
    arrival: usize,
    line: OutputLine,
}

impl PartialEq for Ordered {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Ordered {}

impl PartialOrd for Ordered {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ordered {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.line.at, self.arrival).cmp(&(other.line.at, other.arrival))
    }
}

impl Newest {
    fn new(max_lines: usize, max_bytes: usize) -> Newest {
        Newest {
            heap: BinaryHeap::new(),
            bytes: 0,
            arrivals: 0,
            max_lines,
            max_bytes,
        }
    }

    fn push(&mut self, line: OutputLine) {
        self.bytes += line.line.len();
        self.arrivals += 1;
        self.heap.push(Reverse(Ordered {
            arrival: self.arrivals,
            line,
        }));
        while self.heap.len() > self.max_lines || self.bytes > self.max_bytes {
            let Some(Reverse(oldest)) = self.heap.pop() else {
                break;
            };
            self.bytes -= oldest.line.line.len();
        }
    }

    /// The lines kept, oldest first.
    fn into_sorted(self) -> Vec<OutputLine> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .rev()
            .map(|Reverse(ordered)| ordered.line)
            .collect()
    }
}

/// Follows the service's output: first what `query` selects, then everything written from
/// now on, also by containers that start serving later (a redeploy). Ends, with every engine
/// connection it opened, as soon as the receiver is dropped; `follower` counts it until then.
pub fn follow(
    platform: Arc<Platform>,
    service: Service,
    redactor: Redactor,
    query: OutputQuery,
    follower: Follower,
) -> mpsc::Receiver<OutputLine> {
    let (sender, receiver) = mpsc::channel(1024);
    tokio::spawn(async move {
        let _counted = follower;
        // Dropped when this task returns, which aborts the readers: a reader waits on the
        // engine, and on a container that prints nothing it would never notice the client left.
        let mut readers = JoinSet::new();
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
                    readers.spawn(pump(
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
            // Readers of containers that stopped are done; forget them.
            while readers.try_join_next().is_some() {}
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

    #[test]
    fn a_read_keeps_the_newest_lines_within_its_count_and_size() {
        let line = |second: i64, text: &str| OutputLine {
            container: "c".into(),
            stream: OutputStream::Stdout,
            at: Timestamp::from_second(second).unwrap(),
            line: text.into(),
        };
        let texts = |newest: Newest| -> Vec<String> {
            newest.into_sorted().into_iter().map(|l| l.line).collect()
        };
        // Two containers' lines arrive interleaved, not in time order.
        let mut by_count = Newest::new(3, usize::MAX);
        for (second, text) in [(1, "a1"), (5, "b5"), (2, "a2"), (6, "b6"), (3, "a3")] {
            by_count.push(line(second, text));
        }
        assert_eq!(texts(by_count), ["a3", "b5", "b6"]);
        let mut by_size = Newest::new(usize::MAX, 25);
        for second in 0..10 {
            by_size.push(line(second, &format!("line {second:04}")));
        }
        assert_eq!(texts(by_size), ["line 0008", "line 0009"]);
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
