#![allow(clippy::unwrap_used)]
//! Image builds against the real Docker engine (BuildKit): build-time secrets reach
//! `RUN --mount=type=secret` through Helvetia's own build session, and end up nowhere in the
//! image; they do not change the layer cache key; a missing secret fails the build with a
//! message naming it; and builds without secrets still stream their output.
//!
//! Images are `FROM scratch` with the host's static busybox (nothing can be pulled). Every
//! context carries a fresh nonce, so a step runs for real the first time in each test run
//! instead of coming out of an earlier run's cache.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use helvetia_engine::docker::{BuildRequest, Engine, EngineError};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

const SECRET: &str = "expected-value-123";

/// A `RUN` step that succeeds only when the secret `API_TOKEN` has the value [`SECRET`]. The
/// Dockerfile holds the value's SHA-256, not the value: the command of a `RUN` step is part of
/// the image history, so a literal value there would be found in it whatever the build did.
///
/// A two-second step comes first, as real builds have: the engine checks the session's health
/// every second and drops a session that fails it, after which a secret mount fails with "no
/// active session" (seen with the health service left out).
fn secret_dockerfile() -> String {
    let expected = hex::encode(Sha256::digest(SECRET));
    format!(
        r#"FROM scratch
COPY busybox /bin/busybox
COPY nonce /nonce
RUN ["/bin/busybox","sleep","2"]
RUN --mount=type=secret,id=API_TOKEN ["/bin/busybox","sh","-c","test \"$(/bin/busybox sha256sum < /run/secrets/API_TOKEN)\" = \"{expected}  -\" && echo secret-was-readable"]
"#
    )
}

fn engine() -> Engine {
    Engine::connect("engine-tests").unwrap()
}

fn nonce() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// A checkout with the static busybox, `dockerfile` and a `nonce` file.
fn checkout(dockerfile: &str, nonce: &str) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy("/bin/busybox", dir.path().join("busybox")).unwrap();
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    std::fs::write(dir.path().join("nonce"), nonce).unwrap();
    dir
}

fn request(checkout: &Path, tag: &str, secrets: &[(&str, &str)]) -> BuildRequest {
    BuildRequest {
        checkout: checkout.to_owned(),
        context: ".".to_owned(),
        dockerfile: "Dockerfile".to_owned(),
        tag: tag.to_owned(),
        labels: HashMap::from([("test.helvetia.purpose".to_owned(), "build".to_owned())]),
        timeout: Duration::from_secs(120),
        secrets: secrets
            .iter()
            .map(|(id, value)| ((*id).to_owned(), (*value).to_owned()))
            .collect(),
    }
}

/// Builds and returns the result with every output line.
async fn build(
    engine: &Engine,
    request: &BuildRequest,
) -> (Result<String, EngineError>, Vec<String>) {
    let mut lines = Vec::new();
    let result = engine.build_image(request, |line| lines.push(line)).await;
    (result, lines)
}

/// Removes the listed images when the test ends, passed or not.
struct Images(Vec<String>);

impl Images {
    fn tag(&mut self, name: &str) -> String {
        let tag = format!("helvetia-engine-tests/{name}:{}", nonce());
        self.0.push(tag.clone());
        tag
    }
}

impl Drop for Images {
    fn drop(&mut self) {
        let _ = Command::new("/usr/bin/docker")
            .args(["rmi", "--force"])
            .args(&self.0)
            .output();
    }
}

