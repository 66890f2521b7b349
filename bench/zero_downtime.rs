//! `bench/zero_downtime`: what clients see while a service is redeployed again and again.
//!
//! Runs a steady load through Traefik (`BENCH_RATE` requests/s, default 200, over 8
//! kept-alive connections) while the `web` fixture is redeployed `BENCH_REDEPLOYS` times
//! (default 20), each time with a changed file (a real build). Prints requests sent and
//! failed (a connection error or a non-2xx answer), and latency percentiles inside and
//! outside the switch windows. A switch window runs from the moment the deployment starts
//! switching routes to the moment its old container was removed, from the deployment log.
//!
//! Run: `eval "$(sudo scripts/dev-setup.sh)" && cargo bench -p helvetia --bench zero_downtime`

use helvetia_test_support::bench::{env_or, percentile};
use helvetia_test_support::load::{Load, Report};
use helvetia_test_support::{
    FixtureRepo, TestServer, eventually, project_containers, remove_project_objects, unique,
};
use std::time::Duration;

/// The `[start, end]` (ms since the epoch) of a deployment's switch, from its log.
async fn switch_window(server: &TestServer, id: i64) -> (f64, f64) {
    let page = server
        .get(&format!("/api/v1/deployments/{id}/logs?limit=10000"))
        .await;
    let lines = page["lines"].as_array().expect("lines");
    let at = |marker: &str| {
        lines
            .iter()
            .find(|l| l["line"].as_str().is_some_and(|t| t.contains(marker)))
            .map(|l| {
                let at: jiff::Timestamp = l["at"].as_str().expect("at").parse().expect("timestamp");
                at.as_millisecond() as f64
            })
    };
    let start = at("Switching").expect("the deployment switched");
    let end = at("Stopped and removed").unwrap_or(start + 2000.0);
    (start, end)
}

fn line(label: &str, latencies: &mut [f64], failed: usize) {
    latencies.sort_by(f64::total_cmp);
    println!(
        "| {label} | {} | {failed} | {:.1} | {:.1} | {:.1} |",
        latencies.len(),
        percentile(latencies, 0.5),
        percentile(latencies, 0.99),
        latencies.last().copied().unwrap_or(0.0),
    );
}

fn report(report: &Report, windows: &[(f64, f64)]) {
    let (mut inside, mut outside) = (vec![], vec![]);
    let (mut failed_inside, mut failed_outside) = (0, 0);
    for sample in &report.samples {
        let at = report.began_unix_ms + sample.started.as_secs_f64() * 1000.0;
        let latency = sample.latency.as_secs_f64() * 1000.0;
        let during = windows
            .iter()
            .any(|(start, end)| at >= *start && at <= *end);
        match (during, sample.ok) {
            (true, ok) => {
                inside.push(latency);
                failed_inside += usize::from(!ok);
            }
            (false, ok) => {
                outside.push(latency);
                failed_outside += usize::from(!ok);
            }
        }
    }
    println!("| requests | sent | failed | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|");
    line("inside switch windows", &mut inside, failed_inside);
    line("outside switch windows", &mut outside, failed_outside);
    let mut all: Vec<f64> = report
        .samples
        .iter()
        .map(|s| s.latency.as_secs_f64() * 1000.0)
        .collect();
    line("all", &mut all, report.failed());
    if !report.errors.is_empty() {
        println!();
        println!("first failures: {:?}", report.errors);
    }
}

#[tokio::main]
async fn main() {
    let redeploys: usize = env_or("BENCH_REDEPLOYS", 20);
    let rate: f64 = env_or("BENCH_RATE", 200.0);
    let server = TestServer::start(env!("CARGO_BIN_EXE_helvetia")).await;
    let project = unique("zdt");
    let repo = FixtureRepo::new("web");
    server.service(&project, "web", &repo).await;
    let first = server.deploy(&project, "web").await;
    assert_eq!(first["status"], "live");

    let host = format!("web.{project}.localhost");
    let load = Load::start(server.http_port, &host, "/", 8, rate);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut windows = vec![];
    for round in 0..redeploys {
        repo.write("www/index.html", &format!("version {round}\n"), "a change");
        let deployed = server.deploy(&project, "web").await;
        assert_eq!(deployed["status"], "live");
        let id = deployed["id"].as_i64().expect("id");
        eventually(
            Duration::from_secs(60),
            "the old container to be removed",
            || async { (project_containers(&project).len() == 1).then_some(()) },
        )
        .await;
        windows.push(switch_window(&server, id).await);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let result = load.stop().await;
    println!(
        "bench/zero_downtime: {redeploys} redeploys (each a rebuild) under {rate} requests/s over 8 connections"
    );
    println!();
    report(&result, &windows);
    remove_project_objects(&project);
}
