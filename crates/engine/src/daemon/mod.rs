//! A process Helvetia starts to outlive it (Traefik, the builder engine), seen from outside:
//! the pid file that records it with a hash of how it was started, whether a pid still is that
//! process (read from `/proc`, since pids are reused), signals, and stopping it.
//!
//! A Helvetia that starts adopts such a process when the pid file names a live one with its
//! marker argument and the same launch hash, and replaces it otherwise; the supervisors
//! (`traefik::supervisor`, `builder`) decide when.

use std::path::{Path, PathBuf};
use std::time::Duration;

use std::process::Stdio;

use rustix::process::{Pid, Signal};
use tokio::process::Child;
use tokio::time::Instant;

use crate::process::Program;

pub(crate) mod supervised;

/// How long to wait for a process to disappear after SIGKILL.
pub(crate) const KILL_TIMEOUT: Duration = Duration::from_secs(5);
/// How often to check a process we are waiting for.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot signal {what} (pid {pid}): {source}")]
    Signal {
        what: &'static str,
        pid: u32,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} (pid {pid}) did not exit")]
    DidNotExit { what: &'static str, pid: u32 },
    #[error("preparing {what}: {message}")]
    Prepare { what: &'static str, message: String },
    #[error("{what} did not answer within {waited:?}; see {}", output.display())]
    NotReady {
        what: &'static str,
        waited: Duration,
        output: PathBuf,
    },
    #[error("cannot start {what} ({program}): {source}")]
    Spawn {
        what: &'static str,
        program: String,
        #[source]
        source: std::io::Error,
    },
}

/// Starts `program` to outlive Helvetia, its stdout and stderr appended to `output`: not
/// killed with Helvetia's handle, and in a process group of its own so that a Ctrl-C or a
/// signal to Helvetia's group does not reach it. Returns the child and its pid.
pub(crate) fn spawn_detached(
    what: &'static str,
    program: &Program,
    output: &Path,
) -> Result<(Child, u32), DaemonError> {
    let open_error = |source| DaemonError::Io {
        action: "opening",
        path: output.to_owned(),
        source,
    };
    let stdout = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(output)
        .map_err(open_error)?;
    let stderr = stdout.try_clone().map_err(open_error)?;
    let mut command = program.command();
    command
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr))
        .kill_on_drop(false)
        .process_group(0);
    let spawn_error = |source| DaemonError::Spawn {
        what,
        program: program.name(),
        source,
    };
    let child = command.spawn().map_err(spawn_error)?;
    let pid = child
        .id()
        .ok_or_else(|| spawn_error(std::io::Error::other("it exited at once")))?;
    Ok((child, pid))
}

/// What a pid file records: which process runs, and how it was started.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct PidRecord {
    pub(crate) pid: u32,
    pub(crate) launch_hash: String,
}

impl PidRecord {
    pub(crate) fn render(&self) -> String {
        format!("{}\n{}\n", self.pid, self.launch_hash)
    }

    fn parse(text: &str) -> Option<PidRecord> {
        let mut lines = text.lines();
        let pid = lines.next()?.trim().parse().ok()?;
        let launch_hash = lines.next().unwrap_or_default().trim().to_owned();
        Some(PidRecord { pid, launch_hash })
    }
}

pub(crate) async fn read_pid_file(path: &Path) -> Result<Option<PidRecord>, DaemonError> {
    match tokio::fs::read_to_string(path).await {
        Ok(text) => Ok(PidRecord::parse(&text)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(DaemonError::Io {
            action: "reading",
            path: path.to_owned(),
            source,
        }),
    }
}

pub(crate) async fn write_pid_file(path: &Path, record: &PidRecord) -> Result<(), DaemonError> {
    let (target, contents) = (path.to_owned(), record.render());
    let io_error = |source| DaemonError::Io {
        action: "writing",
        path: path.to_owned(),
        source,
    };
    tokio::task::spawn_blocking(move || crate::write::write_atomically(&target, &contents))
        .await
        .map_err(|error| io_error(std::io::Error::other(error)))?
        .map_err(io_error)
}

pub(crate) async fn remove_pid_file(path: &Path) -> Result<(), DaemonError> {
    match tokio::fs::remove_file(path).await {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(DaemonError::Io {
            action: "removing",
            path: path.to_owned(),
            source,
        }),
    }
}

/// Whether `pid` is a live (not zombie) process with `marker` among its arguments. The command
/// line is checked because a pid from an old pid file may since have been reused by an
/// unrelated process, which must never be adopted or signalled.
pub(crate) fn is_ours(pid: u32, marker: &str) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    is_alive_state(&stat)
        && std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|cmdline| has_argument(&cmdline, marker))
}

