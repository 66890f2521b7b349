//! A daemon Helvetia keeps running across its own restarts (the builder engine, the registry),
//! described by a [`Daemon`]: adopted when its pid file names a live process with its marker
//! and launch hash that answers, replaced otherwise ([`Supervised::start_or_adopt`]); started
//! again when it dies ([`Supervised::watch`]); left running when Helvetia stops. Traefik has a
//! supervisor of its own (its ports are held across a replacement), on the same pid file.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use tokio::process::Child;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{DaemonError, PidRecord};
use crate::process::Program;

const WATCH_INTERVAL: Duration = Duration::from_secs(1);
const MAX_RESTART_BACKOFF: Duration = Duration::from_secs(60);
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// How a daemon is started and recognised.
pub(crate) trait Daemon: Send + Sync {
    /// What it is, for messages ("the builder engine").
    fn what(&self) -> &'static str;
    /// An argument only this installation's daemon has (a path under its state directory).
    fn marker(&self) -> String;
    fn pid_file(&self) -> PathBuf;
    /// Where its stdout and stderr go.
    fn output(&self) -> PathBuf;
    fn program(&self) -> Program;
    /// A hash of everything about how it is started.
    fn launch_hash(&self) -> String;
    /// Prepares what it needs before each start (directories, configuration, a bridge).
    fn prepare(&self) -> impl Future<Output = Result<(), String>> + Send;
    /// Whether it answers now.
    fn answers(&self) -> impl Future<Output = bool> + Send;
    /// How long a fresh start may take to answer.
    fn start_timeout(&self) -> Duration;
    /// How long it may take to exit after SIGTERM.
    fn stop_timeout(&self) -> Duration;
}

/// How long a daemon found running may take to answer before it is replaced.
const ADOPT_TIMEOUT: Duration = Duration::from_secs(5);

enum Process {
    /// Started by this Helvetia: kept as a child so it is reaped when it exits.
    Spawned { child: Child, pid: u32 },
    /// Started by an earlier Helvetia; watched through `/proc`.
    Adopted { pid: u32 },
    /// A start failed; the watch tries again.
    Gone,
}

/// A [`Daemon`] looked after.
pub(crate) struct Supervised<D> {
    daemon: D,
    process: Process,
}

impl<D: Daemon> Supervised<D> {
    /// Adopts the daemon found running as `daemon` would start it, else stops it (if any) and
    /// starts it.
    pub(crate) async fn start_or_adopt(daemon: D) -> Result<Supervised<D>, DaemonError> {
        let mut supervised = Supervised {
            daemon,
            process: Process::Gone,
        };
        let daemon = &supervised.daemon;
        let (what, marker) = (daemon.what(), daemon.marker());
        if let Some(record) = super::read_pid_file(&daemon.pid_file()).await?
            && super::is_ours(record.pid, &marker)
        {
            let pid = record.pid;
            if record.launch_hash != daemon.launch_hash() {
                tracing::info!(pid, "how {what} is started has changed; replacing it");
            } else if answers_within(daemon, ADOPT_TIMEOUT, None).await {
                tracing::info!(pid, "adopted {what}, pid {pid}");
                supervised.process = Process::Adopted { pid };
                return Ok(supervised);
            } else {
                tracing::warn!(pid, "{what} does not answer; replacing it");
            }
            super::terminate(what, pid, &marker, daemon.stop_timeout()).await?;
        }
        supervised.spawn().await?;
        Ok(supervised)
    }

    pub(crate) fn daemon(&self) -> &D {
        &self.daemon
    }

    /// The daemon's pid, unless a start failed.
    pub(crate) fn pid(&self) -> Option<u32> {
        match self.process {
            Process::Spawned { pid, .. } | Process::Adopted { pid } => Some(pid),
            Process::Gone => None,
        }
    }

    /// Starts the daemon again whenever it is found dead, until `shutdown`; leaves it running
    /// then, for the next Helvetia to adopt.
    pub(crate) async fn watch(&mut self, shutdown: CancellationToken) {
        let what = self.daemon.what();
        let mut backoff = WATCH_INTERVAL;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(WATCH_INTERVAL) => {}
            }
            if self.is_running() {
                backoff = WATCH_INTERVAL;
                continue;
            }
            tracing::warn!("{what} is not running; starting it again");
            tokio::select! {
                () = shutdown.cancelled() => break,
                started = self.spawn() => match started {
                    Ok(()) => tracing::info!(pid = self.pid(), "started {what} again"),
                    Err(error) => {
                        tracing::error!(%error, "starting {what} again failed");
                        tokio::select! {
                            () = shutdown.cancelled() => break,
                            () = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(MAX_RESTART_BACKOFF);
                    }
                },
            }
        }
        tracing::info!(
            pid = self.pid(),
            "no longer watching {what}; it keeps running"
        );
    }

    fn is_running(&mut self) -> bool {
        match &mut self.process {
            Process::Spawned { child, .. } => matches!(child.try_wait(), Ok(None)),
            Process::Adopted { pid } => super::is_ours(*pid, &self.daemon.marker()),
            Process::Gone => false,
        }
    }

    /// Prepares and starts the daemon, records it, and waits until it answers; one that does
    /// not answer in time is killed.
    async fn spawn(&mut self) -> Result<(), DaemonError> {
        self.process = Process::Gone;
        let daemon = &self.daemon;
        let what = daemon.what();
        daemon
            .prepare()
            .await
            .map_err(|message| DaemonError::Prepare { what, message })?;
        let output = daemon.output();
        let (mut child, pid) = super::spawn_detached(what, &daemon.program(), &output)?;
        let record = PidRecord {
            pid,
            launch_hash: daemon.launch_hash(),
        };
        let timeout = daemon.start_timeout();
        let ready = match super::write_pid_file(&daemon.pid_file(), &record).await {
            Ok(()) => answers_within(daemon, timeout, Some(&mut child)).await,
            Err(error) => {
                tracing::error!(%error, "recording {what} failed");
                false
            }
        };
        if !ready {
            if child.start_kill().is_ok() {
                let _reaped = tokio::time::timeout(super::KILL_TIMEOUT, child.wait()).await;
            }
            return Err(DaemonError::NotReady {
                what,
                waited: timeout,
                output,
            });
        }
        tracing::info!(pid, "started {what}, pid {pid}");
        self.process = Process::Spawned { child, pid };
        Ok(())
    }
}

/// Stops the daemon recorded in `pid_file` if it still runs as `marker` says, and removes the
/// record. Only for tests and uninstalling.
pub(crate) async fn stop(
    what: &'static str,
    pid_file: &std::path::Path,
    marker: &str,
    stop_timeout: Duration,
) -> Result<(), DaemonError> {
    if let Some(record) = super::read_pid_file(pid_file).await? {
        super::terminate(what, record.pid, marker, stop_timeout).await?;
    }
    super::remove_pid_file(pid_file).await
}

/// Whether `daemon` answers within `timeout`; gives up early when `child` exits.
async fn answers_within<D: Daemon>(
    daemon: &D,
    timeout: Duration,
    mut child: Option<&mut Child>,
) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if daemon.answers().await {
            return true;
        }
        if let Some(child) = child.as_deref_mut()
            && let Ok(Some(_)) = child.try_wait()
        {
            return false;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}
