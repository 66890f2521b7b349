//! `bench/collector`: what container metrics cost the control plane — the server process's
//! CPU share and memory with `BENCH_CONTAINERS` (default 50) running containers sampled every
//! `BENCH_INTERVAL` (default 5s), over a window of `BENCH_WINDOW_SECS` (default 60).
//!
//! Services cannot run replicas yet, so the containers are as many services of the tiny `web`
//! fixture, all from one repository (after the first build, the engine's layer cache makes
//! every other build a cache hit). The window starts once every container is in the
//! Prometheus exposition, i.e. sampled, and every deployment is done; the figures include
//! everything else the server does meanwhile (the health monitor probes each container every
//! 10 s, the roll-up runs every minute).
//!
//! CPU share = Δ(utime + stime) of the server process (`/proc/<pid>/stat`) over the window's
//! wall time; memory = its `VmRSS` at the end (and `VmHWM`, the peak since it started, which
//! includes the 50 deploys).
//!
//! Run: `eval "$(sudo scripts/dev-setup.sh)" && cargo bench -p helvetia --bench collector`

use std::time::{Duration, Instant};

use helvetia_test_support::bench::{
    clock_ticks_per_second, cpu_ticks, env_or, server_pid, status_mib,
};
use helvetia_test_support::{FixtureRepo, TestServer, eventually, remove_project_objects, unique};

#[tokio::main]
async fn main() {
    let containers: usize = env_or("BENCH_CONTAINERS", 50);
    let interval: String = env_or("BENCH_INTERVAL", "5s".to_owned());
    let window = Duration::from_secs(env_or("BENCH_WINDOW_SECS", 60));
    let server = TestServer::start_with(
        env!("CARGO_BIN_EXE_helvetia"),
        &["--metrics-interval", &interval],
    )
    .await;
    let project = unique("bench");
    let repo = FixtureRepo::new("web");
    let started = Instant::now();
    for n in 0..containers {
        server.service(&project, &format!("web{n}"), &repo).await;
    }
    // The first deploy creates the project's network; the rest then deploy together (two
    // first deploys of one project at once can both create it).
    let first = server.deploy(&project, "web0").await;
    assert_eq!(first["status"], "live", "{first}");
    let mut ids = Vec::with_capacity(containers);
    for n in 1..containers {
        ids.push(server.request_deploy(&project, &format!("web{n}")).await);
    }
    for id in ids {
        let deployment = server.wait_finished(id).await;
        assert_eq!(deployment["status"], "live", "{deployment}");
    }
    eprintln!(
        "{containers} services deployed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let exposition = format!("{}/metrics", server.url());
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    eventually(
        Duration::from_secs(120),
        "every container in the exposition",
        || async {
            let text = http
                .get(&exposition)
                .bearer_auth(&server.token)
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            let sampled = text
                .lines()
                .filter(|line| line.starts_with("helvetia_container_cpu_percent{"))
                .filter(|line| line.contains(&format!("project=\"{project}\"")))
                .count();
            (sampled >= containers).then_some(())
        },
    )
    .await;

    let pid = server_pid(&server.data_dir());
    let ticks_per_second = clock_ticks_per_second();
    let before = cpu_ticks(pid);
    let window_start = Instant::now();
    // A benchmark measures a window of time; nothing is awaited here.
    tokio::time::sleep(window).await;
    let elapsed = window_start.elapsed().as_secs_f64();
    let used = (cpu_ticks(pid) - before) as f64 / ticks_per_second;
    let rss = status_mib(pid, "VmRSS:");
    let peak = status_mib(pid, "VmHWM:");
    let stored = server
        .get(&format!(
            "/api/v1/projects/{project}/services/web0/metrics?from=90s&step={interval}"
        ))
        .await;

    println!(
        "bench/collector: {containers} running containers sampled every {interval}, \
         {elapsed:.0} s window"
    );
    println!();
    println!("| containers | interval | window | server CPU | of one core | RSS | peak RSS |");
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| {containers} | {interval} | {elapsed:.0} s | {used:.2} s | {:.2} % | {rss:.1} MiB | {peak:.1} MiB |",
        used / elapsed * 100.0
    );
    println!();
    println!(
        "web0's stored series over the last 90 s: {} points",
        stored["points"].as_array().map_or(0, Vec::len)
    );
    if std::env::var_os("BENCH_VERBOSE").is_some() {
        eprintln!("{}", server.log());
    }
    remove_project_objects(&project);
}
