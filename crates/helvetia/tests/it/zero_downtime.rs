//! Zero-downtime deploys: health-gated switches and drains under load, rollbacks, limits,
//! restarts and the health monitor.

use std::time::Duration;

use helvetia_test_support::load::Load;
use helvetia_test_support::{FixtureRepo, TestServer, eventually, project_containers, unique};
use reqwest::Method;
use serde_json::{Value, json};

use crate::deploy::Cleanup;

/// 200 requests per second over 8 connections, as the acceptance criteria ask.
const RATE: f64 = 200.0;
const CONNECTIONS: usize = 8;

async fn rollback(server: &TestServer, project: &str, to: Option<i64>) -> Value {
    let (status, body) = server
        .api(
            Method::POST,
            &format!("/api/v1/projects/{project}/services/web/rollback"),
            Some(json!({"deployment": to})),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    server.wait_finished(body["id"].as_i64().unwrap()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn redeploys_rollbacks_and_a_failed_deploy_under_load_lose_no_request() {
    let server = TestServer::start(crate::BINARY).await;
    let project = unique("zdt");
    let _cleanup = Cleanup(project.clone());
    let repo = FixtureRepo::new("web");
    server.service(&project, "web", &repo).await;
    let (status, body) = server
        .api(
            Method::PATCH,
            &format!("/api/v1/projects/{project}/services/web"),
            Some(json!({"runtime": {"timeouts": {"drain_ms": 5000, "startup_ms": 3000}}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let first = server.deploy(&project, "web").await;
    repo.write("www/index.html", "hello from version 2\n", "second version");
    let second = server.deploy(&project, "web").await;
    assert_eq!(second["status"], "live", "{second}");

    let host = format!("web.{project}.localhost");
    let load = Load::start(server.http_port, &host, "/", CONNECTIONS, RATE);
    for round in 0..10 {
        let deployed = server.deploy(&project, "web").await;
        assert_eq!(deployed["status"], "live", "redeploy {round}");
    }
    let back = rollback(&server, &project, None).await;
    assert_eq!(
        back["status"],
        "live",
        "{}",
        server.deploy_log(back["id"].as_i64().unwrap()).await
    );
    assert_eq!(back["cause"], "rollback");
    // The default skips the redeploys of the live commit: back to the previous version.
    assert_eq!(back["source_deployment_id"], first["id"]);
    assert_eq!(back["commit_sha"], first["commit_sha"]);
    assert_eq!(
        server.through_edge(&host, "/").await.unwrap().1,
        "hello from version 1\n"
    );
    let explicit = rollback(&server, &project, second["id"].as_i64()).await;
    assert_eq!(explicit["status"], "live", "{explicit}");
    assert_eq!(explicit["source_deployment_id"], second["id"]);
    assert_eq!(
        server.through_edge(&host, "/").await.unwrap().1,
        "hello from version 2\n"
    );

    repo.overlay("never-ready");
    let failed = server.deploy(&project, "web").await;
    assert_eq!(failed["status"], "failed");
    let report = load.stop().await;
    assert!(
        report.sent() > 1000,
        "only {} requests were sent",
        report.sent()
    );
    assert_eq!(report.failed(), 0, "failed requests: {:?}", report.errors);

    let history = server.cli_ok(&["deployments", &format!("{project}/web"), "--limit", "5"]);
    assert!(
        history.contains(&format!("rollback to #{}", second["id"])),
        "{history}"
    );
}

/// `docker exec <container> <argv>`: whether it succeeded.
fn exec_in(container: &str, argv: &[&str]) -> bool {
    std::process::Command::new("/usr/bin/docker")
        .arg("exec")
        .arg(container)
        .args(argv)
        .status()
        .unwrap()
        .success()
}

/// The slow request is the `web` fixture's `cgi-bin/hold`, held open until the test releases
/// it: it is in flight at the switch however long the deploy takes, and the checks on the
/// drain are made while it is still open, not against a clock.
#[tokio::test(flavor = "multi_thread")]
async fn a_slow_request_started_before_the_switch_completes() {
    let server = TestServer::start(crate::BINARY).await;
    let project = unique("slow");
    let _cleanup = Cleanup(project.clone());
    let repo = FixtureRepo::new("web");
    server.service(&project, "web", &repo).await;
    assert_eq!(server.deploy(&project, "web").await["status"], "live");
    let host = format!("web.{project}.localhost");
    let old = project_containers(&project);
    assert_eq!(old.len(), 1, "{old:?}");
    let old = old[0].clone();

    let slow = {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let url = format!("http://127.0.0.1:{}/cgi-bin/hold", server.http_port);
        let host = host.clone();
        tokio::spawn(async move {
            let response = client.get(url).header("Host", host).send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        })
    };
    eventually(
        Duration::from_secs(30),
        "the slow request to reach the app",
        || async { exec_in(&old, &["test", "-e", "/tmp/held"]).then_some(()) },
    )
    .await;
    repo.write("www/index.html", "hello from version 2\n", "second version");
    let deployed = server.deploy(&project, "web").await;
    assert_eq!(deployed["status"], "live", "{deployed}");
    let id = deployed["id"].as_i64().unwrap();
    assert!(
        !slow.is_finished(),
        "the switch cut the slow request that was in flight"
    );
    // Switched: the new version serves, while the old container is still running, holding
    // the slow request, and not yet drained.
    assert_eq!(
        server.through_edge(&host, "/").await.unwrap().1,
        "hello from version 2\n"
    );
    assert!(
        exec_in(&old, &["test", "-e", "/tmp/held"]),
        "the old container stopped while a request was in flight"
    );
    let log = server.deploy_log(id).await;
    assert!(!log.contains("drained in"), "drained too early: {log}");

    assert!(exec_in(&old, &["touch", "/tmp/release"]));
    let (status, body) = slow.await.unwrap();
    assert_eq!((status, body.as_str()), (200, "held response done\n"));
    // The old container drained (waited for the slow request) before it stopped.
    let drained = eventually(
        Duration::from_secs(30),
        "the drain to be logged",
        || async {
            let log = server.deploy_log(id).await;
            log.contains(&format!("Stopped and removed {old}"))
                .then_some(log)
        },
    )
    .await;
    assert!(
        drained.contains(&format!("Previous container {old}: drained in")),
        "{drained}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn limits_are_enforced_and_oom_kills_are_recorded() {
    let server = TestServer::start(crate::BINARY).await;
    let project = unique("oom");
    let _cleanup = Cleanup(project.clone());
    let hog = FixtureRepo::new("web");
    hog.overlay("memory-hog");
    server.service(&project, "web", &hog).await;
    let bystander = FixtureRepo::new("web");
    server.service(&project, "other", &bystander).await;
    assert_eq!(server.deploy(&project, "web").await["status"], "live");
    assert_eq!(server.deploy(&project, "other").await["status"], "live");

    // Limits through the CLI: applied by a zero-downtime redeploy.
    let output = server.cli(&[
        "services",
        "update",
        &format!("{project}/web"),
        "--memory",
        "64M",
        "--cpus",
        "0.5",
    ]);
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        printed.contains("redeploying with zero downtime"),
        "{printed}\n{}",
        server
            .get(&format!("/api/v1/projects/{project}/services/web"))
            .await
    );
    let service = server
        .get(&format!("/api/v1/projects/{project}/services/web"))
        .await;
    let live = &service["status"]["live_deployment"];
    assert_eq!(live["cause"], "settings");
    let container =
        server
            .scope()
            .await
            .container(&project, "web", live["id"].as_i64().unwrap(), 0);
    let inspect = std::process::Command::new("/usr/bin/docker")
        .args(["inspect", &container])
        .output()
        .unwrap();
    let inspect: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(inspect[0]["HostConfig"]["NanoCpus"], 500_000_000);
    assert_eq!(inspect[0]["HostConfig"]["Memory"], 64 * 1024 * 1024);
    assert_eq!(inspect[0]["HostConfig"]["MemorySwap"], 64 * 1024 * 1024);
    assert!(inspect[0]["HostConfig"]["PidsLimit"].as_i64().unwrap() > 0);

    // Within the limit: fine. Past it: the kernel kills the allocation at the limit.
    let host = format!("web.{project}.localhost");
    let (_, small) = server.through_edge(&host, "/cgi-bin/eat?16").await.unwrap();
    assert_eq!(small, "allocated 16 MiB\n");
    let (_, big) = server
        .through_edge(&host, "/cgi-bin/eat?200")
        .await
        .unwrap();
    assert_eq!(big, "allocation of 200 MiB failed\n");
    wait_for_event(&server, &project, "oom_killed", Duration::from_secs(15)).await;
    let show = server.cli_ok(&["services", "show", &format!("{project}/web")]);
    assert!(
        show.contains("oom_killed") && show.contains("64 MiB"),
        "{show}"
    );
    // The other service never noticed.
    let (status, _) = server
        .through_edge(&format!("other.{project}.localhost"), "/")
        .await
        .unwrap();
    assert_eq!(status, 200);
    let events = server
        .get(&format!("/api/v1/projects/{project}/services/other/events"))
        .await;
    assert!(events.as_array().unwrap().is_empty(), "{events}");

    // Limits beyond the server's maximum are refused.
    let refused = server.cli(&[
        "services",
        "update",
        &format!("{project}/web"),
        "--cpus",
        "64",
    ]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("limits.cpus"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_app_is_restarted_and_the_restart_recorded() {
    let server = TestServer::start(crate::BINARY).await;
    let project = unique("crash");
    let _cleanup = Cleanup(project.clone());
    let repo = FixtureRepo::new("web");
    server.service(&project, "web", &repo).await;
    let live = server.deploy(&project, "web").await;
    let container =
        server
            .scope()
            .await
            .container(&project, "web", live["id"].as_i64().unwrap(), 0);
    let pid = std::process::Command::new("/usr/bin/docker")
        .args(["inspect", "--format", "{{.State.Pid}}", &container])
        .output()
        .unwrap();
    let pid = String::from_utf8_lossy(&pid.stdout).trim().to_owned();
    assert!(
        std::process::Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .unwrap()
            .success()
    );
    let host = format!("web.{project}.localhost");
    eventually(
        Duration::from_secs(30),
        "the restart to be recorded",
        || async {
            let events = server
                .get(&format!("/api/v1/projects/{project}/services/web/events"))
                .await;
            let kinds: Vec<&str> = events
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|e| e["kind"].as_str())
                .collect();
            (kinds.contains(&"restarted") && kinds.contains(&"exited")).then_some(())
        },
    )
    .await;
    server.wait_answering(&host, Duration::from_secs(30)).await;
    assert_eq!(
        project_containers(&project),
        [container.as_str()],
        "restarted in place, not duplicated"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_start_and_restart() {
    let server = TestServer::start(crate::BINARY).await;
    let project = unique("life");
    let _cleanup = Cleanup(project.clone());
    let repo = FixtureRepo::new("web");
    server.service(&project, "web", &repo).await;
    let target = format!("{project}/web");
    let host = format!("web.{project}.localhost");
    let first = server.deploy(&project, "web").await;

    let restarted = server.cli(&["services", "restart", &target]);
    assert!(
        restarted.status.success(),
        "{}",
        String::from_utf8_lossy(&restarted.stderr)
    );
    let service = server
        .get(&format!("/api/v1/projects/{project}/services/web"))
        .await;
    let live = &service["status"]["live_deployment"];
    assert_eq!(live["cause"], "restart");
    assert_eq!(live["image"], first["image"], "a restart does not rebuild");

    assert!(server.cli(&["services", "stop", &target]).status.success());
    eventually(Duration::from_secs(30), "the service to stop", || async {
        let gone = project_containers(&project).is_empty();
        let answer = server
            .through_edge(&host, "/")
            .await
            .map(|(status, _)| status);
        // Still the service's address, with nothing behind it: 503, not 404.
        (gone && answer == Some(503)).then_some(())
    })
    .await;
    let service = server
        .get(&format!("/api/v1/projects/{project}/services/web"))
        .await;
    assert!(service["status"]["live_deployment"].is_null());
    let again = server.cli(&["services", "restart", &target]);
    assert!(!again.status.success(), "nothing to restart");

    let started = server.cli(&["services", "start", &target]);
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    assert_eq!(
        server.through_edge(&host, "/").await.unwrap().1,
        "hello from version 1\n"
    );
}

/// Waits until the `web` service of `project` records an event of `kind`.
pub(crate) async fn wait_for_event(
    server: &TestServer,
    project: &str,
    kind: &str,
    timeout: Duration,
) {
    let path = format!("/api/v1/projects/{project}/services/web/events");
    eventually(timeout, &format!("a `{kind}` event"), || async {
        let events = server.get(&path).await;
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == kind)
            .then_some(())
    })
    .await;
}
