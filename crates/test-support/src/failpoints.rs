//! Driving the server's failpoints (`helvetia_server::failpoint`): every test server runs with
//! a failpoint directory, where a test arms a point by writing its action (`pause`, `kill`)
//! into a file named after it, sees the server held there by `<name>.paused`, and releases it
//! by removing the file.

use std::path::PathBuf;
use std::time::Duration;

use crate::{TestServer, eventually};

/// What `HELVETIA_FAILPOINTS_DIR` (`helvetia_server::failpoint::DIR_ENV`) is called.
pub(crate) const DIR_ENV: &str = "HELVETIA_FAILPOINTS_DIR";

/// How long a test waits for the server to reach or leave a failpoint.
const WAIT: Duration = Duration::from_secs(60);

impl TestServer {
    /// The directory the server reads its armed failpoints from.
    pub(crate) fn failpoints_dir(&self) -> PathBuf {
        self.dir.path().join("failpoints")
    }

    /// Makes the server `pause` or `kill` itself the next time it reaches `point`.
    pub fn arm(&self, point: &str, action: &str) {
        let dir = self.failpoints_dir();
        let temporary = dir.join(format!(".{point}.tmp"));
        std::fs::write(&temporary, action).unwrap();
        std::fs::rename(temporary, dir.join(point)).unwrap();
    }

    /// Waits until the server is held at `point`.
    pub async fn wait_paused(&self, point: &str) {
        let paused = self.failpoints_dir().join(format!("{point}.paused"));
        eventually(WAIT, &format!("the server to pause at {point}"), || {
            let exists = paused.exists();
            async move { exists.then_some(()) }
        })
        .await;
    }

    /// Disarms `point`; if the server is held there, waits until it went on.
    pub async fn release(&self, point: &str) {
        let dir = self.failpoints_dir();
        std::fs::remove_file(dir.join(point)).unwrap();
        let paused = dir.join(format!("{point}.paused"));
        eventually(WAIT, &format!("the server to go on past {point}"), || {
            let gone = !paused.exists();
            async move { gone.then_some(()) }
        })
        .await;
    }

    /// Waits until the server process has exited (killed at a failpoint).
    pub async fn wait_exited(&mut self) {
        let mut process = self.process.take().expect("server running");
        eventually(WAIT, "the server to exit", || {
            let exited = process.try_wait().unwrap().is_some();
            async move { exited.then_some(()) }
        })
        .await;
    }
}
