//! Outages of the parts under Helvetia while a fixture app serves ~50 requests/s: its
//! PostgreSQL restarted mid-deploy, its data directory's filesystem full, the engine's event
//! stream cut, the engine restarted with and without `live-restore`. Each prints its figures (failed requests, seconds until the app answered
//! again, seconds until Helvetia was healthy, the deployment history) for BENCHMARKS.md.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use helvetia_test_support::fault::{DockerProxy, EngineOptions, PgCluster, SecondEngine, Tmpfs};
use helvetia_test_support::load::{Load, Report};
use helvetia_test_support::{
    FixtureRepo, TestServer, eventually, http_client, project_containers, unique,
};

use crate::deploy::Cleanup;
use crate::zero_downtime::wait_for_event;

/// The load the issue asks for: ~50 requests/s over two connections.
const RATE: f64 = 50.0;
const CONNECTIONS: usize = 2;

/// A project with a live `web` service under load; returns its host and the load.
async fn live_under_load(server: &TestServer, project: &str, repo: &FixtureRepo) -> Load {
    server.service(project, "web", repo).await;
    let first = server.deploy(project, "web").await;
    assert_eq!(first["status"], "live", "{}", server.log());
    let host = format!("web.{project}.localhost");
    Load::start(server.http_port, &host, "/", CONNECTIONS, RATE)
}

/// The longest time the app gave no successful answer: the longest interval between the
/// ends of successive successful requests (a request held while its container restarts
/// counts as much as a failed one). About 0.04 s at this rate when nothing happened.
fn unanswered_seconds(report: &Report) -> f64 {
    let mut ends: Vec<Duration> = report
        .samples
        .iter()
        .filter(|s| s.ok)
        .map(|s| s.started + s.latency)
        .collect();
    ends.sort();
    ends.windows(2)
        .map(|pair| (pair[1] - pair[0]).as_secs_f64())
        .fold(0.0, f64::max)
}

/// `GET path` without the test client's assertions, with a deadline: what it answered and
/// how long that took.
async fn timed(
    server: &TestServer,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value, Duration) {
    let begin = Instant::now();
    let mut request = http_client()
        .request(method, format!("{}{path}", server.url()))
        .bearer_auth(&server.token)
        .timeout(Duration::from_secs(30));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("an answer, not a hang");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body, begin.elapsed())
}

/// A write: creates a project of a new name.
async fn create_a_project(server: &TestServer) -> (u16, Value) {
    let body = json!({"name": unique("more")});
    let (status, body, _) = timed(server, Method::POST, "/api/v1/projects", Some(body)).await;
    (status, body)
}

/// Waits until `/healthz` answers 200 again.
async fn wait_healthy(server: &TestServer) {
    eventually(
        Duration::from_secs(60),
        "the server to be healthy",
        || async {
            let (status, _, _) = timed(server, Method::GET, "/healthz", None).await;
            (status == 200).then_some(())
        },
    )
    .await;
}