/// `docker <args>`'s standard output; the command must succeed.
fn docker(args: &[&str]) -> String {
    let output = Command::new("/usr/bin/docker").args(args).output().unwrap();
    assert!(output.status.success(), "docker {args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// The step number BuildKit gave the line naming `step`, as `#<n>`.
fn step_number(lines: &[String], step: &str) -> String {
    let line = lines
        .iter()
        .find(|line| line.contains(step))
        .unwrap_or_else(|| panic!("no step `{step}` in {lines:#?}"));
    line.split_whitespace().next().unwrap().to_owned()
}

#[tokio::test]
async fn secrets_reach_the_build_but_not_the_image_or_the_cache_key() {
    let engine = engine();
    let mut images = Images(vec![]);
    let repo = checkout(&secret_dockerfile(), &nonce());

    let tag = images.tag("secret");
    let (result, lines) = build(
        &engine,
        &request(repo.path(), &tag, &[("API_TOKEN", SECRET)]),
    )
    .await;
    let id = result.unwrap_or_else(|e| panic!("{e}: {lines:#?}"));
    assert!(id.starts_with("sha256:"), "{id}");
    assert!(
        lines.iter().any(|l| l.ends_with(" secret-was-readable")),
        "{lines:#?}"
    );
    assert!(!lines.iter().any(|l| l.contains(SECRET)), "{lines:#?}");

    let history = docker(&["history", "--no-trunc", &tag]);
    assert!(
        history.contains("API_TOKEN"),
        "the RUN step is in the history: {history}"
    );
    assert!(!history.contains(SECRET), "{history}");
    let inspect = docker(&["inspect", &tag]);
    assert!(!inspect.contains(SECRET), "{inspect}");
    // The labels went through the build request.
    assert!(
        inspect.contains(r#""test.helvetia.purpose": "build""#),
        "{inspect}"
    );
    assert!(
        inspect.contains(r#""io.helvetia.instance": "engine-tests""#),
        "{inspect}"
    );

    // Another value for the same secret: the RUN step's cache key is unchanged, so it is not
    // run again (which would fail, the value being unexpected).
    let tag = images.tag("secret");
    let (result, lines) = build(
        &engine,
        &request(repo.path(), &tag, &[("API_TOKEN", "another-value-456")]),
    )
    .await;
    result.unwrap_or_else(|e| panic!("{e}: {lines:#?}"));
    let run = step_number(&lines, "RUN --mount=type=secret");
    assert!(
        lines.contains(&format!("{run} CACHED")),
        "the RUN step is cached: {lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l.ends_with(" secret-was-readable")),
        "the step did not run again: {lines:#?}"
    );
}

#[tokio::test]
async fn a_missing_secret_fails_the_build_with_a_useful_message() {
    let engine = engine();
    let mut images = Images(vec![]);

    // A mount the Dockerfile marks as required: BuildKit names the missing secret.
    let required = secret_dockerfile().replace("id=API_TOKEN ", "id=API_TOKEN,required=true ");
    let repo = checkout(&required, &nonce());
    let tag = images.tag("missing");
    let (result, lines) = build(&engine, &request(repo.path(), &tag, &[("OTHER", "x")])).await;
    match result {
        Err(EngineError::BuildFailed(message)) => {
            assert!(message.contains("API_TOKEN"), "{message}");
            assert!(message.contains("not found"), "{message}");
        }
        other => panic!("{other:?}: {lines:#?}"),
    }

    // An optional mount (the default) is left out, so the step that reads it fails.
    let repo = checkout(&secret_dockerfile(), &nonce());
    let tag = images.tag("missing");
    let (result, lines) = build(&engine, &request(repo.path(), &tag, &[])).await;
    match result {
        Err(EngineError::BuildFailed(message)) => {
            assert!(message.contains("/run/secrets/API_TOKEN"), "{message}");
            assert!(message.contains("exit code: 1"), "{message}");
        }
        other => panic!("{other:?}: {lines:#?}"),
    }
    assert!(
        lines.iter().any(|l| l.contains("ERROR")),
        "the failure is in the output too: {lines:#?}"
    );
}

#[tokio::test]
async fn builds_without_secrets_stream_their_output() {
    let engine = engine();
    let mut images = Images(vec![]);
    let dockerfile = r#"FROM scratch
COPY busybox /bin/busybox
COPY nonce /nonce
RUN ["/bin/busybox","sh","-c","echo streamed-early && /bin/busybox sleep 1 && echo streamed-late"]
"#;
    let repo = checkout(dockerfile, &nonce());
    let tag = images.tag("plain");
    let request = request(repo.path(), &tag, &[]);

    // On its own task, as the server runs builds (which also checks the future is `Send`).
    let (lines_tx, mut lines_rx) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn({
        let engine = engine.clone();
        async move {
            engine
                .build_image(&request, |line| {
                    let _ = lines_tx.send(line);
                })
                .await
        }
    });
    let mut lines = Vec::new();
    let mut running_when_early = None;
    while let Some(line) = lines_rx.recv().await {
        if line.ends_with(" streamed-early") {
            // The step is still running (its second line comes a second later): the output
            // arrives as the build goes, not when it is over.
            running_when_early = Some(!task.is_finished());
        }
        lines.push(line);
    }
    let id = task
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}: {lines:#?}"));
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(running_when_early, Some(true), "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.ends_with(" streamed-late")),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("build context: ")),
        "{lines:#?}"
    );
}

#[tokio::test]
async fn a_build_that_outlasts_its_timeout_is_stopped_and_keeps_its_output() {
    let engine = engine();
    let mut images = Images(vec![]);
    let dockerfile = r#"FROM scratch
COPY busybox /bin/busybox
COPY nonce /nonce
RUN ["/bin/busybox","sh","-c","echo before-the-timeout && /bin/busybox sleep 600"]
"#;
    let repo = checkout(dockerfile, &nonce());
    let tag = images.tag("timeout");
    let mut request = request(repo.path(), &tag, &[("API_TOKEN", SECRET)]);
    request.timeout = Duration::from_secs(4);

    let started = std::time::Instant::now();
    let (result, lines) = build(&engine, &request).await;
    assert!(
        matches!(result, Err(EngineError::BuildTimeout(timeout)) if timeout == request.timeout),
        "{result:?}: {lines:#?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert!(
        lines.iter().any(|l| l.ends_with(" before-the-timeout")),
        "{lines:#?}"
    );
    // Closing the connection cancelled the build: it never produced the image.
    assert!(engine.image_id(&tag).await.is_err());
}
