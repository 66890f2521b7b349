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
    Delete { target: ServiceTarget },
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
    /// Port the app listens on [default on create: 8080].
    #[arg(long)]
    port: Option<i64>,
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

fn integer(text: &str) -> anyhow::Result<Value> {
    Ok(json!(text.parse::<u64>().map_err(|_| anyhow::anyhow!(
        "`{text}` is not a whole number"
    ))?))
}

impl RuntimeFlags {
    /// The flags given, as a JSON merge patch of the runtime settings.
    fn patch(&self) -> anyhow::Result<Option<Value>> {
        let mut patch = json!({"limits": {}, "health": {}, "timeouts": {}});
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
        let Value::Object(sections) = &mut patch else {
            return Ok(None);
        };
        sections.retain(|_, section| section.as_object().is_some_and(|s| !s.is_empty()));
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
        put("port", self.port.map(Value::from));
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
        ServicesCommand::Delete { target } => {
            client.delete(&target.path()).await?;
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
        ("Port", output::text(service, "port")),
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
