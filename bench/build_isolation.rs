//! `bench/build_isolation`: what a hostile build costs the apps already running.
//!
//! A live app (the `web` fixture) answers a steady load through Traefik (`BENCH_RATE`
//! requests/s, default 200, over 8 kept-alive connections). First for `BENCH_SECONDS`
//! (default 20) with nothing else running — the quiet baseline — then while another service
//! builds a step that spins a busy loop on every core and holds half a GiB, until the build's
//! wall-time cap (`BENCH_SECONDS`) stops it. Prints requests sent and failed and latency
//! p50/p99/max for both phases, and the ratio of the p99s (goal: within 2×).
//!
//! `BENCH_BUILDER=isolated` (the default) builds in Helvetia's builder engine, capped at one
//! CPU; `BENCH_BUILDER=host` builds in the host engine's BuildKit, uncapped — the comparison.
//!
//! Run: `eval "$(sudo scripts/dev-setup.sh)" && cargo bench -p helvetia --bench build_isolation`

use std::time::Duration;

use helvetia_test_support::bench::{env_or, percentile};
use helvetia_test_support::load::{Load, Report};
use helvetia_test_support::{FixtureRepo, TestServer, remove_project_objects, unique};

/// One phase's line of the table; answers its p99.
fn line(label: &str, report: &Report) -> f64 {
    let mut latencies: Vec<f64> = report
        .samples
        .iter()
        .map(|s| s.latency.as_secs_f64() * 1000.0)
        .collect();
    latencies.sort_by(f64::total_cmp);
    let p99 = percentile(&latencies, 0.99);
    println!(
        "| {label} | {} | {} | {:.1} | {p99:.1} | {:.1} |",
        report.sent(),
        report.failed(),
        percentile(&latencies, 0.5),
        latencies.last().copied().unwrap_or(0.0),
    );
    p99
}

/// A build whose one step spins every core and holds memory until it is stopped.
const HOSTILE: &str = "FROM scratch\nCOPY busybox /bin/busybox\n\
     RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n\
     COPY .fixture-id /fixture-id\n\
     RUN for i in 1 2 3 4; do (while :; do :; done) & done; \
         awk 'BEGIN { s = \"x\"; for (i = 0; i < 29; i++) s = s s; while (1) { } }'\n";

#[tokio::main]
async fn main() {
    let seconds: u64 = env_or("BENCH_SECONDS", 20);
    let rate: f64 = env_or("BENCH_RATE", 200.0);
    let builder: String = env_or("BENCH_BUILDER", "isolated".to_owned());
    let bridge = format!("10.214.{}.1/24", rand::random::<u8>());
    let server = TestServer::start_with(
        env!("CARGO_BIN_EXE_helvetia"),
        &["--builder", &builder, "--builder-bridge-address", &bridge],
    )
    .await;
    let project = unique("iso");
    let web = FixtureRepo::new("web");
    server.service(&project, "web", &web).await;
    assert_eq!(server.deploy(&project, "web").await["status"], "live");
    let host = format!("web.{project}.localhost");
    server.wait_answering(&host, Duration::from_secs(10)).await;

    let quiet = Load::start(server.http_port, &host, "/", 8, rate);
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let quiet = quiet.stop().await;

    let hostile = FixtureRepo::new("web");
    hostile.write("Dockerfile", HOSTILE, "spin every core");
    server.service(&project, "hostile", &hostile).await;
    server.cli_ok(&[
        "services",
        "update",
        &format!("{project}/hostile"),
        "--build-timeout",
        &format!("{seconds}s"),
    ]);
    let id = server.request_deploy(&project, "hostile").await;
    server
        .wait_for_log(id, "RUN for i in", Duration::from_secs(60))
        .await;
    let busy = Load::start(server.http_port, &host, "/", 8, rate);
    let finished = server.wait_finished(id).await;
    let busy = busy.stop().await;

    println!(
        "bench/build_isolation: a live app under {rate} requests/s over 8 connections, \
         {seconds} s quiet, then while a build spins every core (builder: {builder})"
    );
    println!();
    println!("| phase | sent | failed | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|");
    let quiet_p99 = line("quiet", &quiet);
    let busy_p99 = line("during the hostile build", &busy);
    println!();
    println!(
        "p99 during / quiet: {:.2}× — the hostile build ended `{}`: {}",
        busy_p99 / quiet_p99.max(0.001),
        finished["status"].as_str().unwrap_or_default(),
        finished["status_reason"].as_str().unwrap_or_default(),
    );
    remove_project_objects(&project);
}
