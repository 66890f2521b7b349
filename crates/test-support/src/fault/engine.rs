//! A second, real Docker engine that a test may restart, kill or starve without touching the
//! engine every other test shares.
//!
//! Each engine lives in a network namespace of its own (`hvt<slot>`): its `dockerd` and its
//! `containerd` (started separately, as a distribution's service would be, so that killing
//! `dockerd` leaves the containers to `containerd` as on a real server) keep their state, sockets
//! and pid files under `LOCK_DIR/hvt<slot>/`, and its containers run under the cgroup
//! `/hvt<slot>`. The slot (0..48) picks an address block of its own, `10.(200 + slot).0.0/16`:
//!
//! - a veth pair `hvt<slot>h` (host, `.255.1/30`) – `hvt<slot>n` (namespace, `.255.2/30`);
//! - the engine's default bridge `.254.1/24`, its default address pools in `.128.0/18`;
//! - [`SecondEngine::network_pool`] (`.0.0/17`) for the networks a Helvetia server creates;
//! - one host route for the whole block through the namespace's end of the veth.
//!
//! So the host (a test, a `helvetia server`, its Traefik) reaches every container of the second
//! engine by its address, as Helvetia reaches containers on the host engine; the namespace has
//! no default route, so nothing in it reaches anything but the host. `dockerd` runs under
//! `nsenter --net`, not `ip netns exec` (which remounts `/sys`, and `dockerd` then fails with
//! "Devices cgroup isn't mounted"). Never give a second engine `--bridge none` on the host's
//! namespace: it deletes the host engine's `docker0`.
//!
//! Tried (`tests/it/faults.rs`): a `helvetia server` on the host pointed at it
//! (`TestServer::start_on`) builds there (BuildKit over the engine's socket), starts the
//! container, and its Traefik routes to it. Starting takes about 1 s; a restart with
//! `live-restore` about 0.7 s and keeps the containers running (same start time), one without
//! stops them (each after its stop timeout) and on start restarts those with a restart policy.
//! After `kill_dockerd` the containers keep running under `containerd` and keep answering.
//!
//! Removal (drop, or the next run after a crash) kills what runs in the cgroup and the
//! namespace, unmounts what the engine mounted under its directory, deletes the namespace
//! (which deletes the veth and the route) and the directory.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::{Claim, LOCK_DIR, run};

mod removal;

pub use removal::engine_leftovers;
use removal::remove;
pub(super) use removal::remove_stale;

/// Address blocks `10.200.0.0/16` … `10.247.0.0/16`.
const SLOTS: u8 = 48;
const FIRST_BLOCK: u8 = 200;

/// How the second engine runs.
#[derive(Clone, Debug, Default)]
pub struct EngineOptions {
    /// `dockerd --live-restore`: containers keep running while the engine is down.
    pub live_restore: bool,
    /// More `dockerd` arguments (`--insecure-registry <host_address>:<port>`, …).
    pub extra_args: Vec<String>,
}

/// How long a restart took: until `dockerd` had exited, then until it answered again.
#[derive(Clone, Copy, Debug)]
pub struct RestartTimes {
    pub stop: Duration,
    pub start: Duration,
}

/// A `dockerd` (and `containerd`) in a network namespace of its own, removed when dropped.
pub struct SecondEngine {
    slot: u8,
    options: EngineOptions,
    containerd: Option<Child>,
    dockerd: Option<Child>,
    _claim: Claim,
}

impl SecondEngine {
    /// Starts a second engine on a free slot, after removing what crashed runs left behind.
    pub fn start(options: EngineOptions) -> SecondEngine {
        super::remove_stale_once();
        let first = rand::random::<u8>() % SLOTS;
        let (slot, claim) = (0..SLOTS)
            .map(|n| (first + n) % SLOTS)
            .find_map(|slot| Claim::try_take(&name(slot)).map(|claim| (slot, claim)))
            .expect("all second-engine slots are taken");
        // A slot whose lock was free may hold what a crashed run left.
        remove(slot);
        let mut engine = SecondEngine {
            slot,
            options,
            containerd: None,
            dockerd: None,
            _claim: claim,
        };
        engine.create_namespace();
        engine.containerd = Some(engine.spawn_containerd());
        engine.start_dockerd();
        engine
    }

