//! The Traefik process seen from outside: its pid file, whether a pid is the Traefik Helvetia
//! started (read from `/proc`, since pids are reused), signals, and waiting for it to exit or to
//! answer.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::process::{Pid, Signal};
use tokio::process::Child;
use tokio::time::Instant;

use super::TraefikError;
use super::api::TraefikApi;
use super::settings::{LOG_FILE, OUTPUT_FILE, TraefikSettings};
use super::write::write_atomically;

pub(super) const PID_FILE: &str = "traefik.pid";
/// How long Traefik may take to exit after SIGTERM. It lets requests in flight finish for up to
/// 10 s (its default `graceTimeOut`), so this leaves room for that.
pub(super) const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// How long to wait for a process to disappear after SIGKILL.
pub(super) const KILL_TIMEOUT: Duration = Duration::from_secs(5);
/// How often to check a process we are waiting for.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// What the pid file records: which process runs Traefik, and how it was started.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct PidRecord {
    pub(super) pid: u32,
    pub(super) launch_hash: String,
}

impl PidRecord {
    pub(super) fn render(&self) -> String {
        format!("{}\n{}\n", self.pid, self.launch_hash)
    }

    fn parse(text: &str) -> Option<PidRecord> {
        let mut lines = text.lines();
        let pid = lines.next()?.trim().parse().ok()?;
        let launch_hash = lines.next().unwrap_or_default().trim().to_owned();
        Some(PidRecord { pid, launch_hash })
    }
}

pub(super) async fn read_pid_file(state_dir: &Path) -> Result<Option<PidRecord>, TraefikError> {
    let path = state_dir.join(PID_FILE);
    match tokio::fs::read_to_string(&path).await {
        Ok(text) => Ok(PidRecord::parse(&text)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(TraefikError::Io {
            action: "reading",
            path,
            source,
        }),
    }
}

pub(super) async fn write_file(path: PathBuf, contents: String) -> Result<(), TraefikError> {
    let target = path.clone();
    tokio::task::spawn_blocking(move || write_atomically(&target, &contents))
        .await
        .map_err(|error| TraefikError::Io {
            action: "writing",
            path: path.clone(),
            source: std::io::Error::other(error),
        })?
        .map_err(|source| TraefikError::Io {
            action: "writing",
            path,
            source,
        })
}

/// Whether `pid` is a live (not zombie) Traefik started with `config_file`. The command line
/// is checked because a pid from an old pid file may since have been reused by an unrelated
/// process, which must never be adopted or signalled.
pub(super) fn is_our_traefik(pid: u32, config_file: &Path) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    if !is_alive_state(&stat) {
        return false;
    }
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|cmdline| has_config_argument(&cmdline, config_file))
}

/// Like [`is_our_traefik`], and also true for a process still exiting: the kernel empties a
/// process's command line when it releases its memory, before it closes its files (the
/// entry point's socket among them) and becomes a zombie.
fn is_our_traefik_or_exiting(pid: u32, config_file: &Path) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    is_alive_state(&stat)
        && std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|cmdline| cmdline.is_empty() || has_config_argument(&cmdline, config_file))
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

pub(super) fn config_argument(config_file: &Path) -> String {
    format!("--configFile={}", config_file.display())
}

fn has_config_argument(cmdline: &[u8], config_file: &Path) -> bool {
    let expected = config_argument(config_file);
    cmdline
        .split(|&byte| byte == 0)
        .any(|argument| argument == expected.as_bytes())
}

pub(super) fn signal(pid: u32, signal: Signal) -> Result<(), TraefikError> {
    let Some(target) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return Ok(());
    };
    match rustix::process::kill_process(target, signal) {
        Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
        Err(errno) => Err(TraefikError::Signal {
            pid,
            source: errno.into(),
        }),
    }
}

