//! Fault targets a test may break without breaking other tests: a Docker engine of its own
//! ([`SecondEngine`], in a network namespace) and a PostgreSQL cluster of its own
//! ([`PgCluster`]); tmpfs mounts to fill ([`Tmpfs`]) and a proxy that cuts the engine's event
//! stream ([`DockerProxy`]). Read `engine.rs` for what the engine harness sets up and what
//! reaches what.
//!
//! They need root (network namespaces, `pg_createcluster`, `mount`), as the whole end-to-end
//! suite does.
//! Each harness holds an exclusive `flock` on a lock file under [`LOCK_DIR`] for its lifetime;
//! the kernel drops it when the process dies however it dies. So a harness whose lock can be
//! taken belongs to a crashed earlier run, and is removed before anything new is made: no
//! leftover survives the next run, and a test process never removes another live process's
//! target.

mod docker_proxy;
mod engine;
mod postgres;
mod tmpfs;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use docker_proxy::DockerProxy;
pub use engine::{EngineOptions, RestartTimes, SecondEngine, engine_leftovers};
pub use postgres::{PgCluster, cluster_exists};
pub use tmpfs::Tmpfs;

/// Lock files (and the engines' state) of the fault targets on this machine.
pub const LOCK_DIR: &str = "/tmp/helvetia-fault-targets";

/// Removes the engines and clusters that crashed runs left behind (no live process holds
/// their lock). Every harness does this before its first target in a process.
pub fn remove_stale() {
    engine::remove_stale();
    postgres::remove_stale();
    tmpfs::remove_stale();
}

fn remove_stale_once() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(remove_stale);
}

/// An exclusive claim on one name, held until dropped (or the process dies).
struct Claim {
    _file: File,
}

impl Claim {
    /// Claims `name`, or `None` when a live process holds it.
    fn try_take(name: &str) -> Option<Claim> {
        std::fs::create_dir_all(LOCK_DIR).unwrap();
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(lock_path(name))
            .unwrap();
        match file.try_lock() {
            Ok(()) => Some(Claim { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => None,
            Err(std::fs::TryLockError::Error(e)) => panic!("locking {name}: {e}"),
        }
    }
}

fn lock_path(name: &str) -> PathBuf {
    Path::new(LOCK_DIR).join(format!("{name}.lock"))
}

/// Runs `program args…`, panicking with its stderr when it fails; returns its stdout.
fn run(program: &str, args: &[&str]) -> String {
    let output = output(program, args);
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs `program args…` for its outcome: clean-ups try steps that may have nothing to do.
fn output(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

/// A tiny web server image on the host's engine (`busybox httpd` on port 8080 serving
/// "hello"), made without a build, to copy into a [`SecondEngine`] with `load_image`.
pub fn busybox_httpd_image() -> &'static str {
    const TAG: &str = "helvetia-test/busybox:httpd";
    static IMPORTED: std::sync::Once = std::sync::Once::new();
    IMPORTED.call_once(|| {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("bin")).unwrap();
        std::fs::create_dir_all(root.path().join("www")).unwrap();
        std::fs::copy("/bin/busybox", root.path().join("bin/busybox")).unwrap();
        std::fs::write(root.path().join("www/index.html"), "hello\n").unwrap();
        let archive = root.path().join("image.tar");
        let archive = archive.to_str().unwrap();
        run(
            "tar",
            &[
                "-C",
                root.path().to_str().unwrap(),
                "-cf",
                archive,
                "bin",
                "www",
            ],
        );
        run(
            "/usr/bin/docker",
            &[
                "import",
                "--change",
                r#"CMD ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]"#,
                archive,
                TAG,
            ],
        );
    });
    TAG
}
