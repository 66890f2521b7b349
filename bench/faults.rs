//! `bench/faults`: the longer variant of the fault tests (`tests/it/kills.rs`), at random moments
//! rather than at failpoints. One `web` fixture app serves `BENCH_RATE` requests/s (default 50,
//! over 5 connections) while, `BENCH_REPETITIONS` times (default 10):
//! - a deploy of a new version is requested and the server is killed (`kill -9`) a random
//!   0–`BENCH_MAX_DELAY_MS` ms later (default 3000: anywhere from the build to the drain), then
//!   started again;
//! - the managed Traefik is killed (SIGKILL) at a random moment, and restarted by the server.
//!
//! Then, for a second engine with `live-restore` and one without, a server on it with its own
//! `web` app under the same load while the engine is restarted `BENCH_ROUNDS` times (default 3)
//! at random moments: after each, the app answers again, the monitor has subscribed again,
//! Helvetia is healthy, and the history is unchanged (the live deployment still live, none
//! running, one container).
//!
//! After each server kill it checks what the tests check — no deployment left running, no
//! container but the live one's — and it prints, per fault: failed requests, answers 404, the
//! longest time without an answer, the time until Helvetia answered healthy, and how the
//! interrupted deployments ended.
//!
//! Run: `eval "$(sudo scripts/dev-setup.sh)" && cargo bench -p helvetia --bench faults`

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use helvetia_test_support::bench::{env_or, percentile};
use helvetia_test_support::fault::{EngineOptions, SecondEngine};
use helvetia_test_support::load::{Load, Report};
use helvetia_test_support::{
    FixtureRepo, TestServer, eventually, project_containers, remove_project_objects, unique,
};
use reqwest::Method;

/// Statuses a deployment may be left in once nothing runs.
const FINAL: [&str; 5] = ["live", "retired", "failed", "cancelled", "superseded"];

/// One fault: when it happened and ended (since the load began), and how long Helvetia took
/// to answer healthy again.
struct Fault {
    at: Duration,
    until: Duration,
    healthy_after: Duration,
}

fn random_delay(max_ms: u64) -> Duration {
    Duration::from_millis(rand::random::<u64>() % (max_ms + 1))
}

/// Whether any of `deployments` (a service's list) has not ended.
fn any_running(deployments: &serde_json::Value) -> bool {
    deployments
        .as_array()
        .expect("deployments")
        .iter()
        .any(|d| !FINAL.contains(&d["status"].as_str().unwrap_or_default()))
}

/// Waits until the service's deployments have all ended and the engine holds only the live
/// deployment's container; returns the live deployment's id.
async fn settled(server: &TestServer, project: &str) -> i64 {
    let service_path = format!("/api/v1/projects/{project}/services/web");
    let scope = server.scope().await;
    eventually(
        Duration::from_secs(60),
        "the store and the engine to settle",
        || async {
            let deployments = server.get(&format!("{service_path}/deployments")).await;
            let running = any_running(&deployments);
            let service = server.get(&service_path).await;
            let live = service["status"]["live_deployment"]["id"].as_i64()?;
            let containers = project_containers(project);
            (!running && containers == [scope.container(project, "web", live, 0)]).then_some(live)
        },
    )
    .await
}

