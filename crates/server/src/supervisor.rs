//! Supervision of the server's long-running background tasks.
//!
//! Every task that runs for the life of the server (the worker's queue runner, the monitor, the
//! metrics collector and roll-up, the log retention, the reconciler, the tokenless exposition
//! and the Traefik watcher) is started through [`Supervisor::spawn`], so none can stop silently
//! while the server looks healthy. A task that panics, or returns before shutdown, is logged,
//! counted in `helvetia_task_restarts_total{task}`, reported as down by `/healthz` (through
//! [`TaskHealth`]) and started again after a pause ([`Backoff`]). After shutdown,
//! [`Supervisor::join`] waits until every task has returned.

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

/// Counts, per task, the times it failed and was scheduled to start again.
pub const TASK_RESTARTS: &str = "helvetia_task_restarts_total";

/// How long a failed task waits before it starts again: `first`, doubling after each failure up
/// to `max`, and `first` again once a run lasted `healthy_after` (a task failing at once, e.g.
/// on a database that is down, would otherwise restart in a tight loop).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
    pub healthy_after: Duration,
}

impl Backoff {
    pub const DEFAULT: Backoff = Backoff {
        first: Duration::from_millis(100),
        max: Duration::from_secs(30),
        healthy_after: Duration::from_secs(30),
    };

    /// The pause after a run that lasted `ran`, given the pause before that run (`None` for the
    /// first failure).
    fn next(&self, previous: Option<Duration>, ran: Duration) -> Duration {
        match previous {
            Some(previous) if ran < self.healthy_after => (previous * 2).min(self.max),
            Some(_) | None => self.first,
        }
    }
}

/// Which supervised tasks are down (failed, waiting to start again). Cheap to clone; every
/// clone sees the same tasks.
#[derive(Clone)]
pub struct TaskHealth {
    down: watch::Sender<BTreeSet<&'static str>>,
}

impl Default for TaskHealth {
    fn default() -> Self {
        TaskHealth {
            down: watch::Sender::new(BTreeSet::new()),
        }
    }
}

impl TaskHealth {
    /// The names of the tasks that are down now, in name order.
    pub fn down(&self) -> Vec<&'static str> {
        self.down.borrow().iter().copied().collect()
    }

    /// Follows the set of down tasks, to wait for a change.
    pub fn subscribe(&self) -> watch::Receiver<BTreeSet<&'static str>> {
        self.down.subscribe()
    }

    fn set_down(&self, task: &'static str, down: bool) {
        self.down.send_if_modified(|tasks| {
            if down {
                tasks.insert(task)
            } else {
                tasks.remove(task)
            }
        });
    }
}

/// Runs tasks until shutdown, restarting those that fail.
pub struct Supervisor {
    shutdown: CancellationToken,
    backoff: Backoff,
    health: TaskHealth,
    tasks: JoinSet<()>,
}

impl Supervisor {
    pub fn new(shutdown: CancellationToken) -> Supervisor {
        Supervisor::with_backoff(shutdown, Backoff::DEFAULT)
    }

    pub fn with_backoff(shutdown: CancellationToken, backoff: Backoff) -> Supervisor {
        // Installs the recorder before the first restart count is registered.
        crate::metrics::exporter();
        Supervisor {
            shutdown,
            backoff,
            health: TaskHealth::default(),
            tasks: JoinSet::new(),
        }
    }

    /// What `/healthz` reads.
    pub fn health(&self) -> TaskHealth {
        self.health.clone()
    }

    /// Runs `task` until shutdown: `task(shutdown)` makes one run, which must return only once
    /// `shutdown` is cancelled. A run that panics or returns earlier is replaced by a new one
    /// after the back-off.
    pub fn spawn<F, Run>(&mut self, name: &'static str, mut task: F)
    where
        F: FnMut(CancellationToken) -> Run + Send + 'static,
        Run: Future<Output = ()> + Send + 'static,
    {
        let restarts = metrics::counter!(TASK_RESTARTS, "task" => name);
        // Registered at zero, so the series exists before the first restart.
        restarts.increment(0);
        let shutdown = self.shutdown.clone();
        let health = self.health.clone();
        let backoff = self.backoff;
        self.tasks.spawn(async move {
            let mut pause = None;
            loop {
                let started = Instant::now();
                // A task of its own, so a panic ends this run only; aborted with the supervisor.
                let ended = AbortOnDropHandle::new(tokio::spawn(task(shutdown.clone()))).await;
                if shutdown.is_cancelled() {
                    if let Err(error) = ended {
                        tracing::error!(task = name, %error, "a task failed while shutting down");
                    }
                    return;
                }
                match ended {
                    Ok(()) => tracing::error!(task = name, "a task ended unexpectedly"),
                    Err(error) => tracing::error!(task = name, %error, "a task failed"),
                }
                let next = backoff.next(pause, started.elapsed());
                pause = Some(next);
                health.set_down(name, true);
                restarts.increment(1);
                tracing::info!(task = name, pause = ?next, "restarting the task after a pause");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(next) => {}
                }
                health.set_down(name, false);
            }
        });
    }

    /// Waits until every task has returned; call it once shutdown is cancelled.
    pub async fn join(mut self) {
        while let Some(ended) = self.tasks.join_next().await {
            if let Err(error) = ended {
                tracing::error!(%error, "supervising a task failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pause_doubles_up_to_the_maximum_and_starts_over_after_a_healthy_run() {
        let backoff = Backoff::DEFAULT;
        let quick = Duration::from_millis(10);
        let mut pause = None;
        let mut pauses = vec![];
        for _ in 0..11 {
            let next = backoff.next(pause, quick);
            pauses.push(next.as_millis());
            pause = Some(next);
        }
        assert_eq!(
            pauses,
            [
                100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000
            ]
        );
        assert_eq!(
            backoff.next(pause, backoff.healthy_after),
            Duration::from_millis(100)
        );
    }

    #[test]
    fn health_lists_the_tasks_that_are_down() {
        let health = TaskHealth::default();
        assert!(health.down().is_empty());
        health.set_down("rollup", true);
        health.set_down("monitor", true);
        health.set_down("rollup", true);
        assert_eq!(health.down(), ["monitor", "rollup"]);
        health.set_down("monitor", false);
        assert_eq!(health.clone().down(), ["rollup"]);
    }
}
