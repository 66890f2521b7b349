//! `bench/deploy`: how long a deployment takes from trigger to live, by phase, and how much of
//! that is Helvetia's own overhead.
//!
//! Runs a real server (engine, Traefik) on the `web` fixture and measures three cases, each
//! `BENCH_ROUNDS` times (default 5): a first deploy of a new service, a redeploy of an
//! unchanged commit (the image is reused), and a redeploy after a one-file change (a rebuild
//! with a warm layer cache). Times come from the server's own records: the deployment's
//! creation and its transitions, the build's duration and the time from container start to
//! the first successful probe, both from the deployment log.
//!
//! Overhead = trigger-to-live − build − (container start → first successful probe), where the
//! container's start is the moment Helvetia asks the engine to create and start it. With the
//! isolated builder, handing the built image to the host engine (copied, or pushed to the
//! registry and pulled by digest) is overhead, not build.
//!
//! `BENCH_BUILDER=host` (the default) builds in the host engine; `isolated` in Helvetia's
//! builder engine, with `BENCH_REGISTRY=auto` (the default: through the registry) or `off`
//! (copied engine to engine).
//!
//! Run: `eval "$(sudo scripts/dev-setup.sh)" && cargo bench -p helvetia --bench deploy`

use std::time::Duration;

use helvetia_test_support::{
    FixtureRepo, TestServer, eventually, project_containers, remove_project_objects, unique,
};
use serde_json::Value;

const PHASES: [&str; 5] = [
    "queued",
    "cloning",
    "building",
    "starting",
    "health_checking",
];

/// One measured deployment, in milliseconds.
struct Sample {
    total: f64,
    phases: [f64; 5],
    build: f64,
    /// Handing the image from the builder engine to the host engine.
    hand_over: f64,
    ready: f64,
}

impl Sample {
    fn overhead(&self) -> f64 {
        self.total - (self.build - self.hand_over) - self.ready
    }
}

/// An RFC 3339 timestamp from the API as milliseconds since the epoch.
fn millis(value: &Value) -> f64 {
    let at: jiff::Timestamp = value
        .as_str()
        .expect("timestamp")
        .parse()
        .expect("RFC 3339");
    at.as_millisecond() as f64
}

/// The number after `before` on the first log line containing `line`, e.g. the 523 of
/// "Built image 1a2b in 523 ms"; 0 when there is no such line (an image reused, say).
fn logged_ms(log: &str, line: &str, before: &str) -> f64 {
    log.lines()
        .filter(|l| l.contains(line))
        .find_map(|l| {
            let rest = &l[l.find(before)? + before.len()..];
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or(0.0)
}

/// Deploys and measures. `at_rest` is how many containers the project has when no drain is
/// running; each deployment is measured alone, after earlier drains ended (otherwise it
/// would wait in the queue behind its service's previous job, or compete for the CPU).
async fn measure(server: &TestServer, project: &str, service: &str, at_rest: usize) -> Sample {
    eventually(Duration::from_secs(60), "earlier drains to end", || async {
        (project_containers(project).len() <= at_rest).then_some(())
    })
    .await;
    let id = server.request_deploy(project, service).await;
    let deployment = server.wait_finished(id).await;
    let log = server.deploy_log(id).await;
    assert_eq!(deployment["status"], "live", "{log}");
    if std::env::var_os("BENCH_VERBOSE").is_some() {
        let page = server
            .get(&format!("/api/v1/deployments/{id}/logs?limit=10000"))
            .await;
        for line in page["lines"].as_array().expect("lines") {
            eprintln!(
                "{} {}",
                line["at"].as_str().unwrap_or_default(),
                line["line"].as_str().unwrap_or_default()
            );
        }
    }
    let transitions = deployment["transitions"].as_array().expect("transitions");
    let entered = |status: &str| {
        transitions
            .iter()
            .find(|t| t["to"] == status)
            .map(|t| millis(&t["at"]))
    };
    let live = entered("live").expect("went live");
    let created = millis(&deployment["created_at"]);
    let mut phases = [0.0; 5];
    for (i, phase) in PHASES.iter().enumerate() {
        if let Some(start) = entered(phase) {
            let end = PHASES[i + 1..]
                .iter()
                .chain(["live"].iter())
                .find_map(|next| entered(next))
                .unwrap_or(live);
            phases[i] = end - start;
        }
    }
    Sample {
        total: live - created,
        phases,
        build: logged_ms(&log, "Built image", " in "),
        hand_over: logged_ms(&log, "handed to the host engine", " in "),
        ready: logged_ms(&log, "Ready:", " answered "),
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn report(case: &str, samples: &[Sample]) {
    let column = |f: &dyn Fn(&Sample) -> f64| median(samples.iter().map(f).collect());
    let max = |f: &dyn Fn(&Sample) -> f64| samples.iter().map(f).fold(0.0, f64::max);
    println!(
        "| {case} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} (max {:.0}) |",
        column(&|s| s.total),
        column(&|s| s.phases[0]),
        column(&|s| s.phases[1]),
        column(&|s| s.phases[2]),
        column(&|s| s.phases[3]),
        column(&|s| s.phases[4]),
        column(&|s| s.build - s.hand_over),
        column(&|s| s.hand_over),
        column(&|s| s.ready),
        max(&|s| s.total),
        column(&|s| s.overhead()),
        max(&|s| s.overhead()),
    );
}

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let builder = std::env::var("BENCH_BUILDER").unwrap_or_else(|_| "host".to_owned());
    let registry = std::env::var("BENCH_REGISTRY").unwrap_or_else(|_| "auto".to_owned());
    let bridge = format!("10.216.{}.1/24", rand::random::<u8>());
    let server = TestServer::start_with(
        env!("CARGO_BIN_EXE_helvetia"),
        &[
            "--builder",
            &builder,
            "--builder-bridge-address",
            &bridge,
            "--registry-address",
            &registry,
        ],
    )
    .await;
    let project = unique("bench");
    let (mut first, mut unchanged, mut changed) = (vec![], vec![], vec![]);
    for round in 0..rounds {
        let service = format!("web{round}");
        let repo = FixtureRepo::new("web");
        server.service(&project, &service, &repo).await;
        first.push(measure(&server, &project, &service, round).await);
        unchanged.push(measure(&server, &project, &service, round + 1).await);
        repo.write(
            "www/index.html",
            &format!("version {round}\n"),
            "a one-file change",
        );
        changed.push(measure(&server, &project, &service, round + 1).await);
    }
    println!(
        "bench/deploy: {rounds} rounds, builder {builder}, registry {registry}, medians in ms \
         (queue = queued → cloning, …)"
    );
    println!();
    println!(
        "| case | trigger → live | queue | git | build phase | start | health + switch | engine build | hand-over | start → ready | max total | Helvetia overhead |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    report("first deploy", &first);
    report("redeploy, same commit (image reused)", &unchanged);
    report("redeploy, one file changed", &changed);
    if std::env::var_os("BENCH_VERBOSE").is_some() {
        eprintln!("{}", server.log());
    }
    remove_project_objects(&project);
}
