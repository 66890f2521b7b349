//! The flags that set a service's settings (`services create` and `services update`), turned
//! into the API's input: plain settings, and runtime settings as a JSON merge patch.

use clap::Args;
use helvetia_api_types::{PortInput, ServiceInput};
use serde_json::{Value, json};

#[derive(Debug, Args)]
pub struct Settings {
    /// Branch deployed by default [default on create: main].
    #[arg(long)]
    branch: Option<String>,
    /// Dockerfile path in the repository [default on create: Dockerfile].
    #[arg(long)]
    dockerfile: Option<String>,
    /// Build context in the repository [default on create: .].
    #[arg(long)]
    context: Option<String>,
    /// Port the app listens on, or `none` for a worker that serves no HTTP [default on
    /// create: 8080].
    #[arg(long, value_name = "PORT|none")]
    port: Option<String>,
    #[command(flatten)]
    runtime: RuntimeFlags,
}

/// Runtime settings. Each accepts `default` to return to the server's default.
#[derive(Debug, Args)]
pub struct RuntimeFlags {
    /// Memory limit, e.g. 256M or 1G.
    #[arg(long, value_name = "SIZE")]
    memory: Option<String>,
    /// CPU limit in cores, fractions allowed (0.5).
    #[arg(long, value_name = "CORES")]
    cpus: Option<String>,
    /// Maximum number of processes.
    #[arg(long, value_name = "N")]
    pids: Option<String>,
    /// Memory of a build on the isolated builder (all its steps together), e.g. 1G.
    #[arg(long, value_name = "SIZE")]
    build_memory: Option<String>,
    /// CPU of a build in cores, fractions allowed.
    #[arg(long, value_name = "CORES")]
    build_cpus: Option<String>,
    /// Processes of a build.
    #[arg(long, value_name = "N")]
    build_pids: Option<String>,
    /// HTTP path of the health check, or `none` to check only that the port accepts
    /// connections [default: /].
    #[arg(long, value_name = "PATH")]
    health_path: Option<String>,
    /// Healthy HTTP statuses, e.g. 200-299 [default: 200-399].
    #[arg(long, value_name = "MIN-MAX")]
    health_status: Option<String>,
    /// How often a live app is probed [default: 10s].
    #[arg(long, value_name = "DURATION")]
    health_interval: Option<String>,
    /// How long one probe may take [default: 2s].
    #[arg(long, value_name = "DURATION")]
    health_timeout: Option<String>,
    /// Successes before a new container is ready [default: 1].
    #[arg(long, value_name = "N")]
    healthy_threshold: Option<String>,
    /// Failures before a live app counts as unhealthy [default: 3].
    #[arg(long, value_name = "N")]
    unhealthy_threshold: Option<String>,
    /// How long a new container may take to become ready [default: 60s].
    #[arg(long, value_name = "DURATION")]
    startup_timeout: Option<String>,
    /// How long an old container may keep connections after the switch [default: 30s].
    #[arg(long, value_name = "DURATION")]
    drain_timeout: Option<String>,
    /// Between SIGTERM and SIGKILL when a container stops [default: 10s].
    #[arg(long, value_name = "DURATION")]
    stop_grace: Option<String>,
    /// How long a build may take [default: 15m].
    #[arg(long, value_name = "DURATION")]
    build_timeout: Option<String>,
    /// Identical containers to run [default: 1].
    #[arg(long, value_name = "N")]
    replicas: Option<String>,
    /// How a deploy replaces containers: `start-first` (overlap, no downtime) or `recreate`
    /// (stop the old first) [default: recreate with volumes, else start-first].
    #[arg(long, value_name = "STRATEGY")]
    strategy: Option<String>,
    /// Command replacing the image's, split like a shell would (no shell runs it).
    #[arg(long, value_name = "COMMAND")]
    command: Option<String>,
    /// Runs once per deployment before the new version takes traffic (e.g. migrations).
    #[arg(long, value_name = "COMMAND")]
    release_command: Option<String>,
    /// How long a worker must keep running to count as ready [default: 10s].
    #[arg(long, value_name = "DURATION")]
    worker_ready: Option<String>,
    /// How long the release command may run [default: 10m].
    #[arg(long, value_name = "DURATION")]
    release_timeout: Option<String>,
    /// Mount the image's filesystem read-only, `/tmp` staying writable: `true` or `false`
    /// [default: false].
    #[arg(long, value_name = "BOOL")]
    read_only_root: Option<String>,
    /// Capabilities given back to the containers (audited), comma-separated from the engine's
    /// default set, e.g. CHOWN,SETUID,SETGID; `none` for none [default: none].
    #[arg(long, value_name = "CAPS")]
    cap_add: Option<String>,
}

/// `default` (JSON null: back to the default) or the parsed value.
fn setting(
    raw: &Option<String>,
    parse: impl Fn(&str) -> anyhow::Result<Value>,
) -> anyhow::Result<Option<Value>> {
    match raw.as_deref() {
        None => Ok(None),
        Some("default") => Ok(Some(Value::Null)),
        Some(text) => parse(text).map(Some),
    }
}

fn millis(text: &str) -> anyhow::Result<Value> {
    let duration = helvetia_core::units::parse_duration(text)?;
    Ok(json!(
        u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
    ))
}

fn number(text: &str) -> anyhow::Result<Value> {
    Ok(json!(text.parse::<f64>().map_err(|_| anyhow::anyhow!(
        "`{text}` is not a number"
    ))?))
}

