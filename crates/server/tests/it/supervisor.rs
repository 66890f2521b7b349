//! Supervised background tasks: a task that fails is restarted, counted in `/metrics` and
//! reported by `/healthz` while it is down; shutdown waits for every task.
//!
//! Task names are unique per test: the restart counters live in the process-wide recorder.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use helvetia_server::supervisor::{Backoff, Supervisor, TASK_RESTARTS};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::harness::Api;

/// A task's restart count as `/metrics` shows it.
async fn restarts(api: &Api, task: &str) -> u64 {
    let (status, text) = api.get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let series = format!("{TASK_RESTARTS}{{task=\"{task}\"}} ");
    let text = text.as_str().unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(&series))
        .unwrap_or_else(|| panic!("no {series} in {text}"))
        .parse()
        .unwrap()
}

async fn health(api: &Api) -> (StatusCode, Value) {
    api.call(Method::GET, "/healthz", None, None).await
}

fn pause(pause: Duration) -> Backoff {
    Backoff {
        first: pause,
        max: pause,
        healthy_after: Duration::from_secs(3600),
    }
}

#[tokio::test]
async fn a_task_that_panics_is_restarted_and_counted_and_shutdown_waits_for_it() {
    let shutdown = CancellationToken::new();
    let mut tasks = Supervisor::with_backoff(shutdown.clone(), pause(Duration::from_millis(1)));
    let api = Api::with_tasks(tasks.health()).await;
    let (restarted, was_restarted) = oneshot::channel();
    let (stopped, has_stopped) = oneshot::channel();
    let mut signals = Some((restarted, stopped));
    let mut runs = 0;
    tasks.spawn("panics-once", move |stop| {
        runs += 1;
        let signals = if runs == 1 { None } else { signals.take() };
        async move {
            let Some((restarted, stopped)) = signals else {
                panic!("the first run fails");
            };
            restarted.send(()).unwrap();
            stop.cancelled().await;
            stopped.send(()).unwrap();
        }
    });

    was_restarted.await.unwrap();
    assert_eq!(restarts(&api, "panics-once").await, 1);
    let (status, body) = health(&api).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ok");
    assert!(body.get("tasks_down").is_none(), "{body}");

    shutdown.cancel();
    tasks.join().await;
    assert_eq!(has_stopped.await, Ok(()), "join returned before the task");
}

#[tokio::test]
async fn healthz_reports_a_task_down_while_it_waits_to_be_restarted() {
    let shutdown = CancellationToken::new();
    // The pause outlasts the test: shutdown must cut it short.
    let mut tasks = Supervisor::with_backoff(shutdown.clone(), pause(Duration::from_secs(3600)));
    let api = Api::with_tasks(tasks.health()).await;
    let (fail, failing) = oneshot::channel::<()>();
    let mut failing = Some(failing);
    tasks.spawn("fails-on-demand", move |stop| {
        let failing = failing.take();
        async move {
            match failing {
                Some(failing) => {
                    failing.await.unwrap();
                    panic!("told to fail");
                }
                None => stop.cancelled().await,
            }
        }
    });

    let (status, body) = health(&api).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(restarts(&api, "fails-on-demand").await, 0);

    let mut down = tasks.health().subscribe();
    fail.send(()).unwrap();
    down.wait_for(|down| down.contains("fails-on-demand"))
        .await
        .unwrap();
    let (status, body) = health(&api).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["database"], "sqlite");
    assert_eq!(body["tasks_down"], json!(["fails-on-demand"]));
    assert_eq!(restarts(&api, "fails-on-demand").await, 1);

    shutdown.cancel();
    tasks.join().await;
}
