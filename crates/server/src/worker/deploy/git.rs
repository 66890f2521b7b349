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
    pub(super) async fn with_git<T, F, Fut>(&self, step: F) -> Result<T, Failure>
    where
        F: Fn(Git) -> Fut,
        Fut: Future<Output = Result<T, GitError>>,
    {
        let log = self.log;
        let minted = |token: &str, renewed: bool| {
            log.also_redact(token);
            if renewed {
                log.line("The repository refused the installation token: renewed it");
            }
        };
        self.platform
            .with_service_git(&self.service, minted, step)
            .await
            .map_err(|error| {
                Failure::failed(
                    FailureCause::Fetch,
                    format!("no token of the service's GitHub App installation: {error}"),
                )
            })?
            .map_err(|error| Failure::failed(FailureCause::Fetch, error.to_string()))
    }
}
