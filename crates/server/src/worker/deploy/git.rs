//! How a deployment reaches its repository: anonymously, or — for a service created from a
//! GitHub repository — with its App installation's token, handed to git through its
//! environment only. A token git's remote refuses (expired or revoked before its recorded
//! expiry) is dropped, a new one minted, and the step tried once more: an expired token never
//! fails a deploy.

use std::future::Future;

use helvetia_core::deployment::FailureCause;
use helvetia_engine::git::{Git, GitError};

use super::{Deploy, Failure};

impl Deploy<'_> {
    /// Runs `step` with this deployment's git; a refused installation token is renewed once.
    pub(super) async fn with_git<T, F, Fut>(&mut self, step: F) -> Result<T, Failure>
    where
        F: Fn(Git) -> Fut,
        Fut: Future<Output = Result<T, GitError>>,
    {
        let fetch_failure =
            |error: GitError| Failure::failed(FailureCause::Fetch, error.to_string());
        let Some(installation) = self.platform.clone_installation(&self.service) else {
            return step(self.platform.git.clone()).await.map_err(fetch_failure);
        };
        let token = self.installation_token(installation).await?;
        match step(self.platform.git.with_installation_token(&token)).await {
            Err(GitError::NeedsCredentials { .. }) => {
                self.platform
                    .forget_installation_token(installation, &token)
                    .await;
                self.log
                    .line("The repository refused the installation token: renewing it");
                let renewed = self.installation_token(installation).await?;
                step(self.platform.git.with_installation_token(&renewed))
                    .await
                    .map_err(fetch_failure)
            }
            other => other.map_err(fetch_failure),
        }
    }

    /// A token of `installation`, redacted from this deployment's log from now on.
    async fn installation_token(&mut self, installation: i64) -> Result<String, Failure> {
        let token = self
            .platform
            .installation_token(installation)
            .await
            .map_err(|error| {
                Failure::failed(
                    FailureCause::Fetch,
                    format!("no token of the GitHub App installation {installation}: {error}"),
                )
            })?;
        self.log.also_redact(&token.token);
        Ok(token.token)
    }
}
