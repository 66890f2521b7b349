//! Servers, repositories and clients for end-to-end tests and benchmarks: a real
//! `helvetia server` process (with its own data dir, ports, Traefik and network pool), git
//! repositories holding `fixtures/apps`, a DNS and an HTTP server on loopback for outbound
//! tests, a fake GitHub ([`github`]), Pebble and pebble-challtestsrv for certificates
//! ([`pebble`]), a fake of Cloudflare's DNS API ([`cloudflare`]), and helpers to wait for
//! conditions without sleeping.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod bench;
pub mod cloudflare;
pub mod database;
pub mod dns;
mod engine;
mod failpoints;
pub mod fault;
pub mod github;
pub mod http;
pub mod load;
pub mod oidc;
pub mod pebble;
mod repo;
mod server_api;
mod store;

pub use engine::{project_containers, project_volumes, remove_project_objects};
pub use repo::FixtureRepo;

/// Waits until `check` returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A port nothing listens on now, and that this process has not handed out before: a port
/// handed out is not bound until its server starts, and the kernel may offer it again
/// meanwhile (to a CA started between a test server's preparation and its start).
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut given = GIVEN
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// A distinct /20 per test server, so parallel servers rarely compete for subnets (when they
/// do, the server moves on to a free one).
fn network_pool() -> String {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("10.{}.{}.0/20", 128 + (n / 16) % 64, (n % 16) * 16)
}

fn traefik_binary() -> String {
    std::env::var("HELVETIA_TRAEFIK_BIN").unwrap_or_else(|_| "traefik".into())
}

/// Sends `request`; its status and its body, as JSON when it is.
pub async fn answer(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// An HTTP client for tests: no proxy (tests talk to this machine only), rustls ready.
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// A project name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{:08x}", rand::random::<u32>())
}

/// A `helvetia server` process with its own data dir, ports and Traefik.
pub struct TestServer {
    /// The `helvetia` binary under test (Cargo tells only the `helvetia` package's own test
    /// and bench targets where it is, so they pass it in).
    pub binary: PathBuf,
    pub dir: tempfile::TempDir,
    pub api_port: u16,
    pub http_port: u16,
    traefik_api_port: u16,
    pool: String,
    /// `DOCKER_HOST` for the server: a [`fault::SecondEngine`] or a [`fault::DockerProxy`], or
    /// the host's engine when unset.
    docker_host: Option<String>,
    /// Extra arguments for `helvetia server`.
    pub extra_args: Vec<String>,
    process: Option<Child>,
    pub token: String,
    http: reqwest::Client,
}

impl TestServer {
    pub async fn start(binary: &str) -> TestServer {
        TestServer::start_with(binary, &[]).await
    }

    /// A server with extra `helvetia server` arguments.
    pub async fn start_with(binary: &str, extra_args: &[&str]) -> TestServer {
        TestServer::start_engine(binary, extra_args, None, |_| {}).await
    }

    /// A server on the host's engine reached through `docker_host` (a [`fault::DockerProxy`]).
    pub async fn start_through(binary: &str, docker_host: &str) -> TestServer {
        let mut server = TestServer::unlaunched(binary, &[], network_pool(), Some(docker_host));
        server.launch_first().await;
        server
    }

    /// A server not started yet, whose ports are known: a test starts what must know them
    /// (a CA validating on its HTTP port), then [`TestServer::launch_with`].
    pub fn prepare(binary: &str) -> TestServer {
        TestServer::unlaunched(binary, &[], network_pool(), None)
    }

    /// Starts a [`TestServer::prepare`]d server with extra `helvetia server` arguments.
    pub async fn launch_with(&mut self, extra_args: &[&str]) {
        self.extra_args = extra_args.iter().map(|a| a.to_string()).collect();
        std::fs::create_dir_all(self.data_dir()).unwrap();
        self.launch_first().await;
    }

    /// A server whose data directory `prepare` sets up before the server first starts (a
    /// test mounts a filesystem there).
    pub async fn start_prepared(
        binary: &str,
        extra_args: &[&str],
        prepare: impl FnOnce(&Path),
    ) -> TestServer {
        TestServer::start_engine(binary, extra_args, None, prepare).await
    }

    /// A server whose containers run on `engine` (its network pool is routed from the host, so
    /// the server and its Traefik reach them), for a test that restarts or kills the engine.
    pub async fn start_on(
        binary: &str,
        engine: &fault::SecondEngine,
        extra_args: &[&str],
    ) -> TestServer {
        TestServer::start_engine(binary, extra_args, Some(engine), |_| {}).await
    }

