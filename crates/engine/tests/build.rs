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
        build_args: vec![],
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

/// The builder engine Helvetia runs for builds (`builder/`): started in a state directory of
/// the test's own, with a bridge and a control group named after the test's installation id,
/// removed when the test ends.
struct TestBuilder {
    state: TempDir,
    bridge: String,
    group: String,
}

impl Drop for TestBuilder {
    fn drop(&mut self) {
        let record = std::fs::read_to_string(self.state.path().join("builder.pid"));
        if let Some(pid) = record
            .ok()
            .and_then(|r| r.lines().next().map(str::to_owned))
        {
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
            for _ in 0..300 {
                if !Path::new(&format!("/proc/{pid}")).exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
        for controller in ["memory", "cpu", "pids"] {
            let group = Path::new("/sys/fs/cgroup")
                .join(controller)
                .join(&self.group);
            let _ = std::fs::remove_dir(group.join("buildkit"));
            let _ = std::fs::remove_dir(group);
        }
    }
}

/// A base image on the host engine with a shell (busybox's applets installed), as a user's
/// locally built base image would be: the builder pulls nothing, so it must get it from there.
async fn host_base_image(images: &mut Images) -> String {
    let tag = images.tag("base");
    let dir = checkout(
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n",
        &nonce(),
    );
    let (result, lines) = build(&engine(), &request(dir.path(), &tag, &[])).await;
    result.unwrap_or_else(|e| panic!("{e}: {lines:#?}"));
    tag
}

/// Builds on the builder's `turn`, which must succeed; returns the image and the output.
async fn build_on(
    turn: &helvetia_engine::builder::Turn<'_>,
    host: &Engine,
    checkout: &Path,
    tag: &str,
    caps: &helvetia_engine::builder::cgroup::BuildCaps,
) -> (helvetia_engine::builder::Built, Vec<String>) {
    let mut lines = vec![];
    let built = turn
        .build(host, &request(checkout, tag, &[]), caps, |l| lines.push(l))
        .await
        .unwrap_or_else(|e| panic!("{e}: {lines:#?}"));
    (built, lines)
}

#[tokio::test]
async fn the_builder_engine_builds_within_its_caps_and_names_the_cap_that_stopped_a_build() {
    use helvetia_engine::builder::cgroup::BuildCaps;
    use helvetia_engine::builder::{BuilderSettings, start_or_adopt, stop_builder};

    let mut images = Images(vec![]);
    let base = host_base_image(&mut images).await;
    let instance = format!("t{}", &nonce()[..12]);
    let state = tempfile::tempdir().unwrap();
    let settings = BuilderSettings {
        dockerd: "dockerd".into(),
        state_dir: state.path().to_owned(),
        instance: instance.clone(),
        bridge_address: format!("10.213.{}.1/24", rand::random::<u8>()),
        cgroup_root: "/sys/fs/cgroup".into(),
    };
    let guard = TestBuilder {
        bridge: settings.bridge(),
        group: settings.group_name(),
        state,
    };
    let started = std::time::Instant::now();
    let (daemon, builder) = start_or_adopt(settings.clone()).await.unwrap();
    eprintln!("the builder engine answered after {:?}", started.elapsed());
    let socket = settings.socket();
    let mode = std::fs::metadata(socket.parent().unwrap()).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o700
    );
    let host = engine();
    let caps = BuildCaps {
        memory_bytes: 128 << 20,
        cpus: 1.0,
        pids: 64,
    };
    let turn = builder.turn(|_| {}).await.unwrap();

    // No step sees either engine's socket.
    let dockerfile = format!(
        "FROM {base}\nCOPY nonce /nonce\nRUN for s in /var/run/docker.sock /run/docker.sock {}; do \
         if [ -e $s ]; then echo found $s; exit 1; fi; done; echo no-engine-socket\n",
        socket.display()
    );
    let dir = checkout(&dockerfile, &nonce());
    let tag = images.tag("built");
    let (built, lines) = build_on(&turn, &host, dir.path(), &tag, &caps).await;
    let image = built.image;
    assert_eq!(built.digest, None, "copied, not through a registry");
    assert!(
        lines.iter().any(|l| l.contains("no-engine-socket")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("base image {base}: copied"))),
        "{lines:#?}"
    );
    assert_eq!(
        host.image_id(&tag).await.unwrap(),
        image,
        "the host engine has the image"
    );

    // A step needing far more memory than the cap is killed, a fork bomb runs into the pids
    // cap: each fails naming its cap.
    let cases = [
        (
            "awk 'BEGIN { s = \"x\"; for (i = 0; i < 28; i++) s = s s; \
             for (j = 0; j < 4; j++) a[j] = s \"\" j; print length(a[3]) }'",
            "memory",
            "memory cap (128 MiB)",
        ),
        (
            "set -e; i=0; while [ $i -lt 500 ]; do sleep 30 & i=$((i+1)); done; wait",
            "pids",
            "pids cap (64 processes)",
        ),
    ];
    for (step, cap, named) in cases {
        let dir = checkout(
            &format!("FROM {base}\nCOPY nonce /nonce\nRUN {step}\n"),
            &nonce(),
        );
        let tag = images.tag(cap);
        let failed = turn
            .build(&host, &request(dir.path(), &tag, &[]), &caps, |_| {})
            .await;
        match &failed {
            Err(error @ EngineError::BuildCapped { cap: hit, .. }) if *hit == cap => {
                assert!(error.to_string().contains(named), "{error}");
            }
            other => panic!("{cap}: {other:?}"),
        }
    }