    fn dir(&self) -> PathBuf {
        dir(self.slot)
    }

    /// The first two octets of this engine's address block.
    fn block(&self) -> String {
        format!("10.{}", FIRST_BLOCK + self.slot)
    }

    /// The engine's API socket.
    pub fn socket(&self) -> PathBuf {
        self.dir().join("docker.sock")
    }

    /// `DOCKER_HOST` for clients of this engine (a `helvetia server`, the `docker` CLI).
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    /// The namespace's end of the veth: ports the engine's containers publish are here, and a
    /// Swarm on the host reaches this engine here.
    pub fn address(&self) -> String {
        format!("{}.255.2", self.block())
    }

    /// The host's end of the veth: what this engine's containers (and a Swarm join) reach of
    /// the host, such as a registry listening there.
    pub fn host_address(&self) -> String {
        format!("{}.255.1", self.block())
    }

    /// The cgroup its containers (and its builds' steps) run under, for limits on all of them
    /// together (`/sys/fs/cgroup/memory<cgroup>/memory.limit_in_bytes` on cgroup v1).
    pub fn cgroup(&self) -> String {
        format!("/{}", self.name())
    }

    /// Addresses for a Helvetia server's `--network-pool` on this engine, routed from the host.
    pub fn network_pool(&self) -> String {
        format!("{}.0.0/17", self.block())
    }

    fn create_namespace(&self) {
        let name = self.name();
        let (host_end, namespace_end) = (format!("{name}h"), format!("{name}n"));
        let block = self.block();
        std::fs::create_dir_all(self.dir()).unwrap();
        run("ip", &["netns", "add", &name]);
        run(
            "ip",
            &[
                "link",
                "add",
                &host_end,
                "type",
                "veth",
                "peer",
                "name",
                &namespace_end,
                "netns",
                &name,
            ],
        );
        run(
            "ip",
            &[
                "addr",
                "add",
                &format!("{}/30", self.host_address()),
                "dev",
                &host_end,
            ],
        );
        run("ip", &["link", "set", &host_end, "up"]);
        let in_namespace = |args: &[&str]| {
            run(
                "nsenter",
                &[&[&format!("--net=/var/run/netns/{name}"), "ip"], args].concat(),
            )
        };
        in_namespace(&[
            "addr",
            "add",
            &format!("{}/30", self.address()),
            "dev",
            &namespace_end,
        ]);
        in_namespace(&["link", "set", &namespace_end, "up"]);
        in_namespace(&["link", "set", "lo", "up"]);
        run(
            "ip",
            &[
                "route",
                "add",
                &format!("{block}.0.0/16"),
                "via",
                &self.address(),
                "dev",
                &host_end,
            ],
        );
    }

    /// A command that runs `program` in this engine's network namespace, its output appended
    /// to `<program>.log` in the engine's directory.
    fn in_namespace(&self, program: &str) -> Command {
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(self.dir().join(format!("{program}.log")))
            .unwrap();
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--net=/var/run/netns/{}", self.name()))
            .arg(program)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        command
    }