/// Waits until the only container of `project` is one of deployment `live` (a drained
/// predecessor is removed after its deadline).
async fn no_orphan_container(project: &str, live: &Value) {
    let wanted = vec![live["id"].to_string()];
    eventually(Duration::from_secs(30), "no orphan container", || async {
        let deployments: Vec<String> = project_containers(project)
            .iter()
            .map(|name| {
                let output = std::process::Command::new("/usr/bin/docker")
                    .args(["inspect", "--format"])
                    .arg(r#"{{index .Config.Labels "io.helvetia.deployment"}}"#)
                    .arg(name)
                    .output()
                    .unwrap();
                String::from_utf8_lossy(&output.stdout).trim().to_owned()
            })
            .collect();
        (deployments == wanted).then_some(())
    })
    .await;
}

/// The last deployments of `project/web`, newest first, as `#id status (reason)`.
async fn history(server: &TestServer, project: &str) -> String {
    let deployments = server
        .get(&format!(
            "/api/v1/projects/{project}/services/web/deployments"
        ))
        .await;
    let items = deployments
        .get("items")
        .unwrap_or(&deployments)
        .as_array()
        .unwrap()
        .iter()
        .map(|d| match d["status_reason"].as_str() {
            Some(reason) => format!("#{} {} ({reason})", d["id"], d["status"].as_str().unwrap()),
            None => format!("#{} {}", d["id"], d["status"].as_str().unwrap()),
        })
        .collect::<Vec<_>>();
    items.join(", ")
}

/// A deployment in progress (held after its build) while the cluster restarts: the API
/// answers 503 meanwhile, the server comes back by itself, the deployment ends cleanly.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_restarted_mid_deploy_answers_503_and_the_deployment_ends_cleanly() {
    let cluster = PgCluster::create();
    let server = TestServer::start_with(crate::BINARY, &["--database-url", &cluster.url()]).await;
    let project = unique("pgdown");
    let _cleanup = Cleanup(project.clone());
    let repo = FixtureRepo::new("web");
    let load = live_under_load(&server, &project, &repo).await;

    server.arm("deploy-after-build", "pause");
    let id = server.request_deploy(&project, "web").await;
    server.wait_paused("deploy-after-build").await;
    let down = Instant::now();
    cluster.stop();
    let (status, body, took) = timed(&server, Method::GET, "/api/v1/projects", None).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (503, &json!("unavailable")),
        "{body}"
    );
    let (health, body, _) = timed(&server, Method::GET, "/healthz", None).await;
    assert_eq!(health, 503, "{body}");
    // The deployment goes on against a database that does not answer, until its job has met
    // the outage (its heartbeat, every 5 s, fails).
    let logged = server.log().len();
    server.release("deploy-after-build").await;
    eventually(
        Duration::from_secs(30),
        "the deploy job to meet the outage",
        || async {
            server.log()[logged..]
                .contains("heartbeat failed")
                .then_some(())
        },
    )
    .await;
    let restarted = Instant::now();
    cluster.start();
    wait_healthy(&server).await;
    let healthy = restarted.elapsed();
    let deployment = server.wait_finished(id).await;
    let log = server.deploy_log(id).await;
    let ended = deployment["status"].as_str().unwrap().to_owned();
    assert!(
        ended == "live" || (ended == "failed" && deployment["status_reason"].is_string()),
        "{deployment}\n{log}"
    );
    let next = server.deploy(&project, "web").await;
    assert_eq!(next["status"], "live", "{}", server.log());
    let report = load.stop().await;
    assert_eq!(report.failed(), 0, "failed requests: {:?}", report.errors);
    no_orphan_container(&project, &next).await;
    assert!(!server.log().contains("panicked"), "{}", server.log());
    eprintln!(
        "FAULT postgres restarted mid-deploy: {} of {} requests failed, app silent {:.2} s at most, \
         API 503 in {took:?} while down, healthy {:.2} s after the cluster started ({:.2} s after \
         it stopped); history: {}",
        report.failed(),
        report.sent(),
        unanswered_seconds(&report),
        healthy.as_secs_f64(),
        down.elapsed().as_secs_f64() - (restarted.elapsed() - healthy).as_secs_f64(),
        history(&server, &project).await,
    );
}