    /// A server on `second_engine`, or on the host's engine that all other tests share.
    async fn start_engine(
        binary: &str,
        extra_args: &[&str],
        second_engine: Option<&fault::SecondEngine>,
        prepare: impl FnOnce(&Path),
    ) -> TestServer {
        let pool = second_engine.map_or_else(network_pool, |e| e.network_pool());
        let docker_host = second_engine.map(|e| e.docker_host());
        let mut server = TestServer::unlaunched(binary, extra_args, pool, docker_host.as_deref());
        std::fs::create_dir_all(server.data_dir()).unwrap();
        prepare(&server.data_dir());
        server.launch_first().await;
        server
    }

    fn unlaunched(
        binary: &str,
        extra_args: &[&str],
        pool: String,
        docker_host: Option<&str>,
    ) -> TestServer {
        TestServer {
            binary: PathBuf::from(binary),
            dir: tempfile::tempdir().unwrap(),
            api_port: free_port(),
            http_port: free_port(),
            traefik_api_port: free_port(),
            pool,
            docker_host: docker_host.map(str::to_owned),
            extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
            process: None,
            token: String::new(),
            http: http_client(),
        }
    }

    /// Starts the server for the first time and reads the admin token it made.
    async fn launch_first(&mut self) {
        self.launch().await;
        self.token = std::fs::read_to_string(self.data_dir().join("admin-token"))
            .unwrap()
            .trim()
            .to_owned();
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts the server process (again) and waits until it answers healthy.
    pub async fn launch(&mut self) {
        self.launch_answering(200).await;
    }

    /// Starts the server process (again) and waits until `/healthz` answers `status` (503: it
    /// runs degraded).
    pub async fn launch_answering(&mut self, status: u16) {
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .unwrap();
        let mut command = Command::new(&self.binary);
        command
            .args(["server", "--data-dir"])
            .arg(self.data_dir())
            .args(["--listen", &format!("127.0.0.1:{}", self.api_port)])
            .args(["--http-address", &format!("127.0.0.1:{}", self.http_port)])
            .args(["--traefik-bin", &traefik_binary()]);
        // A managed Traefik gets its API port; an external one is the test's business.
        if !self.extra_args.iter().any(|a| a == "external") {
            command.args([
                "--traefik-api",
                &format!("127.0.0.1:{}", self.traefik_api_port),
            ]);
        }
        // Builds run in the host engine unless a test asks for the isolated builder: a
        // builder engine per test server (half a second to start, ~120 MB of dockerd and
        // containerd, a bridge and a control group) is too much for the whole suite on two
        // cores; the isolated builder has tests of its own (`builder::`).
        if !self.extra_args.iter().any(|a| a == "--builder") {
            command.args(["--builder", "host"]);
        }
        std::fs::create_dir_all(self.failpoints_dir()).unwrap();
        command
            .env(failpoints::DIR_ENV, self.failpoints_dir())
            .args(["--network-pool", &self.pool])
            .args(["--shutdown-grace", "5s"])
            .arg("--allow-local-repos")
            .args(&self.extra_args);
        if let Some(docker_host) = &self.docker_host {
            command.env("DOCKER_HOST", docker_host);
        }
        let child = command
            .env(
                "HELVETIA_LOG",
                "info,helvetia_server=debug,helvetia_engine=debug",
            )
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.process = Some(child);
        let url = format!("{}/healthz", self.url());
        // A server on a database or engine of its own starts slower on a busy machine (its
        // migrations, its Traefik behind the port gate).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(response) = self.http.get(&url).send().await
                && response.status().as_u16() == status
            {
                return;
            }
            // A server that exited, or never answers, says why in its own log.
            let exited = self
                .process
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten());
            if exited.is_some() || tokio::time::Instant::now() > deadline {
                let log = self.log();
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                panic!(
                    "the server did not answer /healthz with {status} ({}); its log ends:\n{}",
                    exited.map_or("within 60 s".to_owned(), |code| format!(
                        "it exited: {code}"
                    )),
                    tail.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.api_port)
    }

    /// The server's own log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Waits until the app of `host` answers 200 through the edge (again).
    pub async fn wait_answering(&self, host: &str, timeout: Duration) {
        eventually(timeout, "the app to answer again", || async {
            let answer = self.through_edge(host, "/").await;
            (answer.map(|(status, _)| status) == Some(200)).then_some(())
        })
        .await;
    }

    /// How many times the monitor subscribed to the engine's events (and caught up first):
    /// one more after an engine restart once it has reconnected.
    pub fn monitor_subscriptions(&self) -> usize {
        self.log()
            .matches("caught up with the engine; following its events")
            .count()
    }

    /// SIGKILL: the server gets no chance to clean up.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.process.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Stops the Traefik the server started, which outlives the server on purpose.
    pub fn stop_traefik(&self) {
        stop_traefik(&self.data_dir());
    }

    /// The pid of the Traefik the server started, from its pid file.
    pub fn traefik_pid(&self) -> Option<String> {
        let record = std::fs::read_to_string(self.data_dir().join("traefik/traefik.pid")).ok()?;
        record.lines().next().map(str::to_owned)
    }

    /// SIGTERM, then waits for a graceful exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.process.take().expect("server running");
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        child.wait().unwrap()
    }

