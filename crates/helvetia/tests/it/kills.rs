//! `kill -9` of the server at each step of a deploy, placed by a failpoint
//! (`helvetia_server::failpoint`), while the live app serves a steady load through Traefik:
//! one server and one app go through every kill point in turn.

use std::time::{Duration, Instant};

use helvetia_test_support::load::{Load, Sample};
use helvetia_test_support::{FixtureRepo, TestServer, eventually, project_containers, unique};
use reqwest::Method;
use serde_json::json;

use crate::deploy::Cleanup;

/// ~50 requests per second, as issue 13 asks, over a few kept-alive connections.
const RATE: f64 = 50.0;
const CONNECTIONS: usize = 5;

/// Where the server is killed, and what the store must say of the interrupted deployment.
struct KillPoint {
    failpoint: &'static str,
    /// Already switched when killed: it stays live and its predecessor is retired. Otherwise
    /// it fails as interrupted and its predecessor stays live.
    switched: bool,
}

const KILL_POINTS: [KillPoint; 5] = [
    KillPoint {
        failpoint: "deploy-after-build",
        switched: false,
    },
    KillPoint {
        failpoint: "deploy-health-check",
        switched: false,
    },
    KillPoint {
        failpoint: "deploy-before-confirm",
        switched: false,
    },
    KillPoint {
        failpoint: "deploy-after-confirm",
        switched: false,
    },
    KillPoint {
        failpoint: "deploy-drain",
        switched: true,
    },
];

/// Statuses a deployment may be left in once nothing runs.
const FINAL: [&str; 5] = ["live", "retired", "failed", "cancelled", "superseded"];

/// Requests a deployment of `project/web`, kills the server when that deployment reaches
/// `point`, and returns the deployment's id once the server has exited.
async fn deploy_killed_at(server: &mut TestServer, project: &str, point: &str) -> i64 {
    if point == "deploy-after-build" {
        server.arm(point, "kill");
        let id = server.request_deploy(project, "web").await;
        server.wait_exited().await;
        server.release(point).await;
        return id;
    }
    // Armed once this deployment runs: the previous one's job has ended by then.
    server.arm("deploy-after-build", "pause");
    let id = server.request_deploy(project, "web").await;
    server.wait_paused("deploy-after-build").await;
    server.arm(point, "kill");
    server.release("deploy-after-build").await;
    server.wait_exited().await;
    server.release(point).await;
    id
}

async fn status_of(server: &TestServer, deployment: i64) -> String {
    let deployment = server
        .get(&format!("/api/v1/deployments/{deployment}"))
        .await;
    deployment["status"].as_str().unwrap().to_owned()
}

/// What one kill did, for the figures printed at the end.
struct Figures {
    failpoint: &'static str,
    /// Kill and recovery, relative to the load's start.
    killed_at: Duration,
    recovered_at: Duration,
    /// From the kill until `/healthz` answered 200 again.
    healthy_after: Duration,
    history: String,
}

