//! `helvetia projects …`.

use clap::Subcommand;
use helvetia_api_types::{CreateProject, Project};
use serde_json::json;

use crate::GlobalArgs;
use crate::client::Client;
use crate::output;
use crate::target;

#[derive(Debug, Subcommand)]
pub enum ProjectsCommand {
    /// Create a project.
    Create {
        name: String,
        /// The team that will own it (default: your personal team).
        #[arg(long)]
        team: Option<String>,
    },
    /// List projects.
    List,
    /// Delete an empty project.
    Delete { name: String },
}

pub async fn run(command: ProjectsCommand, global: &GlobalArgs) -> anyhow::Result<()> {
    let client = Client::from_args(global)?;
    match command {
        ProjectsCommand::Create { name, team } => {
            let name = target::project(&name)?;
            let body = CreateProject {
                name: name.to_string(),
                team,
            };
            let project = client.post::<Project>("/api/v1/projects", &body).await?;
            if global.json {
                return output::json(&project.json);
            }
            println!("Created project {name}.");
        }
        ProjectsCommand::List => {
            let projects = client.get::<Vec<Project>>("/api/v1/projects").await?;
            if global.json {
                return output::json(&projects.json);
            }
            output::table(
                ["NAME", "CREATED"],
                projects
                    .body
                    .iter()
                    .map(|p| [p.name.to_string(), output::time(p.created_at)]),
            );
        }
        ProjectsCommand::Delete { name } => {
            let name = target::project(&name)?;
            client
                .delete::<()>(&format!("/api/v1/projects/{name}"), None::<&()>)
                .await?;
            if global.json {
                return output::json(&json!({ "deleted": name }));
            }
            println!("Deleted project {name}.");
        }
    }
    Ok(())
}
