//! `bench/log_latency`: how fast a container's output reaches a follower of the service's log
//! stream, and how many lines per second the stream sustains without losing one.
//!
//! The `web` fixture's `cgi-bin/emit` writes numbered lines to the container's own output. A
//! follower reads `GET …/logs/stream` (Server-Sent Events) with the CLI's client, as
//! `helvetia logs -f` does.
//! - Latency: `BENCH_PACED` lines (default 2,000), 2 ms apart; for each, the time from the
//!   engine's timestamp (taken when it reads the line from the container) to its arrival at
//!   the follower. Both clocks are this machine's.
//! - Throughput: `BENCH_LINES` lines (default 100,000) written as fast as `seq` can; lines per
//!   second from the request to the last line's arrival, and a check that every line arrived
//!   once, in order.
//!
//! Run: `eval "$(sudo scripts/dev-setup.sh)" && cargo bench -p helvetia --bench log_latency`

use std::ops::ControlFlow;
use std::time::{Instant, SystemTime};

use helvetia_cli::client::Client;
use helvetia_cli::sse;
use helvetia_test_support::bench::{env_or, percentile};
use helvetia_test_support::{FixtureRepo, TestServer, remove_project_objects, unique};
use serde_json::Value;

/// The number in a `line N` output line.
fn number(line: &Value) -> Option<u64> {
    line["line"].as_str()?.strip_prefix("line ")?.parse().ok()
}

/// Follows the service's output until line `last` arrived; calls `seen` with each numbered
/// line and the time it arrived.
async fn follow_until(
    client: &Client,
    path: &str,
    last: u64,
    mut seen: impl FnMut(u64, &Value, SystemTime),
) {
    sse::follow(client, path, |event| {
        if event.event != "line" {
            return ControlFlow::Continue(());
        }
        let arrived = SystemTime::now();
        let Ok(line) = serde_json::from_str::<Value>(&event.data) else {
            return ControlFlow::Continue(());
        };
        match number(&line) {
            Some(n) => {
                seen(n, &line, arrived);
                if n == last {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            }
            None => ControlFlow::Continue(()),
        }
    })
    .await
    .expect("the log stream");
}

#[tokio::main]
async fn main() {
    let paced: u64 = env_or("BENCH_PACED", 2_000);
    let lines: u64 = env_or("BENCH_LINES", 100_000);
    let server = TestServer::start(env!("CARGO_BIN_EXE_helvetia")).await;
    let project = unique("logbench");
    let repo = FixtureRepo::new("web");
    server.service(&project, "web", &repo).await;
    assert_eq!(server.deploy(&project, "web").await["status"], "live");
    let client = Client::new(&server.url(), &server.token).expect("client");
    let host = format!("web.{project}.localhost");
    let stream = format!("/api/v1/projects/{project}/services/web/logs/stream?tail=0");

    // Latency.
    let follower = {
        let client = client.clone();
        let stream = stream.clone();
        tokio::spawn(async move {
            let mut latencies = vec![];
            follow_until(&client, &stream, paced, |_, line, arrived| {
                let at: jiff::Timestamp = line["at"].as_str().expect("at").parse().expect("time");
                let arrived = jiff::Timestamp::try_from(arrived).expect("now");
                latencies.push(arrived.duration_since(at).as_secs_f64() * 1000.0);
            })
            .await;
            latencies
        })
    };
    // Give the follower time to connect before anything is written.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let answer = server
        .through_edge(&host, &format!("/cgi-bin/emit?{paced}+2000"))
        .await
        .expect("emit");
    assert_eq!(answer.0, 200, "{}", answer.1);
    let mut latencies = follower.await.expect("follower");
    latencies.sort_by(f64::total_cmp);

    // Throughput, on a fresh follower so the paced lines are behind it.
    let follower = {
        let client = client.clone();
        let stream = stream.clone();
        tokio::spawn(async move {
            let mut numbers = Vec::with_capacity(lines as usize);
            follow_until(&client, &stream, lines, |n, _, _| numbers.push(n)).await;
            (numbers, Instant::now())
        })
    };
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let started = Instant::now();
    let answer = server
        .through_edge(&host, &format!("/cgi-bin/emit?{lines}"))
        .await
        .expect("emit");
    assert_eq!(answer.0, 200, "{}", answer.1);
    let (numbers, finished) = follower.await.expect("follower");
    let elapsed = finished.duration_since(started).as_secs_f64();
    let in_order = numbers.iter().copied().eq(1..=lines);

    println!("bench/log_latency: the `web` fixture's output through `GET …/logs/stream` (SSE)");
    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| latency, engine timestamp → follower, {} lines 2 ms apart | p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms |",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(0.0)
    );
    println!(
        "| throughput, {lines} lines written at once | {:.0} lines/s ({elapsed:.2} s) |",
        lines as f64 / elapsed
    );
    println!(
        "| lines received | {} of {lines}, {} |",
        numbers.len(),
        if in_order {
            "each once, in order"
        } else {
            "LOST, REPEATED OR REORDERED"
        }
    );
    remove_project_objects(&project);
}