/// The data directory (SQLite) on a 16 MB tmpfs: a full build directory fails the
/// deployment with a "no space" reason; a full data directory makes writes fail with 507
/// (reads go on) and recovers once space returns; the database is intact after.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_data_directory_fails_writes_clearly_and_recovers_once_space_returns() {
    let mut data = None;
    let server = TestServer::start_prepared(crate::BINARY, &[], |dir| {
        data = Some(Tmpfs::mount(dir, 16));
    })
    .await;
    let data = data.unwrap();
    let project = unique("full");
    let _cleanup = Cleanup(project.clone());
    let repo = FixtureRepo::new("web");
    let load = live_under_load(&server, &project, &repo).await;

    // The build directory full: a new commit must be cloned there.
    let builds = Tmpfs::mount(&server.data_dir().join("builds"), 1);
    builds.fill();
    repo.write("www/index.html", "hello from version 2\n", "second version");
    let failed = server.deploy(&project, "web").await;
    let log = server.deploy_log(failed["id"].as_i64().unwrap()).await;
    assert_eq!(failed["status"], "failed", "{failed}\n{log}");
    let reason = failed["status_reason"].as_str().unwrap();
    assert!(
        reason.contains("no space left on the build directory"),
        "{reason}\n{log}"
    );
    drop(builds);

    // The data directory full.
    data.fill();
    let (status, body) = create_a_project(&server).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (507, &json!("insufficient_storage")),
        "{body}\n{}",
        server.log()
    );
    let (status, body, _) = timed(&server, Method::GET, "/api/v1/projects", None).await;
    assert_eq!(status, 200, "reads go on: {body}");
    data.free();
    let freed = Instant::now();
    let (status, body) = create_a_project(&server).await;
    assert_eq!(status, 201, "{body}");
    wait_healthy(&server).await;
    let healthy = freed.elapsed();
    let next = server.deploy(&project, "web").await;
    let log = server.deploy_log(next["id"].as_i64().unwrap()).await;
    assert_eq!(next["status"], "live", "{next}\n{log}");
    let report = load.stop().await;
    assert_eq!(report.failed(), 0, "failed requests: {:?}", report.errors);
    let checked = std::process::Command::new("sqlite3")
        .arg(server.data_dir().join("helvetia.db"))
        .arg("PRAGMA integrity_check")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&checked.stdout).trim(), "ok");
    assert!(!server.log().contains("panicked"), "{}", server.log());
    eprintln!(
        "FAULT data directory full: {} of {} requests failed, app silent {:.2} s at most, writes \
         507 and reads 200 while full, the first write after space returned 201 and healthy \
         {:.2} s after; history: {}",
        report.failed(),
        report.sent(),
        unanswered_seconds(&report),
        healthy.as_secs_f64(),
        history(&server, &project).await,
    );
}

