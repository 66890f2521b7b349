//! `helvetia deploy` and `helvetia deployments …`.

use std::ops::ControlFlow;

use anyhow::bail;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::GlobalArgs;
use crate::client::Client;
use crate::output;
use crate::sse;
use crate::target::ServiceTarget;

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// PROJECT/SERVICE
    target: ServiceTarget,
    /// Deploy this branch instead of the service's.
    #[arg(long, conflicts_with = "commit")]
    branch: Option<String>,
    /// Deploy exactly this commit of the service's branch.
    #[arg(long)]
    commit: Option<String>,
    /// Return once the deployment is queued instead of following it.
    #[arg(long)]
    detach: bool,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DeploymentsArgs {
    /// PROJECT/SERVICE whose history to list.
    target: Option<ServiceTarget>,
    /// How many deployments, newest first.
    #[arg(long, default_value_t = 20)]
    limit: i64,
    #[command(subcommand)]
    command: Option<DeploymentsCommand>,
}

#[derive(Debug, Subcommand)]
enum DeploymentsCommand {
    /// Show one deployment and every state it went through.
    Show { id: i64 },
    /// Cancel a deployment that has not finished.
    Cancel { id: i64 },
}

pub async fn deploy(args: DeployArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let client = Client::from_args(global)?;
    let body = json!({ "branch": args.branch, "commit": args.commit });
    let deployment = client
        .post(&format!("{}/deployments", args.target.path()), &body)
        .await?;
    watch(&client, &args.target, &deployment, args.detach, global).await
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// PROJECT/SERVICE
    target: ServiceTarget,
    /// The deployment to return to. Default: the previous successful one.
    deployment: Option<i64>,
    /// Return once the rollback is queued instead of following it.
    #[arg(long)]
    detach: bool,
}

pub async fn rollback(args: RollbackArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let client = Client::from_args(global)?;
    let deployment = client
        .post(
            &format!("{}/rollback", args.target.path()),
            &json!({ "deployment": args.deployment }),
        )
        .await?;
    watch(&client, &args.target, &deployment, args.detach, global).await
}

/// Reports a queued deployment and, unless `detach`, follows it to its end: exit 0 when it
/// is live, an error with its reason otherwise.
pub async fn watch(
    client: &Client,
    target: &ServiceTarget,
    deployment: &Value,
    detach: bool,
    global: &GlobalArgs,
) -> anyhow::Result<()> {
    let id = deployment["id"].as_i64().unwrap_or_default();
    let what = match deployment["cause"].as_str() {
        Some("deploy") | None => "Deployment".to_owned(),
        Some(cause) => format!("Deployment ({cause})"),
    };
    if detach {
        if global.json {
            return output::json(deployment);
        }
        println!("{what} #{id} of {target} queued.");
        return Ok(());
    }
    if !global.json {
        println!("{what} #{id} of {target} queued.");
    }
    let finished = follow(client, id, !global.json).await?;
    if global.json {
        output::json(&finished)?;
    }
    match finished["status"].as_str() {
        Some("live") => {
            if !global.json {
                let service = client.get(&target.path()).await?;
                println!(
                    "Deployment #{id} is live at {}.",
                    output::text(&service, "url")
                );
            }
            Ok(())
        }
        status => bail!(
            "deployment #{id} ended {}: {}",
            status.unwrap_or("unknown"),
            output::text(&finished, "status_reason")
        ),
    }
}

/// Follows a deployment's log stream until it is live or finished, printing every line
/// (phases, build output, probes, the switch); reconnects without losing or repeating a line
/// if the connection drops. Returns the deployment as it ended.
async fn follow(client: &Client, id: i64, print: bool) -> anyhow::Result<Value> {
    let printer = super::logs::Printer::new(false, false);
    sse::follow(
        client,
        &format!("/api/v1/deployments/{id}/logs/stream"),
        |event| match event.event.as_str() {
            "line" if print => {
                if let Ok(line) = serde_json::from_str::<Value>(&event.data) {
                    printer.print(&line, None);
                }
                ControlFlow::Continue(())
            }
            "status" | "end" => {
                let status: Value = serde_json::from_str(&event.data).unwrap_or_default();
                let finished = !matches!(
                    status["status"].as_str(),
                    Some("queued" | "cloning" | "building" | "starting" | "health_checking")
                );
                if finished {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            }
            _ => ControlFlow::Continue(()),
        },
    )
    .await?;
    client.get(&format!("/api/v1/deployments/{id}")).await
}

pub async fn run(args: DeploymentsArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let client = Client::from_args(global)?;
    match (args.command, args.target) {
        (Some(DeploymentsCommand::Show { id }), _) => {
            let detail = client.get(&format!("/api/v1/deployments/{id}")).await?;
            if global.json {
                return output::json(&detail);
            }
            show(&detail);
        }
        (Some(DeploymentsCommand::Cancel { id }), _) => {
            let deployment = client
                .post(&format!("/api/v1/deployments/{id}/cancel"), &json!({}))
                .await?;
            if global.json {
                return output::json(&deployment);
            }
            println!(
                "Cancellation of deployment #{id} requested (now {}).",
                output::text(&deployment, "status")
            );
        }
        (None, Some(target)) => {
            let deployments = client
                .get(&format!(
                    "{}/deployments?limit={}",
                    target.path(),
                    args.limit
                ))
                .await?;
            if global.json {
                return output::json(&deployments);
            }
            output::table(
                [
                    "ID", "STATUS", "CAUSE", "COMMIT", "MESSAGE", "STARTED", "DURATION",
                ],
                output::array(&deployments).iter().map(|d| {
                    [
                        output::text(d, "id"),
                        output::text(d, "status"),
                        cause(d),
                        output::short_sha(d, "commit_sha"),
                        output::first_line(d, "commit_message", 40),
                        output::time(d, "created_at"),
                        output::duration_between(d, "created_at", "finished_at"),
                    ]
                }),
            );
        }
        (None, None) => {
            bail!("name a service (helvetia deployments PROJECT/SERVICE) or a subcommand")
        }
    }
    Ok(())
}

fn show(detail: &Value) {
    output::fields(&[
        ("Deployment", format!("#{}", output::text(detail, "id"))),
        (
            "Service",
            format!(
                "{}/{}",
                output::text(detail, "project"),
                output::text(detail, "service")
            ),
        ),
        ("Status", output::text(detail, "status")),
        ("Reason", output::text(detail, "status_reason")),
        ("Kind", output::text(detail, "kind")),
        ("Cause", cause(detail)),
        ("Branch", output::text(detail, "git_ref")),
        ("Commit", output::text(detail, "commit_sha")),
        ("Message", output::first_line(detail, "commit_message", 72)),
        ("Author", output::text(detail, "commit_author")),
        ("Image", output::text(detail, "image")),
        ("Requested by", output::text(detail, "created_by")),
        ("Created", output::time(detail, "created_at")),
        (
            "Duration",
            output::duration_between(detail, "created_at", "finished_at"),
        ),
    ]);
    println!();
    output::table(
        ["TIME", "STATUS", "REASON"],
        output::array(&detail["transitions"]).iter().map(|t| {
            [
                output::time(t, "at"),
                output::text(t, "to"),
                output::text(t, "reason"),
            ]
        }),
    );
}

/// What caused a deployment, with the deployment it reused an image from.
fn cause(detail: &Value) -> String {
    let cause = output::text(detail, "cause");
    match detail["source_deployment_id"].as_i64() {
        Some(source) if cause == "rollback" => format!("rollback to #{source}"),
        Some(source) => format!("{cause} (image of #{source})"),
        None => cause,
    }
}
