//! Building images with BuildKit through the engine's API.
//!
//! The build context comes from [`super::context`], streamed from its file. Every progress
//! message BuildKit sends becomes a line in the style of `docker build --progress=plain`,
//! handed to the caller as it arrives.
//!
//! Build-time secrets reach `RUN --mount=type=secret` through a BuildKit session that Helvetia
//! serves itself ([`super::session`]), never through build arguments or labels, so they are not
//! stored in the image, its history or its metadata, and they are not part of any layer's cache
//! key. bollard's `build_image` would open a session of its own (without secrets) under the
//! same id, so the `/build` request is sent here too, over the engine's unix socket; its
//! newline-delimited JSON answer is still decoded with bollard's [`BuildInfo`]. Every build,
//! with or without secrets, takes this one path.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::Seek;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::moby::buildkit::v1::StatusResponse;
use bollard::models::{BuildInfo, BuildInfoAux};
use futures::TryStreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::Request;
use hyper::body::Frame;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper_util::rt::TokioIo;
use tokio_util::io::ReaderStream;
use tokio_util::task::AbortOnDropHandle;

use super::context::{ContextArchive, context_archive};
use super::session::Session;
use super::socket::{self, SOCKET_HOST};
use super::{Engine, EngineError, Result};

/// A line of build output.
pub type BuildLine = String;

/// What to build.
#[derive(Clone)]
pub struct BuildRequest {
    /// The repository checkout. The context archive is written beside it (in its parent
    /// directory), on the same disk.
    pub checkout: PathBuf,
    /// The context directory, relative to the checkout.
    pub context: String,
    /// The Dockerfile, relative to the checkout.
    pub dockerfile: String,
    /// `repo:tag` the image gets.
    pub tag: String,
    pub labels: HashMap<String, String>,
    pub timeout: Duration,
    /// Build-time secrets by id, for `RUN --mount=type=secret,id=<id>`: served to the builder
    /// through the build's session, never as build arguments (which end up in the image).
    pub secrets: Vec<(String, String)>,
    /// Build arguments (`ARG NAME`), kept in the image's history: never secrets.
    pub build_args: Vec<(String, String)>,
}

/// Written by hand so that secret values never reach a log through `{:?}`: only their ids.
impl fmt::Debug for BuildRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Redacted;
        impl fmt::Debug for Redacted {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("<redacted>")
            }
        }
        struct Secrets<'a>(&'a [(String, String)]);
        impl fmt::Debug for Secrets<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_map()
                    .entries(self.0.iter().map(|(id, _)| (id, Redacted)))
                    .finish()
            }
        }
        f.debug_struct("BuildRequest")
            .field("checkout", &self.checkout)
            .field("context", &self.context)
            .field("dockerfile", &self.dockerfile)
            .field("tag", &self.tag)
            .field("labels", &self.labels)
            .field("timeout", &self.timeout)
            .field("secrets", &Secrets(&self.secrets))
            // A plain variable often holds a credential too: names only.
            .field("build_args", &Secrets(&self.build_args))
            .finish()
    }
}

impl Engine {
    /// Builds `request` and returns the image id. `on_line` receives every output line as the
    /// engine reports it.
    pub async fn build_image(
        &self,
        request: &BuildRequest,
        mut on_line: impl FnMut(BuildLine) + Send,
    ) -> Result<String> {
        let socket = self
            .socket
            .clone()
            .map_err(EngineError::BuildNeedsLocalSocket)?;
        self.claim_tag(&request.tag).await?;
        let checkout = request.checkout.clone();
        let context = request.context.clone();
        let dockerfile = request.dockerfile.clone();
        let ContextArchive {
            archive,
            size,
            dockerfile: dockerfile_in_archive,
            ignored,
        } = tokio::task::spawn_blocking(move || context_archive(&checkout, &context, &dockerfile))
            .await
            .map_err(|e| EngineError::Context(e.to_string()))??;
        on_line(match ignored {
            Some((file, left_out)) => format!(
                "build context: {} KiB ({left_out} path{} left out by {file})",
                size / 1024,
                if left_out == 1 { "" } else { "s" }
            ),
            None => format!("build context: {} KiB", size / 1024),
        });

        let labels: HashMap<String, String> = request
            .labels
            .clone()
            .into_iter()
            .chain(self.ownership_labels())
            .collect();
        let mut resent = false;
        loop {
            // A clone shares the file's offset: each attempt reads the archive from its start.
            let mut body = archive
                .try_clone()
                .map_err(|e| EngineError::Context(e.to_string()))?;
            body.rewind()
                .map_err(|e| EngineError::Context(e.to_string()))?;
            let mut progress = Progress::default();
            let build = async {
                let session = Session::start(&socket, &request.secrets).await?;
                let query = build_query(
                    &request.tag,
                    &dockerfile_in_archive,
                    &labels,
                    &request.build_args,
                    session.id(),
                )?;
                let result = run_build(&socket, &query, body, &mut progress, &mut on_line).await;
                // The build is over, so is everything it could ask the session for. (On a
                // timeout or cancellation, dropping the session ends it just the same.)
                session.end().await;
                result
            };
            let result = tokio::time::timeout(request.timeout, build).await;
            // Output cut off without a final newline still belongs in the log, failure or not.
            for (digest, rest) in std::mem::take(&mut progress.partial) {
                if rest.is_empty() {
                    continue;
                }
                let n = progress.number(&digest);
                on_line(format!("#{n} {}", String::from_utf8_lossy(&rest)));
            }
            result.map_err(|_| EngineError::BuildTimeout(request.timeout))??;
            match progress.error {
                Some(error) if !resent && engine_lost_the_context(&error) => {
                    on_line(
                        "the engine lost the build context before reading it; sending it again"
                            .to_owned(),
                    );
                    resent = true;
                }
                Some(error) => return Err(EngineError::BuildFailed(error)),
                None => break,
            }
        }
        self.image_id(&request.tag).await
    }
}

