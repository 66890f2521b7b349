//! The deploy job. (The pipeline itself lands with the engine adapters.)

use helvetia_core::deployment::DeploymentStatus;

use super::{JobContext, JobOutcome};

pub async fn run(context: &JobContext) -> JobOutcome {
    let Some(id) = context.job.deployment_id else {
        return JobOutcome::Failed("deploy job without a deployment".into());
    };
    let deployment = match context.store.deployment_by_id(id).await {
        Ok(deployment) => deployment,
        Err(error) => return JobOutcome::Failed(error.to_string()),
    };
    if !deployment.status.is_in_progress() {
        return JobOutcome::Cancelled(format!("deployment #{id} is already {}", deployment.status));
    }
    let reason = "the deploy pipeline is not available in this build";
    match context
        .store
        .transition_deployment(id, deployment.status, DeploymentStatus::Failed, reason)
        .await
    {
        Ok(_) => JobOutcome::Failed(reason.into()),
        Err(error) => JobOutcome::Failed(error.to_string()),
    }
}
