//! `bench/webhook`: how fast the GitHub App's receiver acknowledges deliveries.
//!
//! One server on SQLite with its worker running; `BENCH_SERVICES` services (default 20) made
//! from one repository through the App; `BENCH_DELIVERIES` signed `push` deliveries (default
//! 1,000) to a branch none of them tracks, so nothing builds but every delivery is verified,
//! routed to every linked service, decided and logged once per service. `BENCH_CONCURRENCY`
//! (default 8) deliveries in flight at once, as GitHub sends them. Measures each delivery from
//! the request to the `202` (received → acknowledged), and deliveries per second overall.
//!
//! Run: `eval "$(sudo scripts/dev-setup.sh)" && cargo bench -p helvetia --bench webhook`

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use helvetia_test_support::bench::{env_or, percentile};
use helvetia_test_support::github::{FakeGitHub, signature};
use helvetia_test_support::{FixtureRepo, http_client, unique};
use serde_json::{Value, json};

#[tokio::main]
async fn main() {
    let services: usize = env_or("BENCH_SERVICES", 20);
    let deliveries: usize = env_or("BENCH_DELIVERIES", 1_000);
    let concurrency: usize = env_or("BENCH_CONCURRENCY", 8);

    let github = FakeGitHub::start().await;
    let app = github.create_app("helvetia").await;
    let repo = FixtureRepo::new("web");
    github.add_user("octo", "octo@acme.example", &["acme"]);
    github.add_installation("acme", &[("shop", Some(PathBuf::from(repo.url())), true)]);
    let server = github
        .server_with_app(env!("CARGO_BIN_EXE_helvetia"), &app, "acme")
        .await;
    // Services are made from a repository by a user who reaches it on GitHub.
    let token = github.user_token(&server.url(), "octo", &["write"]).await;
    let http = http_client();
    let project = unique("hooks");
    let call = |path: String, body: Value| {
        let request = http
            .post(format!("{}{path}", server.url()))
            .bearer_auth(&token)
            .json(&body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            assert!(status.is_success(), "{path}: {status} {body}");
            body
        }
    };
    call("/api/v1/projects".into(), json!({"name": project})).await;
    let mut repository = 0;
    for n in 0..services {
        let service = call(
            format!("/api/v1/projects/{project}/services"),
            json!({"name": format!("s{n}"), "github": {"repository": "acme/shop"}}),
        )
        .await;
        repository = service["github"]["repository_id"].as_i64().unwrap();
    }

    let before = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";
    let after = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c";
    let body = json!({
        "ref": "refs/heads/nobody-tracks-this", "before": before, "after": after,
        "created": false, "deleted": false, "forced": false,
        "compare": "https://github.com/acme/shop/compare/6113728f27ae...0d1a26e67d8f",
        "commits": [{"id": after, "message": "bench", "added": ["a"], "removed": [], "modified": []}],
        "head_commit": {"id": after, "message": "bench"},
        "pusher": {"name": "octo", "email": "octo@acme.example"},
        "repository": {"id": repository, "full_name": "acme/shop"},
        "installation": {"id": 1}
    })
    .to_string();
    let signed = signature(&app.webhook_secret, body.as_bytes());
    let url = format!("{}/api/v1/github/webhook", server.url());

    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut senders = Vec::new();
    for _ in 0..concurrency {
        let (next, http, url, body, signed) = (
            next.clone(),
            http.clone(),
            url.clone(),
            body.clone(),
            signed.clone(),
        );
        senders.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < deliveries {
                let sent = Instant::now();
                let response = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("x-github-event", "push")
                    .header("x-github-delivery", unique("delivery"))
                    .header("x-hub-signature-256", &signed)
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 202);
                let receipt: Value = response.json().await.unwrap();
                latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                assert_eq!(receipt["results"].as_array().map(Vec::len), Some(services));
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for sender in senders {
        latencies.extend(sender.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);

    let log = server
        .get(&format!(
            "/api/v1/projects/{project}/services/s0/hook/deliveries?limit=1"
        ))
        .await;
    assert_eq!(log[0]["outcome"], "ignored", "{log}");
    let deployments = server
        .get(&format!(
            "/api/v1/projects/{project}/services/s0/deployments"
        ))
        .await;
    assert_eq!(deployments, json!([]), "nothing builds");

    println!(
        "bench/webhook: {deliveries} signed push deliveries to the GitHub App's receiver, \
         {services} linked services, {concurrency} in flight"
    );
    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| received → acknowledged p50 | {:.1} ms |",
        percentile(&latencies, 0.5)
    );
    println!(
        "| received → acknowledged p99 | {:.1} ms |",
        percentile(&latencies, 0.99)
    );
    println!(
        "| max | {:.1} ms |",
        latencies.last().copied().unwrap_or(0.0)
    );
    println!("| deliveries/s | {:.0} |", deliveries as f64 / elapsed);
    println!("| delivery-log rows written | {} |", deliveries * services);
}
