//! `bench/recreate`: the gap a `recreate` deploy leaves, for a service with a volume.
//!
//! A service with a volume deploys with the `recreate` strategy: its old container stops
//! before the new one starts, so two copies never write the volume at once, and there is a
//! short time without service. This harness measures it: the `web` fixture with a volume is
//! redeployed `BENCH_REDEPLOYS` times (default 10) — each a restart of the live image, so the
//! figure is the gap itself and not a build — under a steady load (`BENCH_RATE` requests/s,
//! default 200, over 8 connections). For each redeploy it takes the longest time between two
//! successful answers while the deployment ran, and counts the failed requests.
//!
//! Run: `eval "$(sudo scripts/dev-setup.sh)" && cargo bench -p helvetia --bench recreate`

use std::time::Duration;

use helvetia_test_support::bench::{env_or, percentile};
use helvetia_test_support::load::Load;
use helvetia_test_support::{FixtureRepo, TestServer, remove_project_objects, unique};
use reqwest::Method;
use serde_json::json;

#[tokio::main]
async fn main() {
    let redeploys: usize = env_or("BENCH_REDEPLOYS", 10);
    let rate: f64 = env_or("BENCH_RATE", 200.0);
    let server = TestServer::start(env!("CARGO_BIN_EXE_helvetia")).await;
    let project = unique("recreate");
    let repo = FixtureRepo::new("web");
    server.service(&project, "web", &repo).await;
    let (status, body) = server
        .api(
            Method::POST,
            &format!("/api/v1/projects/{project}/services/web/volumes"),
            Some(json!({"name": "data", "path": "/data"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let first = server.deploy(&project, "web").await;
    assert_eq!(first["status"], "live");

    let host = format!("web.{project}.localhost");
    let load = Load::start(server.http_port, &host, "/", 8, rate);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut windows = vec![];
    for _ in 0..redeploys {
        let started = load.began.elapsed();
        let (status, body) = server
            .api(
                Method::POST,
                &format!("/api/v1/projects/{project}/services/web/restart"),
                None,
            )
            .await;
        assert_eq!(status, 202, "{body}");
        let deployed = server.wait_finished(body["id"].as_i64().expect("id")).await;
        assert_eq!(deployed["status"], "live");
        windows.push((started, load.began.elapsed()));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let report = load.stop().await;

    let mut gaps = vec![];
    let mut failed = vec![];
    for (start, end) in &windows {
        let gap = report.longest_gap(*start, *end).as_secs_f64() * 1000.0;
        gaps.push(gap);
        failed.push(report.between(*start, *end).1);
    }
    let mut sorted = gaps.clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "bench/recreate: {redeploys} recreate redeploys (restarts of the live image, a volume mounted) under {rate} requests/s over 8 connections"
    );
    println!();
    println!("| gap without service | p50 ms | max ms | failed requests (total) | requests sent |");
    println!("|---|---|---|---|---|");
    println!(
        "| longest time between two successful answers per redeploy | {:.0} | {:.0} | {} | {} |",
        percentile(&sorted, 0.5),
        sorted.last().copied().unwrap_or(0.0),
        failed.iter().sum::<usize>(),
        report.sent(),
    );
    println!();
    println!(
        "per redeploy (ms): {:?}",
        gaps.iter().map(|g| g.round()).collect::<Vec<_>>()
    );
    remove_project_objects(&project);
}