    // A step spinning past the wall-time cap is cancelled.
    let spin = format!("FROM {base}\nCOPY nonce /nonce\nRUN while :; do :; done\n");
    let dir = checkout(&spin, &nonce());
    let mut spinning = request(dir.path(), &images.tag("spin"), &[]);
    spinning.timeout = Duration::from_secs(3);
    let failed = turn.build(&host, &spinning, &caps, |_| {}).await;
    assert!(
        matches!(&failed, Err(EngineError::BuildTimeout(_))),
        "{failed:?}"
    );
    assert!(failed.unwrap_err().to_string().contains("wall-time cap"));
    drop(turn);

    // Through the registry: pushed by the builder, pulled by digest into the host engine.
    use helvetia_engine::registry::{self, RegistrySettings};
    let registry_settings = RegistrySettings {
        binary: "/usr/bin/docker-registry".into(),
        state_dir: guard.state.path().join("registry"),
        address: format!("127.0.0.1:{}", helvetia_test_support::free_port())
            .parse()
            .unwrap(),
    };
    let (registry_daemon, registry) = registry::start_or_adopt(registry_settings.clone())
        .await
        .unwrap();
    let through = builder.clone().with_registry(Some(registry));
    let turn = through.turn(|_| {}).await.unwrap();
    let dir = checkout(&dockerfile, &nonce());
    let tag = format!("helvetia-{instance}-demo-web:7");
    images.0.push(tag.clone());
    let (built, lines) = build_on(&turn, &host, dir.path(), &tag, &caps).await;
    let image = built.image;
    let pushed = lines
        .iter()
        .find_map(|l| l.strip_prefix("pushed to the registry: "))
        .unwrap_or_else(|| panic!("{lines:#?}"));
    assert!(
        pushed.contains(&format!("/helvetia-{instance}-demo-web@sha256:")),
        "{pushed}"
    );
    assert!(
        pushed.ends_with(built.digest.as_deref().unwrap()),
        "{pushed}"
    );
    assert_eq!(host.image_id(&tag).await.unwrap(), image);
    let references = docker(&[
        "image",
        "inspect",
        "--format",
        "{{.RepoTags}} {{.RepoDigests}}",
        &image,
    ]);
    assert_eq!(
        references.trim(),
        format!("[{tag}] []"),
        "only the deployment's tag keeps the image"
    );
    drop(turn);
    let (again, _) = registry::start_or_adopt(registry_settings.clone())
        .await
        .unwrap();
    assert_eq!(again.pid(), registry_daemon.pid(), "adopted, not restarted");
    registry::stop_registry(&registry_settings.state_dir)
        .await
        .unwrap();

    // A Helvetia starting again adopts the builder running as it would start it.
    let pid = daemon.pid();
    let (again, _) = start_or_adopt(settings.clone()).await.unwrap();
    assert_eq!(again.pid(), pid, "adopted, not restarted");

    // One started with another bridge address replaces it, on its bridge with that address
    // alone, and builds from the same cache.
    let same = checkout(&dockerfile, "kept-across-a-replacement");
    let turn = builder.turn(|_| {}).await.unwrap();
    build_on(
        &turn,
        &host,
        same.path(),
        &images.tag("before-replace"),
        &caps,
    )
    .await;
    drop(turn);
    let moved = BuilderSettings {
        bridge_address: format!("10.214.{}.1/24", rand::random::<u8>()),
        ..settings.clone()
    };
    let (replaced, replacement) = start_or_adopt(moved.clone()).await.unwrap();
    assert_ne!(replaced.pid(), pid, "replaced");
    let addresses = ip(&["-o", "-4", "address", "show", "dev", &settings.bridge()]);
    assert!(addresses.contains(&moved.bridge_address), "{addresses}");
    assert!(!addresses.contains(&settings.bridge_address), "{addresses}");
    let turn = replacement.turn(|_| {}).await.unwrap();
    let tag = images.tag("after-replace");
    let (_, lines) = build_on(&turn, &host, same.path(), &tag, &caps).await;
    let run = step_number(&lines, "[3/3] RUN");
    assert!(
        lines.contains(&format!("{run} CACHED")),
        "the step ran again: {lines:#?}"
    );
    drop(turn);
    stop_builder(&settings.state_dir).await.unwrap();
    drop(guard);
}

/// `ip <args>`'s standard output; the command must succeed.
fn ip(args: &[&str]) -> String {
    let output = Command::new("ip").args(args).output().unwrap();
    assert!(output.status.success(), "ip {args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}
