//! Building images with BuildKit through the engine's API.
//!
//! The build context is a tar of the checked-out repository's context directory, made here
//! (no docker CLI): `.git` and what `.dockerignore` excludes ([`super::ignore`]) are left out,
//! and symbolic links are archived as links, never followed, so a repository cannot smuggle
//! files from the host into its build. The archive is written to an unnamed temporary file and
//! streamed from there, so a large context costs disk, not the server's memory. Every progress
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
use hyper::body::Frame;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_util::io::ReaderStream;
use tokio_util::task::AbortOnDropHandle;

use super::ignore::IgnoreRules;
use super::session::{self, SOCKET_HOST, Session};
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
            .finish()
    }
}

/// Where a Dockerfile that lies outside the context goes inside the context archive.
const OUTSIDE_DOCKERFILE: &str = ".helvetia.Dockerfile";

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
        let mut progress = Progress::default();
        let build = async {
            let session = Session::start(&socket, &request.secrets).await?;
            let query = build_query(&request.tag, &dockerfile_in_archive, &labels, session.id())?;
            let result = run_build(&socket, &query, archive, &mut progress, &mut on_line).await;
            // The build is over, so is everything it could ask the session for. (On a timeout
            // or cancellation, dropping the session ends it just the same.)
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
        if let Some(error) = progress.error {
            return Err(EngineError::BuildFailed(error));
        }
        self.image_id(&request.tag).await
    }
}

/// The `/build` query: a BuildKit build (`version=2`) tied to `session`. Never `pull`: there
/// may be no registry, and a build must not change because a base image moved.
fn build_query(
    tag: &str,
    dockerfile: &str,
    labels: &HashMap<String, String>,
    session: &str,
) -> Result<String> {
    let labels = serde_json::to_string(labels)
        .map_err(|e| EngineError::Api(format!("encoding the image labels: {e}")))?;
    Ok(url::form_urlencoded::Serializer::new(String::new())
        .append_pair("t", tag)
        .append_pair("dockerfile", dockerfile)
        .append_pair("labels", &labels)
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
        hyper::client::conn::http1::handshake(TokioIo::new(session::connect(socket).await?))
            .await
            .map_err(|e| session::unreachable(socket, &e))?;
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
        .map_err(|e| session::unreachable(socket, &e))?;
    drop(sender);
    if !response.status().is_success() {
        let status = response.status();
        let message = session::error_message(response).await;
        return Err(match status {
            StatusCode::NOT_FOUND => EngineError::NotFound(message),
            _ => EngineError::Api(message),
        });
    }

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

/// A build context, ready to send.
struct ContextArchive {
    /// The tar, read from its start.
    archive: File,
    size: u64,
    /// The Dockerfile's path inside the archive.
    dockerfile: String,
    /// The ignore file that applied, as the repository names it, and how many paths it left
    /// out (an excluded directory counts once).
    ignored: Option<(String, usize)>,
}

/// Builds the context tar.
fn context_archive(checkout: &Path, context: &str, dockerfile: &str) -> Result<ContextArchive> {
    let root = checkout
        .canonicalize()
        .map_err(|e| EngineError::Context(format!("checkout: {e}")))?;
    let context_dir = inside(&root, &root.join(context), "the build context")?;
    let dockerfile_path = inside(&root, &root.join(dockerfile), "the Dockerfile")?;
    if !dockerfile_path.is_file() {
        return Err(EngineError::Context(format!(
            "there is no Dockerfile at `{dockerfile}`"
        )));
    }
    let dockerfile_in_context = dockerfile_path
        .strip_prefix(&context_dir)
        .ok()
        .map(|relative| relative.to_string_lossy().into_owned());
    let mut walk = Walk {
        rules: IgnoreRules::default(),
        left_out: 0,
    };
    let ignore_file = ignore_file(&root, &context_dir, &dockerfile_path, dockerfile)?;
    if let Some((path, name)) = &ignore_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| EngineError::Context(format!("{name}: {e}")))?;
        walk.rules = IgnoreRules::parse(&text)
            .map_err(|why| EngineError::Context(format!("{name}, {why}")))?;
        // The builder needs both, whatever the file says (as with the docker CLI).
        let ignore_in_context = path
            .strip_prefix(&context_dir)
            .ok()
            .map(|relative| relative.to_string_lossy().into_owned());
        for kept in [ignore_in_context, dockerfile_in_context.clone()]
            .into_iter()
            .flatten()
        {
            walk.rules.keep(&kept).map_err(EngineError::Context)?;
        }
    }

    let context_error = |e: std::io::Error| EngineError::Context(e.to_string());
    let beside_checkout = root.parent().unwrap_or(&root);
    let mut builder =
        tar::Builder::new(tempfile::tempfile_in(beside_checkout).map_err(context_error)?);
    builder.follow_symlinks(false);
    builder.mode(tar::HeaderMode::Deterministic);
    walk.append_tree(&mut builder, &context_dir, Path::new(""))?;
    let dockerfile = match dockerfile_in_context {
        Some(relative) => relative,
        None => {
            builder
                .append_path_with_name(&dockerfile_path, OUTSIDE_DOCKERFILE)
                .map_err(context_error)?;
            OUTSIDE_DOCKERFILE.to_owned()
        }
    };
    let mut archive = builder.into_inner().map_err(context_error)?;
    let size = archive.stream_position().map_err(context_error)?;
    archive.rewind().map_err(context_error)?;
    Ok(ContextArchive {
        archive,
        size,
        dockerfile,
        ignored: ignore_file.map(|(_, name)| (name, walk.left_out)),
    })
}

