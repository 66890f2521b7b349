//! `helvetia services …`.

use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use crate::GlobalArgs;
use crate::client::Client;
use crate::output;
use crate::target::{self, ServiceTarget};

use super::deployments;

#[derive(Debug, Subcommand)]
pub enum ServicesCommand {
    /// Create a service from a git repository.
    Create {
        /// PROJECT/NAME
        target: ServiceTarget,
        /// Git repository URL (https, ssh, git or user@host:path).
        #[arg(long)]
        repo: String,
        #[command(flatten)]
        settings: Settings,
    },
    /// List services, of all projects or of one.
    List { project: Option<String> },
    /// Show a service: its settings, URL and live deployment.
    Show { target: ServiceTarget },
    /// Change a service's settings.
    Update {
        target: ServiceTarget,
        #[arg(long)]
        repo: Option<String>,
        #[command(flatten)]
        settings: Settings,
    },
    /// Delete a service and its deployment history.
    Delete {
        target: ServiceTarget,
        /// Also delete its volumes and their data (required when it has volumes).
        #[arg(long)]
        delete_volumes: bool,
    },
    /// Run a different number of replicas of the live version (no rebuild).
    Scale {
        target: ServiceTarget,
        replicas: u32,
        /// Return once queued instead of following it.
        #[arg(long)]
        detach: bool,
    },
    /// Restart a service: new containers from the live image, with zero downtime.
    Restart {
        target: ServiceTarget,
        /// Return once queued instead of following it.
        #[arg(long)]
        detach: bool,
    },
    /// Stop a service: off its route, containers drained and removed.
    Stop { target: ServiceTarget },
    /// Start a stopped service again from its last successful deployment.
    Start {
        target: ServiceTarget,
        /// Return once queued instead of following it.
        #[arg(long)]
        detach: bool,
    },
    /// A service's recent events: health changes, restarts, OOM kills.
    Events {
        target: ServiceTarget,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

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

fn integer(text: &str) -> anyhow::Result<Value> {
    Ok(json!(text.parse::<u64>().map_err(|_| anyhow::anyhow!(
        "`{text}` is not a whole number"
    ))?))
}

impl RuntimeFlags {
    /// The flags given, as a JSON merge patch of the runtime settings.
    fn patch(&self) -> anyhow::Result<Option<Value>> {
        let mut patch = json!({"limits": {}, "health": {}, "timeouts": {}, "top": {}});
        let mut set = |section: &str, key: &str, value: Option<Value>| {
            if let Some(value) = value {
                patch[section][key] = value;
            }
        };
        set(
            "limits",
            "memory_bytes",
            setting(&self.memory, |t| {
                Ok(json!(helvetia_core::units::parse_bytes(t)?))
            })?,
        );
        set("limits", "cpus", setting(&self.cpus, number)?);
        set("limits", "pids", setting(&self.pids, integer)?);
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
    fn into_json(self, repo: Option<String>) -> anyhow::Result<Map<String, Value>> {
        let mut body = Map::new();
        if let Some(runtime) = self.runtime.patch()? {
            body.insert("runtime".into(), runtime);
        }
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                body.insert(key.to_owned(), value);
            }
        };
        put("repo", repo.map(Value::from));
        put("branch", self.branch.map(Value::from));
        put("dockerfile", self.dockerfile.map(Value::from));
        put("context", self.context.map(Value::from));
        put(
            "port",
            match self.port.as_deref() {
                None => None,
                Some("none") => Some(json!("none")),
                Some(port) => Some(integer(port)?),
            },
        );
        Ok(body)
    }
}

pub async fn run(command: ServicesCommand, global: &GlobalArgs) -> anyhow::Result<()> {
    let client = Client::from_args(global)?;
    match command {
        ServicesCommand::Create {
            target,
            repo,
            settings,
        } => {
            let mut body = settings.into_json(Some(repo))?;
            body.insert("name".into(), json!(target.service));
            let service = client
                .post(
                    &format!("/api/v1/projects/{}/services", target.project),
                    &Value::Object(body),
                )
                .await?;
            if global.json {
                return output::json(&service);
            }
            println!(
                "Created service {target}. It will be served at {}.",
                output::text(&service, "url")
            );
            println!("Deploy it with: helvetia deploy {target}");
        }
        ServicesCommand::List { project } => {
            let path = match project {
                Some(project) => format!("/api/v1/services?project={}", target::project(&project)?),
                None => "/api/v1/services".to_owned(),
            };
            let services = client.get(&path).await?;
            if global.json {
                return output::json(&services);
            }
            output::table(
                ["SERVICE", "REPOSITORY", "BRANCH", "PORT", "URL"],
                output::array(&services).iter().map(|s| {
                    [
                        format!("{}/{}", output::text(s, "project"), output::text(s, "name")),
                        output::text(s, "repo"),
                        output::text(s, "branch"),
                        output::text(s, "port"),
                        output::text(s, "url"),
                    ]
                }),
            );
        }
        ServicesCommand::Show { target } => {
            let service = client.get(&target.path()).await?;
            if global.json {
                return output::json(&service);
            }
            show(&target, &service);
        }
        ServicesCommand::Update {
            target,
            repo,
            settings,
        } => {
            let body = settings.into_json(repo)?;
            if body.is_empty() {
                anyhow::bail!("nothing to change: pass at least one setting (see --help)");
            }
            let service = client.patch(&target.path(), &Value::Object(body)).await?;
            let redeployment = &service["redeployment"];
            if !redeployment.is_object() {
                if global.json {
                    return output::json(&service);
                }
                println!("Updated service {target}.");
                return Ok(());
            }
            if !global.json {
                println!(
                    "Updated service {target}. The change needs new containers: redeploying with zero downtime."
                );
            }
            return deployments::watch(&client, &target, redeployment, false, global).await;
        }
        ServicesCommand::Restart { target, detach } => {
            let deployment = client
                .post(&format!("{}/restart", target.path()), &json!({}))
                .await?;
            return deployments::watch(&client, &target, &deployment, detach, global).await;
        }
        ServicesCommand::Start { target, detach } => {
            let deployment = client
                .post(&format!("{}/start", target.path()), &json!({}))
                .await?;
            return deployments::watch(&client, &target, &deployment, detach, global).await;
        }
        ServicesCommand::Stop { target } => {
            client
                .post(&format!("{}/stop", target.path()), &json!({}))
                .await?;
            if global.json {
                return output::json(&json!({ "stopping": target.to_string() }));
            }
            println!("Stopping {target}: it leaves its route now; its containers drain and stop.");
        }
        ServicesCommand::Events { target, limit } => {
            let events = client
                .get(&format!("{}/events?limit={limit}", target.path()))
                .await?;
            if global.json {
                return output::json(&events);
            }
            print_events(&events);
        }
        ServicesCommand::Scale {
            target,
            replicas,
            detach,
        } => {
            let service = client
                .patch(
                    &target.path(),
                    &json!({ "runtime": { "replicas": replicas } }),
                )
                .await?;
            let redeployment = &service["redeployment"];
            if !redeployment.is_object() {
                if global.json {
                    return output::json(&service);
                }
                println!("{target} will run {replicas} replica(s) from its next deployment.");
                return Ok(());
            }
            if !global.json {
                println!("Scaling {target} to {replicas} replica(s) with zero downtime.");
            }
            return deployments::watch(&client, &target, redeployment, detach, global).await;
        }
        ServicesCommand::Delete {
            target,
            delete_volumes,
        } => {
            let path = if delete_volumes {
                format!("{}?delete_volumes=true", target.path())
            } else {
                target.path()
            };
            client.delete(&path).await?;
            if global.json {
                return output::json(&json!({ "deleted": target.to_string() }));
            }
            println!("Deleted service {target}.");
        }
    }
    Ok(())
}

fn show(target: &ServiceTarget, service: &Value) {
    let status = &service["status"];
    let live = &status["live_deployment"];
    let live_text = if live.is_object() {
        format!(
            "#{} ({} {}, live since {})",
            output::text(live, "id"),
            output::short_sha(live, "commit_sha"),
            output::first_line(live, "commit_message", 50),
            output::time(live, "finished_at"),
        )
    } else {
        "nothing (not deployed, or stopped)".to_owned()
    };
    let runtime = &service["runtime"];
    let limits = &runtime["limits"];
    let health = &runtime["health"];
    let or_default = |value: &Value, show: &dyn Fn(&Value) -> String| {
        if value.is_null() {
            "server default".to_owned()
        } else {
            show(value)
        }
    };
    output::fields(&[
        ("Service", target.to_string()),
        ("URL", output::text(service, "url")),
        ("Live", live_text),
        (
            "Health",
            status["health"].as_str().unwrap_or("-").to_owned(),
        ),
        ("Repository", output::text(service, "repo")),
        ("Branch", output::text(service, "branch")),
        ("Dockerfile", output::text(service, "dockerfile")),
        ("Context", output::text(service, "context")),
        (
            "Port",
            if service["port"].is_null() {
                "none (a worker: no route)".to_owned()
            } else {
                output::text(service, "port")
            },
        ),
        ("Replicas", output::text(runtime, "replicas")),
        (
            "Strategy",
            or_default(&runtime["strategy"], &|v| {
                v.as_str().unwrap_or_default().replace('_', "-")
            }),
        ),
        (
            "Command",
            if runtime["command"].is_null() {
                "the image's".to_owned()
            } else {
                command_line(&runtime["command"])
            },
        ),
        (
            "Release command",
            if runtime["release_command"].is_null() {
                "none".to_owned()
            } else {
                command_line(&runtime["release_command"])
            },
        ),
        (
            "Health check",
            if health["tcp"] == true {
                format!(
                    "TCP connect, every {}s",
                    health["interval_ms"].as_u64().unwrap_or(0) / 1000
                )
            } else {
                format!(
                    "GET {} expecting {}-{}, every {}s",
                    output::text(health, "path"),
                    health["status_min"],
                    health["status_max"],
                    health["interval_ms"].as_u64().unwrap_or(0) / 1000
                )
            },
        ),
        (
            "Memory",
            or_default(&limits["memory_bytes"], &|v| {
                format!("{} MiB", v.as_u64().unwrap_or(0) >> 20)
            }),
        ),
        ("CPUs", or_default(&limits["cpus"], &|v| v.to_string())),
        ("Created", output::time(service, "created_at")),
        ("Updated", output::time(service, "updated_at")),
    ]);
    let containers = output::array(&status["containers"]);
    if !containers.is_empty() {
        println!();
        output::table(
            ["CONTAINER", "ADDRESS", "STATE", "HEALTH"],
            containers.iter().map(|c| {
                [
                    output::text(c, "name"),
                    format!("{}:{}", output::text(c, "address"), output::text(c, "port")),
                    output::text(c, "state"),
                    output::text(c, "health"),
                ]
            }),
        );
    }
    if !output::array(&status["events"]).is_empty() {
        println!();
        print_events(&status["events"]);
    }
}

/// An argument vector as a command line a person could paste.
fn command_line(argv: &Value) -> String {
    let words: Vec<&str> = output::array(argv)
        .iter()
        .filter_map(Value::as_str)
        .collect();
    shell_words::join(words)
}

fn print_events(events: &Value) {
    output::table(
        ["TIME", "EVENT", "CONTAINER", "MESSAGE"],
        output::array(events).iter().map(|e| {
            [
                output::time(e, "at"),
                output::text(e, "kind"),
                output::text(e, "container"),
                output::text(e, "message"),
            ]
        }),
    );
}
