//! `bench/zero_downtime`: what clients see while a service is redeployed again and again.
//!
//! Runs a steady load through Traefik (`BENCH_RATE` requests/s, default 200, over 8
//! kept-alive connections) while the `web` fixture is redeployed `BENCH_REDEPLOYS` times
//! (default 20), each time with a changed file (a real build). Prints requests sent and
//! failed (a connection error or a non-2xx answer), and latency percentiles inside and
//! outside the switch windows. A switch window runs from the moment the deployment starts
//! switching routes to the moment its old container was removed, from the deployment log.
//!
//! `BENCH_HTTPS=1` runs the same over HTTPS, against Pebble (Let's Encrypt's test CA):
//! 1. the server starts on plain HTTP under load, then restarts with an HTTPS entry point and
//!    the ACME client set up — Traefik's static configuration changes, so Traefik is
//!    replaced: printed are the longest time without an answer and the failed requests;
//! 2. a custom domain is added, and the time until its certificate is issued printed;
//! 3. the load goes over TLS to the domain (SNI, Pebble's root trusted) during the redeploys.
//!    Pebble's certificates live `BENCH_CERT_VALIDITY` seconds (default 240), so Helvetia
//!    renews them during the run (two thirds into their life): printed are the renewals and
//!    the certificates a fresh connection was served, each second.
//!
//! Run: `eval "$(sudo scripts/dev-setup.sh)" && cargo bench -p helvetia --bench zero_downtime`
//! (`BENCH_HTTPS=1 cargo bench …` for the HTTPS mode).

use helvetia_test_support::bench::{env_or, percentile};
use helvetia_test_support::load::{Load, Report, Target};
use helvetia_test_support::pebble::{Pebble, PebbleOptions};
use helvetia_test_support::{
    FixtureRepo, TestServer, eventually, project_containers, remove_project_objects, unique,
};
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

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

/// Redeploys `web` `redeploys` times, each with a changed file; the switch windows.
async fn redeploy(
    server: &TestServer,
    project: &str,
    repo: &FixtureRepo,
    redeploys: usize,
) -> Vec<(f64, f64)> {
    let mut windows = vec![];
    for round in 0..redeploys {
        repo.write("www/index.html", &format!("version {round}\n"), "a change");
        let deployed = server.deploy(project, "web").await;
        assert_eq!(deployed["status"], "live");
        let id = deployed["id"].as_i64().expect("id");
        eventually(
            Duration::from_secs(60),
            "the old container to be removed",
            || async { (project_containers(project).len() == 1).then_some(()) },
        )
        .await;
        windows.push(switch_window(server, id).await);
    }
    windows
}

#[tokio::main]
async fn main() {
    let redeploys: usize = env_or("BENCH_REDEPLOYS", 20);
    let rate: f64 = env_or("BENCH_RATE", 200.0);
    if env_or("BENCH_HTTPS", 0) == 1 {
        return https(redeploys, rate).await;
    }
    let server = TestServer::start(env!("CARGO_BIN_EXE_helvetia")).await;
    let project = unique("zdt");
    let repo = FixtureRepo::new("web");
    server.service(&project, "web", &repo).await;
    let first = server.deploy(&project, "web").await;
    assert_eq!(first["status"], "live");

    let host = format!("web.{project}.localhost");
    let load = Load::start(server.http_port, &host, "/", 8, rate);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let windows = redeploy(&server, &project, &repo, redeploys).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let result = load.stop().await;
    println!(
        "bench/zero_downtime: {redeploys} redeploys (each a rebuild) under {rate} requests/s over 8 connections"
    );
    println!();
    report(&result, &windows);
    remove_project_objects(&project);
}

