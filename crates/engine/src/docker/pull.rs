//! Images from a registry a user named, for a service run from an image: pulled with the
//! service's login, resolved to the digest the registry serves, then made this installation's
//! — a container created from the digest (never started) is committed with Helvetia's labels
//! under the deployment's tag — so rollback, pruning and the disk budget treat it as they
//! treat a built image. The user's own reference is untagged again when the pull made it.

use std::collections::HashMap;

use bollard::auth::DockerCredentials;
use bollard::models::{ContainerConfig, ContainerCreateBody};
use bollard::query_parameters::{
    CommitContainerOptions, CreateContainerOptions, CreateImageOptions, RemoveImageOptions,
};
use futures::StreamExt;

use super::{Engine, EngineError, Result};

/// A registry login. Its `Debug` hides the password.
#[derive(Clone)]
pub struct RegistryLogin {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for RegistryLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryLogin")
            .field("user", &self.user)
            .field("password", &"***")
            .finish()
    }
}

impl Engine {
    /// Pulls `reference` (`registry/path:tag` or `…@sha256:…`) from `registry` (`host[:port]`)
    /// as `login`, and returns the digest the registry serves it under (`sha256:…`). A failure
    /// says what the engine reported (a refused login, an unknown image, an unreachable
    /// registry); the engine never repeats a password.
    pub async fn pull_from_registry(
        &self,
        reference: &str,
        registry: &str,
        login: Option<&RegistryLogin>,
    ) -> Result<String> {
        let options = CreateImageOptions {
            from_image: Some(reference.to_owned()),
            ..CreateImageOptions::default()
        };
        let credentials = login.map(|login| DockerCredentials {
            username: Some(login.user.clone()),
            password: Some(login.password.clone()),
            serveraddress: Some(registry.to_owned()),
            ..DockerCredentials::default()
        });
        let failed = |message: String| EngineError::Api(format!("pulling {reference}: {message}"));
        let mut pull = std::pin::pin!(self.docker.create_image(Some(options), None, credentials));
        while let Some(message) = pull.next().await {
            let message = message.map_err(|error| match error {
                bollard::errors::Error::DockerResponseServerError { message, .. } => {
                    failed(message)
                }
                other => EngineError::from_bollard(other),
            })?;
            if let Some(error) = message.error_detail.and_then(|detail| detail.message) {
                return Err(failed(error));
            }
        }
        let inspect = self
            .docker
            .inspect_image(reference)
            .await
            .map_err(EngineError::from_bollard)?;
        let repository = reference
            .split_once('@')
            .map_or_else(|| tagless(reference), |(name, _)| name);
        inspect
            .repo_digests
            .unwrap_or_default()
            .iter()
            .find_map(|named| {
                named
                    .strip_prefix(&format!("{repository}@"))
                    .map(str::to_owned)
            })
            .ok_or_else(|| failed("the registry gave the image no digest".into()))
    }

    /// Makes the pulled image `pinned` (`registry/path@sha256:…`) this installation's, tagged
    /// `repo:tag` with `labels` and the ownership labels: committed from a container created
    /// from it, named `container` and removed after. Returns the new image's id.
    pub async fn adopt_image(
        &self,
        pinned: &str,
        container: &str,
        repo: &str,
        tag: &str,
        labels: HashMap<String, String>,
    ) -> Result<String> {
        self.claim_tag(&format!("{repo}:{tag}")).await?;
        let mut labels = labels;
        labels.extend(self.ownership_labels());
        // A container left by an interrupted attempt has the same name.
        self.remove_container(container).await?;
        let body = ContainerCreateBody {
            image: Some(pinned.to_owned()),
            labels: Some(labels.clone()),
            ..ContainerCreateBody::default()
        };
        let options = CreateContainerOptions {
            name: Some(container.to_owned()),
            ..CreateContainerOptions::default()
        };
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(EngineError::from_bollard)?;
        let commit = CommitContainerOptions {
            container: Some(created.id.clone()),
            repo: Some(repo.to_owned()),
            tag: Some(tag.to_owned()),
            comment: Some(format!("{pinned}, run by Helvetia")),
            pause: false,
            ..CommitContainerOptions::default()
        };
        // The engine merges the container's configuration (the image's command, environment,
        // ports, labels) into this one.
        let config = ContainerConfig {
            labels: Some(labels),
            ..ContainerConfig::default()
        };
        let committed = self.docker.commit_container(commit, config).await;
        let removed = self.remove_container(&created.id).await;
        let committed = committed.map_err(EngineError::from_bollard)?;
        removed?;
        Ok(committed.id)
    }

    /// Removes the reference `name` a pull added (the layers stay while an adopted image
    /// uses them). A name already gone is not an error.
    pub async fn untag_pulled(&self, name: &str) -> Result<()> {
        let options = RemoveImageOptions {
            force: false,
            noprune: true,
            platforms: None,
        };
        match self.docker.remove_image(name, Some(options), None).await {
            Ok(_)
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(error) => Err(EngineError::from_bollard(error)),
        }
    }
}

/// `registry/path` of `registry/path:tag` (a port's `:` is before the last `/`).
fn tagless(reference: &str) -> &str {
    let last_slash = reference.rfind('/').unwrap_or(0);
    match reference[last_slash..].rfind(':') {
        Some(at) => &reference[..last_slash + at],
        None => reference,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_of_a_reference() {
        assert_eq!(
            tagless("127.0.0.1:5000/team/app:v1"),
            "127.0.0.1:5000/team/app"
        );
        assert_eq!(
            tagless("127.0.0.1:5000/team/app"),
            "127.0.0.1:5000/team/app"
        );
    }

    #[test]
    fn a_login_hides_its_password() {
        let login = RegistryLogin {
            user: "ci".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{login:?}").contains("hunter2"));
    }
}