/// Restarts, `rounds` times, a second engine (with or without `live-restore`) that hosts a
/// server with a live app under `rate` requests/s; prints the variant's row.
async fn engine_restarts(live_restore: bool, rounds: usize, rate: f64) {
    let mut engine = SecondEngine::start(EngineOptions {
        live_restore,
        ..EngineOptions::default()
    });
    let server = TestServer::start_on(env!("CARGO_BIN_EXE_helvetia"), &engine, &[]).await;
    let project = unique("dockerd");
    let repo = FixtureRepo::new("web");
    server.service(&project, "web", &repo).await;
    let live = server.deploy(&project, "web").await;
    assert_eq!(live["status"], "live", "{}", server.log());
    let host = format!("web.{project}.localhost");
    let load = Load::start(server.http_port, &host, "/", 5, rate);
    let service_path = format!("/api/v1/projects/{project}/services/web");
    let label = format!("label=io.helvetia.project={project}");
    let mut restarts = vec![];
    for _ in 0..rounds {
        eventually(
            Duration::from_secs(30),
            "the monitor to subscribe",
            || async { (server.monitor_subscriptions() >= 1).then_some(()) },
        )
        .await;
        tokio::time::sleep(random_delay(1000)).await;
        let before = server.monitor_subscriptions();
        let at = load.began.elapsed();
        let begin = Instant::now();
        // Blocks this worker only; the load runs on the others.
        tokio::task::block_in_place(|| engine.restart());
        eventually(
            Duration::from_secs(60),
            "the monitor to subscribe again and the server healthy",
            || async {
                let (status, _) = server.api(Method::GET, "/healthz", None).await;
                (server.monitor_subscriptions() > before && status == 200).then_some(())
            },
        )
        .await;
        let healthy_after = begin.elapsed();
        // Until the app answers again, so the window holds the outage.
        server.wait_answering(&host, Duration::from_secs(60)).await;
        eventually(
            Duration::from_secs(60),
            "the history unchanged: the live deployment live, none running, one container",
            || async {
                let deployments = server.get(&format!("{service_path}/deployments")).await;
                let running = any_running(&deployments);
                let service = server.get(&service_path).await;
                let still_live = service["status"]["live_deployment"]["id"] == live["id"];
                let containers = engine.docker_ok(&[
                    "ps",
                    "--all",
                    "--format",
                    "{{.Names}}",
                    "--filter",
                    &label,
                ]);
                (!running && still_live && containers.lines().count() == 1).then_some(())
            },
        )
        .await;
        restarts.push(Fault {
            at,
            until: load.began.elapsed(),
            healthy_after,
        });
    }
    let next = server.deploy(&project, "web").await;
    assert_eq!(next["status"], "live", "{}", server.log());
    let report = load.stop().await;
    // Each restart's figures, to see the spread behind the row's p50 / max.
    for fault in &restarts {
        let (sent, failed) = report.between(fault.at, fault.until);
        println!(
            "engine restart ({}live-restore) at {:.1} s: {failed} of {sent} failed, {:.2} s without an answer, healthy after {:.2} s",
            if live_restore { "" } else { "no " },
            fault.at.as_secs_f64(),
            report.longest_gap(fault.at, fault.until).as_secs_f64(),
            fault.healthy_after.as_secs_f64(),
        );
    }
    summarize(
        &format!(
            "Docker engine restarted ({}live-restore); history unchanged after each",
            if live_restore { "" } else { "no " }
        ),
        &restarts,
        &report,
    );
}

fn summarize(kind: &str, faults: &[Fault], report: &Report) {
    let mut gaps = vec![];
    let mut healthy = vec![];
    let (mut sent, mut failed, mut not_found) = (0, 0, 0);
    for fault in faults {
        gaps.push(report.longest_gap(fault.at, fault.until).as_secs_f64());
        healthy.push(fault.healthy_after.as_secs_f64());
        let (in_sent, in_failed) = report.between(fault.at, fault.until);
        sent += in_sent;
        failed += in_failed;
        not_found += report
            .samples
            .iter()
            .filter(|s| s.started >= fault.at && s.started <= fault.until)
            .filter(|s| s.status == Some(404))
            .count();
    }
    gaps.sort_by(f64::total_cmp);
    healthy.sort_by(f64::total_cmp);
    println!(
        "| {kind} | {} | {failed} of {sent} | {not_found} | {:.2} / {:.2} | {:.2} / {:.2} |",
        faults.len(),
        percentile(&gaps, 0.5),
        gaps.last().copied().unwrap_or_default(),
        percentile(&healthy, 0.5),
        healthy.last().copied().unwrap_or_default(),
    );
}

