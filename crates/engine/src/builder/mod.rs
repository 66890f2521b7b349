//! The builder engine: a second `dockerd` of Helvetia's own that runs builds only, so that a
//! build's steps run inside a control group Helvetia caps (memory, CPU, pids; `cgroup.rs`)
//! instead of the host engine's BuildKit, which ignores the build API's limits.
//!
//! It has its own data root, exec root, socket (in a directory only root may enter) and bridge
//! (created here: a second engine with `--bridge none` in the host's network namespace deletes
//! the host engine's `docker0`), `--iptables=false`, and `--cgroup-parent` set to the capped
//! group. Like Traefik it outlives Helvetia: `daemon.rs` records it in a pid file with the hash
//! of its command line, the next Helvetia adopts it when it runs as it would be started and
//! replaces it otherwise ([`start_or_adopt`]); [`BuilderDaemon::watch`] restarts it if it dies.
//! How a build crosses between the engines is `build.rs`.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::daemon::DaemonError;
use crate::daemon::supervised::{self, Daemon, Supervised};
use crate::docker::Engine;
use crate::process::Program;

mod build;
pub mod cgroup;

pub use build::{BuildFailure, Builder, Built, Turn};
use cgroup::{BuildGroup, CgroupFs};

const WHAT: &str = "the builder engine";
/// Helvetia's record of the builder: pid and launch hash.
const PID_FILE: &str = "builder.pid";
/// Where the socket and dockerd's own pid file live: a directory only its owner may enter, so
/// nothing else on the machine reaches the builder's socket.
const RUN_DIR: &str = "run";
const SOCKET: &str = "docker.sock";
const LOG_FILE: &str = "dockerd.log";
/// dockerd's configuration file: empty, so a host's `/etc/docker/daemon.json` (a bridge, a
/// data root of its own) never reaches the builder.
const CONFIG_FILE: &str = "daemon.json";
/// A fresh dockerd answered in about half a second here; a slow disk may take much longer.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// dockerd stops its containers (build steps) and containerd before it exits.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum BuilderError {
    #[error("the builder engine cannot run here: {0}")]
    Unsupported(String),
    #[error(transparent)]
    Process(#[from] DaemonError),
    #[error("connecting to the builder engine: {0}")]
    Engine(#[from] crate::docker::EngineError),
}

/// Where and how Helvetia runs its builder engine.
#[derive(Debug, Clone)]
pub struct BuilderSettings {
    /// The `dockerd` executable.
    pub dockerd: PathBuf,
    /// Holds the builder's data root, exec root, socket, pid files and log.
    pub state_dir: PathBuf,
    /// The installation's id: names the bridge and the control group, labels what it builds.
    pub instance: String,
    /// The bridge's address with its prefix (`10.213.0.1/24`): the build steps' network, which
    /// reaches nothing (no NAT, no forwarding).
    pub bridge_address: String,
    /// Where the cgroup hierarchy is mounted (`/sys/fs/cgroup`).
    pub cgroup_root: PathBuf,
}

impl BuilderSettings {
    /// A copy with an absolute state directory: its paths are dockerd's arguments, by which a
    /// running builder is recognised.
    fn resolved(&self) -> Result<BuilderSettings, BuilderError> {
        let state_dir = std::path::absolute(&self.state_dir).map_err(|source| {
            BuilderError::from(DaemonError::Io {
                action: "resolving",
                path: self.state_dir.clone(),
                source,
            })
        })?;
        Ok(BuilderSettings {
            state_dir,
            ..self.clone()
        })
    }

    /// The bridge's name: at most 15 bytes (the kernel's limit), the installation's.
    pub fn bridge(&self) -> String {
        let id: String = self
            .instance
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(11)
            .collect();
        format!("hvb-{id}")
    }

    /// The control group's name.
    pub fn group_name(&self) -> String {
        format!("helvetia-{}-builder", self.instance)
    }

    pub fn socket(&self) -> PathBuf {
        self.state_dir.join(RUN_DIR).join(SOCKET)
    }

    fn data_root_argument(&self) -> String {
        format!("--data-root={}", self.state_dir.join("data").display())
    }

    /// dockerd's argument vector. Every path is under the state directory.
    fn arguments(&self, group: &BuildGroup) -> Vec<String> {
        let state = &self.state_dir;
        vec![
            self.data_root_argument(),
            format!("--exec-root={}", state.join("exec").display()),
            format!(
                "--pidfile={}",
                state.join(RUN_DIR).join("dockerd.pid").display()
            ),
            format!("--host=unix://{}", self.socket().display()),
            format!("--config-file={}", state.join(CONFIG_FILE).display()),
            format!("--bridge={}", self.bridge()),
            "--iptables=false".to_owned(),
            "--ip-forward=false".to_owned(),
            "--ip-masq=false".to_owned(),
            format!("--cgroup-parent={}", group.parent_argument()),
        ]
    }

    fn launch_hash(&self, arguments: &[String]) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.dockerd.as_os_str().as_encoded_bytes());
        for argument in arguments {
            hasher.update(b"\0");
            hasher.update(argument.as_bytes());
        }
        hasher.update(b"\0");
        hasher.update(self.bridge_address.as_bytes());
        hex::encode(hasher.finalize())
    }
}

