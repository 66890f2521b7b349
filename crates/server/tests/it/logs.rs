//! A service's runtime output through the API, from a real container: what a read answers is
//! bounded, a follower that leaves takes its task and engine connection with it, and a
//! service's followers are capped.

use std::process::Command;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use helvetia_core::container::ContainerState;
use helvetia_server::logs::LogLimits;
use http_body_util::BodyExt;
use serde_json::{Value, json};

use crate::harness::Api;

const OUTPUT: &str = "/api/v1/projects/demo/services/web/logs";
const STREAM: &str = "/api/v1/projects/demo/services/web/logs/stream";

/// The base image the end-to-end fixtures build on (`scripts/dev-setup.sh` makes it).
const IMAGE: &str = "helvetia-test/python:bookworm";

/// A container of the test's, removed when the test ends however it ends.
struct TestContainer(String);

impl Drop for TestContainer {
    fn drop(&mut self) {
        let _ = Command::new("/usr/bin/docker")
            .args(["rm", "-f", &self.0])
            .output();
    }
}

/// Project `demo`, service `web`, and a container serving it that runs `script`.
async fn serving_container(api: &Api, script: &str) -> TestContainer {
    assert_eq!(
        api.post("/api/v1/projects", json!({"name": "demo"}))
            .await
            .0,
        StatusCode::CREATED
    );
    let (status, service) = api
        .post(
            "/api/v1/projects/demo/services",
            json!({"name": "web", "repo": "https://e.org/a.git"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{service}");
    let (status, deployment) = api
        .post("/api/v1/projects/demo/services/web/deployments", json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{deployment}");
    let started = Command::new("/usr/bin/docker")
        .args(["run", "--detach", "--label", "io.helvetia.test=api-logs"])
        .args([IMAGE, "sh", "-c", script])
        .output()
        .unwrap();
    assert!(started.status.success(), "{started:?}");
    let container = TestContainer(String::from_utf8(started.stdout).unwrap().trim().to_owned());
    let record = api
        .store
        .reserve_container(
            deployment["id"].as_i64().unwrap(),
            service["id"].as_i64().unwrap(),
            "web-test",
            None,
        )
        .await
        .unwrap();
    api.store
        .record_container_engine(record.id, &container.0, None)
        .await
        .unwrap();
    api.store
        .set_container_state(record.id, ContainerState::Serving)
        .await
        .unwrap();
    container
}

/// Polls `check` until it holds; panics with what it last saw after `within`.
async fn eventually<T: std::fmt::Debug>(
    within: Duration,
    mut check: impl AsyncFnMut() -> (bool, T),
) -> T {
    let deadline = Instant::now() + within;
    loop {
        let (done, seen) = check().await;
        if done {
            return seen;
        }
        assert!(Instant::now() < deadline, "still not so: {seen:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Opens the output stream, reads until its first line arrives (so the engine connection is
/// open), and disconnects.
async fn follow_and_leave(api: &Api) {
    let response = api.open(&format!("{STREAM}?tail=1")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.unwrap().into_data()
                && String::from_utf8_lossy(&data).contains("ready")
            {
                return;
            }
        }
        panic!("the stream ended without the container's line");
    });
    read.await.unwrap();
}

/// What this process holds: alive tasks of the test's runtime, and open unix sockets (the
/// engine's connections: nothing else in this test binary uses a unix socket, while other
/// tests running beside this one open files and TCP connections of their own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd)]
struct Held {
    tasks: usize,
    unix_sockets: usize,
}

fn held() -> Held {
    let unix: std::collections::HashSet<String> = std::fs::read_to_string("/proc/net/unix")
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().nth(6).map(str::to_owned))
        .collect();
    let unix_sockets = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            let inode = target.strip_prefix("socket:[")?.strip_suffix(']')?;
            unix.contains(inode).then_some(())
        })
        .count();
    Held {
        tasks: tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks(),
        unix_sockets,
    }
}

/// One test for both, as both count what reaches the engine from this process.
#[tokio::test]
async fn a_read_is_bounded_and_followers_that_leave_hold_nothing() {
    let api = Api::new().await;
    let _container = serving_container(&api, "seq 1 12000; echo ready; exec sleep 600").await;

    // `tail=all` answers the newest lines only, within the cap.
    let lines = eventually(Duration::from_secs(20), async || {
        let (status, lines) = api.get(&format!("{OUTPUT}?tail=all")).await;
        assert_eq!(status, StatusCode::OK, "{lines}");
        let lines = lines.as_array().unwrap().clone();
        (
            lines.last().is_some_and(|l| l["line"] == "ready"),
            lines.len(),
        )
    })
    .await;
    assert_eq!(lines, 10_000);
    let (_, lines) = api.get(&format!("{OUTPUT}?tail=100000")).await;
    let lines: Vec<Value> = lines.as_array().unwrap().clone();
    assert_eq!(lines.len(), 10_000);
    assert_eq!(lines[0]["line"], "2002", "the newest lines are kept");

    // The container is quiet now: a follower that leaves is only noticed by its own end.
    follow_and_leave(&api).await;
    let baseline = held();
    for _ in 0..500 {
        follow_and_leave(&api).await;
    }
    eventually(Duration::from_secs(10), async || {
        let now = held();
        (
            now.tasks <= baseline.tasks && now.unix_sockets <= baseline.unix_sockets,
            (baseline, now),
        )
    })
    .await;
}

#[tokio::test]
async fn a_service_has_at_most_the_configured_log_followers() {
    let api = Api::with_log_limits(LogLimits {
        max_followers: 2,
        ..LogLimits::default()
    })
    .await;
    assert_eq!(
        api.post("/api/v1/projects", json!({"name": "demo"}))
            .await
            .0,
        StatusCode::CREATED
    );
    for name in ["web", "other"] {
        let (status, body) = api
            .post(
                "/api/v1/projects/demo/services",
                json!({"name": name, "repo": "https://e.org/a.git"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (_, deployment) = api
        .post("/api/v1/projects/demo/services/web/deployments", json!({}))
        .await;
    let deployment_log = format!("/api/v1/deployments/{}/logs/stream", deployment["id"]);

    let first = api.open(STREAM).await;
    assert_eq!(first.status(), StatusCode::OK);
    let second = api.open(&deployment_log).await;
    assert_eq!(second.status(), StatusCode::OK);
    for refused in [STREAM, deployment_log.as_str()] {
        let response = api.open(refused).await;
        assert_eq!(
            response.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "{refused}"
        );
        assert_eq!(response.headers()["retry-after"], "5");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "too_many_requests");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("2 followers"), "{message}");
    }
    let other = api
        .open("/api/v1/projects/demo/services/other/logs/stream")
        .await;
    assert_eq!(other.status(), StatusCode::OK, "the cap is per service");

    drop(first);
    eventually(Duration::from_secs(5), async || {
        let status = api.open(STREAM).await.status();
        (status == StatusCode::OK, status)
    })
    .await;
    drop(second);
}