#[tokio::main]
async fn main() {
    let repetitions: usize = env_or("BENCH_REPETITIONS", 10);
    let rate: f64 = env_or("BENCH_RATE", 50.0);
    let max_delay_ms: u64 = env_or("BENCH_MAX_DELAY_MS", 3000);
    let engine_rounds: usize = env_or("BENCH_ROUNDS", 3);
    let mut server = TestServer::start(env!("CARGO_BIN_EXE_helvetia")).await;
    let project = unique("faults");
    let repo = FixtureRepo::new("web");
    server.service(&project, "web", &repo).await;
    let first = server.deploy(&project, "web").await;
    assert_eq!(first["status"], "live");
    let host = format!("web.{project}.localhost");
    let load = Load::start(server.http_port, &host, "/", 5, rate);
    let mut server_kills = vec![];
    let mut traefik_kills = vec![];
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();

    for round in 0..repetitions {
        repo.write(
            "www/index.html",
            &format!("round {round}\n"),
            &format!("round {round}"),
        );
        let id = server.request_deploy(&project, "web").await;
        tokio::time::sleep(random_delay(max_delay_ms)).await;
        let status_when_killed = server.get(&format!("/api/v1/deployments/{id}")).await["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        server.kill();
        let at = load.began.elapsed();
        let killed = Instant::now();
        server.launch().await;
        let healthy_after = killed.elapsed();
        let finished = server.wait_finished(id).await;
        settled(&server, &project).await;
        *outcomes
            .entry(format!(
                "killed while {status_when_killed} → {}",
                finished["status"].as_str().unwrap_or_default()
            ))
            .or_default() += 1;
        server_kills.push(Fault {
            at,
            until: load.began.elapsed(),
            healthy_after,
        });

        tokio::time::sleep(random_delay(1000)).await;
        let pid = server.traefik_pid().expect("Traefik's pid file");
        let killed = std::process::Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .expect("kill");
        assert!(killed.success());
        let at = load.began.elapsed();
        let killed = Instant::now();
        eventually(
            Duration::from_secs(30),
            "Traefik restarted and the server healthy",
            || async {
                let restarted = server.traefik_pid().is_some_and(|now| now != pid);
                let (status, _) = server.api(Method::GET, "/healthz", None).await;
                (restarted && status == 200).then_some(())
            },
        )
        .await;
        let healthy_after = killed.elapsed();
        // Until the app answers through the new Traefik, so the window holds the outage.
        server.wait_answering(&host, Duration::from_secs(30)).await;
        traefik_kills.push(Fault {
            at,
            until: load.began.elapsed(),
            healthy_after,
        });
    }
    let report = load.stop().await;
    remove_project_objects(&project);

    println!(
        "bench/faults: {repetitions} rounds under {rate} requests/s over 5 connections; server killed 0–{max_delay_ms} ms after a deploy request"
    );
    println!();
    println!(
        "| fault | times | failed requests | answered 404 | longest without an answer, p50 / max s | Helvetia healthy after, p50 / max s |"
    );
    println!("|---|---|---|---|---|---|");
    summarize("server `kill -9` during a deploy", &server_kills, &report);
    summarize("managed Traefik SIGKILLed", &traefik_kills, &report);
    for live_restore in [true, false] {
        engine_restarts(live_restore, engine_rounds, rate).await;
    }
    println!();
    println!("Interrupted deployments:");
    for (outcome, times) in &outcomes {
        println!("- {outcome}: {times}");
    }
    println!(
        "Requests in all: {} sent, {} failed",
        report.sent(),
        report.failed()
    );
    let windows = |kind: &str, faults: &[Fault]| {
        for fault in faults {
            println!("{kind} window: {:?} – {:?}", fault.at, fault.until);
        }
    };
    windows("server kill", &server_kills);
    windows("Traefik kill", &traefik_kills);
    println!("First failures: {:#?}", report.errors);
}
