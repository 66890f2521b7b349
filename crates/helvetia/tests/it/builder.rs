//! Builds in Helvetia's own builder engine (`--builder isolated`): a build that needs more
//! memory than its cap, a fork bomb and a step spinning past the wall-time cap each fail with
//! that cap named in the deployment's log and reason, while a live app under 200 requests per
//! second loses none; builds wait their turn in the builder's own queue; no step sees an
//! engine's socket; built images reach the host engine through Helvetia's registry, pulled by
//! digest; a restarted Helvetia adopts the running builder, and one that dies is started again.
//!
//! The other end-to-end tests build in the host engine (`TestServer` passes `--builder host`):
//! see the README's "Builds".

use std::time::Duration;

use helvetia_test_support::load::Load;
use helvetia_test_support::{FixtureRepo, TestServer, eventually, unique};
use reqwest::Method;
use serde_json::json;

use crate::deploy::Cleanup;

/// The web fixture's build with a step that fails when it finds either engine's socket.
fn web_dockerfile(builder_socket: &str) -> String {
    format!(
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n\
         COPY .fixture-id /fixture-id\n\
         RUN for s in /var/run/docker.sock /run/docker.sock {builder_socket}; do if [ -e $s ]; then echo found $s; exit 1; fi; done; echo no-engine-socket\n\
         COPY www /www\n\
         CMD [\"/bin/sh\", \"-c\", \"exec httpd -f -p ${{PORT:-8080}} -h /www\"]\n"
    )
}

/// A build whose step is `step` (a shell command), after busybox's applets are installed.
fn hostile_dockerfile(step: &str) -> String {
    format!(
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n\
         COPY .fixture-id /fixture-id\nRUN {step}\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn builds_stopped_by_a_cap_say_which_while_a_live_app_keeps_answering() {
    let bridge = format!("10.213.{}.1/24", rand::random::<u8>());
    let mut server = TestServer::start_with(
        crate::BINARY,
        &[
            "--builder",
            "isolated",
            "--builder-bridge-address",
            &bridge,
            "--build-memory",
            "128M",
            "--build-pids",
            "64",
            "--max-build-pids",
            "1024",
        ],
    )
    .await;
    let project = unique("bld");
    let _cleanup = Cleanup(project.clone());
    let socket = server.data_dir().join("builder/run/docker.sock");
    let web = FixtureRepo::new("web");
    web.write(
        "Dockerfile",
        &web_dockerfile(&socket.to_string_lossy()),
        "look for the engines' sockets",
    );
    server.service(&project, "web", &web).await;
    let live = server.deploy(&project, "web").await;
    let log = server.deploy_log(live["id"].as_i64().unwrap()).await;
    assert_eq!(live["status"], "live", "{log}");
    assert!(log.contains("no-engine-socket"), "{log}");
    assert!(log.contains("builder: 128 MiB memory"), "{log}");
    // Through the registry: pushed by the builder, pulled by digest, the digest recorded.
    let digest = live["image_digest"].as_str().unwrap_or_default();
    assert!(digest.starts_with("sha256:"), "{live}");
    assert!(log.contains(&format!("-web@{digest}")), "{log}");
    let host = format!("web.{project}.localhost");
    server.wait_answering(&host, Duration::from_secs(10)).await;

    let hostile = FixtureRepo::new("web");
    server.service(&project, "hostile", &hostile).await;
    // Its own caps, within the server's maxima: fewer processes than the server's default.
    server.cli_ok(&[
        "services",
        "update",
        &format!("{project}/hostile"),
        "--build-timeout",
        "10s",
        "--build-pids",
        "48",
    ]);
    let (status, body) = server
        .api(
            Method::PATCH,
            &format!("/api/v1/projects/{project}/services/hostile"),
            Some(json!({"runtime": {"build_limits": {"pids": 100000}}})),
        )
        .await;
    assert_eq!(status, 422, "over the server's maximum: {body}");
    assert!(body.to_string().contains("build_limits.pids"), "{body}");

    let load = Load::start(server.http_port, &host, "/", 8, 200.0);
    let cases = [
        (
            "awk 'BEGIN { s = \"x\"; for (i = 0; i < 28; i++) s = s s; for (j = 0; j < 4; j++) a[j] = s \"\" j; print length(a[3]) }'",
            "memory cap (128 MiB)",
        ),
        (
            "set -e; i=0; while [ $i -lt 500 ]; do sleep 30 & i=$((i+1)); done; wait",
            "pids cap (48 processes)",
        ),
        ("while :; do :; done", "wall-time cap"),
    ];
    for (step, cap) in cases {
        hostile.write("Dockerfile", &hostile_dockerfile(step), cap);
        let id = server.request_deploy(&project, "hostile").await;
        if cap == "wall-time cap" {
            // Meanwhile the web service's build waits its turn on the builder.
            web.write("www/index.html", "hello again\n", "a new page");
            let queued = server.request_deploy(&project, "web").await;
            server
                .wait_for_log(
                    queued,
                    "waiting for the builder (1 ahead)",
                    Duration::from_secs(30),
                )
                .await;
            let redeployed = server.wait_finished(queued).await;
            assert_eq!(redeployed["status"], "live", "{redeployed}");
        }
        let failed = server.wait_finished(id).await;
        let log = server.deploy_log(id).await;
        assert_eq!(failed["status"], "failed", "{log}");
        let reason = failed["status_reason"].as_str().unwrap_or_default();
        assert!(reason.contains(cap), "{cap}: {reason}");
        assert!(log.contains(cap), "{cap}: {log}");
    }
    let report = load.stop().await;
    assert_eq!(report.failed(), 0, "of {} requests", report.sent());
    assert!(report.sent() > 1000, "{}", report.sent());

    // A restarted Helvetia adopts the builder running as it would start it.
    let pid = std::fs::read_to_string(server.data_dir().join("builder/builder.pid")).unwrap();
    server.terminate();
    server.launch().await;
    let again = std::fs::read_to_string(server.data_dir().join("builder/builder.pid")).unwrap();
    assert_eq!(
        again.lines().next(),
        pid.lines().next(),
        "adopted, not restarted"
    );

    // A builder that dies is started again by the watcher, and builds go on.
    let pid = pid.lines().next().unwrap().to_owned();
    std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .unwrap();
    let pid_file = server.data_dir().join("builder/builder.pid");
    eventually(
        Duration::from_secs(30),
        "the builder to be restarted",
        || {
            let record = std::fs::read_to_string(&pid_file).unwrap_or_default();
            let restarted = record.lines().next().is_some_and(|new| new != pid);
            async move { restarted.then_some(()) }
        },
    )
    .await;
    web.write(
        "www/index.html",
        "hello after a restart\n",
        "after a restart",
    );
    let after = server.deploy(&project, "web").await;
    assert_eq!(
        after["status"],
        "live",
        "{}",
        server.deploy_log(after["id"].as_i64().unwrap()).await
    );
}
