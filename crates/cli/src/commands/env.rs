//! `helvetia env …`: environment variables of a service (`PROJECT/SERVICE`) or of a whole
//! project (`--project NAME`, shared by its services).

use std::io::Read;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use helvetia_api_types::{
    EnvChanged, EnvVarInput, EnvVarView, ImportEnv, RevealedVar, SetEnv, UnsetEnv, VarScope,
};

use crate::GlobalArgs;
use crate::client::{Answer, Client};
use crate::output;
use crate::target::{self, ServiceTarget};

use super::deployments;

#[derive(Debug, Subcommand)]
pub enum EnvCommand {
    /// Set variables: `KEY=VALUE …`; a bare `KEY` reads its value from standard input (keeps
    /// secrets out of the shell history).
    Set {
        #[command(flatten)]
        scope: Scope,
        /// `KEY=VALUE` assignments (after PROJECT/SERVICE unless --project is given).
        args: Vec<String>,
        #[command(flatten)]
        flags: SetFlags,
    },
    /// Remove variables.
    Unset {
        #[command(flatten)]
        scope: Scope,
        /// Variable names (after PROJECT/SERVICE unless --project is given).
        args: Vec<String>,
        #[arg(long)]
        detach: bool,
    },
    /// List variables; secret values are masked.
    List {
        #[command(flatten)]
        scope: Scope,
        /// PROJECT/SERVICE, unless --project is given.
        args: Vec<String>,
    },
    /// Set variables from a `.env` file (`-` for standard input): all of them or none.
    Import {
        #[command(flatten)]
        scope: Scope,
        /// [PROJECT/SERVICE] FILE
        args: Vec<String>,
        #[command(flatten)]
        flags: SetFlags,
    },
    /// Print variables in the `.env` format; secrets appear as comments without values.
    Export {
        #[command(flatten)]
        scope: Scope,
        args: Vec<String>,
    },
    /// Print one variable's value, secret or not (needs the `secrets:reveal` scope; audited).
    Reveal {
        #[command(flatten)]
        scope: Scope,
        /// [PROJECT/SERVICE] KEY
        args: Vec<String>,
    },
}

/// How `set` and `import` store what they write.
#[derive(Debug, Args)]
pub struct SetFlags {
    /// Store the values encrypted; they are never shown again.
    #[arg(long)]
    secret: bool,
    /// Also make them available at build time (`RUN --mount=type=secret,id=KEY`).
    #[arg(long)]
    build: bool,
    /// Also pass them to the build as build arguments (`ARG KEY`). Kept in the image's
    /// history: not for secrets.
    #[arg(long, conflicts_with_all = ["secret", "build"])]
    build_arg: bool,
    /// Do not wait for the redeployment that applies the change.
    #[arg(long)]
    detach: bool,
}

#[derive(Debug, Args)]
pub struct Scope {
    /// The project's shared variables instead of one service's.
    #[arg(long, value_name = "PROJECT")]
    project: Option<String>,
    /// The service's variables for its previews (over its own) instead of its own.
    #[arg(long, conflicts_with = "project")]
    previews: bool,
}

/// The API path of a project or a service, whose variables a command reads or changes, and
/// the query that picks the service's variables for its previews.
struct Owner {
    path: String,
    query: &'static str,
}

impl Owner {
    /// The variables, one by one.
    fn env(&self) -> String {
        format!("{}/env{}", self.path, self.query)
    }

    /// One variable's value.
    fn reveal(&self, name: &str) -> String {
        format!("{}/env/{name}/reveal{}", self.path, self.query)
    }

    /// The variables as a `.env` file.
    fn dotenv(&self) -> String {
        format!("{}/dotenv{}", self.path, self.query)
    }
}

impl Scope {
    /// Whose variables (a project's or a service's), and the remaining positional arguments.
    fn resolve(&self, args: &[String]) -> anyhow::Result<(Owner, Vec<String>)> {
        match &self.project {
            Some(project) => {
                let project = target::project(project)?;
                let path = format!("/api/v1/projects/{project}");
                Ok((Owner { path, query: "" }, args.to_vec()))
            }
            None => {
                let (first, rest) = args
                    .split_first()
                    .context("name a service (PROJECT/SERVICE) or pass --project NAME")?;
                let service: ServiceTarget = first.parse()?;
                let query = if self.previews { "?previews=true" } else { "" };
                let path = service.path();
                Ok((Owner { path, query }, rest.to_vec()))
            }
        }
    }

    /// The service, when the scope is one.
    fn service(&self, args: &[String]) -> Option<ServiceTarget> {
        match self.project {
            Some(_) => None,
            None => args.first()?.parse().ok(),
        }
    }
}

