//! `bench/dashboard`: what the dashboard costs, with `BENCH_SERVICES` (default 50) services in
//! one project, one of them live:
//! - the render time of the overview and of the live service's page, p50/p99 over
//!   `BENCH_REQUESTS` (default 200) requests each, measured by the client over loopback (so
//!   HTTP adds a few tenths of a millisecond);
//! - the JavaScript each page loads, as sent (gzipped), and all of it together;
//! - the first contentful paint of the overview in headless Chromium, fresh each time
//!   (`BENCH_PAINTS`, default 20);
//! - the server's CPU with `BENCH_TABS` (default 10) tabs open on the live service's page for
//!   `BENCH_WINDOW_SECS` (default 60), against the same window with no tab open — the metrics
//!   collector and the health monitor run in both, so the difference is the tabs' cost.
//!
//! Run: `eval "$(sudo scripts/dev-setup.sh)" && cargo bench -p helvetia --bench dashboard`

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use helvetia_test_support::bench::{
    clock_ticks_per_second, cpu_ticks, env_or, percentile, server_pid,
};
use helvetia_test_support::{FixtureRepo, TestServer, remove_project_objects, unique};
use tokio::io::{AsyncBufReadExt, BufReader};

/// The scripts a page loads (`<script … src="…">`).
fn scripts(html: &str) -> Vec<String> {
    html.split("<script ")
        .skip(1)
        .filter_map(|tag| tag.split("src=\"").nth(1)?.split('"').next())
        .map(str::to_owned)
        .collect()
}

/// Server CPU seconds over `window`.
async fn cpu_over(pid: u32, window: Duration) -> f64 {
    let before = cpu_ticks(pid);
    // A benchmark measures a window of time; nothing is awaited here.
    tokio::time::sleep(window).await;
    (cpu_ticks(pid) - before) as f64 / clock_ticks_per_second()
}

#[tokio::main]
async fn main() {
    let services: usize = env_or("BENCH_SERVICES", 50);
    let requests: usize = env_or("BENCH_REQUESTS", 200);
    let paints: usize = env_or("BENCH_PAINTS", 20);
    let tabs: usize = env_or("BENCH_TABS", 10);
    let window = Duration::from_secs(env_or("BENCH_WINDOW_SECS", 60));
    let server = TestServer::start(env!("CARGO_BIN_EXE_helvetia")).await;
    let project = unique("bench");
    let repo = FixtureRepo::new("web");
    for n in 0..services {
        server.service(&project, &format!("web{n}"), &repo).await;
    }
    let live = server.deploy(&project, "web0").await;
    assert_eq!(live["status"], "live", "{live}");

    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let cookie = format!("helvetia_session={}", server.token);
    let page_url = |path: &str| format!("{}{path}", server.url());
    let service_page = format!("/p/{project}/s/web0");
    let pages = [
        ("overview", "/".to_owned()),
        ("service", service_page.clone()),
        (
            "deployment",
            format!("{service_page}/deployments/{}", live["id"]),
        ),
        ("metrics", format!("{service_page}/metrics")),
    ];

    println!("bench/dashboard: {services} services, one live");
    println!();
    println!("| page | render p50 | render p99 | JavaScript (gzipped) |");
    println!("|---|---|---|---|");
    let mut all_scripts = BTreeSet::new();
    for (name, path) in &pages {
        let mut times = Vec::with_capacity(requests);
        let mut html = String::new();
        for _ in 0..requests {
            let started = Instant::now();
            let response = http
                .get(page_url(path))
                .header("cookie", &cookie)
                .send()
                .await
                .expect("the page answers");
            assert_eq!(response.status(), 200, "{path}");
            html = response.text().await.expect("a page");
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        let mut gzipped = 0;
        for script in scripts(&html) {
            let body = http
                .get(page_url(&script))
                .header("accept-encoding", "gzip")
                .send()
                .await
                .expect("the script answers")
                .bytes()
                .await
                .expect("a script");
            gzipped += body.len();
            all_scripts.insert((script, body.len()));
        }
        let (p50, p99) = (percentile(&times, 0.5), percentile(&times, 0.99));
        println!(
            "| {name} | {p50:.1} ms | {p99:.1} ms | {:.1} KiB |",
            gzipped as f64 / 1024.0
        );
    }
    let total: usize = all_scripts.iter().map(|(_, size)| size).sum();
    println!();
    println!(
        "All the dashboard's JavaScript, gzipped: {:.1} KiB ({} files)",
        total as f64 / 1024.0,
        all_scripts.len()
    );

    let browser = |args: &[String]| {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/browser/dashboard-bench.mjs"
        );
        let mut command = tokio::process::Command::new("node");
        command.arg(script).args(args).stdout(Stdio::piped());
        command
    };
    let output = browser(&[
        "fcp".into(),
        page_url("/"),
        server.token.clone(),
        paints.to_string(),
    ])
    .output()
    .await
    .expect("node runs");
    let mut paint_times: Vec<f64> =
        serde_json::from_slice(&output.stdout).expect("paint times as JSON");
    paint_times.sort_by(f64::total_cmp);
    println!(
        "First contentful paint of the overview: p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms ({} loads)",
        percentile(&paint_times, 0.5),
        percentile(&paint_times, 0.95),
        paint_times.last().copied().unwrap_or_default(),
        paint_times.len()
    );

    let pid = server_pid(&server.data_dir());
    let quiet = cpu_over(pid, window).await;
    let mut holder = browser(&[
        "tabs".into(),
        page_url(&service_page),
        server.token.clone(),
        tabs.to_string(),
        (window.as_secs() + 30).to_string(),
    ])
    .spawn()
    .expect("node runs");
    let mut lines = BufReader::new(holder.stdout.take().expect("stdout")).lines();
    loop {
        let line = lines.next_line().await.expect("node's output");
        match line.as_deref() {
            Some("ready") => break,
            Some(_) => {}
            None => panic!("the tabs did not open: {:?}", holder.wait().await),
        }
    }
    // Let the tabs' page loads settle: the window measures them being open.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let open = cpu_over(pid, window).await;
    let _ = holder.kill().await;
    let seconds = window.as_secs_f64();
    println!(
        "Server CPU over {seconds:.0} s: {:.2} % of a core with no tab open, {:.2} % with {tabs} tabs \
         on the live service's page: {:.2} % for the tabs",
        quiet / seconds * 100.0,
        open / seconds * 100.0,
        (open - quiet) / seconds * 100.0
    );
    remove_project_objects(&project);
}
