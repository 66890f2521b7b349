//! `helvetia projects …`.

use clap::Subcommand;
use serde_json::json;

use crate::GlobalArgs;
use crate::client::Client;
use crate::output;
use crate::target;

#[derive(Debug, Subcommand)]
pub enum ProjectsCommand {
    /// Create a project.
    Create { name: String },
    /// List projects.
    List,
    /// Delete an empty project.
    Delete { name: String },
}

pub async fn run(command: ProjectsCommand, global: &GlobalArgs) -> anyhow::Result<()> {
    let client = Client::from_args(global)?;
    match command {
        ProjectsCommand::Create { name } => {
            let name = target::project(&name)?;
            let project = client
                .post("/api/v1/projects", &json!({ "name": name }))
                .await?;
            if global.json {
                return output::json(&project);
            }
            println!("Created project {name}.");
        }
        ProjectsCommand::List => {
            let projects = client.get("/api/v1/projects").await?;
            if global.json {
                return output::json(&projects);
            }
            output::table(
                ["NAME", "CREATED"],
                output::array(&projects)
                    .iter()
                    .map(|p| [output::text(p, "name"), output::time(p, "created_at")]),
            );
        }
        ProjectsCommand::Delete { name } => {
            let name = target::project(&name)?;
            client.delete(&format!("/api/v1/projects/{name}")).await?;
            if global.json {
                return output::json(&json!({ "deleted": name }));
            }
            println!("Deleted project {name}.");
        }
    }
    Ok(())
}
