//! `services detect`: what Helvetia would build a service's repository with — its own
//! Dockerfile, or the one generated for the stack detected at the head of its branch — without
//! deploying anything.

use helvetia_api_types::DetectedStack;
use helvetia_core::auth::Scope;
use helvetia_core::git::{GitRef, RepoUrl};
use helvetia_core::stack;
use helvetia_engine::checkout_files::{CheckoutFiles, needs_generated_dockerfile};

use super::access::OwnedService;
use super::{App, Result, UseCaseError};

/// Fetches the head of the service's branch into a scratch directory and detects its stack.
pub async fn detect(app: &App, service: OwnedService) -> Result<DetectedStack> {
    service.act(Scope::Read)?;
    let service = service.into_service();
    let platform = &app.platform;
    let settings = &service.settings;
    let refused = |why: String| UseCaseError::Refused(why);
    let repo = settings
        .repo()
        .ok_or_else(|| refused("the service runs a registry image: nothing is built".into()))?;
    let repo = RepoUrl::parse(repo.as_str(), platform.settings.repo_policy)
        .map_err(|e| refused(format!("the repository is not allowed: {e}")))?;
    let branch = GitRef::parse(settings.branch.as_str())
        .map_err(|e| refused(format!("invalid branch: {e}")))?;
    let checkout = tempfile::Builder::new()
        .prefix("detect-")
        .tempdir_in(&platform.builds_dir)
        .map_err(|e| UseCaseError::Internal(format!("a scratch directory: {e}")))?;
    let dir = checkout.path();
    let (repo, branch) = (&repo, &branch);
    platform
        .with_service_git(
            &service,
            |_, _| {},
            |git| async move { git.checkout(repo, branch, None, dir).await },
        )
        .await
        .map_err(|e| refused(format!("fetching the repository: {e}")))?
        .map_err(|e| refused(format!("fetching the repository: {e}")))?;
    let configured = settings.dockerfile.as_str();
    if !needs_generated_dockerfile(dir, configured) {
        return Ok(DetectedStack {
            dockerfile_path: Some(configured.to_owned()),
            stack: None,
            found: vec![],
            dockerfile: None,
            problem: None,
        });
    }
    let files = CheckoutFiles::new(dir, settings.context.as_str());
    Ok(
        match stack::detect(&files, &platform.settings.stack_images) {
            Ok(detected) => DetectedStack {
                dockerfile_path: None,
                stack: Some(detected.kind),
                found: detected.found,
                dockerfile: Some(detected.dockerfile),
                problem: None,
            },
            Err(why) => DetectedStack {
                dockerfile_path: None,
                stack: None,
                found: vec![],
                dockerfile: None,
                problem: Some(format!("the repository has no Dockerfile, and {why}")),
            },
        },
    )
}
