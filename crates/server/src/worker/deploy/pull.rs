//! Prepare, for a service run from a registry image: instead of fetching and building, pull
//! the image with the service's registry login (its password opened from the vault and added
//! to the log's redactor first), resolve it to the digest the registry serves now — a moved
//! tag gives a new one — and record that digest; then make the image pinned to it this
//! installation's under the deployment's tag ([`helvetia_engine::docker::Engine::adopt_image`]),
//! so everything after (start, rollback, pruning, the disk budget) is what a build gets. The
//! deployment is `cloning` while it pulls and `building` while the image is adopted. The
//! names the pull gave the image (the user's tag and digest reference) are removed again
//! when they were not on the engine before: Helvetia keeps only what it made.
//!
//! A refused login, an unknown image or an unreachable registry fails the deployment with the
//! engine's reason (redacted); the live deployment keeps serving.

use std::collections::HashMap;
use std::time::Instant;

use helvetia_core::container::ContainerState;
use helvetia_core::deployment::{DeploymentStatus, FailureCause};
use helvetia_core::image::{ImageRef, ImageTarget};
use helvetia_engine::docker::{EngineError, RegistryLogin, labels};

use super::{Deploy, Failure};
use crate::containers::short_id;

impl Deploy<'_> {
    /// Pulls the service's image and tags it for this deployment. Returns the tag.
    pub(super) async fn pull(&mut self) -> Result<String, Failure> {
        let platform = self.platform;
        let image =
            self.service.settings.image().cloned().ok_or_else(|| {
                Failure::failed(FailureCause::Request, "the service has no image")
            })?;
        let login = self.registry_login().await?;
        let verb = match image.target() {
            ImageTarget::Tag(_) => "resolving the tag of",
            ImageTarget::Digest(_) => "pulling",
        };
        self.to(DeploymentStatus::Cloning, &format!("{verb} {image}"))
            .await?;
        self.check_destination(&image).await?;
        let started = Instant::now();
        let reference = image.to_string();
        let existed = platform.engine.has_image(&reference).await?;
        // A registry that never answers must not hold the deployment (and its job) forever:
        // a pull gets the time a build would.
        let deadline = self.service.runtime.timeouts.build;
        let pulled =
            platform
                .engine
                .pull_from_registry(&reference, image.registry(), login.as_ref());
        let digest = tokio::time::timeout(deadline, pulled)
            .await
            .map_err(|_| {
                Failure::failed(
                    FailureCause::Fetch,
                    format!(
                        "the registry {} did not deliver {image} within {deadline:?} (the \
                         service's build timeout)",
                        image.registry()
                    ),
                )
            })?
            .map_err(|error| pull_failure(&image, login.as_ref(), error))?;
        let pinned = image.pinned(&digest);
        platform
            .store
            .record_image_digest(self.deployment.id, &digest)
            .await?;
        self.log.line(format!(
            "Pulled {image} in {} ms: {pinned}",
            started.elapsed().as_millis()
        ));
        self.to(
            DeploymentStatus::Building,
            &format!("tagging {pinned} for this deployment"),
        )
        .await?;
        let (repository, tag_name) = self.tag();
        let container = platform.engine.scope().adoption_container(
            self.service.project.as_str(),
            self.service.name.as_str(),
            self.deployment.id,
        );
        let labels: HashMap<String, String> = [
            (labels::PROJECT, self.service.project.to_string()),
            (labels::SERVICE, self.service.name.to_string()),
            (labels::SERVICE_ID, self.service.id.to_string()),
            (labels::DEPLOYMENT, self.deployment.id.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        // Recorded before it is created, like every container a deploy makes, so that no
        // reconciliation takes it for a stray one meanwhile.
        let record = platform
            .store
            .reserve_container(self.deployment.id, self.service.id, &container, None)
            .await?;
        let adopted = platform
            .engine
            .adopt_image(&pinned, &container, &repository, &tag_name, labels)
            .await;
        let state = match adopted {
            Ok(_) => ContainerState::Stopped,
            Err(_) => ContainerState::Failed,
        };
        platform.store.set_container_state(record.id, state).await?;
        let adopted = adopted?;
        // The user's own names for the image stay only if they were there before this pull:
        // the adopted image keeps the layers.
        if !existed {
            for name in [&reference, &pinned] {
                if let Err(error) = platform.engine.untag_pulled(name).await {
                    tracing::warn!(%error, name, "removing a pulled image's name failed");
                }
            }
        }
        let tag = format!("{repository}:{tag_name}");
        platform
            .store
            .record_image(self.deployment.id, &tag)
            .await?;
        self.log
            .line(format!("Image {} is {tag}", short_id(&adopted)));
        self.to(DeploymentStatus::Starting, &format!("starting {tag}"))
            .await?;
        Ok(tag)
    }

    /// The service's registry login, its password opened and added to the log's redactor
    /// before anything is printed; `None` without a login.
    async fn registry_login(&self) -> Result<Option<RegistryLogin>, Failure> {
        let Some(user) = self.service.registry_user.clone() else {
            return Ok(None);
        };
        let sealed = self
            .platform
            .store
            .registry_password(self.service.id)
            .await?
            .ok_or_else(|| {
                Failure::failed(
                    FailureCause::Environment,
                    format!("the registry login of `{user}` has no password"),
                )
            })?;
        let binding = crate::vault::registry_password_binding(self.service.id);
        let password = self
            .platform
            .vault
            .open(&binding, &sealed)
            .map_err(|error| {
                Failure::failed(
                    FailureCause::Environment,
                    format!("the registry password could not be opened: {error}"),
                )
            })?;
        self.log.also_redact(&password);
        Ok(Some(RegistryLogin { user, password }))
    }

    /// Holds the registry to the outbound policy as it is now (a name is resolved and each
    /// address checked); the engine connects by itself after.
    async fn check_destination(&self, image: &ImageRef) -> Result<(), Failure> {
        let port = image.port().unwrap_or(443);
        self.platform
            .outbound
            .resolve(image.host(), port)
            .await
            .map(drop)
            .map_err(|error| {
                Failure::failed(
                    FailureCause::Request,
                    format!("the registry is not allowed: {error}"),
                )
            })
    }
}

/// A failed pull as the deployment's reason: what the engine said, and what to check.
fn pull_failure(image: &ImageRef, login: Option<&RegistryLogin>, error: EngineError) -> Failure {
    let message = error.to_string();
    let lower = message.to_ascii_lowercase();
    let hint = if lower.contains("unauthorized")
        || lower.contains("authentication required")
        || lower.contains("no basic auth credentials")
        || lower.contains("denied")
    {
        match login {
            Some(login) => format!(
                "the registry {} refused the login of `{}`: check the user and password \
                 (`helvetia services update --registry-user … --registry-password-stdin`)",
                image.registry(),
                login.user
            ),
            None => format!(
                "the registry {} wants a login: set one with `--registry-user` and \
                 `--registry-password-stdin`",
                image.registry()
            ),
        }
    } else if lower.contains("manifest unknown") || lower.contains("not found") {
        format!("the registry {} has no image {image}", image.registry())
    } else if lower.contains("connection refused")
        || lower.contains("no such host")
        || lower.contains("i/o timeout")
        || lower.contains("dial tcp")
    {
        format!("the registry {} cannot be reached", image.registry())
    } else {
        format!("pulling {image} failed")
    };
    Failure::failed(FailureCause::Fetch, format!("{hint} ({message})"))
}

#[cfg(test)]
mod tests {
    use helvetia_core::outbound::DestinationPolicy;

    use super::*;

    fn reason(engine_says: &str, login: Option<&RegistryLogin>) -> String {
        let image = ImageRef::parse(
            "127.0.0.1:5000/team/app:v1",
            DestinationPolicy {
                allow_private: true,
            },
        )
        .unwrap();
        match pull_failure(&image, login, EngineError::Api(engine_says.into())) {
            Failure::Failed(failure) => {
                assert_eq!(failure.cause, FailureCause::Fetch);
                failure.message
            }
            _ => panic!("not a failure"),
        }
    }

    #[test]
    fn a_failed_pull_says_what_to_check() {
        let login = RegistryLogin {
            user: "ci".into(),
            password: "secret".into(),
        };
        let refused = reason(
            "pulling x: Head \"http://127.0.0.1:5000/v2/team/app/manifests/v1\": no basic auth credentials",
            Some(&login),
        );
        assert!(refused.starts_with("the registry 127.0.0.1:5000 refused the login of `ci`"));
        assert!(!refused.contains("secret"));
        let wanted = reason("unauthorized: authentication required", None);
        assert!(wanted.contains("wants a login"), "{wanted}");
        let missing = reason(
            "manifest for 127.0.0.1:5000/team/app:v1 not found: manifest unknown",
            None,
        );
        assert!(
            missing.starts_with("the registry 127.0.0.1:5000 has no image"),
            "{missing}"
        );
        let unreachable = reason(
            "Get \"http://127.0.0.1:5000/v2/\": dial tcp 127.0.0.1:5000: connect: connection refused",
            None,
        );
        assert!(unreachable.contains("cannot be reached"), "{unreachable}");
    }
}
