//! Named failpoints: places in the deploy pipeline, the reconciler and recovery where a test
//! holds the server (to let a race happen on purpose) or kills it (as `kill -9` would).
//!
//! Inert unless the server process runs with [`DIR_ENV`] set, which only tests do: then each
//! point, when reached, reads the file named after it in that directory. No file (or one
//! saying anything else): the server goes on. `pause`: the server creates `<name>.paused`
//! and waits until the file is removed or changed (a test may turn a pause into a kill),
//! then removes `<name>.paused` as it goes on.
//! `kill`: the process sends itself SIGKILL. A test arms and releases points at run time, so
//! the same point can stay inert during start-up and pause a later pass.
//!
//! To add a point: a [`Failpoint`] variant with its name, and `failpoint::reached(…)` where
//! it belongs. `helvetia-test-support` drives points by these names.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// The environment variable naming the directory of armed failpoints.
pub const DIR_ENV: &str = "HELVETIA_FAILPOINTS_DIR";

/// How often a paused point looks whether it was released.
const POLL: Duration = Duration::from_millis(10);

/// Every place a test can hold or kill the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failpoint {
    /// A deployment has its image (built or reused), before anything starts.
    AfterBuild,
    /// The new containers run and the deployment is health checking; no probe has passed yet.
    HealthCheck,
    /// The switch holds the routing lock with the new table; it is neither written nor
    /// confirmed yet.
    BeforeConfirm,
    /// The edge router confirmed the new routes; the deployment is not recorded live yet.
    AfterConfirm,
    /// The deployment is live; the previous containers have not been drained yet.
    Drain,
    /// The reconciler published the routes and is about to remove containers nobody wants.
    ReconcileCleanup,
    /// A reclaimed deploy job is about to recover its interrupted deployment.
    Recovery,
}

impl Failpoint {
    pub fn name(self) -> &'static str {
        match self {
            Failpoint::AfterBuild => "deploy-after-build",
            Failpoint::HealthCheck => "deploy-health-check",
            Failpoint::BeforeConfirm => "deploy-before-confirm",
            Failpoint::AfterConfirm => "deploy-after-confirm",
            Failpoint::Drain => "deploy-drain",
            Failpoint::ReconcileCleanup => "reconcile-cleanup",
            Failpoint::Recovery => "deploy-recovery",
        }
    }
}

/// What a test asked a point to do.
#[derive(Debug, PartialEq, Eq)]
enum Action {
    Go,
    Pause,
    Kill,
}

/// Called where `point` is; returns at once unless a test armed it.
pub async fn reached(point: Failpoint) {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    let Some(dir) = DIR.get_or_init(|| std::env::var_os(DIR_ENV).map(PathBuf::from)) else {
        return;
    };
    let paused = dir.join(format!("{}.paused", point.name()));
    let mut announced = false;
    loop {
        match armed(dir, point).await {
            Action::Go => break,
            Action::Kill => {
                tracing::warn!(
                    failpoint = point.name(),
                    "killing the server at a failpoint"
                );
                kill_self();
            }
            Action::Pause if !announced => {
                tracing::warn!(failpoint = point.name(), "paused at a failpoint");
                if let Err(error) = tokio::fs::write(&paused, b"").await {
                    tracing::error!(%error, "announcing a paused failpoint failed");
                }
                announced = true;
            }
            Action::Pause => {}
        }
        tokio::time::sleep(POLL).await;
    }
    // Tells the test that the server went on past the point.
    if announced && let Err(error) = tokio::fs::remove_file(&paused).await {
        tracing::error!(%error, "announcing a released failpoint failed");
    }
}

async fn armed(dir: &Path, point: Failpoint) -> Action {
    match tokio::fs::read_to_string(dir.join(point.name())).await {
        Ok(action) => match action.trim() {
            "pause" => Action::Pause,
            "kill" => Action::Kill,
            _ => Action::Go,
        },
        Err(_) => Action::Go,
    }
}

/// Ends the process the way `kill -9` does: no destructor, no flush, no graceful shutdown.
fn kill_self() -> ! {
    let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
    // SIGKILL cannot be caught; should sending it fail, aborting is the closest.
    std::process::abort()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_a_file_naming_an_action_arms_a_point() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(armed(dir.path(), Failpoint::Drain).await, Action::Go);
        std::fs::write(dir.path().join("deploy-drain"), "pause\n").unwrap();
        assert_eq!(armed(dir.path(), Failpoint::Drain).await, Action::Pause);
        assert_eq!(armed(dir.path(), Failpoint::Recovery).await, Action::Go);
        std::fs::write(dir.path().join("deploy-drain"), "kill").unwrap();
        assert_eq!(armed(dir.path(), Failpoint::Drain).await, Action::Kill);
        std::fs::write(dir.path().join("deploy-drain"), "later").unwrap();
        assert_eq!(armed(dir.path(), Failpoint::Drain).await, Action::Go);
    }
}
