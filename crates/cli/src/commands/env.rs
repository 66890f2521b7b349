//! `helvetia env …`: environment variables of a service (`PROJECT/SERVICE`) or of a whole
//! project (`--project NAME`, shared by its services).

use std::io::Read;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::GlobalArgs;
use crate::client::Client;
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
    /// Do not wait for the redeployment that applies the change.
    #[arg(long)]
    detach: bool,
}

#[derive(Debug, Args)]
pub struct Scope {
    /// The project's shared variables instead of one service's.
    #[arg(long, value_name = "PROJECT")]
    project: Option<String>,
}

/// The API path of a project or a service, whose variables a command reads or changes.
struct Owner(String);

impl Owner {
    /// The variables, one by one.
    fn env(&self) -> String {
        format!("{}/env", self.0)
    }

    /// The variables as a `.env` file.
    fn dotenv(&self) -> String {
        format!("{}/dotenv", self.0)
    }
}

impl Scope {
    /// Whose variables (a project's or a service's), and the remaining positional arguments.
    fn resolve(&self, args: &[String]) -> anyhow::Result<(Owner, Vec<String>)> {
        match &self.project {
            Some(project) => {
                let project = target::project(project)?;
                Ok((Owner(format!("/api/v1/projects/{project}")), args.to_vec()))
            }
            None => {
                let (first, rest) = args
                    .split_first()
                    .context("name a service (PROJECT/SERVICE) or pass --project NAME")?;
                let service: ServiceTarget = first.parse()?;
                Ok((Owner(service.path()), rest.to_vec()))
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
                vars.push(json!({"name": name, "value": value, "secret": secret, "build": build}));
            }
            let changed = client
                .request_json(reqwest::Method::PUT, &owner.env(), &json!({"vars": vars}))
                .await?;
            report(
                &client,
                global,
                &scope,
                &args,
                &changed,
                &format!("Set {} variable(s).", vars.len()),
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
            let mut changed = Value::Null;
            for name in &names {
                changed = client.delete(&format!("{}/{name}", owner.env())).await?;
            }
            report(
                &client,
                global,
                &scope,
                &args,
                &changed,
                &format!("Removed {} variable(s).", names.len()),
                detach,
            )
            .await
        }
        EnvCommand::List { scope, args } => {
            let (owner, _) = scope.resolve(&args)?;
            let vars = client.get(&owner.env()).await?;
            if global.json {
                return output::json(&vars);
            }
            output::table(
                ["NAME", "VALUE", "SCOPE", "FLAGS", "UPDATED"],
                output::array(&vars).iter().map(|v| {
                    let mut flags = vec![];
                    if v["secret"] == true {
                        flags.push("secret");
                    }
                    if v["build"] == true {
                        flags.push("build");
                    }
                    if v["overridden"] == true {
                        flags.push("overridden");
                    }
                    [
                        output::text(v, "name"),
                        if v["secret"] == true {
                            "••••••••".to_owned()
                        } else {
                            output::text(v, "value")
                        },
                        output::text(v, "scope"),
                        flags.join(","),
                        output::time(v, "updated_at"),
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
            let body = json!({"dotenv": text, "secret": secret, "build": build});
            let changed = client.post(&owner.dotenv(), &body).await?;
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
            let revealed = client
                .get(&format!("{}/{name}/reveal", owner.env()))
                .await?;
            if global.json {
                return output::json(&revealed);
            }
            println!("{}", output::text(&revealed, "value"));
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
    changed: &Value,
    message: &str,
    detach: bool,
) -> anyhow::Result<()> {
    let redeployments = output::array(&changed["redeployments"]);
    if global.json && (redeployments.is_empty() || detach) {
        return output::json(changed);
    }
    if !global.json {
        println!("{message}");
    }
    match (redeployments, scope.service(args)) {
        ([], _) => {
            if !global.json {
                println!("Nothing was redeployed: the change applies at the next deploy.");
            }
            Ok(())
        }
        ([one], Some(service)) => deployments::watch(client, &service, one, detach, global).await,
        (many, _) => {
            for deployment in many {
                println!(
                    "Redeploying {}/{} (deployment #{}) to apply it.",
                    output::text(deployment, "project"),
                    output::text(deployment, "service"),
                    output::text(deployment, "id")
                );
            }
            Ok(())
        }
    }
}
