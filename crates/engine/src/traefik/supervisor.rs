//! Running Traefik as Helvetia's own edge router, in a way that outlives Helvetia.
//!
//! Traefik runs in its own process group, with its pid and a hash of how it was started (static
//! configuration, binary, environment) recorded in `<state_dir>/traefik.pid`. A Helvetia that
//! starts (after an upgrade, a crash, or a Ctrl-C) adopts a Traefik still running as it would
//! start it instead of restarting it, so a control-plane restart never interrupts traffic;
//! Traefik is replaced only when how it is started changed. [`Supervisor::watch`] restarts
//! Traefik if it dies, and leaves it running when Helvetia shuts down.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use rustix::process::{Pid, Signal};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::process::Child;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::api::TraefikApi;
use super::write::write_atomically;
use super::{MANAGED_ENTRY_POINT, TraefikError};
use crate::process::Program;

const STATIC_CONFIG_FILE: &str = "traefik.toml";
const PID_FILE: &str = "traefik.pid";
const LOG_FILE: &str = "traefik.log";
/// Traefik's own stdout and stderr: what it prints before its log is set up, and crashes.
const OUTPUT_FILE: &str = "traefik.out";
const DYNAMIC_DIR: &str = "dynamic";

/// The entry point serving Traefik's API and `/ping`; Traefik serves the insecure API on the
/// entry point with this name.
const API_ENTRY_POINT: &str = "traefik";

/// How long Traefik waits after a change to its dynamic configuration before applying it; its
/// default (2 s) would delay every deploy's switch of traffic.
const PROVIDERS_THROTTLE: &str = "10ms";

/// How long a freshly started Traefik may take to answer its API.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a Traefik found running may take to answer before it is considered hung.
const ADOPT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long Traefik may take to exit after SIGTERM. It lets requests in flight finish for up to
/// 10 s (its default `graceTimeOut`), so this leaves room for that.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// How long to wait for a process to disappear after SIGKILL.
const KILL_TIMEOUT: Duration = Duration::from_secs(5);
/// How often to check a process we are waiting for.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// How often [`Supervisor::watch`] checks that Traefik is alive.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);
/// A Traefik that dies again within this time of a restart is restarted after a growing pause
/// (a taken port or a bad configuration would otherwise restart it in a tight loop).
const STABLE_AFTER: Duration = Duration::from_secs(30);
const FIRST_RESTART_BACKOFF: Duration = Duration::from_secs(1);
const MAX_RESTART_BACKOFF: Duration = Duration::from_secs(60);

/// Where and how Helvetia runs Traefik.
#[derive(Clone)]
pub struct TraefikSettings {
    /// The `traefik` executable.
    pub binary: PathBuf,
    /// Holds the static configuration, the dynamic configuration directory, the pid file and
    /// Traefik's logs. Relative paths are resolved against the current directory.
    pub state_dir: PathBuf,
    /// Where Traefik accepts the traffic it routes, e.g. `:80` or `127.0.0.1:8081`.
    pub entry_point_address: String,
    /// Where Traefik serves its API; it has no authentication, so it must be a loopback
    /// address, e.g. `127.0.0.1:7301`.
    pub api_address: String,
    /// Environment variables Traefik gets beyond `PATH` (e.g. `LEGO_CA_CERTIFICATES`).
    pub extra_env: Vec<(String, String)>,
}

impl fmt::Debug for TraefikSettings {
    /// Values of `extra_env` may be credentials (a DNS provider's token), so only their names
    /// are shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let env: Vec<&str> = self
            .extra_env
            .iter()
            .map(|(name, _)| name.as_str())
            .collect();
        f.debug_struct("TraefikSettings")
            .field("binary", &self.binary)
            .field("state_dir", &self.state_dir)
            .field("entry_point_address", &self.entry_point_address)
            .field("api_address", &self.api_address)
            .field("extra_env", &env)
            .finish()
    }
}

impl TraefikSettings {
    /// The directory Traefik's file provider watches.
    pub fn dynamic_dir(&self) -> PathBuf {
        self.state_dir.join(DYNAMIC_DIR)
    }

    /// The base URL of Traefik's API.
    pub fn api_url(&self) -> String {
        format!("http://{}", self.api_address)
    }

    fn config_file(&self) -> PathBuf {
        self.state_dir.join(STATIC_CONFIG_FILE)
    }