/// The builder engine as a [`Daemon`]: how it is started and recognised.
struct BuilderProcess {
    settings: BuilderSettings,
    arguments: Vec<String>,
    launch_hash: String,
    group: BuildGroup,
}

impl Daemon for BuilderProcess {
    fn what(&self) -> &'static str {
        WHAT
    }

    fn marker(&self) -> String {
        self.settings.data_root_argument()
    }

    fn pid_file(&self) -> PathBuf {
        self.settings.state_dir.join(PID_FILE)
    }

    fn output(&self) -> PathBuf {
        self.settings.state_dir.join(LOG_FILE)
    }

    fn program(&self) -> Program {
        Program::new(&self.settings.dockerd)
            .args(&self.arguments)
            .current_dir(&self.settings.state_dir)
    }

    fn launch_hash(&self) -> String {
        self.launch_hash.clone()
    }

    /// The state and socket directories (the latter only root may enter), an empty dockerd
    /// configuration, the control group and the bridge.
    async fn prepare(&self) -> Result<(), String> {
        let state = &self.settings.state_dir;
        let failed = |action: &str, path: &Path, error: std::io::Error| {
            format!("{action} {}: {error}", path.display())
        };
        std::fs::create_dir_all(state).map_err(|e| failed("creating", state, e))?;
        let run = state.join(RUN_DIR);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&run)
            .map_err(|e| failed("creating", &run, e))?;
        // An existing directory keeps its mode through `create`.
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| failed("restricting", &run, e))?;
        let config = state.join(CONFIG_FILE);
        std::fs::write(&config, "{}\n").map_err(|e| failed("writing", &config, e))?;
        // dockerd keeps its default network, with the bridge's address as it found it first,
        // in this database and puts that address back at every start: without it, it takes
        // the bridge's current one. The builder has no other network to keep.
        let networks = state.join("data/network/files/local-kv.db");
        match std::fs::remove_file(&networks) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(failed("removing", &networks, error)),
        }
        self.group.create().map_err(|e| {
            failed(
                "creating a control group under",
                &self.settings.cgroup_root,
                e,
            )
        })?;
        ensure_bridge(&self.settings.bridge(), &self.settings.bridge_address).await
    }

    /// Connected again each time: the socket appears only once dockerd is up.
    async fn answers(&self) -> bool {
        match Engine::at_socket(&self.settings.instance, &self.settings.socket()) {
            Ok(engine) => engine.ping().await.is_ok(),
            Err(_) => false,
        }
    }

    fn start_timeout(&self) -> Duration {
        START_TIMEOUT
    }

    fn stop_timeout(&self) -> Duration {
        STOP_TIMEOUT
    }
}

/// Looks after the builder engine.
pub struct BuilderDaemon(Supervised<BuilderProcess>);

/// Makes sure the builder engine runs as `settings` say: adopts one found running the same way
/// (same binary, arguments and bridge) that answers, else stops it and starts a new one.
/// Returns the daemon and a [`Builder`] that builds on it.
pub async fn start_or_adopt(
    settings: BuilderSettings,
) -> Result<(BuilderDaemon, Builder), BuilderError> {
    let settings = settings.resolved()?;
    let cgroups = cgroups_for_builds(&settings.cgroup_root).map_err(BuilderError::Unsupported)?;
    let group = cgroups.group(&settings.group_name());
    let arguments = settings.arguments(&group);
    let launch_hash = settings.launch_hash(&arguments);
    let supervised = Supervised::start_or_adopt(BuilderProcess {
        settings,
        arguments,
        launch_hash,
        group: group.clone(),
    })
    .await?;
    let settings = &supervised.daemon().settings;
    let engine = Engine::at_socket(&settings.instance, &settings.socket())?;
    Ok((BuilderDaemon(supervised), Builder::new(engine, group)))
}

/// The cgroup hierarchy builds are capped in, when the builder engine can run here: it needs
/// root (an engine, a bridge and a control group of its own) and the memory, cpu and pids
/// controllers under `cgroup_root`. Otherwise why not.
pub fn cgroups_for_builds(cgroup_root: &Path) -> Result<CgroupFs, String> {
    if !rustix::process::geteuid().is_root() {
        return Err("it needs root (its own engine, bridge and control group)".into());
    }
    CgroupFs::detect(cgroup_root).ok_or_else(|| {
        format!(
            "no memory, cpu and pids cgroup controllers under {}",
            cgroup_root.display()
        )
    })
}

