//! `helvetia services …`.

use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use crate::GlobalArgs;
use crate::client::Client;
use crate::output;
use crate::target::{self, ServiceTarget};

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
}

impl Settings {
    fn into_json(self, repo: Option<String>) -> Map<String, Value> {
        let mut body = Map::new();
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
        body
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
            let mut body = settings.into_json(Some(repo));
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
            let body = settings.into_json(repo);
            if body.is_empty() {
                anyhow::bail!(
                    "nothing to change: pass at least one of --repo, --branch, --dockerfile, --context, --port"
                );
            }
            let service = client.patch(&target.path(), &Value::Object(body)).await?;
            if global.json {
                return output::json(&service);
            }
            println!("Updated service {target}.");
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
    let live = &service["live_deployment"];
    let live_text = if live.is_object() {
        format!(
            "#{} ({} {}, live since {})",
            output::text(live, "id"),
            output::short_sha(live, "commit_sha"),
            output::first_line(live, "commit_message", 50),
            output::time(live, "finished_at"),
        )
    } else {
        "none yet".to_owned()
    };
    output::fields(&[
        ("Service", target.to_string()),
        ("URL", output::text(service, "url")),
        ("Live", live_text),
        ("Repository", output::text(service, "repo")),
        ("Branch", output::text(service, "branch")),
        ("Dockerfile", output::text(service, "dockerfile")),
        ("Context", output::text(service, "context")),
        ("Port", output::text(service, "port")),
        ("Created", output::time(service, "created_at")),
        ("Updated", output::time(service, "updated_at")),
    ]);
}