/// At each kill point the live app keeps answering, the interrupted deployment ends as the
/// store recorded it (`failed: interrupted` before the switch was recorded; `live`, its
/// predecessor `retired`, when killed while draining), no deployment is left running, no
/// container is left over, and the next deploy succeeds.
#[tokio::test(flavor = "multi_thread")]
async fn a_server_killed_at_any_deploy_step_loses_no_request_and_no_history() {
    let mut server = TestServer::start(crate::BINARY).await;
    let project = unique("kills");
    let _cleanup = Cleanup(project.clone());
    let repo = FixtureRepo::new("web");
    server.service(&project, "web", &repo).await;
    let (status, body) = server
        .api(
            Method::PATCH,
            &format!("/api/v1/projects/{project}/services/web"),
            Some(json!({"runtime": {"timeouts": {"drain_ms": 1000}}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let host = format!("web.{project}.localhost");
    let first = server.deploy(&project, "web").await;
    assert_eq!(first["status"], "live", "{first}");
    let mut live = first["id"].as_i64().unwrap();
    let mut live_body = "hello from version 1\n".to_owned();
    let scope = server.scope().await;
    let load = Load::start(server.http_port, &host, "/", CONNECTIONS, RATE);
    let mut figures = Vec::new();

    for (round, point) in KILL_POINTS.iter().enumerate() {
        let body = format!("version {}\n", round + 2);
        repo.write("www/index.html", &body, &format!("v{}", round + 2));
        let id = deploy_killed_at(&mut server, &project, point.failpoint).await;
        let killed = Instant::now();
        server.launch().await;
        let healthy_after = killed.elapsed();
        let finished = server.wait_finished(id).await;
        let reason = finished["status_reason"].as_str().unwrap_or_default();
        let history = if point.switched {
            assert_eq!(finished["status"], "live", "{finished}\n{}", server.log());
            server
                .wait_for_log(id, "finishing the drain", Duration::from_secs(30))
                .await;
            assert_eq!(status_of(&server, live).await, "retired");
            let history = format!("#{id} live, #{live} retired");
            (live, live_body) = (id, body);
            history
        } else {
            assert_eq!(finished["status"], "failed", "{finished}");
            assert!(reason.starts_with("interrupted"), "{finished}");
            assert_eq!(status_of(&server, live).await, "live");
            format!("#{id} failed ({reason}), #{live} live")
        };
        // Nothing left running, in the store or in the engine.
        let deployments = server
            .get(&format!(
                "/api/v1/projects/{project}/services/web/deployments"
            ))
            .await;
        for deployment in deployments.as_array().unwrap() {
            let status = deployment["status"].as_str().unwrap();
            assert!(FINAL.contains(&status), "{deployment}");
        }
        let wanted = [scope.container(&project, "web", live, 0)];
        eventually(Duration::from_secs(30), "no orphan container", || {
            let settled = project_containers(&project) == wanted;
            async move { settled.then_some(()) }
        })
        .await;
        assert_eq!(
            server.through_edge(&host, "/").await,
            Some((200, live_body.clone())),
            "after a kill at {}",
            point.failpoint
        );
        figures.push(Figures {
            failpoint: point.failpoint,
            killed_at: killed - load.began,
            recovered_at: load.began.elapsed(),
            healthy_after,
            history,
        });
    }

    repo.write("www/index.html", "after the kills\n", "after");
    let next = server.deploy(&project, "web").await;
    assert_eq!(next["status"], "live", "{next}");
    assert_eq!(status_of(&server, live).await, "retired");
    assert_eq!(
        server.through_edge(&host, "/").await,
        Some((200, "after the kills\n".to_owned()))
    );
    let report = load.stop().await;
    for figure in &figures {
        let (sent, failed) = report.between(figure.killed_at, figure.recovered_at);
        println!(
            "fault kill -9 at {}: {failed} of {sent} requests failed; app unanswered at most {:.2} s; \
             Helvetia healthy after {:.2} s; history: {}",
            figure.failpoint,
            report
                .longest_gap(figure.killed_at, figure.recovered_at)
                .as_secs_f64(),
            figure.healthy_after.as_secs_f64(),
            figure.history,
        );
        // What matters is that requests ran through every kill, however fast the run went
        // (a total of 5 s of load was asked for once, and deploys got faster).
        assert!(sent > 0, "no request while killed at {}", figure.failpoint);
    }
    assert_eq!(report.failed(), 0, "{:?}", report.errors);
}

/// The managed Traefik killed with SIGKILL under load is restarted by the server with the
/// routes it had, and never answers 404 for the app's host while it starts.
#[tokio::test(flavor = "multi_thread")]
async fn a_sigkilled_traefik_is_restarted_with_its_routes_and_no_404() {
    let server = TestServer::start(crate::BINARY).await;
    let project = unique("edgekill");
    let _cleanup = Cleanup(project.clone());
    let repo = FixtureRepo::new("web");
    server.service(&project, "web", &repo).await;
    let deployed = server.deploy(&project, "web").await;
    assert_eq!(deployed["status"], "live", "{deployed}");
    let host = format!("web.{project}.localhost");
    let load = Load::start(server.http_port, &host, "/", CONNECTIONS, RATE);
    eventually(Duration::from_secs(10), "the load to be served", || {
        let sent = load.sent();
        async move { (sent.await > 25).then_some(()) }
    })
    .await;

    let killed_pid = server.traefik_pid().expect("Traefik's pid file");
    let killed_at = load.began.elapsed();
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &killed_pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let healthy_after = eventually(
        Duration::from_secs(20),
        "Traefik restarted and the server healthy",
        || async {
            let restarted = server.traefik_pid().is_some_and(|pid| pid != killed_pid);
            let (status, _) = server.api(Method::GET, "/healthz", None).await;
            (restarted && status == 200).then(|| load.began.elapsed() - killed_at)
        },
    )
    .await;
    assert_eq!(
        server.through_edge(&host, "/").await,
        Some((200, "hello from version 1\n".to_owned())),
        "{}",
        server.log()
    );
    // A while of traffic through the restarted Traefik.
    let sent = load.sent().await;
    eventually(Duration::from_secs(10), "more traffic", || {
        let more = load.sent();
        async move { (more.await > sent + 50).then_some(()) }
    })
    .await;
    let report = load.stop().await;
    let after: Vec<&Sample> = report
        .samples
        .iter()
        .filter(|s| s.started >= killed_at)
        .collect();
    let failed = after.iter().filter(|s| !s.ok).count();
    let not_found = after.iter().filter(|s| s.status == Some(404)).count();
    let answered_again = after
        .iter()
        .filter(|s| s.ok)
        .map(|s| s.started + s.latency)
        .min()
        .expect("an answer after the restart");
    // One outage, while no Traefik listened: none once the restarted one answers.
    let late_failures: Vec<_> = after
        .iter()
        .filter(|s| !s.ok && s.started > answered_again)
        .collect();
    let answered_again = (answered_again - killed_at).as_secs_f64();
    println!(
        "fault SIGKILL of the managed Traefik: {failed} of {} requests failed ({not_found} answered 404); \
         app answered again after {answered_again:.2} s; Helvetia healthy after {:.2} s",
        after.len(),
        healthy_after.as_secs_f64(),
    );
    assert_eq!(not_found, 0, "{:?}", report.errors);
    assert!(late_failures.is_empty(), "{late_failures:?}");
    assert!(answered_again < 5.0, "{answered_again} s without an answer");
}
