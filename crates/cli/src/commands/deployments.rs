//! `helvetia deploy`, `helvetia rollback` and `helvetia deployments …`; [`watch`] follows any
//! deployment a command started, to its end.

use anyhow::bail;
use clap::{Args, Subcommand};
use helvetia_api_types::{
    CreateDeployment, Deployment, DeploymentCause, DeploymentDetail, DeploymentStatus, Rollback,
    ServiceView,
};
use serde_json::Value;

use crate::GlobalArgs;
use crate::client::{Answer, Client};
use crate::output;
use crate::target::ServiceTarget;

use super::logs::{self, Printer};

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
    let body = CreateDeployment {
        branch: args.branch,
        commit: args.commit,
    };
    let deployment = client
        .post::<Deployment>(&format!("{}/deployments", args.target.path()), &body)
        .await?;
    watch_queued(&client, &args.target, &deployment, args.detach, global).await
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
    let body = Rollback {
        deployment: args.deployment,
    };
    let deployment = client
        .post::<Deployment>(&format!("{}/rollback", args.target.path()), &body)
        .await?;
    watch_queued(&client, &args.target, &deployment, args.detach, global).await
}

/// [`watch`] for a command whose answer is the deployment it queued.
pub async fn watch_queued(
    client: &Client,
    target: &ServiceTarget,
    queued: &Answer<Deployment>,
    detach: bool,
    global: &GlobalArgs,
) -> anyhow::Result<()> {
    watch(client, target, &queued.body, &queued.json, detach, global).await
}

/// Follows the redeployment a change started, if it started one; without one, `--json`
/// prints the change as the server answered it.
pub async fn watch_change(
    client: &Client,
    target: &ServiceTarget,
    change: &Value,
    redeployment: Option<&Deployment>,
    detach: bool,
    global: &GlobalArgs,
) -> anyhow::Result<()> {
    match redeployment {
        Some(deployment) => watch(client, target, deployment, change, detach, global).await,
        None if global.json => output::json(change),
        None => Ok(()),
    }
}

/// Reports a queued deployment and, unless `detach`, follows it to its end: exit 0 when it
/// is live, an error with its reason otherwise. `answer` is what the server answered the
/// command, which `--json --detach` prints.
async fn watch(
    client: &Client,
    target: &ServiceTarget,
    deployment: &Deployment,
    answer: &Value,
    detach: bool,
    global: &GlobalArgs,
) -> anyhow::Result<()> {
    let id = deployment.id;
    let what = match deployment.cause {
        DeploymentCause::Deploy => "Deployment".to_owned(),
        cause => format!("Deployment ({})", cause.as_str()),
    };
    if detach {
        if global.json {
            return output::json(answer);
        }
        println!("{what} #{id} of {target} queued.");
        return Ok(());
    }
    if !global.json {
        println!("{what} #{id} of {target} queued.");
    }
    let printer = (!global.json).then(|| Printer::new(false, false));
    logs::follow_deployment_log(client, id, printer.as_ref(), logs::Until::Settled).await?;
    let finished = client
        .get::<DeploymentDetail>(&format!("/api/v1/deployments/{id}"))
        .await?;
    if global.json {
        output::json(&finished.json)?;
    }
    let finished = finished.body.deployment;
    match finished.status {
        DeploymentStatus::Live => {
            if !global.json {
                let service = client.get::<ServiceView>(&target.path()).await?;
                println!("Deployment #{id} is live at {}.", service.body.url);
            }
            Ok(())
        }
        status => bail!(
            "deployment #{id} ended {status}: {}",
            output::or_dash(finished.status_reason)
        ),
    }
}

pub async fn run(args: DeploymentsArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let client = Client::from_args(global)?;
    match (args.command, args.target) {
        (Some(DeploymentsCommand::Show { id }), _) => {
            let detail = client
                .get::<DeploymentDetail>(&format!("/api/v1/deployments/{id}"))
                .await?;
            if global.json {
                return output::json(&detail.json);
            }
            show(&detail.body);
        }
        (Some(DeploymentsCommand::Cancel { id }), _) => {
            let deployment = client
                .post::<Deployment>(&format!("/api/v1/deployments/{id}/cancel"), &())
                .await?;
            if global.json {
                return output::json(&deployment.json);
            }
            println!(
                "Cancellation of deployment #{id} requested (now {}).",
                deployment.body.status
            );
        }
        (None, Some(target)) => {
            let deployments = client
                .get::<Vec<Deployment>>(&format!(
                    "{}/deployments?limit={}",
                    target.path(),
                    args.limit
                ))
                .await?;
            if global.json {
                return output::json(&deployments.json);
            }
            output::table(
                [
                    "ID", "STATUS", "CAUSE", "COMMIT", "MESSAGE", "STARTED", "DURATION",
                ],
                deployments.body.iter().map(|d| {
                    [
                        d.id.to_string(),
                        d.status.to_string(),
                        cause(d),
                        output::short_sha(d.commit_sha.as_deref()),
                        output::first_line(d.commit_message.as_deref(), 40),
                        output::time(d.created_at),
                        output::duration_between(d.created_at, d.finished_at),
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

fn show(detail: &DeploymentDetail) {
    let d = &detail.deployment;
    output::fields(&[
        ("Deployment", format!("#{}", d.id)),
        ("Service", format!("{}/{}", d.project, d.service)),
        ("Status", d.status.to_string()),
        ("Reason", output::or_dash(d.status_reason.as_deref())),
        ("Kind", d.kind.as_str().to_owned()),
        ("Cause", cause(d)),
        ("Branch", output::or_dash(d.git_ref.as_deref())),
        ("Commit", output::or_dash(d.commit_sha.as_deref())),
        (
            "Message",
            output::first_line(d.commit_message.as_deref(), 72),
        ),
        ("Author", output::or_dash(d.commit_author.as_deref())),
        ("Image", output::or_dash(d.image.as_deref())),
        ("Requested by", d.created_by.clone()),
        ("Created", output::time(d.created_at)),
        (
            "Duration",
            output::duration_between(d.created_at, d.finished_at),
        ),
    ]);
    println!();
    output::table(
        ["TIME", "STATUS", "REASON"],
        detail
            .transitions
            .iter()
            .map(|t| [output::time(t.at), t.to.to_string(), t.reason.clone()]),
    );
}

/// What caused a deployment, with the deployment it reused an image from.
fn cause(deployment: &Deployment) -> String {
    let cause = deployment.cause.as_str();
    match (deployment.cause, deployment.source_deployment_id) {
        (DeploymentCause::Rollback, Some(source)) => format!("rollback to #{source}"),
        (_, Some(source)) => format!("{cause} (image of #{source})"),
        (_, None) => cause.to_owned(),
    }
}
