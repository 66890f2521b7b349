//! Running Traefik as Helvetia's own edge router, in a way that outlives Helvetia.
//!
//! Traefik runs in its own process group, with its pid and a hash of how it was started (static
//! configuration, binary, environment) recorded in `<state_dir>/traefik.pid`. A Helvetia that
//! starts (after an upgrade, a crash, or a Ctrl-C) adopts a Traefik still running as it would
//! start it instead of restarting it, so a control-plane restart never interrupts traffic;
//! Traefik is replaced only when how it is started changed. [`Supervisor::watch`] restarts
//! Traefik if it dies, and leaves it running when Helvetia shuts down.
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use helvetia_core::routing::RoutingTable;

use rustix::process::Signal;
use tokio::process::Child;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::api::TraefikApi;
use super::gate::Gate;
use super::pid::{
    KILL_TIMEOUT, LogMark, PID_FILE, PidRecord, STOP_TIMEOUT, config_argument, is_our_traefik,
    read_pid_file, remove_pid_file, signal, terminate, wait_until_ready, write_file,
};
use super::settings::{
    OUTPUT_FILE, STATIC_CONFIG_FILE, TraefikSettings, launch_hash, render_static_config,
    reuse_port_addresses,
};
use super::{
    DYNAMIC_CONFIG_FILE, MANAGED_ENTRY_POINT, SECURE_ENTRY_POINT, Secure, Traefik, TraefikError,
    TraefikMode, render,
};
use crate::daemon::{self, DaemonError};
use crate::process::Program;

/// How long a freshly started Traefik may take to answer its API.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a Traefik found running may take to answer before it is considered hung.
const ADOPT_TIMEOUT: Duration = Duration::from_secs(2);

/// How often [`Supervisor::watch`] checks that Traefik is alive (a Traefik it started is
/// restarted as soon as it exits, an adopted one looked for every [`ADOPTED_POLL`]).
const WATCH_INTERVAL: Duration = Duration::from_secs(1);
/// How often a Traefik adopted from an earlier Helvetia is looked for.
const ADOPTED_POLL: Duration = Duration::from_millis(50);
/// A Traefik that dies again within this time of a restart is restarted after a growing pause
/// (a taken port or a bad configuration would otherwise restart it in a tight loop).
const STABLE_AFTER: Duration = Duration::from_secs(30);
const FIRST_RESTART_BACKOFF: Duration = Duration::from_secs(1);
const MAX_RESTART_BACKOFF: Duration = Duration::from_secs(60);

/// The Traefik process a [`Supervisor`] looks after.
enum Process {
    /// Started by this Helvetia: kept as a child so it can be reaped when it exits.
    Spawned { child: Child, pid: u32 },
    /// Started by an earlier Helvetia; watched through `/proc`.
    Adopted { pid: u32 },
    /// A restart failed; the next check tries again.
    Gone,
}

/// Why the managed Traefik is not running, when it is not: shared by its [`Supervisor`] and
/// the [`Traefik`] edge router that routes through it, so a deploy fails with Traefik's own
/// error at once rather than waiting for a confirmation that cannot come.
#[derive(Debug, Clone, Default)]
pub struct TraefikStatus(Arc<Mutex<Option<String>>>);

impl TraefikStatus {
    /// Why Traefik is not running; `None` while it runs.
    pub fn down(&self) -> Option<String> {
        self.lock().clone()
    }