    fn spawn_containerd(&self) -> Child {
        let dir = self.dir();
        let config = dir.join("containerd.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{0}/containerd/root\"\nstate = \"{0}/containerd/state\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{0}/containerd.sock\"\n\
                 [plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"{0}/containerd/opt\"\n",
                dir.display()
            ),
        )
        .unwrap();
        self.in_namespace("containerd")
            .arg("--config")
            .arg(&config)
            .spawn()
            .unwrap()
    }

    /// Starts `dockerd` and waits until it answers.
    pub fn start_dockerd(&mut self) {
        assert!(self.dockerd.is_none(), "the second engine runs already");
        let dir = self.dir();
        // An empty configuration: the host's /etc/docker/daemon.json is not this engine's.
        std::fs::write(dir.join("daemon.json"), "{}").unwrap();
        let block = self.block();
        let mut command = self.in_namespace("dockerd");
        command
            .arg("--config-file")
            .arg(dir.join("daemon.json"))
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("docker.pid"))
            .arg("--containerd")
            .arg(dir.join("containerd.sock"))
            .args(["-H", &self.docker_host()])
            .args(["--cgroup-parent", &self.cgroup()])
            .args(["--bip", &format!("{block}.254.1/24")])
            .args([
                "--default-address-pool",
                &format!("base={block}.128.0/18,size=24"),
            ]);
        if self.options.live_restore {
            command.arg("--live-restore");
        }
        command.args(&self.options.extra_args);
        self.dockerd = Some(command.spawn().unwrap());
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.docker(&["version"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "the second engine did not answer within 60 s:\n{}",
                self.log()
            );
            if let Some(status) = self.dockerd.as_mut().unwrap().try_wait().unwrap() {
                panic!("dockerd exited ({status}):\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM to `dockerd`, and waits for it to exit (it stops the containers first unless
    /// it runs with `live-restore`).
    pub fn stop_dockerd(&mut self) {
        let mut dockerd = self.dockerd.take().expect("the second engine runs");
        run("kill", &["-TERM", &dockerd.id().to_string()]);
        dockerd.wait().unwrap();
    }

    /// SIGKILL to `dockerd`: it gets no chance to stop anything; `containerd` keeps the
    /// containers running.
    pub fn kill_dockerd(&mut self) {
        let mut dockerd = self.dockerd.take().expect("the second engine runs");
        dockerd.kill().unwrap();
        dockerd.wait().unwrap();
    }

    /// Stops `dockerd` and starts it again.
    pub fn restart(&mut self) -> RestartTimes {
        let begin = Instant::now();
        self.stop_dockerd();
        let stopped = Instant::now();
        self.start_dockerd();
        RestartTimes {
            stop: stopped - begin,
            start: stopped.elapsed(),
        }
    }

    /// Runs the `docker` CLI against this engine.
    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new("/usr/bin/docker")
            .args(["-H", &self.docker_host()])
            .args(args)
            .output()
            .unwrap()
    }

    /// Runs the `docker` CLI against this engine, expects success, and returns its output.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let output = self.docker(args);
        assert!(
            output.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// Copies image `tag` from the host's engine into this one (`docker save | docker load`).
    pub fn load_image(&self, tag: &str) {
        let mut save = Command::new("/usr/bin/docker")
            .args(["save", tag])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let load = Command::new("/usr/bin/docker")
            .args(["-H", &self.docker_host(), "load", "--quiet"])
            .stdin(save.stdout.take().unwrap())
            .output()
            .unwrap();
        assert!(save.wait().unwrap().success(), "docker save {tag}");
        assert!(
            load.status.success(),
            "docker load {tag}: {}",
            String::from_utf8_lossy(&load.stderr)
        );
    }

    /// The address of `container` on its (first) network, reachable from the host.
    pub fn container_address(&self, container: &str) -> String {
        self.docker_ok(&[
            "inspect",
            "--format",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
            container,
        ])
        .split_whitespace()
        .next()
        .unwrap_or_else(|| panic!("{container} has no address"))
        .to_owned()
    }

    /// What `dockerd` and `containerd` logged, for failure messages.
    pub fn log(&self) -> String {
        ["dockerd", "containerd"]
            .iter()
            .map(|program| {
                std::fs::read_to_string(self.dir().join(format!("{program}.log")))
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// This engine's name (`hvt<slot>`: its namespace, cgroup and directory), for
    /// [`engine_leftovers`] once it is dropped.
    pub fn name(&self) -> String {
        name(self.slot)
    }
}

impl Drop for SecondEngine {
    fn drop(&mut self) {
        remove(self.slot);
        // Reaped here: `remove` killed them.
        for mut child in [self.dockerd.take(), self.containerd.take()]
            .into_iter()
            .flatten()
        {
            let _ = child.wait();
        }
    }
}

fn name(slot: u8) -> String {
    format!("hvt{slot:02}")
}

fn slot_of(name: &str) -> u8 {
    name.trim_start_matches("hvt").parse().unwrap()
}

fn dir(slot: u8) -> PathBuf {
    Path::new(LOCK_DIR).join(name(slot))
}