/// The ignore file that applies, with the name the repository knows it by: as with BuildKit,
/// `<Dockerfile>.dockerignore` beside the Dockerfile comes first, then `.dockerignore` at the
/// context's root. It must stay inside the checkout like everything else that is read.
fn ignore_file(
    root: &Path,
    context_dir: &Path,
    dockerfile_path: &Path,
    dockerfile: &str,
) -> Result<Option<(PathBuf, String)>> {
    let mut beside = dockerfile_path.as_os_str().to_owned();
    beside.push(".dockerignore");
    let candidates = [
        (PathBuf::from(beside), format!("{dockerfile}.dockerignore")),
        (
            context_dir.join(".dockerignore"),
            ".dockerignore".to_owned(),
        ),
    ];
    for (path, name) in candidates {
        if std::fs::symlink_metadata(&path).is_ok() {
            let resolved = inside(root, &path, &format!("`{name}`"))?;
            return Ok(Some((resolved, name)));
        }
    }
    Ok(None)
}

/// `path` resolved (symlinks included), refused unless it stays inside `root`.
fn inside(root: &Path, path: &Path, what: &str) -> Result<PathBuf> {
    let resolved = path
        .canonicalize()
        .map_err(|e| EngineError::Context(format!("{what} `{}`: {e}", path.display())))?;
    if resolved.starts_with(root) {
        Ok(resolved)
    } else {
        Err(EngineError::Context(format!(
            "{what} resolves outside the repository"
        )))
    }
}

/// The walk of the context directory into the archive.
struct Walk {
    rules: IgnoreRules,
    left_out: usize,
}