    fn set(&self, down: Option<String>) {
        *self.lock() = down;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Looks after the Traefik that Helvetia runs.
pub struct Supervisor {
    settings: TraefikSettings,
    static_config: String,
    launch_hash: String,
    api: TraefikApi,
    process: Process,
    status: TraefikStatus,
}

/// Makes sure Traefik runs with `settings` and serves `table`: adopts a Traefik found running
/// as it would be started now (same static configuration, binary and environment) whose API
/// answers as this installation's, and otherwise stops the old one (if any) and starts a new
/// one. Returns once Traefik's API answers — or, when the new Traefik could not start (a port
/// taken), with the reason in [`Supervisor::down`]; [`Supervisor::watch`] keeps trying.
pub async fn start_or_adopt(
    settings: TraefikSettings,
    table: &RoutingTable,
) -> Result<Supervisor, TraefikError> {
    let settings = settings.resolved()?;
    for directory in [settings.state_dir.clone(), settings.dynamic_dir()] {
        tokio::fs::create_dir_all(&directory)
            .await
            .map_err(|source| TraefikError::Io {
                action: "creating",
                path: directory,
                source,
            })?;
    }
    // First, so that the Traefik found or started can be told apart from another one by the
    // marker this configuration carries.
    // Without certificates yet: the first publish writes them.
    let secure = settings.secure_port().map(|port| Secure {
        entry_point: SECURE_ENTRY_POINT,
        port,
        files: &[],
    });
    write_file(
        settings.dynamic_dir().join(DYNAMIC_CONFIG_FILE),
        render(
            table,
            MANAGED_ENTRY_POINT,
            secure.as_ref(),
            &settings.instance,
        ),
    )
    .await?;
    let static_config = render_static_config(&settings)?;
    let launch_hash = launch_hash(&settings, &static_config);
    let api = TraefikApi::new(settings.api_url(), &settings.instance)?
        .with_tls(settings.secure_port().is_some());
    let mut supervisor = Supervisor {
        settings,
        static_config,
        launch_hash,
        api,
        process: Process::Gone,
        status: TraefikStatus::default(),
    };
    let config_file = supervisor.settings.config_file();
    let mut held = vec![];
    if let Some(record) = read_pid_file(&supervisor.settings.state_dir).await?
        && is_our_traefik(record.pid, &config_file)
    {
        let pid = record.pid;
        if record.launch_hash != supervisor.launch_hash {
            tracing::info!(pid, "how Traefik is started has changed; replacing Traefik");
        } else if wait_until_ready(
            &supervisor.api,
            None,
            ADOPT_TIMEOUT,
            &supervisor.settings,
            &LogMark::now(&supervisor.settings),
        )
        .await
        .is_ok()
        {
            tracing::info!(pid, "adopted running Traefik pid {pid}");
            supervisor.process = Process::Adopted { pid };
            return Ok(supervisor);
        } else {
            tracing::warn!(
                pid,
                "the running Traefik's API does not answer; replacing Traefik"
            );
        }
        // Its ports are held while it finishes its requests and the new one starts.
        let running = tokio::fs::read_to_string(&config_file)
            .await
            .map(|config| reuse_port_addresses(&config))
            .unwrap_or_default();
        held = supervisor.hold_gates(&running, &[]);
        terminate(pid, &config_file).await?;
        held.iter().for_each(Gate::alone);
    }
    match supervisor.spawn(held).await {
        Ok(()) => Ok(supervisor),
        // Perhaps only for a while (another process holds a port): the watch retries.
        Err(error @ (TraefikError::ExitedDuringStart { .. } | TraefikError::NotReady { .. })) => {
            tracing::error!(%error, "Traefik could not be started");
            Ok(supervisor)
        }
        Err(error) => Err(error),
    }
}

/// Stops the Traefik recorded in `state_dir`'s pid file, if it still runs. Only for tests and
/// for uninstalling: in normal operation Traefik keeps running while Helvetia restarts.
pub async fn stop_traefik(state_dir: &Path) -> Result<(), TraefikError> {
    let state_dir = std::path::absolute(state_dir).map_err(|source| TraefikError::Io {
        action: "resolving the state directory",
        path: state_dir.to_owned(),
        source,
    })?;
    if let Some(record) = read_pid_file(&state_dir).await? {
        terminate(record.pid, &state_dir.join(STATIC_CONFIG_FILE)).await?;
    }
    remove_pid_file(&state_dir).await
}

impl Supervisor {
    /// The edge router that routes through this Traefik, and knows when it is down.
    pub fn edge_router(&self) -> Result<Traefik, TraefikError> {
        Ok(Traefik::new(TraefikMode::Managed(self.settings.clone()))?.watched(self.status.clone()))
    }

    /// Why Traefik is not running (its own start error, when it logged one); `None` while it
    /// runs.
    pub fn down(&self) -> Option<String> {
        self.status.down()
    }

    /// The pid of the Traefik being looked after, unless a restart has failed.
    pub fn pid(&self) -> Option<u32> {
        match self.process {
            Process::Spawned { pid, .. } | Process::Adopted { pid } => Some(pid),
            Process::Gone => None,
        }
    }

    /// Checks every second that Traefik is alive and restarts it if it died, until `shutdown`
    /// is cancelled. Traefik is left running on shutdown: it keeps serving while Helvetia is
    /// restarted, and the next Helvetia adopts it. Borrowed, so a watch that failed can be
    /// started again on the same Traefik.
    pub async fn watch(&mut self, shutdown: CancellationToken) {
        let mut backoff = FIRST_RESTART_BACKOFF;
        let mut restarted_at: Option<Instant> = None;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = self.exited_or_interval() => {}
            }
            let was_started = !matches!(self.process, Process::Gone);
            if self.is_running() {
                continue;
            }
            // A Traefik that never started keeps its start error until the next attempt.
            if was_started {
                self.status
                    .set(Some("Traefik exited; it is being restarted".into()));
            }
            if restarted_at.is_some_and(|at| at.elapsed() < STABLE_AFTER) {
                tracing::warn!(
                    ?backoff,
                    "Traefik is not running; restarting it after a pause"
                );
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_RESTART_BACKOFF);
            } else {
                tracing::warn!("Traefik is not running; restarting it");
                backoff = FIRST_RESTART_BACKOFF;
            }
            restarted_at = Some(Instant::now());
            // A restart abandoned by shutdown leaves a Traefik that the next Helvetia adopts:
            // its pid file is written as soon as it has started.
            tokio::select! {
                () = shutdown.cancelled() => break,
                restarted = self.spawn(vec![]) => match restarted {
                    Ok(()) => tracing::info!(pid = self.pid(), "restarted Traefik"),
                    Err(error) => tracing::error!(%error, "restarting Traefik failed"),
                },
            }
        }
        tracing::info!(
            pid = self.pid(),
            "no longer watching Traefik; it keeps running"
        );
    }

    /// Stops Traefik and removes its pid file. Only for tests and for uninstalling.
    pub async fn stop(mut self) -> Result<(), TraefikError> {
        let config_file = self.settings.config_file();
        match &mut self.process {
            Process::Spawned { child, pid } => {
                signal(*pid, Signal::TERM)?;
                if tokio::time::timeout(STOP_TIMEOUT, child.wait())
                    .await
                    .is_err()
                {
                    tracing::warn!(pid, "Traefik did not exit after SIGTERM; killing it");
                    child.start_kill().map_err(|source| DaemonError::Signal {
                        what: "Traefik",
                        pid: *pid,
                        source,
                    })?;
                    if tokio::time::timeout(KILL_TIMEOUT, child.wait())
                        .await
                        .is_err()
                    {
                        return Err(DaemonError::DidNotExit {
                            what: "Traefik",
                            pid: *pid,
                        }
                        .into());
                    }
                }
            }
            Process::Adopted { pid } => terminate(*pid, &config_file).await?,
            Process::Gone => {}
        }
        remove_pid_file(&self.settings.state_dir).await
    }

    /// Waits until the next look at Traefik: [`WATCH_INTERVAL`], cut short when the Traefik
    /// this Helvetia started exits, and [`ADOPTED_POLL`] for an adopted one — every moment
    /// without a Traefik refuses connections.
    async fn exited_or_interval(&mut self) {
        match &mut self.process {
            Process::Spawned { child, .. } => {
                let _exited = tokio::time::timeout(WATCH_INTERVAL, child.wait()).await;
            }
            // Not a child, so its exit cannot be awaited: it is looked for in `/proc`, often
            // (reading one small file).
            Process::Adopted { .. } => tokio::time::sleep(ADOPTED_POLL).await,
            Process::Gone => tokio::time::sleep(WATCH_INTERVAL).await,
        }
    }

    fn is_running(&mut self) -> bool {
        match &mut self.process {
            Process::Spawned { child, pid } => match child.try_wait() {
                Ok(None) => true,
                Ok(Some(status)) => {
                    tracing::warn!(pid, %status, "Traefik exited");
                    false
                }
                Err(error) => {
                    tracing::warn!(pid, %error, "checking on Traefik failed");
                    is_our_traefik(*pid, &self.settings.config_file())
                }
            },
            Process::Adopted { pid } => {
                let running = is_our_traefik(*pid, &self.settings.config_file());
                if !running {
                    tracing::warn!(pid, "Traefik exited");
                }
                running
            }
            Process::Gone => false,
        }
    }

    /// Holds the gated entry points' ports that `held` does not hold yet; `running` are the
    /// addresses a running Traefik listens on, ahead of the gate. A port that cannot be held
    /// is said so, and Traefik is started without its gate.
    fn hold_gates(&self, running: &[String], held: &[Gate]) -> Vec<Gate> {
        self.settings
            .gated_addresses()
            .filter(|address| !held.iter().any(|gate| gate.entry_point() == *address))
            .filter_map(|address| {
                let ahead = u32::from(running.iter().any(|r| r == address));
                Gate::hold(address, ahead)
                    .inspect_err(|error| {
                        tracing::warn!(%error, entry_point = address, "starting Traefik without holding its port until it has its routes");
                    })
                    .ok()
            })
            .collect()
    }

    /// Starts a new Traefik, with the ports in `held` and the other gated ones held until it
    /// has its routes, and waits until its API answers; one that does not answer in time is
    /// killed.
    async fn spawn(&mut self, held: Vec<Gate>) -> Result<(), TraefikError> {
        let spawned = self.spawn_once(held).await;
        self.status
            .set(spawned.as_ref().err().map(ToString::to_string));
        spawned
    }

    async fn spawn_once(&mut self, mut gates: Vec<Gate>) -> Result<(), TraefikError> {
        let settings = &self.settings;
        self.process = Process::Gone;
        let mark = LogMark::now(settings);
        write_file(settings.config_file(), self.static_config.clone()).await?;
        let program = settings
            .extra_env
            .iter()
            .fold(Program::new(&settings.binary), |program, (name, value)| {
                program.env(name, value)
            })
            .arg(config_argument(&settings.config_file()))
            .current_dir(&settings.state_dir);
        // Held until this Traefik has loaded its routes, so that it never answers 404 for a
        // known host while it starts (gate.rs).
        let more = self.hold_gates(&[], &gates);
        gates.extend(more);
        let (mut child, pid) =
            daemon::spawn_detached("Traefik", &program, &settings.state_dir.join(OUTPUT_FILE))?;
        let record = PidRecord {
            pid,
            launch_hash: self.launch_hash.clone(),
        };
        let ready = match write_file(settings.state_dir.join(PID_FILE), record.render()).await {
            Ok(()) => {
                wait_until_ready(&self.api, Some(&mut child), START_TIMEOUT, settings, &mark).await
            }
            Err(error) => Err(error),
        };
        if let Err(error) = ready {
            // A Traefik that is not recorded or does not answer is of no use, and would hold the
            // ports the next attempt needs.
            if child.start_kill().is_ok() {
                let _reaped = tokio::time::timeout(KILL_TIMEOUT, child.wait()).await;
            }
            return Err(error);
        }
        // Ready means its API shows this installation's configuration, routes included.
        futures::future::join_all(gates.into_iter().map(Gate::hand_over)).await;
        tracing::info!(pid, "started Traefik pid {pid}");
        self.process = Process::Spawned { child, pid };
        Ok(())
    }
}