    /// Runs `helvetia server --data-dir <data_dir> <action>` (`rotate-key`, `admin-token`).
    pub fn server_action(&self, data_dir: &Path, action: &str) -> Output {
        Command::new(&self.binary)
            .args(["server", "--data-dir"])
            .arg(data_dir)
            .arg(action)
            .output()
            .unwrap()
    }

    /// Another `helvetia server` on this server's data dir, for tests of start-up refusals:
    /// an external Traefik and an API port of its own (port 0), so it never touches the
    /// default port another Helvetia on this machine may hold.
    pub fn another_server_command(&self) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .args(["server", "--data-dir"])
            .arg(self.data_dir())
            .args(["--listen", "127.0.0.1:0"])
            .args(["--traefik", "external", "--traefik-dynamic-dir"])
            .arg(self.dir.path())
            .args(["--builder", "host"]);
        command
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
        stop_traefik(&self.data_dir());
        stop_builder(&self.data_dir());
        stop_registry(&self.data_dir());
    }
}

/// Stops the registry a test server started with `--registry-address` (it outlives the server
/// on purpose), if the pid recorded still is that registry.
fn stop_registry(data_dir: &Path) {
    let state = data_dir.join("registry");
    let Ok(record) = std::fs::read_to_string(state.join("registry.pid")) else {
        return;
    };
    let Some(pid) = record.lines().next() else {
        return;
    };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let config = state.join("config.yml");
    if cmdline
        .split(|&b| b == 0)
        .any(|argument| argument == config.as_os_str().as_encoded_bytes())
    {
        let _ = Command::new("kill").args(["-TERM", pid]).status();
    }
}

/// Stops the builder engine a test server started with `--builder isolated` (it outlives the
/// server on purpose) and removes its bridge and control group, read from its command line.
pub fn stop_builder(data_dir: &Path) {
    let Ok(record) = std::fs::read_to_string(data_dir.join("builder").join("builder.pid")) else {
        return;
    };
    let Some(pid) = record.lines().next().map(str::to_owned) else {
        return;
    };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let data_root = format!(
        "--data-root={}",
        data_dir.join("builder").join("data").display()
    );
    let arguments: Vec<String> = cmdline
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    if !arguments.contains(&data_root) {
        return;
    }
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    for _ in 0..600 {
        if !Path::new(&format!("/proc/{pid}")).exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let value = |flag: &str| {
        arguments
            .iter()
            .find_map(|a| a.strip_prefix(flag).map(str::to_owned))
    };
    if let Some(bridge) = value("--bridge=") {
        let _ = Command::new("ip").args(["link", "del", &bridge]).output();
    }
    if let Some(group) = value("--cgroup-parent=/") {
        for controller in ["memory", "cpu", "pids"] {
            let group = Path::new("/sys/fs/cgroup").join(controller).join(&group);
            let _ = std::fs::remove_dir(group.join("buildkit"));
            let _ = std::fs::remove_dir(group);
        }
    }
}

/// Stops the Traefik a test server started (it outlives the server on purpose).
fn stop_traefik(data_dir: &Path) {
    let pid_file = data_dir.join("traefik").join("traefik.pid");
    if let Ok(text) = std::fs::read_to_string(pid_file)
        && let Some(pid) = text.split_whitespace().next()
    {
        let _ = Command::new("kill").args(["-TERM", pid]).status();
    }
}