/// Whether a build failed because the engine lost the uploaded context. Engine 20.10 hands the
/// request's tar to BuildKit under a one-time URL; when BuildKit fetches it a second time
/// (seen on a busy machine, within the first 100 ms of a build) the engine answers "context not
/// found" and the build fails before any step ran. Sending the build again is then safe.
fn engine_lost_the_context(error: &str) -> bool {
    error.contains("failed to read downloaded context") && error.contains("context not found")
}

/// The `/build` query: a BuildKit build (`version=2`) tied to `session`. Never `pull`: there
/// may be no registry, and a build must not change because a base image moved.
fn build_query(
    tag: &str,
    dockerfile: &str,
    labels: &HashMap<String, String>,
    build_args: &[(String, String)],
    session: &str,
) -> Result<String> {
    let labels = serde_json::to_string(labels)
        .map_err(|e| EngineError::Api(format!("encoding the image labels: {e}")))?;
    let build_args: HashMap<&str, &str> = build_args
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    let build_args = serde_json::to_string(&build_args)
        .map_err(|e| EngineError::Api(format!("encoding the build arguments: {e}")))?;
    Ok(url::form_urlencoded::Serializer::new(String::new())
        .append_pair("t", tag)
        .append_pair("dockerfile", dockerfile)
        .append_pair("labels", &labels)
        .append_pair("buildargs", &build_args)
        .append_pair("rm", "1")
        .append_pair("forcerm", "1")
        .append_pair("version", "2")
        .append_pair("session", session)
        .finish())
}

/// Sends the `/build` request with the context `archive` and feeds the engine's answer (one
/// JSON message per line) to `progress` as it arrives.
async fn run_build(
    socket: &Path,
    query: &str,
    archive: File,
    progress: &mut Progress,
    on_line: &mut impl FnMut(BuildLine),
) -> Result<()> {
    let request = Request::post(format!("/build?{query}"))
        .header(HOST, SOCKET_HOST)
        .header(CONTENT_TYPE, "application/x-tar")
        .body(StreamBody::new(
            ReaderStream::new(tokio::fs::File::from_std(archive)).map_ok(Frame::data),
        ))
        .map_err(|e| EngineError::Api(format!("the build request: {e}")))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(socket::connect(socket).await?))
            .await
            .map_err(|e| socket::unreachable(socket, &e))?;
    // The connection carries the streamed answer and ends with it (the sender is dropped below,
    // so it is not kept alive); dropping the handle on a timeout closes it, which makes the
    // engine cancel the build.
    let _connection = AbortOnDropHandle::new(tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "the build's connection ended with an error");
        }
    }));
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| socket::unreachable(socket, &e))?;
    drop(sender);
    let response = socket::check_status(response).await?;

    let mut body = response.into_body();
    let mut pending: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            EngineError::Unreachable(format!("the build's output was cut off: {e}"))
        })?;
        // Trailers carry nothing for a build.
        let Ok(data) = frame.into_data() else {
            continue;
        };
        pending.extend_from_slice(&data);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            build_message(&line, progress, on_line)?;
        }
    }
    build_message(&pending, progress, on_line)
}

/// Handles one line of the `/build` answer: a JSON message that is either progress (BuildKit's
/// status, decoded by bollard) or the error that ended the build.
fn build_message(
    line: &[u8],
    progress: &mut Progress,
    on_line: &mut impl FnMut(BuildLine),
) -> Result<()> {
    if line.trim_ascii().is_empty() {
        return Ok(());
    }
    // The serde error names a position, not the content, which is build output.
    let info: BuildInfo = serde_json::from_slice(line).map_err(|e| {
        EngineError::Api(format!("undecodable build progress from the engine: {e}"))
    })?;
    if let Some(error) = info
        .error_detail
        .as_ref()
        .and_then(|detail| detail.message.clone())
    {
        return Err(EngineError::BuildFailed(error));
    }
    progress.handle(info, on_line);
    Ok(())
}