    /// A copy with an absolute state directory: the path is part of Traefik's command line,
    /// by which a running Traefik is recognised.
    fn resolved(&self) -> Result<TraefikSettings, TraefikError> {
        let state_dir =
            std::path::absolute(&self.state_dir).map_err(|source| TraefikError::Io {
                action: "resolving the state directory",
                path: self.state_dir.clone(),
                source,
            })?;
        let api_is_loopback = self
            .api_address
            .parse::<std::net::SocketAddr>()
            .is_ok_and(|address| address.ip().is_loopback());
        if !api_is_loopback {
            return Err(TraefikError::InvalidSettings(format!(
                "the API address {:?} is not a loopback address with a port; Traefik's API has \
                 no authentication",
                self.api_address
            )));
        }
        Ok(TraefikSettings {
            state_dir,
            ..self.clone()
        })
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StaticConfig<'a> {
    global: Global,
    entry_points: BTreeMap<&'static str, EntryPoint<'a>>,
    api: Api,
    ping: Ping,
    log: Log<'a>,
    providers: Providers<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Global {
    check_new_version: bool,
    send_anonymous_usage: bool,
}

#[derive(Serialize)]
struct EntryPoint<'a> {
    address: &'a str,
    http: EntryPointHttp,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EntryPointHttp {
    alias_headers_strategy: &'static str,
}

/// Request headers whose names alias another's (`X_Forwarded_For`, `X.Forwarded.For`: CGI,
/// WSGI, PHP and nginx read each as `X-Forwarded-For`) are dropped before routing, so a client
/// cannot spoof a header Traefik sets for the app — the way nginx drops underscored headers by
/// default. Traefik's own default keeps them (and warns about it).
const ALIAS_HEADERS_STRATEGY: &str = "delete";

impl<'a> EntryPoint<'a> {
    fn at(address: &'a str) -> EntryPoint<'a> {
        EntryPoint {
            address,
            http: EntryPointHttp {
                alias_headers_strategy: ALIAS_HEADERS_STRATEGY,
            },
        }
    }
}

#[derive(Serialize)]
struct Api {
    insecure: bool,
    dashboard: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Ping {
    entry_point: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Log<'a> {
    level: &'static str,
    file_path: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Providers<'a> {
    providers_throttle_duration: &'static str,
    file: FileProvider<'a>,
}

#[derive(Serialize)]
struct FileProvider<'a> {
    directory: &'a str,
    watch: bool,
}

/// Traefik's static configuration for `settings` (whose state directory is absolute).
fn render_static_config(settings: &TraefikSettings) -> Result<String, TraefikError> {
    let utf8 = |path: PathBuf| {
        path.to_str().map(str::to_owned).ok_or_else(|| {
            TraefikError::InvalidSettings(format!("{} is not valid UTF-8", path.display()))
        })
    };
    let log_file = utf8(settings.state_dir.join(LOG_FILE))?;
    let dynamic_dir = utf8(settings.dynamic_dir())?;
    let config = StaticConfig {
        global: Global {
            check_new_version: false,
            send_anonymous_usage: false,
        },
        entry_points: BTreeMap::from([
            (
                MANAGED_ENTRY_POINT,
                EntryPoint::at(&settings.entry_point_address),
            ),
            (API_ENTRY_POINT, EntryPoint::at(&settings.api_address)),
        ]),
        api: Api {
            insecure: true,
            dashboard: false,
        },
        ping: Ping {
            entry_point: API_ENTRY_POINT,
        },
        log: Log {
            level: "INFO",
            file_path: &log_file,
        },
        providers: Providers {
            providers_throttle_duration: PROVIDERS_THROTTLE,
            file: FileProvider {
                directory: &dynamic_dir,
                watch: true,
            },
        },
    };
    toml::to_string(&config).map_err(|error| TraefikError::InvalidSettings(error.to_string()))
}

/// A hash of everything a Traefik is started with — its static configuration, its binary and
/// its environment — so a Traefik started differently is replaced rather than adopted.
/// Environment values may be credentials; only their hash is written down.
fn launch_hash(settings: &TraefikSettings, static_config: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(static_config.as_bytes());
    hasher.update(b"\0");
    hasher.update(settings.binary.as_os_str().as_encoded_bytes());
    for (name, value) in &settings.extra_env {
        hasher.update(b"\0");
        hasher.update(name.as_bytes());
        hasher.update(b"=");
        hasher.update(value.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// What the pid file records: which process runs Traefik, and how it was started.
#[derive(Debug, PartialEq, Eq)]
struct PidRecord {
    pid: u32,
    launch_hash: String,
}

impl PidRecord {
    fn render(&self) -> String {
        format!("{}\n{}\n", self.pid, self.launch_hash)
    }

    fn parse(text: &str) -> Option<PidRecord> {
        let mut lines = text.lines();
        let pid = lines.next()?.trim().parse().ok()?;
        let launch_hash = lines.next().unwrap_or_default().trim().to_owned();
        Some(PidRecord { pid, launch_hash })
    }
}

async fn read_pid_file(state_dir: &Path) -> Result<Option<PidRecord>, TraefikError> {
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

async fn write_file(path: PathBuf, contents: String) -> Result<(), TraefikError> {
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
fn is_our_traefik(pid: u32, config_file: &Path) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    if !is_alive_state(&stat) {
        return false;
    }
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|cmdline| has_config_argument(&cmdline, config_file))
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

fn config_argument(config_file: &Path) -> String {
    format!("--configFile={}", config_file.display())
}

fn has_config_argument(cmdline: &[u8], config_file: &Path) -> bool {
    let expected = config_argument(config_file);
    cmdline
        .split(|&byte| byte == 0)
        .any(|argument| argument == expected.as_bytes())
}

fn signal(pid: u32, signal: Signal) -> Result<(), TraefikError> {
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
    while is_our_traefik(pid, config_file) {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    true
}

/// Stops the Traefik `pid` if it is ours: SIGTERM so requests in flight can finish, SIGKILL if
/// it does not exit in time.
async fn terminate(pid: u32, config_file: &Path) -> Result<(), TraefikError> {
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

/// Waits until the API answers, for at most `timeout`; gives up early if `child` exits.
async fn wait_until_ready(
    api: &TraefikApi,
    mut child: Option<&mut Child>,
    timeout: Duration,
    settings: &TraefikSettings,
) -> Result<(), TraefikError> {
    let deadline = Instant::now() + timeout;
    loop {
        if api.ping().await {
            return Ok(());
        }
        if let Some(child) = child.as_deref_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            return Err(TraefikError::ExitedDuringStart {
                status,
                output: settings.state_dir.join(OUTPUT_FILE),
                log: settings.state_dir.join(LOG_FILE),
            });
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

/// The Traefik process a [`Supervisor`] looks after.
enum Process {
    /// Started by this Helvetia: kept as a child so it can be reaped when it exits.
    Spawned { child: Child, pid: u32 },
    /// Started by an earlier Helvetia; watched through `/proc`.
    Adopted { pid: u32 },
    /// A restart failed; the next check tries again.
    Gone,
}

/// Looks after the Traefik that Helvetia runs.
pub struct Supervisor {
    settings: TraefikSettings,
    static_config: String,
    launch_hash: String,
    api: TraefikApi,
    process: Process,
}

/// Makes sure Traefik runs with `settings`: adopts a Traefik found running as it would be
/// started now (same static configuration, binary and environment) whose API answers, and
/// otherwise stops the old one (if any) and starts a new one. Returns once Traefik's API
/// answers.
pub async fn start_or_adopt(settings: TraefikSettings) -> Result<Supervisor, TraefikError> {
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
    let static_config = render_static_config(&settings)?;
    let launch_hash = launch_hash(&settings, &static_config);
    let api = TraefikApi::new(settings.api_url())?;
    let mut supervisor = Supervisor {
        settings,
        static_config,
        launch_hash,
        api,
        process: Process::Gone,
    };
    let config_file = supervisor.settings.config_file();
    if let Some(record) = read_pid_file(&supervisor.settings.state_dir).await?
        && is_our_traefik(record.pid, &config_file)
    {
        let pid = record.pid;
        if record.launch_hash != supervisor.launch_hash {
            tracing::info!(pid, "how Traefik is started has changed; replacing Traefik");
        } else if wait_until_ready(&supervisor.api, None, ADOPT_TIMEOUT, &supervisor.settings)
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
        terminate(pid, &config_file).await?;
    }
    supervisor.spawn().await?;
    Ok(supervisor)
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

async fn remove_pid_file(state_dir: &Path) -> Result<(), TraefikError> {
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

impl Supervisor {
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
                () = tokio::time::sleep(WATCH_INTERVAL) => {}
            }
            if self.is_running() {
                continue;
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
                restarted = self.spawn() => match restarted {
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
                    child
                        .start_kill()
                        .map_err(|source| TraefikError::Signal { pid: *pid, source })?;
                    if tokio::time::timeout(KILL_TIMEOUT, child.wait())
                        .await
                        .is_err()
                    {
                        return Err(TraefikError::DidNotExit { pid: *pid });
                    }
                }
            }
            Process::Adopted { pid } => terminate(*pid, &config_file).await?,
            Process::Gone => {}
        }
        remove_pid_file(&self.settings.state_dir).await
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

    /// Starts a new Traefik and waits until its API answers; one that does not answer in time
    /// is killed.
    async fn spawn(&mut self) -> Result<(), TraefikError> {
        let settings = &self.settings;
        self.process = Process::Gone;
        write_file(settings.config_file(), self.static_config.clone()).await?;
        let output_path = settings.state_dir.join(OUTPUT_FILE);
        let output = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&output_path)
            .map_err(|source| TraefikError::Io {
                action: "opening",
                path: output_path.clone(),
                source,
            })?;
        let stderr = output.try_clone().map_err(|source| TraefikError::Io {
            action: "opening",
            path: output_path,
            source,
        })?;
        let program = settings
            .extra_env
            .iter()
            .fold(Program::new(&settings.binary), |program, (name, value)| {
                program.env(name, value)
            })
            .arg(config_argument(&settings.config_file()))
            .current_dir(&settings.state_dir);
        let mut command = program.command();
        command
            .stdout(Stdio::from(output))
            .stderr(Stdio::from(stderr))
            // Traefik must outlive Helvetia: not killed with Helvetia's handle, and outside its
            // process group so a Ctrl-C or a signal to that group does not reach it.
            .kill_on_drop(false)
            .process_group(0);
        let spawn_error = |source| TraefikError::Spawn {
            binary: settings.binary.clone(),
            source,
        };
        let mut child = command.spawn().map_err(spawn_error)?;
        let pid = child
            .id()
            .ok_or_else(|| spawn_error(std::io::Error::other("Traefik exited at once")))?;
        let record = PidRecord {
            pid,
            launch_hash: self.launch_hash.clone(),
        };
        let ready = match write_file(settings.state_dir.join(PID_FILE), record.render()).await {
            Ok(()) => wait_until_ready(&self.api, Some(&mut child), START_TIMEOUT, settings).await,
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
        tracing::info!(pid, "started Traefik pid {pid}");
        self.process = Process::Spawned { child, pid };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(state_dir: &str) -> TraefikSettings {
        TraefikSettings {
            binary: "traefik".into(),
            state_dir: state_dir.into(),
            entry_point_address: ":80".into(),
            api_address: "127.0.0.1:7301".into(),
            extra_env: vec![("DNS_TOKEN".into(), "secret".into())],
        }
    }

    #[test]
    fn renders_the_static_configuration() {
        assert_eq!(
            render_static_config(&settings("/var/lib/helvetia/traefik")).unwrap(),
            r#"[global]
checkNewVersion = false
sendAnonymousUsage = false

[entryPoints.traefik]
address = "127.0.0.1:7301"

[entryPoints.traefik.http]
aliasHeadersStrategy = "delete"

[entryPoints.web]
address = ":80"

[entryPoints.web.http]
aliasHeadersStrategy = "delete"

[api]
insecure = true
dashboard = false

[ping]
entryPoint = "traefik"

[log]
level = "INFO"
filePath = "/var/lib/helvetia/traefik/traefik.log"

[providers]
providersThrottleDuration = "10ms"

[providers.file]
directory = "/var/lib/helvetia/traefik/dynamic"
watch = true
"#
        );
    }

    #[test]
    fn paths_cannot_inject_configuration() {
        let state_dir = "/tmp/x\"\n[api]\ndashboard = true\n#";
        let rendered: toml::Table =
            toml::from_str(&render_static_config(&settings(state_dir)).unwrap()).unwrap();
        assert_eq!(rendered["api"]["dashboard"].as_bool(), Some(false));
        assert_eq!(
            rendered["providers"]["file"]["directory"].as_str(),
            Some(format!("{state_dir}/dynamic").as_str())
        );
    }

    #[test]
    fn the_api_must_listen_on_loopback() {
        let mut exposed = settings("/tmp/traefik");
        for address in [":7301", "0.0.0.0:7301", "10.0.0.1:7301", "localhost"] {
            exposed.api_address = address.into();
            assert!(
                matches!(exposed.resolved(), Err(TraefikError::InvalidSettings(_))),
                "{address}"
            );
        }
        exposed.api_address = "[::1]:7301".into();
        assert!(exposed.resolved().is_ok());
    }

    #[test]
    fn debug_output_hides_environment_values() {
        let shown = format!("{:?}", settings("/tmp/traefik"));
        assert!(shown.contains("DNS_TOKEN"));
        assert!(!shown.contains("secret"));
    }

    #[test]
    fn any_change_to_how_traefik_is_started_changes_the_launch_hash() {
        let base = settings("/tmp/traefik");
        let hash = launch_hash(&base, "config");
        assert_eq!(hash, launch_hash(&base.clone(), "config"));
        assert_ne!(hash, launch_hash(&base, "other config"));
        let mut binary = base.clone();
        binary.binary = "/opt/traefik/bin/traefik".into();
        assert_ne!(hash, launch_hash(&binary, "config"));
        let mut env = base.clone();
        env.extra_env[0].1 = "rotated".into();
        assert_ne!(hash, launch_hash(&env, "config"));
    }

    #[test]
    fn pid_records_round_trip() {
        let record = PidRecord {
            pid: 4242,
            launch_hash: launch_hash(&settings("/tmp/traefik"), "config"),
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