pub async fn run(command: EnvCommand, global: &GlobalArgs) -> anyhow::Result<()> {
    let client = Client::from_args(global)?;
    match command {
        EnvCommand::Set {
            scope,
            args,
            flags:
                SetFlags {
                    secret,
                    build,
                    build_arg,
                    detach,
                },
        } => {
            let (owner, rest) = scope.resolve(&args)?;
            if rest.is_empty() {
                bail!("nothing to set: give KEY=VALUE assignments");
            }
            let mut vars = vec![];
            for assignment in &rest {
                let (name, value) = match assignment.split_once('=') {
                    Some((name, value)) => (name.to_owned(), value.to_owned()),
                    None => {
                        let mut value = String::new();
                        std::io::stdin().read_to_string(&mut value)?;
                        (assignment.clone(), value.trim_end_matches('\n').to_owned())
                    }
                };
                vars.push(EnvVarInput {
                    name,
                    value,
                    secret,
                    build,
                    build_arg,
                });
            }
            let count = vars.len();
            let changed = client
                .put::<EnvChanged>(&owner.env(), &SetEnv { vars })
                .await?;
            report(
                &client,
                global,
                &scope,
                &args,
                &changed,
                &format!("Set {count} variable(s)."),
                detach,
            )
            .await
        }
        EnvCommand::Unset {
            scope,
            args,
            detach,
        } => {
            let (owner, names) = scope.resolve(&args)?;
            if names.is_empty() {
                bail!("nothing to remove: give variable names");
            }
            let count = names.len();
            let changed = client
                .delete::<EnvChanged>(&owner.env(), Some(&UnsetEnv { names }))
                .await?;
            report(
                &client,
                global,
                &scope,
                &args,
                &changed,
                &format!("Removed {count} variable(s)."),
                detach,
            )
            .await
        }
        EnvCommand::List { scope, args } => {
            let (owner, _) = scope.resolve(&args)?;
            let vars = client.get::<Vec<EnvVarView>>(&owner.env()).await?;
            if global.json {
                return output::json(&vars.json);
            }
            output::table(
                ["NAME", "VALUE", "SCOPE", "FLAGS", "UPDATED"],
                vars.body.iter().map(|v| {
                    let flags: Vec<&str> = [
                        (v.secret, "secret"),
                        (v.build, "build"),
                        (v.build_arg, "build-arg"),
                        (v.overridden, "overridden"),
                    ]
                    .into_iter()
                    .filter_map(|(set, flag)| set.then_some(flag))
                    .collect();
                    [
                        v.name.clone(),
                        if v.secret {
                            "••••••••".to_owned()
                        } else {
                            output::or_dash(v.value.as_deref())
                        },
                        match v.scope {
                            VarScope::Project => "project".to_owned(),
                            VarScope::Service => "service".to_owned(),
                            VarScope::Previews => "previews".to_owned(),
                        },
                        flags.join(","),
                        output::time(v.updated_at),
                    ]
                }),
            );
            Ok(())
        }
        EnvCommand::Import {
            scope,
            args,
            flags:
                SetFlags {
                    secret,
                    build,
                    build_arg,
                    detach,
                },
        } => {
            let (owner, rest) = scope.resolve(&args)?;
            let [file] = rest.as_slice() else {
                bail!("give one .env file (or - for standard input)");
            };
            let mut text = String::new();
            if file == "-" {
                std::io::stdin().read_to_string(&mut text)?;
            } else {
                text = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
            }
            let body = ImportEnv {
                dotenv: text,
                secret,
                build,
                build_arg,
            };
            let changed = client.post::<EnvChanged>(&owner.dotenv(), &body).await?;
            report(
                &client,
                global,
                &scope,
                &args,
                &changed,
                "Imported the variables.",
                detach,
            )
            .await
        }
        EnvCommand::Export { scope, args } => {
            let (owner, _) = scope.resolve(&args)?;
            print!("{}", client.get_text(&owner.dotenv()).await?);
            Ok(())
        }
        EnvCommand::Reveal { scope, args } => {
            let (owner, rest) = scope.resolve(&args)?;
            let [name] = rest.as_slice() else {
                bail!("give one variable name");
            };
            let revealed = client.get::<RevealedVar>(&owner.reveal(name)).await?;
            if global.json {
                return output::json(&revealed.json);
            }
            println!("{}", revealed.body.value);
            Ok(())
        }
    }
}

/// Prints what a change did, and follows the redeployment that applies it to a service.
async fn report(
    client: &Client,
    global: &GlobalArgs,
    scope: &Scope,
    args: &[String],
    changed: &Answer<EnvChanged>,
    message: &str,
    detach: bool,
) -> anyhow::Result<()> {
    if !global.json {
        println!("{message}");
    }
    match (changed.body.redeployments.as_slice(), scope.service(args)) {
        ([], _) => {
            if global.json {
                return output::json(&changed.json);
            }
            println!("Nothing was redeployed: the change applies at the next deploy.");
            Ok(())
        }
        ([one], Some(service)) => {
            deployments::watch_change(client, &service, &changed.json, Some(one), detach, global)
                .await
        }
        (many, _) => {
            if global.json {
                return output::json(&changed.json);
            }
            for deployment in many {
                println!(
                    "Redeploying {}/{} (deployment #{}) to apply it.",
                    deployment.project, deployment.service, deployment.id
                );
            }
            Ok(())
        }
    }
}
