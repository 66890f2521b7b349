//! The Traefik process seen from outside: `crate::daemon`'s pid file and signals with Traefik's
//! marker (its configuration argument), and waiting for it to answer.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::process::Signal;
use tokio::process::Child;
use tokio::time::Instant;

use super::TraefikError;
use super::api::TraefikApi;
use super::settings::{LOG_FILE, OUTPUT_FILE, TraefikSettings};
use crate::daemon;
pub(super) use crate::daemon::{KILL_TIMEOUT, PidRecord};
use crate::write::write_atomically;

pub(super) const PID_FILE: &str = "traefik.pid";
/// How long Traefik may take to exit after SIGTERM. It lets requests in flight finish for up to
/// 10 s (its default `graceTimeOut`), so this leaves room for that.
pub(super) const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// How often to check a Traefik we are waiting for.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
const WHAT: &str = "Traefik";

pub(super) async fn read_pid_file(state_dir: &Path) -> Result<Option<PidRecord>, TraefikError> {
    Ok(daemon::read_pid_file(&state_dir.join(PID_FILE)).await?)
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

/// Whether `pid` is a live (not zombie) Traefik started with `config_file`.
pub(super) fn is_our_traefik(pid: u32, config_file: &Path) -> bool {
    daemon::is_ours(pid, &config_argument(config_file))
}

pub(super) fn config_argument(config_file: &Path) -> String {
    format!("--configFile={}", config_file.display())
}

pub(super) fn signal(pid: u32, signal: Signal) -> Result<(), TraefikError> {
    Ok(daemon::signal(WHAT, pid, signal)?)
}

/// Stops the Traefik `pid` if it is ours: SIGTERM so requests in flight can finish, SIGKILL if
/// it does not exit in time.
pub(super) async fn terminate(pid: u32, config_file: &Path) -> Result<(), TraefikError> {
    Ok(daemon::terminate(WHAT, pid, &config_argument(config_file), STOP_TIMEOUT).await?)
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
    Ok(daemon::remove_pid_file(&state_dir.join(PID_FILE)).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