/// Waits until `pid` is no longer our Traefik, for at most `timeout`.
async fn wait_for_exit(pid: u32, config_file: &Path, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while is_our_traefik_or_exiting(pid, config_file) {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    true
}

/// Stops the Traefik `pid` if it is ours: SIGTERM so requests in flight can finish, SIGKILL if
/// it does not exit in time.
pub(super) async fn terminate(pid: u32, config_file: &Path) -> Result<(), TraefikError> {
    if !is_our_traefik(pid, config_file) {
        return Ok(());
    }
    signal(pid, Signal::TERM)?;
    if wait_for_exit(pid, config_file, STOP_TIMEOUT).await {
        return Ok(());
    }
    tracing::warn!(pid, "Traefik did not exit after SIGTERM; killing it");
    signal(pid, Signal::KILL)?;
    if wait_for_exit(pid, config_file, KILL_TIMEOUT).await {
        Ok(())
    } else {
        Err(TraefikError::DidNotExit { pid })
    }
}

/// Waits until this installation's Traefik answers its API (another one answering on the same
/// port does not count), for at most `timeout`; gives up early if `child` exits, with what it
/// wrote since `mark` about why.
pub(super) async fn wait_until_ready(
    api: &TraefikApi,
    mut child: Option<&mut Child>,
    timeout: Duration,
    settings: &TraefikSettings,
    mark: &LogMark,
) -> Result<(), TraefikError> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(child) = child.as_deref_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            return Err(TraefikError::ExitedDuringStart {
                status,
                reason: mark
                    .last_error(settings)
                    .unwrap_or_else(|| "it logged no error".into()),
                output: settings.state_dir.join(OUTPUT_FILE),
                log: settings.state_dir.join(LOG_FILE),
            });
        }
        if api.is_ours().await {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(TraefikError::NotReady {
                waited: timeout,
                log: settings.state_dir.join(LOG_FILE),
            });
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Where Traefik's log and output ended before a start, to read what that start wrote.
pub(super) struct LogMark {
    log: u64,
    output: u64,
}

impl LogMark {
    pub(super) fn now(settings: &TraefikSettings) -> LogMark {
        let length = |name| {
            std::fs::metadata(settings.state_dir.join(name)).map_or(0, |metadata| metadata.len())
        };
        LogMark {
            log: length(LOG_FILE),
            output: length(OUTPUT_FILE),
        }
    }

    /// Traefik's own words on why it stopped: the last error in its log since the mark, else
    /// the last line it printed (before its log was set up).
    pub(super) fn last_error(&self, settings: &TraefikSettings) -> Option<String> {
        let since = |name, offset| {
            let text = std::fs::read(settings.state_dir.join(name)).unwrap_or_default();
            let start = usize::try_from(offset)
                .unwrap_or(usize::MAX)
                .min(text.len());
            String::from_utf8_lossy(&text[start..]).into_owned()
        };
        let log = since(LOG_FILE, self.log);
        let output = since(OUTPUT_FILE, self.output);
        log.lines()
            .rev()
            .find_map(logged_error)
            .or_else(|| output.lines().rev().find(|line| !line.trim().is_empty()))
            .map(|line| line.trim().to_owned())
    }
}

/// The message of a line of Traefik's log at level error or fatal: its `error="…"` field when
/// it has one, else the whole line after the level.
fn logged_error(line: &str) -> Option<&str> {
    let (_, message) = line
        .split_once(" ERR ")
        .or_else(|| line.split_once(" FTL "))?;
    Some(
        message
            .split_once("error=\"")
            .and_then(|(_, error)| error.rsplit_once('"'))
            .map_or(message, |(error, _)| error),
    )
}

pub(super) async fn remove_pid_file(state_dir: &Path) -> Result<(), TraefikError> {
    let path = state_dir.join(PID_FILE);
    match tokio::fs::remove_file(&path).await {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(TraefikError::Io {
            action: "removing",
            path,
            source,
        }),
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
    fn reads_traefiks_own_start_error_from_its_log() {
        let line = "2026-11-28T09:38:50Z ERR Command error error=\"command traefik error: \
            error while building entryPoint web: building listener: error opening listener: \
            listen tcp 127.0.0.1:18765: bind: address already in use\"";
        assert_eq!(
            logged_error(line),
            Some(
                "command traefik error: error while building entryPoint web: building \
                 listener: error opening listener: listen tcp 127.0.0.1:18765: bind: address \
                 already in use"
            )
        );
        assert_eq!(
            logged_error("2026-11-28T09:38:50Z FTL the configuration is invalid"),
            Some("the configuration is invalid")
        );
        assert_eq!(
            logged_error("2026-11-28T09:38:50Z INF Traefik version 3.7.15"),
            None
        );
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
    fn recognises_traefik_by_its_configuration_argument() {
        let config = Path::new("/var/lib/helvetia/traefik/traefik.toml");
        let ours = b"/usr/bin/traefik\0--configFile=/var/lib/helvetia/traefik/traefik.toml\0";
        let other = b"/usr/bin/traefik\0--configFile=/etc/traefik/traefik.toml\0";
        assert!(has_config_argument(ours, config));
        assert!(!has_config_argument(other, config));
        assert!(!has_config_argument(b"", config));
    }

    #[test]
    fn the_current_process_is_not_mistaken_for_traefik() {
        assert!(!is_our_traefik(
            std::process::id(),
            Path::new("/tmp/traefik.toml")
        ));
        assert!(!is_our_traefik(u32::MAX, Path::new("/tmp/traefik.toml")));
    }
}