/// Turns BuildKit's status messages into numbered plain-text lines.
#[derive(Default)]
struct Progress {
    numbers: HashMap<String, usize>,
    announced: HashMap<String, bool>,
    finished: HashMap<String, bool>,
    /// Output of each step not yet ended by a newline: BuildKit cuts output into messages
    /// anywhere, and a line (and any secret in it) must reach the log whole.
    partial: HashMap<String, Vec<u8>>,
    error: Option<String>,
}

impl Progress {
    fn number(&mut self, digest: &str) -> usize {
        let next = self.numbers.len() + 1;
        *self.numbers.entry(digest.to_owned()).or_insert(next)
    }

    fn handle(&mut self, info: BuildInfo, on_line: &mut impl FnMut(BuildLine)) {
        match info.aux {
            Some(BuildInfoAux::BuildKit(status)) => self.status(status, on_line),
            Some(BuildInfoAux::Default(_)) | None => {
                if let Some(stream) = info.stream {
                    for line in stream.lines().filter(|l| !l.trim().is_empty()) {
                        on_line(line.to_owned());
                    }
                }
            }
        }
    }

    fn status(&mut self, status: StatusResponse, on_line: &mut impl FnMut(BuildLine)) {
        for vertex in &status.vertexes {
            let n = self.number(&vertex.digest);
            if vertex.started.is_some() && !self.announced.contains_key(&vertex.digest) {
                self.announced.insert(vertex.digest.clone(), true);
                on_line(format!("#{n} {}", vertex.name));
            }
            if !vertex.error.is_empty() {
                on_line(format!("#{n} ERROR: {}", vertex.error));
                self.error
                    .get_or_insert_with(|| format!("{}: {}", vertex.name, vertex.error));
                continue;
            }
            if let Some(completed) = &vertex.completed
                && self.finished.insert(vertex.digest.clone(), true).is_none()
            {
                if vertex.cached {
                    on_line(format!("#{n} CACHED"));
                } else {
                    let took = vertex.started.as_ref().map(|started| {
                        let seconds = (completed.seconds - started.seconds) as f64
                            + f64::from(completed.nanos - started.nanos) / 1e9;
                        seconds.max(0.0)
                    });
                    on_line(format!("#{n} DONE {:.1}s", took.unwrap_or(0.0)));
                }
            }
        }
        for log in &status.logs {
            let n = self.number(&log.vertex);
            let pending = self.partial.entry(log.vertex.clone()).or_default();
            pending.extend_from_slice(&log.msg);
            while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                let text = String::from_utf8_lossy(&line[..end]);
                on_line(format!("#{n} {}", text.trim_end_matches('\r')));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_names_secrets_but_hides_their_values() {
        let request = BuildRequest {
            checkout: PathBuf::from("/tmp/checkout"),
            context: ".".to_owned(),
            dockerfile: "Dockerfile".to_owned(),
            tag: "app:1".to_owned(),
            labels: HashMap::new(),
            timeout: Duration::from_secs(60),
            secrets: vec![("API_TOKEN".to_owned(), "hunter2-value".to_owned())],
            build_args: vec![],
        };
        let debug = format!("{request:?}");
        assert!(debug.contains("API_TOKEN"), "{debug}");
        assert!(debug.contains("app:1"), "{debug}");
        assert!(!debug.contains("hunter2-value"), "{debug}");
        assert!(!format!("{request:#?}").contains("hunter2-value"));
    }

    #[test]
    fn only_a_lost_context_is_sent_again() {
        assert!(engine_lost_the_context(
            "failed to solve with frontend dockerfile.v0: failed to read downloaded context: \
             Get \"http://build-context-hjxlh3ytcaxlq8gio143uitzl\": context not found"
        ));
        assert!(!engine_lost_the_context(
            "failed to solve: process \"/bin/sh -c exit 3\" did not complete successfully"
        ));
        assert!(!engine_lost_the_context("COPY failed: context not found"));
    }

    #[test]
    fn the_build_query_asks_for_buildkit_with_the_session_and_never_pulls() {
        let labels = HashMap::from([("io.helvetia.commit".to_owned(), "a b&c".to_owned())]);
        let build_args = [("NEXT_PUBLIC_URL".to_owned(), "https://x.example".to_owned())];
        let query = build_query(
            "app:1",
            "sub dir/Dockerfile",
            &labels,
            &build_args,
            "helvetia-1",
        )
        .unwrap();
        let pairs: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let expected_labels = serde_json::to_string(&labels).unwrap();
        let expected = HashMap::from(
            [
                ("t", "app:1"),
                ("dockerfile", "sub dir/Dockerfile"),
                ("labels", expected_labels.as_str()),
                ("buildargs", r#"{"NEXT_PUBLIC_URL":"https://x.example"}"#),
                ("rm", "1"),
                ("forcerm", "1"),
                ("version", "2"),
                ("session", "helvetia-1"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        assert_eq!(pairs, expected);
    }
}