/// Stops the builder engine recorded in `state_dir`, if it still runs. Only for tests and for
/// uninstalling: in normal operation it keeps running while Helvetia restarts.
pub async fn stop_builder(state_dir: &Path) -> Result<(), BuilderError> {
    let state_dir = std::path::absolute(state_dir).map_err(|source| {
        BuilderError::from(DaemonError::Io {
            action: "resolving",
            path: state_dir.to_owned(),
            source,
        })
    })?;
    let marker = format!("--data-root={}", state_dir.join("data").display());
    let pid_file = state_dir.join(PID_FILE);
    Ok(supervised::stop(WHAT, &pid_file, &marker, STOP_TIMEOUT).await?)
}

impl BuilderDaemon {
    /// The pid of the builder engine, unless a restart failed.
    pub fn pid(&self) -> Option<u32> {
        self.0.pid()
    }

    /// Restarts the builder engine when it died, until `shutdown`; leaves it running then, for
    /// the next Helvetia to adopt.
    pub async fn watch(&mut self, shutdown: CancellationToken) {
        self.0.watch(shutdown).await;
    }
}

/// Creates the bridge `name` (the installation's own, which an earlier start may have made)
/// and gives it `address` alone: a builder started again with another address replaces the old
/// one. Only called before a builder starts, so no build uses the bridge meanwhile.
async fn ensure_bridge(name: &str, address: &str) -> Result<(), String> {
    let exists = ip(name, &["link", "show", "dev", name]).await.is_ok();
    if exists {
        ip(name, &["address", "flush", "dev", name]).await?;
    } else {
        ip(name, &["link", "add", name, "type", "bridge"]).await?;
    }
    ip(name, &["address", "add", address, "dev", name]).await?;
    ip(name, &["link", "set", name, "up"]).await
}

/// Runs `ip args…` about the bridge `bridge`; its complaint is the error.
async fn ip(bridge: &str, args: &[&str]) -> Result<(), String> {
    let bridge_error =
        |message: String| format!("creating the builder's bridge {bridge}: {message}");
    let output = Program::new("ip")
        .args(args)
        .timeout(Duration::from_secs(10))
        .run()
        .await
        .map_err(|error| bridge_error(error.to_string()))?;
    if output.success {
        Ok(())
    } else {
        Err(bridge_error(format!(
            "`ip {}`: {}",
            args.join(" "),
            output.stderr.trim()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> BuilderSettings {
        BuilderSettings {
            dockerd: "dockerd".into(),
            state_dir: "/var/lib/helvetia/builder".into(),
            instance: "c78cd01352a75489".into(),
            bridge_address: "10.213.0.1/24".into(),
            cgroup_root: "/sys/fs/cgroup".into(),
        }
    }

    #[test]
    fn the_builder_runs_apart_from_the_host_engine() {
        let settings = settings();
        let group = CgroupFs::new("/sys/fs/cgroup", cgroup::CgroupVersion::V1)
            .group(&settings.group_name());
        let arguments = settings.arguments(&group);
        assert_eq!(
            arguments,
            [
                "--data-root=/var/lib/helvetia/builder/data",
                "--exec-root=/var/lib/helvetia/builder/exec",
                "--pidfile=/var/lib/helvetia/builder/run/dockerd.pid",
                "--host=unix:///var/lib/helvetia/builder/run/docker.sock",
                "--config-file=/var/lib/helvetia/builder/daemon.json",
                "--bridge=hvb-c78cd01352a",
                "--iptables=false",
                "--ip-forward=false",
                "--ip-masq=false",
                "--cgroup-parent=/helvetia-c78cd01352a75489-builder",
            ]
        );
        assert!(settings.bridge().len() <= 15);
        assert!(!arguments.iter().any(|a| a.contains("none")));
    }

    #[test]
    fn any_change_to_how_the_builder_is_started_changes_the_launch_hash() {
        let base = settings();
        let group = CgroupFs::new("/sys/fs/cgroup", cgroup::CgroupVersion::V1).group("g");
        let hash = base.launch_hash(&base.arguments(&group));
        assert_eq!(hash, base.launch_hash(&base.arguments(&group)));
        let mut moved = base.clone();
        moved.bridge_address = "10.214.0.1/24".into();
        assert_ne!(hash, moved.launch_hash(&moved.arguments(&group)));
        let mut binary = base.clone();
        binary.dockerd = "/opt/docker/dockerd".into();
        assert_ne!(hash, binary.launch_hash(&binary.arguments(&group)));
    }
}