/// Like [`is_ours`], and also true for a process still exiting: the kernel empties a process's
/// command line when it releases its memory, before it closes its files (a listening socket
/// among them) and becomes a zombie.
fn is_ours_or_exiting(pid: u32, marker: &str) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    is_alive_state(&stat)
        && std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|cmdline| cmdline.is_empty() || has_argument(&cmdline, marker))
}

/// Whether a `/proc/<pid>/stat` line shows a process that still runs; a zombie (`Z`) or dead
/// (`X`) process has exited and only waits to be reaped. The state follows the command name,
/// which is in parentheses and may itself contain spaces and parentheses.
fn is_alive_state(stat: &str) -> bool {
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    matches!(state, Some(state) if state != 'Z' && state != 'X')
}

fn has_argument(cmdline: &[u8], marker: &str) -> bool {
    cmdline
        .split(|&byte| byte == 0)
        .any(|argument| argument == marker.as_bytes())
}

pub(crate) fn signal(what: &'static str, pid: u32, signal: Signal) -> Result<(), DaemonError> {
    let Some(target) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return Ok(());
    };
    match rustix::process::kill_process(target, signal) {
        Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
        Err(errno) => Err(DaemonError::Signal {
            what,
            pid,
            source: errno.into(),
        }),
    }
}

/// Waits until `pid` is no longer ours, for at most `timeout`.
async fn wait_for_exit(pid: u32, marker: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while is_ours_or_exiting(pid, marker) {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    true
}

/// Stops `pid` if it is ours: SIGTERM so it can finish what it is doing, SIGKILL if it does
/// not exit within `stop_timeout`.
pub(crate) async fn terminate(
    what: &'static str,
    pid: u32,
    marker: &str,
    stop_timeout: Duration,
) -> Result<(), DaemonError> {
    if !is_ours(pid, marker) {
        return Ok(());
    }
    signal(what, pid, Signal::TERM)?;
    if wait_for_exit(pid, marker, stop_timeout).await {
        return Ok(());
    }
    tracing::warn!(pid, "{what} did not exit after SIGTERM; killing it");
    signal(what, pid, Signal::KILL)?;
    if wait_for_exit(pid, marker, KILL_TIMEOUT).await {
        Ok(())
    } else {
        Err(DaemonError::DidNotExit { what, pid })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_records_round_trip() {
        let record = PidRecord {
            pid: 4242,
            launch_hash: "5e1f".repeat(16),
        };
        assert_eq!(PidRecord::parse(&record.render()), Some(record));
        assert_eq!(PidRecord::parse("not a pid\n"), None);
        assert_eq!(PidRecord::parse(""), None);
    }

    #[test]
    fn zombies_do_not_count_as_running() {
        assert!(is_alive_state("42 (traefik) S 1 42 42 0 -1"));
        assert!(is_alive_state("42 (a (b) c) R 1 42 42 0 -1"));
        assert!(!is_alive_state("42 (traefik) Z 1 42 42 0 -1"));
        assert!(!is_alive_state("42 (traefik) X 1 42 42 0 -1"));
        assert!(!is_alive_state(""));
    }

    #[test]
    fn recognises_a_process_by_its_marker_argument() {
        let marker = "--configFile=/var/lib/helvetia/traefik/traefik.toml";
        let ours = b"/usr/bin/traefik\0--configFile=/var/lib/helvetia/traefik/traefik.toml\0";
        let other = b"/usr/bin/traefik\0--configFile=/etc/traefik/traefik.toml\0";
        assert!(has_argument(ours, marker));
        assert!(!has_argument(other, marker));
        assert!(!has_argument(b"", marker));
    }

    #[test]
    fn the_current_process_is_not_mistaken_for_another() {
        assert!(!is_ours(
            std::process::id(),
            "--configFile=/tmp/traefik.toml"
        ));
        assert!(!is_ours(u32::MAX, "--configFile=/tmp/traefik.toml"));
    }
}