impl Walk {
    fn append_tree(
        &mut self,
        builder: &mut tar::Builder<File>,
        dir: &Path,
        prefix: &Path,
    ) -> Result<()> {
        let context_error = |e: std::io::Error| EngineError::Context(e.to_string());
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(context_error)?
            .collect::<std::io::Result<_>>()
            .map_err(context_error)?;
        entries.sort_by_key(|entry| entry.file_name());
        for entry in entries {
            let name = entry.file_name();
            if prefix.as_os_str().is_empty() && name == ".git" {
                continue;
            }
            let path = entry.path();
            let in_archive = prefix.join(&name);
            let relative = in_archive.to_string_lossy();
            let kind = entry.file_type().map_err(context_error)?;
            if self.rules.excludes(&relative) {
                // An excluded directory is walked only for what an exception brings back;
                // the directory itself is not sent (the builder creates the parents).
                if kind.is_dir() && self.rules.reincludes_inside(&relative) {
                    self.append_tree(builder, &path, &in_archive)?;
                } else {
                    self.left_out += 1;
                }
                continue;
            }
            if kind.is_dir() {
                builder
                    .append_dir(&in_archive, &path)
                    .map_err(context_error)?;
                self.append_tree(builder, &path, &in_archive)?;
            } else {
                builder
                    .append_path_with_name(&path, &in_archive)
                    .map_err(context_error)?;
            }
        }
        Ok(())
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
        };
        let debug = format!("{request:?}");
        assert!(debug.contains("API_TOKEN"), "{debug}");
        assert!(debug.contains("app:1"), "{debug}");
        assert!(!debug.contains("hunter2-value"), "{debug}");
        assert!(!format!("{request:#?}").contains("hunter2-value"));
    }

    #[test]
    fn the_build_query_asks_for_buildkit_with_the_session_and_never_pulls() {
        let labels = HashMap::from([("io.helvetia.commit".to_owned(), "a b&c".to_owned())]);
        let query = build_query("app:1", "sub dir/Dockerfile", &labels, "helvetia-1").unwrap();
        let pairs: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let expected_labels = serde_json::to_string(&labels).unwrap();
        let expected = HashMap::from(
            [
                ("t", "app:1"),
                ("dockerfile", "sub dir/Dockerfile"),
                ("labels", expected_labels.as_str()),
                ("rm", "1"),
                ("forcerm", "1"),
                ("version", "2"),
                ("session", "helvetia-1"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        assert_eq!(pairs, expected);
    }

    /// The entry names of an archive, in order.
    fn names(mut archive: &File) -> Vec<String> {
        archive.rewind().unwrap();
        let mut reader = tar::Archive::new(archive);
        let entries = reader.entries().unwrap();
        entries
            .map(|entry| {
                entry
                    .unwrap()
                    .path()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect()
    }

    /// Writes `files` (path, content) under `root`, creating directories.
    fn write_tree(root: &Path, files: &[(&str, &str)]) {
        for (path, content) in files {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
    }

    #[test]
    fn archives_the_context_without_git_and_without_following_links() {
        let repo = tempfile::tempdir().unwrap();
        let root = repo.path();
        write_tree(
            root,
            &[
                (".git/config", "secret"),
                ("Dockerfile", "FROM scratch\n"),
                ("app/main.txt", "hello"),
            ],
        );
        std::os::unix::fs::symlink("/etc/hostname", root.join("app/leak")).unwrap();

        let context = context_archive(root, ".", "Dockerfile").unwrap();
        assert_eq!(context.dockerfile, "Dockerfile");
        assert_eq!(context.ignored, None);
        let mut reader = tar::Archive::new(&context.archive);
        for entry in reader.entries().unwrap() {
            let entry = entry.unwrap();
            if entry.path().unwrap() == Path::new("app/leak") {
                assert_eq!(entry.header().entry_type(), tar::EntryType::Symlink);
            }
        }
        let names = names(&context.archive);
        assert!(names.iter().all(|n| !n.starts_with(".git")), "{names:?}");
        assert!(names.contains(&"app/leak".to_owned()));
        assert!(names.contains(&"app/main.txt".to_owned()));

        // A Dockerfile outside a sub-directory context travels under its own name.
        let context = context_archive(root, "app", "Dockerfile").unwrap();
        assert_eq!(context.dockerfile, OUTSIDE_DOCKERFILE);
    }

    #[test]
    fn leaves_out_what_dockerignore_excludes_but_always_sends_the_build_files() {
        let repo = tempfile::tempdir().unwrap();
        let root = repo.path();
        write_tree(
            root,
            &[
                (
                    ".dockerignore",
                    "# local only\n*\n!app\napp/node_modules\n!app/node_modules/keep.js\n**/*.env\n",
                ),
                ("Dockerfile", "FROM scratch\n"),
                ("README.md", "docs"),
                ("app/main.js", "main"),
                ("app/prod.env", "TOKEN=secret"),
                ("app/node_modules/big/index.js", "big"),
                ("app/node_modules/keep.js", "kept"),
            ],
        );
        let context = context_archive(root, ".", "Dockerfile").unwrap();
        assert_eq!(
            names(&context.archive),
            [
                ".dockerignore",
                "Dockerfile",
                "app",
                "app/main.js",
                "app/node_modules/keep.js",
            ]
        );
        // README.md, app/node_modules/big, app/prod.env.
        assert_eq!(context.ignored, Some((".dockerignore".to_owned(), 3)));

        // `<Dockerfile>.dockerignore` beside the Dockerfile comes first, and a Dockerfile in
        // an excluded directory is still sent.
        write_tree(
            root,
            &[
                ("docker/Dockerfile", "FROM scratch\n"),
                ("docker/Dockerfile.dockerignore", "docker\nREADME.md\n"),
            ],
        );
        let context = context_archive(root, ".", "docker/Dockerfile").unwrap();
        let names = names(&context.archive);
        assert!(names.contains(&"docker/Dockerfile".to_owned()), "{names:?}");
        assert!(names.contains(&"docker/Dockerfile.dockerignore".to_owned()));
        assert!(names.contains(&"app/node_modules/big/index.js".to_owned()));
        assert!(!names.contains(&"README.md".to_owned()));
        assert_eq!(
            context.ignored,
            Some(("docker/Dockerfile.dockerignore".to_owned(), 1))
        );
    }

    #[test]
    fn a_bad_or_escaping_dockerignore_fails_the_build_without_reading_the_host() {
        let repo = tempfile::tempdir().unwrap();
        let root = repo.path();
        write_tree(
            root,
            &[
                ("Dockerfile", "FROM scratch\n"),
                (".dockerignore", "ok\n[oops\n"),
            ],
        );
        let error = context_archive(root, ".", "Dockerfile")
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains(".dockerignore, line 2: `[oops`"), "{error}");

        std::fs::remove_file(root.join(".dockerignore")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join(".dockerignore")).unwrap();
        let error = context_archive(root, ".", "Dockerfile")
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("resolves outside the repository"), "{error}");
        assert!(!error.contains("root:"), "{error}");
    }

    #[test]
    fn refuses_paths_that_escape_the_checkout() {
        let repo = tempfile::tempdir().unwrap();
        let root = repo.path();
        std::os::unix::fs::symlink("/etc", root.join("escape")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("Dockerfile")).unwrap();
        assert!(context_archive(root, "escape", "Dockerfile").is_err());
        assert!(context_archive(root, ".", "Dockerfile").is_err());
    }
}