/// An argument vector from a command line, split with shell quoting rules.
fn argv(text: &str) -> anyhow::Result<Value> {
    let words = shell_words::split(text).map_err(|e| anyhow::anyhow!("`{text}`: {e}"))?;
    Ok(json!(words))
}

fn strategy(text: &str) -> anyhow::Result<Value> {
    match text {
        "start-first" | "start_first" => Ok(json!("start_first")),
        "recreate" => Ok(json!("recreate")),
        _ => anyhow::bail!("--strategy must be `start-first`, `recreate` or `default`"),
    }
}

fn boolean(text: &str) -> anyhow::Result<Value> {
    match text {
        "true" => Ok(json!(true)),
        "false" => Ok(json!(false)),
        _ => anyhow::bail!("`{text}` is not `true` or `false`"),
    }
}

/// `none` or comma-separated capability names (the server checks them).
fn capabilities(text: &str) -> anyhow::Result<Value> {
    if text == "none" {
        return Ok(json!([]));
    }
    Ok(json!(
        text.split(',')
            .map(|name| name.trim().to_ascii_uppercase())
            .collect::<Vec<_>>()
    ))
}

fn integer(text: &str) -> anyhow::Result<Value> {
    Ok(json!(text.parse::<u64>().map_err(|_| anyhow::anyhow!(
        "`{text}` is not a whole number"
    ))?))
}

impl RuntimeFlags {
    /// The flags given, as a JSON merge patch of the runtime settings.
    fn patch(&self) -> anyhow::Result<Option<Value>> {
        let mut patch = json!({"limits": {}, "build_limits": {}, "health": {}, "timeouts": {}, "security": {}, "top": {}});
        let mut set = |section: &str, key: &str, value: Option<Value>| {
            if let Some(value) = value {
                patch[section][key] = value;
            }
        };
        for (section, memory, cpus, pids) in [
            ("limits", &self.memory, &self.cpus, &self.pids),
            (
                "build_limits",
                &self.build_memory,
                &self.build_cpus,
                &self.build_pids,
            ),
        ] {
            set(
                section,
                "memory_bytes",
                setting(memory, |t| Ok(json!(helvetia_core::units::parse_bytes(t)?)))?,
            );
            set(section, "cpus", setting(cpus, number)?);
            set(section, "pids", setting(pids, integer)?);
        }
        // `none` checks only TCP; a path (or `default`, meaning `/`) checks HTTP.
        match self.health_path.as_deref() {
            Some("none") => set("health", "tcp", Some(json!(true))),
            Some(path) => {
                set("health", "tcp", Some(json!(false)));
                set(
                    "health",
                    "path",
                    setting(&Some(path.to_owned()), |t| Ok(json!(t)))?,
                );
            }
            None => {}
        }
        if let Some(range) = &self.health_status {
            let (min, max) = range
                .split_once('-')
                .ok_or_else(|| anyhow::anyhow!("--health-status must look like 200-399"))?;
            set("health", "status_min", Some(integer(min)?));
            set("health", "status_max", Some(integer(max)?));
        }
        set(
            "health",
            "interval_ms",
            setting(&self.health_interval, millis)?,
        );
        set(
            "health",
            "timeout_ms",
            setting(&self.health_timeout, millis)?,
        );
        set(
            "health",
            "healthy_threshold",
            setting(&self.healthy_threshold, integer)?,
        );
        set(
            "health",
            "unhealthy_threshold",
            setting(&self.unhealthy_threshold, integer)?,
        );
        set(
            "timeouts",
            "startup_ms",
            setting(&self.startup_timeout, millis)?,
        );
        set(
            "timeouts",
            "drain_ms",
            setting(&self.drain_timeout, millis)?,
        );
        set(
            "timeouts",
            "stop_grace_ms",
            setting(&self.stop_grace, millis)?,
        );
        set(
            "timeouts",
            "build_ms",
            setting(&self.build_timeout, millis)?,
        );
        set(
            "timeouts",
            "worker_ready_ms",
            setting(&self.worker_ready, millis)?,
        );
        set(
            "timeouts",
            "release_ms",
            setting(&self.release_timeout, millis)?,
        );
        set(
            "security",
            "read_only_root",
            setting(&self.read_only_root, boolean)?,
        );
        set("security", "cap_add", setting(&self.cap_add, capabilities)?);
        set("top", "replicas", setting(&self.replicas, integer)?);
        set("top", "strategy", setting(&self.strategy, strategy)?);
        set("top", "command", setting(&self.command, argv)?);
        set(
            "top",
            "release_command",
            setting(&self.release_command, argv)?,
        );
        let Value::Object(sections) = &mut patch else {
            return Ok(None);
        };
        // Top-level settings sit beside the sections, not in one.
        if let Some(Value::Object(top)) = sections.remove("top") {
            sections.extend(top);
        }
        sections.retain(|_, section| section.as_object().is_none_or(|s| !s.is_empty()));
        Ok((!sections.is_empty()).then_some(patch))
    }
}

impl Settings {
    /// The settings given, as the API takes them; `repo` only when given.
    pub fn into_input(self, repo: Option<String>) -> anyhow::Result<ServiceInput> {
        let port = match self.port.as_deref() {
            None => None,
            Some("none") => Some(PortInput::Keyword("none".to_owned())),
            Some(port) => {
                Some(PortInput::Number(port.parse().map_err(|_| {
                    anyhow::anyhow!("`{port}` is not a whole number")
                })?))
            }
        };
        Ok(ServiceInput {
            repo,
            branch: self.branch,
            dockerfile: self.dockerfile,
            context: self.context,
            port,
            runtime: self.runtime.patch()?,
            ..ServiceInput::default()
        })
    }
}
