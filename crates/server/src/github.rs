//! The instance's GitHub App at work: its secrets opened from the store, its JWT, and the
//! installation tokens private clones use (minted once, then cached by the platform).

use crate::vault::github_app_binding;
use helvetia_store::sealed::GithubAppSecret;
use std::future::Future;

use helvetia_core::checks::{self, Verdict};
use helvetia_core::commit_status::CommitStatus;
use helvetia_core::preview::{CommentState, comment_body};
use helvetia_core::service::{GitHubLink, Service};
use helvetia_engine::git::{Git, GitError};
use helvetia_engine::github::jwt::AppKey;
use helvetia_engine::github::{GitHubError, InstallationToken};
use helvetia_store::StoreError;
use helvetia_store::github::GitHubApp;
use jiff::Timestamp;
use url::Url;

use crate::platform::Platform;
use crate::vault::{Vault, VaultError};

#[derive(Debug, thiserror::Error)]
pub enum GitHubAppError {
    #[error("no GitHub App is configured: an instance administrator creates or enters one")]
    NotConfigured,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the GitHub App's secrets do not open: {0}")]
    Vault(#[from] VaultError),
    #[error(transparent)]
    GitHub(#[from] GitHubError),
}

/// An error that may say the installation token used was refused.
pub trait RefusesToken {
    fn refuses_token(&self) -> bool;
}

impl RefusesToken for GitHubError {
    fn refuses_token(&self) -> bool {
        self.is_unauthorized()
    }
}

impl RefusesToken for GitError {
    fn refuses_token(&self) -> bool {
        matches!(self, GitError::NeedsCredentials { .. })
    }
}

/// Opens one of the App's sealed secrets.
pub fn open(vault: &Vault, secret: GithubAppSecret, sealed: &str) -> Result<String, VaultError> {
    vault.open(&github_app_binding(secret), sealed)
}

impl Platform {
    /// A token of `installation`: the cached one while it has more than 5 minutes left, else a
    /// new one minted with the App's JWT.
    pub async fn installation_token(
        &self,
        installation: i64,
    ) -> Result<InstallationToken, GitHubAppError> {
        let now = Timestamp::now();
        self.github_tokens
            .get(installation, now, || async {
                let app = self
                    .store
                    .github_app()
                    .await?
                    .ok_or(GitHubAppError::NotConfigured)?;
                let jwt = self.app_jwt(&app, now)?;
                Ok(self.github.installation_token(&jwt, installation).await?)
            })
            .await
    }

    /// Runs `step` with a token of `installation` (shown first to `minted`, with whether it
    /// replaces a refused one). A token the other end refuses — revoked, or expired before
    /// the expiry GitHub announced — is dropped, a new one minted and `step` run once more.
    pub async fn with_installation_token<T, E, F, Fut>(
        &self,
        installation: i64,
        minted: impl Fn(&str, bool),
        step: F,
    ) -> Result<Result<T, E>, GitHubAppError>
    where
        E: RefusesToken,
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let token = self.installation_token(installation).await?.token;
        minted(&token, false);
        match step(token.clone()).await {
            Err(error) if error.refuses_token() => {
                self.forget_installation_token(installation, &token).await;
                let renewed = self.installation_token(installation).await?.token;
                minted(&renewed, true);
                Ok(step(renewed).await)
            }
            done => Ok(done),
        }
    }

    /// Runs `step` with git as `service`'s repository needs it: anonymously, or — for a
    /// service created from a GitHub repository — with its App installation's token, renewed
    /// once if git's remote refuses it. `minted` hears each token (to redact it) and whether
    /// it is a renewal.
    pub async fn with_service_git<T, F, Fut>(
        &self,
        service: &Service,
        minted: impl Fn(&str, bool),
        step: F,
    ) -> Result<Result<T, GitError>, GitHubAppError>
    where
        F: Fn(Git) -> Fut,
        Fut: Future<Output = Result<T, GitError>>,
    {
        let Some(installation) = self.clone_installation(service) else {
            return Ok(step(self.git.clone()).await);
        };
        let with_token = |token: String| step(self.git.with_installation_token(&token));
        self.with_installation_token(installation, minted, with_token)
            .await
    }

    /// Sets `status` on commit `sha` of `link`'s repository with its installation's token.
    pub async fn set_commit_status(
        &self,
        link: &GitHubLink,
        sha: &str,
        status: &CommitStatus,
    ) -> Result<(), GitHubAppError> {
        let set = |token: String| async move {
            self.github
                .create_commit_status(&token, &link.full_name, sha, status)
                .await
        };
        Ok(self
            .with_installation_token(link.installation_id, |_, _| {}, set)
            .await??)
    }

    /// Writes the comment `body` on pull request `number` of `link`'s repository, in place of
    /// comment `existing` when given (one that is gone is made again). Answers its id.
    pub async fn upsert_comment(
        &self,
        link: &GitHubLink,
        number: u64,
        existing: Option<i64>,
        body: &str,
    ) -> Result<i64, GitHubAppError> {
        let write = |token: String| async move {
            let repository = &link.full_name;
            let api = &self.github;
            match api
                .upsert_issue_comment(&token, repository, number, existing, body)
                .await
            {
                Err(GitHubError::Status { status: 404, .. }) if existing.is_some() => {
                    api.upsert_issue_comment(&token, repository, number, None, body)
                        .await
                }
                written => written,
            }
        };
        Ok(self
            .with_installation_token(link.installation_id, |_, _| {}, write)
            .await??)
    }

    /// Shows `state` of `preview`'s deploy of `sha` in its pull request's one comment: made
    /// the first time, edited in place after. Nothing for a preview of a branch, or of a
    /// service not linked to GitHub.
    pub async fn comment_on_preview(
        &self,
        preview: &Service,
        sha: &str,
        state: CommentState<'_>,
    ) -> Result<(), GitHubAppError> {
        let (Some(link), Some(of)) = (&preview.github, &preview.preview) else {
            return Ok(());
        };
        let Some(number) = of.label.pull_request_number() else {
            return Ok(());
        };
        let Some(record) = self.store.preview(preview.id).await? else {
            return Ok(());
        };
        let body = comment_body(
            (preview.project.as_str(), of.parent.as_str()),
            &of.label,
            sha,
            &self.settings.service_url(preview),
            state,
        );
        let id = self
            .upsert_comment(link, number, record.comment_id, &body)
            .await?;
        if record.comment_id != Some(id) {
            self.store.set_preview_comment(preview.id, id).await?;
        }
        Ok(())
    }

    /// What CI says about commit `sha` of `link`'s repository.
    pub async fn commit_checks(
        &self,
        link: &GitHubLink,
        sha: &str,
    ) -> Result<Verdict, GitHubAppError> {
        let read = |token: String| async move {
            self.github
                .commit_checks(&token, &link.full_name, sha)
                .await
        };
        let (statuses, runs) = self
            .with_installation_token(link.installation_id, |_, _| {}, read)
            .await??;
        Ok(checks::verdict(&statuses, &runs))
    }

    /// The installation whose tokens clone `service`'s repository: the one it was created
    /// from, while its repository is still on GitHub's web origin — a token never goes to
    /// another host.
    pub fn clone_installation(&self, service: &Service) -> Option<i64> {
        let link = service.github.as_ref()?;
        let repo = Url::parse(service.settings.repo()?.as_str()).ok()?;
        (repo.origin() == self.settings.github.web.origin()).then_some(link.installation_id)
    }

    /// Drops `token` of `installation` from the cache after GitHub or git refused it, so the
    /// next [`Platform::installation_token`] mints another.
    pub async fn forget_installation_token(&self, installation: i64, token: &str) {
        self.github_tokens.forget(installation, token).await;
    }

    /// The App's JWT at `now`.
    fn app_jwt(&self, app: &GitHubApp, now: Timestamp) -> Result<String, GitHubAppError> {
        let pem = open(
            &self.vault,
            GithubAppSecret::PrivateKey,
            &app.sealed_private_key,
        )?;
        Ok(AppKey::from_pem(&pem)?.jwt(app.app_id, now)?)
    }
}
