//! Repositories without a Dockerfile: a static site, a Python app and a Node app are detected,
//! built with a generated Dockerfile (shown in the log and by `services detect`), run as an
//! unprivileged user and answer; a repository with nothing to detect fails saying what was
//! looked for. Base images are the tests' local ones (`--stack-image`): nothing is pulled.

use std::process::Command;
use std::sync::Once;

use helvetia_test_support::{FixtureRepo, TestServer, unique};

use crate::deploy::Cleanup;

/// A busybox image with its applets (`/bin/sh`, `httpd`), the static sites' base here.
const STATIC_IMAGE: &str = "helvetia-test/busybox:applets";

fn static_image() -> &'static str {
    static BUILT: Once = Once::new();
    BUILT.call_once(|| {
        let context = tempfile::tempdir().unwrap();
        std::fs::copy("/bin/busybox", context.path().join("busybox")).unwrap();
        std::fs::write(
            context.path().join("Dockerfile"),
            "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n",
        )
        .unwrap();
        let output = Command::new("/usr/bin/docker")
            .env("DOCKER_BUILDKIT", "1")
            .args(["build", "-q", "-t", STATIC_IMAGE])
            .arg(context.path())
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
    });
    STATIC_IMAGE
}

#[tokio::test(flavor = "multi_thread")]
async fn repositories_without_a_dockerfile_are_detected_built_and_answer() {
    let stack_images = format!(
        "node=helvetia-test/node:bookworm,python=helvetia-test/python:bookworm,static={}",
        static_image()
    );
    let server = TestServer::start_with(crate::BINARY, &["--stack-image", &stack_images]).await;
    let project = unique("detect");
    let _cleanup = Cleanup(project.clone());
    let cases = [
        (
            "site",
            "detect-static",
            "a static site (index.html)",
            "FROM helvetia-test/busybox:applets",
            "hello from a static site",
        ),
        (
            "py",
            "detect-python",
            "a Python app (requirements.txt, app.py)",
            "FROM helvetia-test/python:bookworm",
            "hello from python as uid 10001",
        ),
        (
            "js",
            "detect-node",
            "a Node app (package.json, start script)",
            "FROM helvetia-test/node:bookworm",
            "hello from node as uid 10001",
        ),
    ];
    let mut repos = vec![];
    for (service, fixture, title, from, answer) in cases {
        let repo = FixtureRepo::new(fixture);
        server.service(&project, service, &repo).await;
        let deployment = server.deploy(&project, service).await;
        let log = server.deploy_log(deployment["id"].as_i64().unwrap()).await;
        assert_eq!(deployment["status"], "live", "{service}: {log}");
        assert!(
            log.contains(&format!(
                "No Dockerfile in the repository: building it as {title}"
            )),
            "{log}"
        );
        assert!(log.contains(&format!("  {from}\n")), "{log}");
        assert!(!log.contains("# syntax"), "{log}");
        let host = format!("{service}.{project}.localhost");
        let (status, body) = server.through_edge(&host, "/").await.unwrap();
        assert_eq!(status, 200, "{service}: {body}");
        assert!(body.contains(answer), "{service}: {body}");
        repos.push(repo);
    }

    // The generated Dockerfile, to commit and own.
    let shown = server.cli_ok(&["services", "detect", &format!("{project}/js")]);
    assert!(
        shown.starts_with("FROM helvetia-test/node:bookworm\n"),
        "{shown}"
    );
    assert!(shown.contains("USER 10001:10001"), "{shown}");
    assert!(
        shown.contains("CMD [\"/bin/sh\",\"-c\",\"exec node server.js\"]"),
        "{shown}"
    );

    // Nothing to detect: a clear failure, saying what was looked for.
    let empty = FixtureRepo::new("detect-empty");
    server.service(&project, "empty", &empty).await;
    let failed = server.deploy(&project, "empty").await;
    assert_eq!(failed["status"], "failed", "{failed}");
    let reason = failed["status_reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("the repository has no Dockerfile, and no stack recognised: looked for"),
        "{reason}"
    );
    for named in [
        "package.json",
        "requirements.txt",
        "go.mod",
        "index.html",
        "Procfile",
    ] {
        assert!(reason.contains(named), "{reason}");
    }
    let output = server.cli(&["services", "detect", &format!("{project}/empty")]);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("looked for"),
        "{output:?}"
    );
}