/// The certificates a fresh TLS connection to `target` is served, sampled every second until
/// `stop`: each distinct one (a hash of it, to tell them apart) with when it was first seen.
fn watch_served(
    target: Target,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<Vec<(String, Duration)>> {
    tokio::spawn(async move {
        let began = Instant::now();
        let mut seen: Vec<(String, Duration)> = vec![];
        while !*stop.borrow() {
            let client = target
                .client_builder()
                .tls_info(true)
                .build()
                .expect("client");
            if let Ok(response) = target.request(&client, &target.url("/")).send().await
                && let Some(info) = response.extensions().get::<reqwest::tls::TlsInfo>()
                && let Some(der) = info.peer_certificate()
            {
                let mut hasher = std::hash::DefaultHasher::new();
                der.hash(&mut hasher);
                let digest = format!("{:016x}", hasher.finish());
                if seen.last().is_none_or(|(last, _)| *last != digest) {
                    seen.push((digest, began.elapsed()));
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        seen
    })
}

/// The domain's certificate's `not_after`, once issued.
async fn not_after(server: &TestServer, project: &str, name: &str) -> Option<String> {
    let listed = server
        .get(&format!("/api/v1/projects/{project}/services/web/domains"))
        .await;
    let domain = listed.as_array()?.iter().find(|d| d["name"] == name)?;
    (domain["certificate"]["state"] == "issued")
        .then(|| {
            domain["certificate"]["not_after"]
                .as_str()
                .map(str::to_owned)
        })
        .flatten()
}

async fn https(redeploys: usize, rate: f64) {
    let validity: u64 = env_or("BENCH_CERT_VALIDITY", 240);
    let mut server = TestServer::prepare(env!("CARGO_BIN_EXE_helvetia"));
    let pebble = Pebble::start_with(PebbleOptions {
        http_port: Some(server.http_port),
        validity: Some(Duration::from_secs(validity)),
        ..PebbleOptions::default()
    })
    .await;
    let resolver = pebble.dns_address().to_string();
    let plain = [
        "--resolver",
        &resolver,
        "--public-addresses",
        "127.0.0.1",
        "--allow-private-destinations",
    ];
    server.launch_with(&plain).await;
    let project = unique("zdts");
    let repo = FixtureRepo::new("web");
    server.service(&project, "web", &repo).await;
    assert_eq!(server.deploy(&project, "web").await["status"], "live");

    // 1. The HTTPS entry point is added: Traefik is replaced.
    let host = format!("web.{project}.localhost");
    let load = Load::start(server.http_port, &host, "/", 8, rate);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ca_file = server.dir.path().join("pebble-api-ca.pem");
    std::fs::write(&ca_file, pebble.api_ca_pem()).expect("CA file");
    let https_port = helvetia_test_support::free_port();
    let traefik_before = server.traefik_pid();
    let restart_began = load.began.elapsed();
    assert!(server.terminate().success());
    let mut secure: Vec<String> = plain.iter().map(|a| a.to_string()).collect();
    secure.extend(
        [
            "--https-address",
            &format!("127.0.0.1:{https_port}"),
            "--acme-directory",
            &pebble.directory_url(),
            "--acme-ca-file",
            ca_file.to_str().expect("path"),
        ]
        .map(str::to_owned),
    );
    server.extra_args = secure;
    server.launch().await;
    let restart_ended = load.began.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let restart = load.stop().await;
    assert_ne!(server.traefik_pid(), traefik_before, "Traefik was replaced");
    let (sent, failed) = restart.between(restart_began, restart_ended + Duration::from_secs(2));
    let gap = restart.longest_gap(restart_began, restart_ended + Duration::from_secs(2));

    // 2. A custom domain gets its certificate.
    let name = "secure.example.test";
    let added = Instant::now();
    server.cli_ok(&["domains", "add", &format!("{project}/web"), name]);
    let first = eventually(Duration::from_secs(120), "the certificate", || {
        not_after(&server, &project, name)
    })
    .await;
    let issued_after = added.elapsed();

    // 3. Redeploys under load over TLS, renewals included.
    let target = Target::Https {
        port: https_port,
        host: name.to_owned(),
        root_pem: pebble.issuing_root_pem().await,
    };
    eventually(Duration::from_secs(30), "the app over TLS", || async {
        let client = target.client_builder().build().ok()?;
        let response = target
            .request(&client, &target.url("/"))
            .send()
            .await
            .ok()?;
        response.status().is_success().then_some(())
    })
    .await;
    let (stop_watch, watching) = tokio::sync::watch::channel(false);
    let served = watch_served(target.clone(), watching);
    let load = Load::start_to(target, "/", 8, rate);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let began = Instant::now();
    let windows = redeploy(&server, &project, &repo, redeploys).await;
    // At least one renewal under load, however quick the redeploys were.
    let renewed = eventually(Duration::from_secs(validity + 60), "a renewal", || async {
        not_after(&server, &project, name)
            .await
            .filter(|now| *now != first)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let result = load.stop().await;
    let _ = stop_watch.send(true);
    let served = served.await.expect("watcher");

    println!("bench/zero_downtime (HTTPS, Pebble; certificates valid {validity} s)");
    println!();
    println!(
        "Adding the HTTPS entry point (Helvetia restarted with new settings; Traefik replaced behind the gate): \
         {sent} requests over HTTP around the restart, {failed} failed, longest time without an answer {:.0} ms, \
         restart to healthy {:.1} s",
        gap.as_secs_f64() * 1000.0,
        (restart_ended - restart_began).as_secs_f64(),
    );
    if !restart.errors.is_empty() {
        println!("first failures around the restart: {:?}", restart.errors);
    }
    println!(
        "Domain added → certificate issued by Pebble (HTTP-01): {:.1} s",
        issued_after.as_secs_f64()
    );
    println!(
        "{redeploys} redeploys (each a rebuild) over TLS under {rate} requests/s over 8 connections, {:.0} s; \
         certificate first valid until {first}, renewed (valid until {renewed}); \
         certificates served to fresh connections: {}",
        began.elapsed().as_secs_f64(),
        served.len(),
    );
    for (digest, at) in &served {
        println!("  - {} first served at {:.0} s", digest, at.as_secs_f64());
    }
    println!();
    report(&result, &windows);
    remove_project_objects(&project);
}