/// The engine's restart count of `container` if it is running again.
fn restarted_by_engine(container: &str) -> Option<u32> {
    let output = std::process::Command::new("/usr/bin/docker")
        .args([
            "inspect",
            "--format",
            "{{.State.Running}} {{.RestartCount}}",
            container,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    let (running, count) = text.trim().split_once(' ')?;
    let count = count.parse().ok()?;
    (running == "true" && count > 0).then_some(count)
}

/// The event stream cut while a deployment is in progress, and the live container killed
/// while the monitor cannot subscribe again: once it can, it catches up and records the
/// restart it did not hear, and the deployment ends live.
#[tokio::test(flavor = "multi_thread")]
async fn a_death_while_the_event_stream_is_cut_is_caught_up_on_resubscribing() {
    let proxy = DockerProxy::start();
    let server = TestServer::start_through(crate::BINARY, &proxy.docker_host()).await;
    let project = unique("events");
    let _cleanup = Cleanup(project.clone());
    let repo = FixtureRepo::new("web");
    let load = live_under_load(&server, &project, &repo).await;
    let live = &project_containers(&project)[0];
    eventually(
        Duration::from_secs(30),
        "the monitor to subscribe",
        || async { (server.monitor_subscriptions() >= 1).then_some(()) },
    )
    .await;

    server.arm("deploy-after-build", "pause");
    let id = server.request_deploy(&project, "web").await;
    server.wait_paused("deploy-after-build").await;
    let cut_at = Instant::now();
    assert!(proxy.cut_events(true) >= 1, "an event stream was open");
    // SIGKILL to its process, as a crash would: `docker kill` counts as stopped by hand, and
    // the engine would not restart it.
    let pid = std::process::Command::new("/usr/bin/docker")
        .args(["inspect", "--format", "{{.State.Pid}}", live])
        .output()
        .unwrap();
    let pid = String::from_utf8_lossy(&pid.stdout).trim().to_owned();
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    eventually(
        Duration::from_secs(30),
        "the engine to restart it",
        || async { restarted_by_engine(live) },
    )
    .await;
    proxy.allow_events();
    let before = server.monitor_subscriptions();
    eventually(
        Duration::from_secs(30),
        "the monitor to subscribe again",
        || async { (server.monitor_subscriptions() > before).then_some(()) },
    )
    .await;
    let resubscribed = cut_at.elapsed();
    wait_for_event(&server, &project, "restarted", Duration::from_secs(30)).await;
    let host = format!("web.{project}.localhost");
    server.wait_answering(&host, Duration::from_secs(30)).await;
    server.release("deploy-after-build").await;
    let deployment = server.wait_finished(id).await;
    assert_eq!(deployment["status"], "live", "{deployment}");
    let report = load.stop().await;
    no_orphan_container(&project, &deployment).await;
    eprintln!(
        "FAULT event stream cut mid-deploy + container killed: {} of {} requests failed, app \
         silent {:.2} s at most, monitor subscribed again {:.2} s after the cut; history: {}",
        report.failed(),
        report.sent(),
        unanswered_seconds(&report),
        resubscribed.as_secs_f64(),
        history(&server, &project).await,
    );
}

/// The engine restarted (SIGTERM, started again) on an engine of its own: restarting the
/// shared one would disturb every other test. With `live-restore` the app keeps answering;
/// without, its container stops with the engine and is started again by it (possibly at a
/// new address, its `start` event missed while the monitor was away), and is routed again
/// once the monitor has caught up and probed it. Either way the monitor subscribes again,
/// the history is unchanged and the next deploy succeeds.
async fn engine_restarted_under_load(live_restore: bool) {
    let mut engine = SecondEngine::start(EngineOptions {
        live_restore,
        ..EngineOptions::default()
    });
    let server = TestServer::start_on(crate::BINARY, &engine, &[]).await;
    let project = unique("dockerd");
    let repo = FixtureRepo::new("web");
    let load = live_under_load(&server, &project, &repo).await;
    let live = server
        .get(&format!(
            "/api/v1/projects/{project}/services/web/deployments"
        ))
        .await;
    let live = live.get("items").unwrap_or(&live)[0].clone();
    assert_eq!(live["status"], "live", "{live}");
    eventually(
        Duration::from_secs(30),
        "the monitor to subscribe",
        || async { (server.monitor_subscriptions() >= 1).then_some(()) },
    )
    .await;
    // Some answers before the fault, so the gap is measured from the last one.
    eventually(
        Duration::from_secs(10),
        "the load to be answered",
        || async { (load.sent().await >= 10).then_some(()) },
    )
    .await;

    let before = server.monitor_subscriptions();
    let down_at = load.began.elapsed();
    let begin = Instant::now();
    // Blocks this worker only; the load runs on the others.
    let restart = tokio::task::block_in_place(|| engine.restart());
    let host = format!("web.{project}.localhost");
    server.wait_answering(&host, Duration::from_secs(60)).await;
    let answered = begin.elapsed();
    eventually(
        Duration::from_secs(30),
        "the monitor to subscribe again",
        || async { (server.monitor_subscriptions() > before).then_some(()) },
    )
    .await;
    wait_healthy(&server).await;
    let healthy = begin.elapsed();
    let up_at = load.began.elapsed();
    // Not the 60 s periodic reconciliation: the monitor catches up when it reconnects
    // (back-off at most a few seconds) and probes the container back at the readiness pace.
    assert!(
        answered <= restart.stop + restart.start + Duration::from_secs(20),
        "answered again only {answered:?} after the restart began ({restart:?}); the \
         monitor's log:\n{}",
        monitor_log(&server)
    );
    let deployments = history(&server, &project).await;
    // Reconciled: with live-restore nothing happened to the container; without, its exit
    // and its return are on record — the return once the probe that records it has run,
    // which can be after the edge answers again.
    let recorded = if live_restore {
        let recorded = events(&server, &project).await;
        assert_eq!(recorded, "", "nothing to record");
        recorded
    } else {
        eventually(
            Duration::from_secs(30),
            "the exit and the return on record",
            || async {
                let recorded = events(&server, &project).await;
                (recorded.starts_with("exited") && recorded.contains("healthy")).then_some(recorded)
            },
        )
        .await
    };
    let live_now = server
        .get(&format!("/api/v1/deployments/{}", live["id"]))
        .await;
    assert_eq!(live_now["status"], "live", "{deployments}");
    for running in [
        "queued",
        "cloning",
        "building",
        "starting",
        "health_checking",
    ] {
        assert!(!deployments.contains(running), "{deployments}");
    }
    let label = format!("label=io.helvetia.project={project}");
    let containers =
        engine.docker_ok(&["ps", "--all", "--format", "{{.Names}}", "--filter", &label]);
    assert_eq!(containers.lines().count(), 1, "no duplicate: {containers}");

    let next = server.deploy(&project, "web").await;
    assert_eq!(next["status"], "live", "{}", server.log());
    let report = load.stop().await;
    let (sent, failed) = report.between(down_at, up_at);
    if live_restore {
        assert_eq!(report.failed(), 0, "failed requests: {:?}", report.errors);
    }
    // The monitor works again: a crash of the new deployment's container after the restart
    // is still seen (one more `exited`: without live-restore the restart recorded one).
    let exits = events(&server, &project).await.matches("exited").count();
    let deployment = format!("label=io.helvetia.deployment={}", next["id"]);
    let container = engine.docker_ok(&["ps", "--format", "{{.Names}}", "--filter", &deployment]);
    let pid = engine.docker_ok(&["inspect", "--format", "{{.State.Pid}}", &container]);
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    eventually(Duration::from_secs(30), "the crash recorded", || async {
        let now = events(&server, &project).await.matches("exited").count();
        (now > exits).then_some(())
    })
    .await;
    assert!(!server.log().contains("panicked"), "{}", server.log());
    eprintln!(
        "FAULT engine restarted ({}live-restore): {failed} of {sent} requests failed during the \
         outage ({} of {} in all), app silent {:.2} s at most, routed {:.2} s after the SIGTERM \
         (the engine stopped in {:.2} s and answered again {:.2} s later), healthy and the \
         monitor subscribed again after {:.2} s; events: {recorded}; history: {deployments}",
        if live_restore { "" } else { "no " },
        report.failed(),
        report.sent(),
        report.longest_gap(down_at, up_at).as_secs_f64(),
        answered.as_secs_f64(),
        restart.stop.as_secs_f64(),
        restart.start.as_secs_f64(),
        healthy.as_secs_f64(),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_engine_restarted_with_live_restore_keeps_the_app_answering() {
    engine_restarted_under_load(true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_engine_restarted_without_live_restore_brings_the_app_back_routed() {
    engine_restarted_under_load(false).await;
}

/// The events recorded for `project/web`, oldest first, as `kind (message)`.
async fn events(server: &TestServer, project: &str) -> String {
    let path = format!("/api/v1/projects/{project}/services/web/events");
    let events = server.get(&path).await;
    let mut events: Vec<String> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{} ({})", e["kind"].as_str().unwrap(), e["message"]))
        .collect();
    events.reverse();
    events.join(", ")
}

/// What the health monitor logged (with the container events it recorded), for failure
/// messages.
fn monitor_log(server: &TestServer) -> String {
    server
        .log()
        .lines()
        .filter(|line| line.contains("monitor") || line.contains("container event"))
        .collect::<Vec<_>>()
        .join("\n")
}
