//! Prepare: resolve the branch, fetch the commit and build it — or reuse the image of an
//! identical earlier build, found by its build key.

use std::time::Instant;

use helvetia_core::deployment::DeploymentStatus;
use helvetia_core::git::{CommitSha, GitRef, RepoUrl};
use helvetia_core::service::Service;
use helvetia_engine::docker::{BuildRequest, labels};
use sha2::{Digest, Sha256};

use helvetia_core::deployment::FailureCause;

use super::{Deploy, Failure};
use crate::containers::short_id;

impl Deploy<'_> {
    /// Fetches and builds the commit, or reuses the image of an identical earlier build.
    /// Returns the image's tag.
    pub(super) async fn build(&mut self) -> Result<String, Failure> {
        let platform = self.platform;
        let settings = self.service.settings.clone();
        let branch_name = self
            .deployment
            .git_ref
            .clone()
            .unwrap_or_else(|| settings.branch.to_string());
        let repo = settings.repo().ok_or_else(|| {
            Failure::failed(
                FailureCause::Request,
                "the service runs an image: nothing to build",
            )
        })?;
        self.to(
            DeploymentStatus::Cloning,
            &format!("fetching {repo} (branch {branch_name})"),
        )
        .await?;
        // Checked again against the current policy: it may have changed since the service
        // was created.
        let repo = RepoUrl::parse(repo.as_str(), platform.settings.repo_policy).map_err(|e| {
            Failure::failed(
                FailureCause::Request,
                format!("the repository is not allowed: {e}"),
            )
        })?;
        let branch = GitRef::parse(&branch_name)
            .map_err(|e| Failure::failed(FailureCause::Request, format!("invalid branch: {e}")))?;
        let requested = self
            .deployment
            .requested_commit
            .as_deref()
            .map(CommitSha::parse)
            .transpose()
            .map_err(|e| Failure::failed(FailureCause::Request, format!("invalid commit: {e}")))?;
        let known_sha = match &requested {
            Some(sha) if sha.is_full() => Some(sha.to_string()),
            Some(_) => None,
            None => {
                let (repo, branch) = (&repo, &branch);
                let sha = self
                    .with_git(|git| async move { git.resolve_branch(repo, branch).await })
                    .await?;
                self.log.line(format!("Branch {branch} is at {sha}"));
                Some(sha)
            }
        };
        let (repository, tag_name) = self.tag();
        let tag = format!("{repository}:{tag_name}");
        if let Some(sha) = &known_sha
            && let Some(tag) = self.reuse_build(sha, &tag).await?
        {
            return Ok(tag);
        }

        let checkout = tempfile::Builder::new()
            .prefix("checkout-")
            .tempdir_in(&platform.builds_dir)
            .map_err(|e| {
                Failure::failed(
                    FailureCause::Fetch,
                    format!("cannot create a checkout directory: {e}"),
                )
            })?;
        let (repo, branch, requested, dir) = (&repo, &branch, requested.as_ref(), checkout.path());
        let commit = self
            .with_git(|git| async move { git.checkout(repo, branch, requested, dir).await })
            .await?;
        platform
            .store
            .record_commit(
                self.deployment.id,
                &commit.sha,
                &commit.message,
                &commit.author,
            )
            .await?;
        self.report_pending(&commit.sha).await;
        self.log.line(format!(
            "Checked out {} \"{}\" by {}",
            &commit.sha,
            commit.message.lines().next().unwrap_or_default(),
            commit.author
        ));
        if known_sha.is_none()
            && let Some(tag) = self.reuse_build(&commit.sha, &tag).await?
        {
            return Ok(tag);
        }

        self.to(
            DeploymentStatus::Building,
            &format!(
                "building {} (context {})",
                settings.dockerfile, settings.context
            ),
        )
        .await?;
        let dockerfile = self.dockerfile_for(checkout.path())?;
        let key = build_key(&commit.sha, &self.service, &self.build_fingerprint());
        let request = BuildRequest {
            checkout: checkout.path().to_owned(),
            context: settings.context.to_string(),
            dockerfile,
            tag: tag.clone(),
            labels: [
                (labels::PROJECT, self.service.project.to_string()),
                (labels::SERVICE, self.service.name.to_string()),
                (labels::SERVICE_ID, self.service.id.to_string()),
                (labels::DEPLOYMENT, self.deployment.id.to_string()),
                (labels::COMMIT, commit.sha.clone()),
                (labels::BUILD_KEY, key),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
            timeout: self.service.runtime.timeouts.build,
            secrets: self
                .environment
                .as_ref()
                .map(|e| e.build.clone())
                .unwrap_or_default(),
            build_args: self
                .environment
                .as_ref()
                .map(|e| e.build_args.clone())
                .unwrap_or_default(),
        };
        let started = Instant::now();
        let log = self.log;
        let image = match &platform.builder {
            None => {
                platform
                    .engine
                    .build_image(&request, |line| log.line(line))
                    .await?
            }
            Some(builder) => {
                // Its own queue, apart from the deploys': one build at a time on the builder.
                let turn = builder
                    .turn(|ahead| log.line(format!("waiting for the builder ({ahead} ahead)")))
                    .await?;
                let caps = platform
                    .settings
                    .build_caps(self.service.runtime.build_limits);
                let built = turn
                    .build(&platform.engine, &request, &caps, |line| log.line(line))
                    .await?;
                if let Some(digest) = &built.digest {
                    platform
                        .store
                        .record_image_digest(self.deployment.id, digest)
                        .await?;
                }
                built.image
            }
        };
        self.log.line(format!(
            "Built image {} in {} ms",
            short_id(&image),
            started.elapsed().as_millis()
        ));
        platform
            .store
            .record_image(self.deployment.id, &tag)
            .await?;
        self.to(DeploymentStatus::Starting, &format!("starting {tag}"))
            .await?;
        Ok(tag)
    }

    /// Tells GitHub the commit is being deployed (for a service created from a repository).
    async fn report_pending(&self, sha: &str) {
        let (platform, service, deployment) = (self.platform, &self.service, &self.deployment);
        super::report::commit_status(platform, service, deployment, Some(sha), self.log).await;
    }

    /// This deployment's image tag, as repository and tag: tags are deployment ids.
    pub(super) fn tag(&self) -> (String, String) {
        let repository = self
            .platform
            .engine
            .scope()
            .image_repository(self.service.project.as_str(), self.service.name.as_str());
        (repository, self.deployment.id.to_string())
    }

    /// The image an earlier deployment ran (for a rollback, restart or settings change), once
    /// the engine confirms it is this installation's: a tag recorded before names carried the
    /// installation could name another installation's image by now, which must never run
    /// here. Such a tag is replaced by this deployment's own, of the current form.
    pub(super) async fn recorded_image(&mut self, recorded: &str) -> Result<String, Failure> {
        let platform = self.platform;
        let image = platform.engine.owned_image(recorded).await?;
        let (repository, tag_name) = self.tag();
        if recorded.starts_with(&format!("{repository}:")) {
            return Ok(recorded.to_owned());
        }
        platform
            .engine
            .tag_image(&image, &repository, &tag_name)
            .await?;
        let tag = format!("{repository}:{tag_name}");
        platform
            .store
            .record_image(self.deployment.id, &tag)
            .await?;
        Ok(tag)
    }

    fn build_fingerprint(&self) -> String {
        self.environment
            .as_ref()
            .map(|e| e.build_fingerprint.clone())
            .unwrap_or_default()
    }

    /// If an image was already built from `sha` with the same build settings, tags it for
    /// this deployment and moves on to starting it.
    async fn reuse_build(&mut self, sha: &str, tag: &str) -> Result<Option<String>, Failure> {
        let platform = self.platform;
        let key = build_key(sha, &self.service, &self.build_fingerprint());
        // A preview also takes what its parent built from the same commit and settings.
        let parent = self.service.preview.as_ref().map(|of| of.parent_id);
        let mut found = None;
        for service_id in std::iter::once(self.service.id).chain(parent) {
            found = platform.engine.find_image(service_id, &key).await?;
            if found.is_some() {
                break;
            }
        }
        let Some(image) = found else {
            return Ok(None);
        };
        let (message, author) = platform
            .store
            .commit_details(self.service.id, sha)
            .await?
            .unwrap_or_default();
        platform
            .store
            .record_commit(self.deployment.id, sha, &message, &author)
            .await?;
        self.report_pending(sha).await;
        self.to(
            DeploymentStatus::Building,
            &format!("image {} was already built from this commit with these settings: reused, no rebuild", short_id(&image)),
        )
        .await?;
        let (repository, tag_name) = self.tag();
        platform
            .engine
            .tag_image(&image, &repository, &tag_name)
            .await?;
        platform.store.record_image(self.deployment.id, tag).await?;
        self.to(DeploymentStatus::Starting, &format!("starting {tag}"))
            .await?;
        Ok(Some(tag.to_owned()))
    }
}

/// A hash of everything that determines a build's output: the commit, the Dockerfile and
/// context, and the build-time variables' versions. Equal keys mean an existing image can be
/// reused instead of building again.
fn build_key(sha: &str, service: &Service, build_variables: &str) -> String {
    let mut hasher = Sha256::new();
    for part in [
        "v2",
        sha,
        service.settings.dockerfile.as_str(),
        service.settings.context.as_str(),
        build_variables,
    ] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hex::encode(hasher.finalize())
}
