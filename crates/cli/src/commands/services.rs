//! `helvetia services …`.

use clap::Subcommand;
use helvetia_api_types::{
    CreateService, Deployment, DetectedStack, GitHubSource, Health, ServiceEvent, ServiceInput,
    ServiceSettings, ServiceView, UpdatedService,
};
use helvetia_core::runtime::DeployStrategy;
use serde_json::json;

use crate::GlobalArgs;
use crate::client::Client;
use crate::output;
use crate::target::{self, ServiceTarget};

use super::deployments;
use super::image_source::ImageArgs;
use super::settings::Settings;

#[derive(Debug, Subcommand)]
pub enum ServicesCommand {
    /// Create a service from a git repository (or a registry image, with --image).
    Create {
        /// PROJECT/NAME
        target: ServiceTarget,
        /// Git repository URL (https, ssh, git or user@host:path).
        #[arg(
            long,
            required_unless_present_any = ["github", "image"],
            conflicts_with_all = ["github", "image"]
        )]
        repo: Option<String>,
        /// A GitHub repository (OWNER/NAME) the instance's GitHub App reaches: its clone URL
        /// and default branch are filled in, and private clones use the App's tokens.
        #[arg(long, value_name = "OWNER/NAME")]
        github: Option<String>,
        /// The App installation granting `--github` (default: the one on its owner).
        #[arg(long, requires = "github")]
        installation: Option<i64>,
        #[command(flatten)]
        image: ImageArgs,
        #[command(flatten)]
        settings: Settings,
    },
    /// List services, of all projects or of one.
    List { project: Option<String> },
    /// Show a service: its settings, URL and live deployment.
    Show { target: ServiceTarget },
    /// Show what the service's repository is built with: its Dockerfile, or the Dockerfile
    /// Helvetia generates for the stack it detects (print it to commit and own it).
    Detect { target: ServiceTarget },
    /// Change a service's settings.
    Update {
        target: ServiceTarget,
        #[arg(long, conflicts_with = "image")]
        repo: Option<String>,
        #[command(flatten)]
        image: ImageArgs,
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

pub async fn run(command: ServicesCommand, global: &GlobalArgs) -> anyhow::Result<()> {
    let client = Client::from_args(global)?;
    match command {
        ServicesCommand::Create {
            target,
            repo,
            github,
            installation,
            image,
            settings,
        } => {
            let input = settings.into_input(None)?;
            let (registry_user, registry_password) = image.login()?;
            let body = CreateService {
                name: target.service.to_string(),
                repo,
                image: image.image,
                registry_user,
                registry_password,
                github: github.map(|repository| GitHubSource {
                    repository,
                    installation_id: installation,
                }),
                branch: input.branch,
                dockerfile: input.dockerfile,
                context: input.context,
                port: input.port,
                runtime: input.runtime,
            };
            let service = client
                .post::<ServiceView>(
                    &format!("/api/v1/projects/{}/services", target.project),
                    &body,
                )
                .await?;
            if global.json {
                return output::json(&service.json);
            }
            println!(
                "Created service {target}. It will be served at {}.",
                service.body.url
            );
            println!("Deploy it with: helvetia deploy {target}");
        }
        ServicesCommand::List { project } => {
            let path = match project {
                Some(project) => format!("/api/v1/services?project={}", target::project(&project)?),
                None => "/api/v1/services".to_owned(),
            };
            let services = client.get::<Vec<ServiceView>>(&path).await?;
            if global.json {
                return output::json(&services.json);
            }
            output::table(
                ["SERVICE", "REPOSITORY", "BRANCH", "PORT", "URL"],
                services.body.iter().map(|s| {
                    [
                        format!("{}/{}", s.project, s.name),
                        source(&s.settings),
                        s.settings.branch.clone(),
                        output::or_dash(s.settings.port),
                        s.url.clone(),
                    ]
                }),
            );
        }
        ServicesCommand::Show { target } => {
            let service = client.get::<ServiceView>(&target.path()).await?;
            if global.json {
                return output::json(&service.json);
            }
            show(&target, &service.body);
        }
        ServicesCommand::Detect { target } => {
            let detected = client
                .get::<DetectedStack>(&format!("{}/detect", target.path()))
                .await?;
            if global.json {
                return output::json(&detected.json);
            }
            let detected = detected.body;
            match (
                &detected.dockerfile_path,
                &detected.dockerfile,
                &detected.problem,
            ) {
                (Some(path), _, _) => {
                    println!("{target} builds with the repository's own {path}.")
                }
                (None, Some(dockerfile), _) => {
                    eprintln!(
                        "No Dockerfile in the repository: detected {} ({}). Generated Dockerfile:",
                        detected.stack.map_or("a stack", |kind| kind.title()),
                        detected.found.join(", ")
                    );
                    print!("{dockerfile}");
                }
                (None, None, problem) => {
                    anyhow::bail!("{}", problem.as_deref().unwrap_or("nothing detected"))
                }
            }
        }
        ServicesCommand::Update {
            target,
            repo,
            image,
            settings,
        } => {
            let input = image.apply(settings.into_input(repo)?)?;
            if input == ServiceInput::default() {
                anyhow::bail!("nothing to change: pass at least one setting (see --help)");
            }
            let updated = client
                .patch_current::<UpdatedService>(&target.path(), &input)
                .await?;
            let redeployment = updated.body.redeployment.as_ref();
            if !global.json {
                match redeployment {
                    Some(_) => println!(
                        "Updated service {target}. The change needs new containers: redeploying with zero downtime."
                    ),
                    None => println!("Updated service {target}."),
                }
            }
            return deployments::watch_change(
                &client,
                &target,
                &updated.json,
                redeployment,
                false,
                global,
            )
            .await;
        }
        ServicesCommand::Restart { target, detach } => {
            let deployment = client
                .post::<Deployment>(&format!("{}/restart", target.path()), &())
                .await?;
            return deployments::watch_queued(&client, &target, &deployment, detach, global).await;
        }
        ServicesCommand::Start { target, detach } => {
            let deployment = client
                .post::<Deployment>(&format!("{}/start", target.path()), &())
                .await?;
            return deployments::watch_queued(&client, &target, &deployment, detach, global).await;
        }
        ServicesCommand::Stop { target } => {
            client
                .post::<()>(&format!("{}/stop", target.path()), &())
                .await?;
            if global.json {
                return output::json(&json!({ "stopping": target.to_string() }));
            }
            println!("Stopping {target}: it leaves its route now; its containers drain and stop.");
        }
        ServicesCommand::Events { target, limit } => {
            let events = client
                .get::<Vec<ServiceEvent>>(&format!("{}/events?limit={limit}", target.path()))
                .await?;
            if global.json {
                return output::json(&events.json);
            }
            print_events(&events.body);
        }
        ServicesCommand::Scale {
            target,
            replicas,
            detach,
        } => {
            let input = ServiceInput {
                runtime: Some(json!({ "replicas": replicas })),
                ..ServiceInput::default()
            };
            let scaled = client
                .patch_current::<UpdatedService>(&target.path(), &input)
                .await?;
            let redeployment = scaled.body.redeployment.as_ref();
            if !global.json {
                match redeployment {
                    Some(_) => {
                        println!("Scaling {target} to {replicas} replica(s) with zero downtime.")
                    }
                    None => println!(
                        "{target} will run {replicas} replica(s) from its next deployment."
                    ),
                }
            }
            return deployments::watch_change(
                &client,
                &target,
                &scaled.json,
                redeployment,
                detach,
                global,
            )
            .await;
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
            client.delete::<()>(&path, None::<&()>).await?;
            if global.json {
                return output::json(&json!({ "deleted": target.to_string() }));
            }
            println!("Deleted service {target}.");
        }
    }
    Ok(())
}

/// Where a service comes from: its repository, or its image.
fn source(settings: &ServiceSettings) -> String {
    match (&settings.repo, &settings.image) {
        (_, Some(image)) => format!("image {image}"),
        (Some(repo), None) => repo.clone(),
        (None, None) => "-".to_owned(),
    }
}

/// A build setting, or `-` for a service run from an image (nothing is built).
fn built(settings: &ServiceSettings, value: &str) -> String {
    match settings.image {
        Some(_) => "-".to_owned(),
        None => value.to_owned(),
    }
}

fn show(target: &ServiceTarget, service: &ServiceView) {
    let status = service.status.as_ref();
    let live_text = match status.and_then(|s| s.live_deployment.as_ref()) {
        Some(live) => format!(
            "#{} ({} {}, live since {})",
            live.id,
            output::short_sha(live.commit_sha.as_deref()),
            output::first_line(live.commit_message.as_deref(), 50),
            output::maybe_time(live.finished_at),
        ),
        None => "nothing (not deployed, or stopped)".to_owned(),
    };
    let runtime = &service.runtime;
    let health = &runtime.health;
    let limits = &runtime.limits;
    let settings = &service.settings;
    output::fields(&[
        ("Service", target.to_string()),
        ("URL", service.url.clone()),
        ("Live", live_text),
        (
            "Health",
            output::or_dash(status.and_then(|s| s.health).map(Health::as_str)),
        ),
        ("Source", source(settings)),
        (
            "Registry user",
            output::or_dash(service.registry_user.as_deref()),
        ),
        (
            "GitHub",
            service.github.as_ref().map_or_else(
                || "-".to_owned(),
                |link| {
                    format!(
                        "{} (App installation {})",
                        link.repository, link.installation_id
                    )
                },
            ),
        ),
        ("Branch", built(settings, &settings.branch)),
        ("Dockerfile", built(settings, &settings.dockerfile)),
        ("Context", built(settings, &settings.context)),
        (
            "Port",
            settings.port.map_or_else(
                || "none (a worker: no route)".to_owned(),
                |port| port.to_string(),
            ),
        ),
        ("Replicas", runtime.replicas.to_string()),
        (
            "Strategy",
            runtime.strategy.map_or_else(
                || "server default".to_owned(),
                |strategy| match strategy {
                    DeployStrategy::StartFirst => "start-first".to_owned(),
                    DeployStrategy::Recreate => "recreate".to_owned(),
                },
            ),
        ),
        (
            "Command",
            runtime
                .command
                .as_deref()
                .map_or_else(|| "the image's".to_owned(), shell_words::join),
        ),
        (
            "Release command",
            runtime
                .release_command
                .as_deref()
                .map_or_else(|| "none".to_owned(), shell_words::join),
        ),
        ("Privileges", runtime.security.to_string()),
        (
            "Health check",
            if health.tcp {
                format!("TCP connect, every {}s", health.interval.as_secs())
            } else {
                format!(
                    "GET {} expecting {}-{}, every {}s",
                    health.path,
                    health.status_min,
                    health.status_max,
                    health.interval.as_secs()
                )
            },
        ),
        (
            "Memory",
            limits.memory_bytes.map_or_else(
                || "server default".to_owned(),
                |bytes| format!("{} MiB", bytes >> 20),
            ),
        ),
        (
            "CPUs",
            limits
                .cpus
                .map_or_else(|| "server default".to_owned(), |cpus| cpus.to_string()),
        ),
        ("Created", output::time(service.created_at)),
        ("Updated", output::time(service.updated_at)),
    ]);
    let Some(status) = status else {
        return;
    };
    if !status.containers.is_empty() {
        println!();
        output::table(
            ["CONTAINER", "ADDRESS", "STATE", "HEALTH"],
            status.containers.iter().map(|c| {
                [
                    c.name.clone(),
                    format!(
                        "{}:{}",
                        output::or_dash(c.address.as_deref()),
                        output::or_dash(c.port)
                    ),
                    c.state.to_string(),
                    output::or_dash(c.health.map(Health::as_str)),
                ]
            }),
        );
    }
    if !status.domains.is_empty() {
        println!();
        super::domains::print_table(&status.domains);
    }
    if !status.events.is_empty() {
        println!();
        print_events(&status.events);
    }
}

fn print_events(events: &[ServiceEvent]) {
    output::table(
        ["TIME", "EVENT", "CONTAINER", "MESSAGE"],
        events.iter().map(|e| {
            [
                output::time(e.at),
                e.kind.to_string(),
                output::or_dash(e.container.as_deref()),
                e.message.clone(),
            ]
        }),
    );
}
