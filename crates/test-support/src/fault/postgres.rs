//! A PostgreSQL cluster of a test's own (Debian's `pg_createcluster`, on a free port), to stop,
//! kill and restart while a Helvetia server uses it, without disturbing the server every other
//! test's database lives on. Creating one takes a few seconds (`initdb --no-sync`); dropping
//! one, about one.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::{Claim, lock_path, output, run};

/// Cluster names start with this; a cluster so named whose lock is free is a leftover.
const PREFIX: &str = "hvtpg_";

/// A running PostgreSQL cluster with a `helvetia` role owning a `helvetia` database; dropped
/// (stopped and deleted) when this is dropped.
pub struct PgCluster {
    version: String,
    name: String,
    port: u16,
    _claim: Claim,
}

impl PgCluster {
    /// Creates and starts a cluster, after dropping what crashed runs left behind.
    pub fn create() -> PgCluster {
        super::remove_stale_once();
        let name = crate::unique(PREFIX);
        let claim = Claim::try_take(&name).expect("a fresh cluster name");
        let cluster = PgCluster {
            version: newest_version(),
            name,
            port: crate::free_port(),
            _claim: claim,
        };
        run(
            "pg_createcluster",
            &[
                &cluster.version,
                &cluster.name,
                "--port",
                &cluster.port.to_string(),
                "--start",
                "--",
                "--no-sync",
            ],
        );
        cluster.psql("CREATE ROLE helvetia LOGIN PASSWORD 'helvetia'");
        cluster.psql("CREATE DATABASE helvetia OWNER helvetia");
        cluster
    }

    /// The `helvetia` database, for `helvetia server --database-url`.
    pub fn url(&self) -> String {
        format!(
            "postgres://helvetia:helvetia@127.0.0.1:{}/helvetia",
            self.port
        )
    }

    /// Shuts the cluster down (fast mode: clients are disconnected).
    pub fn stop(&self) {
        self.ctl("stop");
    }

    pub fn start(&self) {
        self.ctl("start");
    }

    /// Stops the cluster and starts it again; returns how long that took.
    pub fn restart(&self) -> Duration {
        let begin = Instant::now();
        self.ctl("restart");
        begin.elapsed()
    }

    /// SIGKILL to the postmaster: its next start recovers from the write-ahead log.
    pub fn kill(&self) {
        let pid_file = self.data_dir().join("postmaster.pid");
        let text = std::fs::read_to_string(&pid_file).unwrap();
        let pid = text.lines().next().expect("a pid in postmaster.pid");
        run("kill", &["-KILL", pid]);
        // The postmaster's children exit once they notice; the port is free after that.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::path::Path::new("/proc").join(pid).exists() {
            assert!(Instant::now() < deadline, "the postmaster outlived SIGKILL");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn data_dir(&self) -> PathBuf {
        PathBuf::from(format!(
            "/var/lib/postgresql/{}/{}",
            self.version, self.name
        ))
    }

    fn ctl(&self, action: &str) {
        run("pg_ctlcluster", &[&self.version, &self.name, action]);
    }

    fn psql(&self, statement: &str) {
        run(
            "runuser",
            &[
                "-u",
                "postgres",
                "--",
                "psql",
                "--quiet",
                "--no-psqlrc",
                "--port",
                &self.port.to_string(),
                "--command",
                statement,
            ],
        );
    }

    /// The cluster's name, for [`cluster_exists`] once it is dropped.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        drop_cluster(&self.version, &self.name);
    }
}

/// Whether a cluster named `name` exists (of any version).
pub fn cluster_exists(name: &str) -> bool {
    clusters().iter().any(|(_, cluster)| cluster == name)
}

/// (version, name) of every cluster on this machine.
fn clusters() -> Vec<(String, String)> {
    run("pg_lsclusters", &["--no-header"])
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            Some((fields.next()?.to_owned(), fields.next()?.to_owned()))
        })
        .collect()
}

fn drop_cluster(version: &str, name: &str) {
    let dropped = output("pg_dropcluster", &[version, name, "--stop"]);
    assert!(
        dropped.status.success() || std::thread::panicking(),
        "pg_dropcluster {name}: {}",
        String::from_utf8_lossy(&dropped.stderr)
    );
    // Still locked by the caller, so no one else can be using this name.
    let _ = std::fs::remove_file(lock_path(name));
}

/// Drops the clusters of crashed earlier runs: named so, and no live process holds their lock.
pub(super) fn remove_stale() {
    for (version, name) in clusters() {
        if name.starts_with(PREFIX)
            && let Some(_claim) = Claim::try_take(&name)
        {
            drop_cluster(&version, &name);
        }
    }
}

/// The newest PostgreSQL installed (`/usr/lib/postgresql/<version>`).
fn newest_version() -> String {
    std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (scripts/dev-setup.sh)")
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .max()
        .expect("a PostgreSQL version in /usr/lib/postgresql")
        .to_string()
}
