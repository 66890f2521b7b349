//! Images: find one to reuse, tag it for a new deployment, copy, push and pull it, remove old
//! ones.
//! A tag names whatever image it was moved to last, so every tag operation checks the image
//! it names is this installation's: a tag another installation moved is never run, moved or
//! removed.

use bollard::query_parameters::{
    CreateImageOptions, ImportImageOptions, ListImagesOptions, PushImageOptions,
    RemoveImageOptions, TagImageOptions,
};

use std::collections::HashMap;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};

use super::{Engine, EngineError, Result, labels};

/// An image Helvetia built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedImage {
    pub id: String,
    pub tags: Vec<String>,
    pub deployment: Option<i64>,
    /// The service it was built for.
    pub service: Option<i64>,
}

impl Engine {
    /// An image built for `service_id` with exactly this build key, if one still exists.
    pub async fn find_image(&self, service_id: i64, build_key: &str) -> Result<Option<String>> {
        let service = service_id.to_string();
        let images = self
            .list_images(&[
                (labels::SERVICE_ID, &service),
                (labels::BUILD_KEY, build_key),
            ])
            .await?;
        Ok(images.into_iter().next().map(|image| image.id))
    }

    /// Every image built for a service.
    pub async fn service_images(&self, service_id: i64) -> Result<Vec<ManagedImage>> {
        let service = service_id.to_string();
        self.list_images(&[(labels::SERVICE_ID, &service)]).await
    }

    /// Every image of this installation.
    pub async fn owned_images(&self) -> Result<Vec<ManagedImage>> {
        self.list_images(&[]).await
    }

    /// Removes every image of this installation, with all its tags. Only for the builder
    /// engine, whose images are handed to the host engine once built. Returns how many went.
    pub async fn remove_owned_images(&self) -> Result<usize> {
        let mut removed = 0;
        for image in self.owned_images().await? {
            if self.remove_image(&image.id).await? {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Removes the image `id` with all its tags. Only for the builder engine (see
    /// [`Engine::remove_owned_images`]). False when it was gone already.
    pub async fn remove_image(&self, id: &str) -> Result<bool> {
        let options = RemoveImageOptions {
            force: true,
            noprune: false,
            platforms: None,
        };
        match self.docker.remove_image(id, Some(options), None).await {
            Ok(_) => Ok(true),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(false),
            Err(error) => Err(EngineError::from_bollard(error)),
        }
    }

    async fn list_images(&self, filters: &[(&str, &str)]) -> Result<Vec<ManagedImage>> {
        let options = ListImagesOptions {
            filters: Some(self.owned_filters(filters)),
            ..ListImagesOptions::default()
        };
        let images = self
            .docker
            .list_images(Some(options))
            .await
            .map_err(EngineError::from_bollard)?;
        Ok(images
            .into_iter()
            .map(|image| ManagedImage {
                deployment: image
                    .labels
                    .get(labels::DEPLOYMENT)
                    .and_then(|d| d.parse().ok()),
                service: image
                    .labels
                    .get(labels::SERVICE_ID)
                    .and_then(|s| s.parse().ok()),
                id: image.id,
                tags: image.repo_tags,
            })
            .collect())
    }

    /// The id and labels of the image `reference` (a name or an id) names.
    async fn inspect_image(
        &self,
        reference: &str,
    ) -> Result<(String, Option<HashMap<String, String>>)> {
        let inspect = self
            .docker
            .inspect_image(reference)
            .await
            .map_err(EngineError::from_bollard)?;
        let id = inspect
            .id
            .ok_or_else(|| EngineError::NotFound(format!("image {reference}")))?;
        Ok((id, inspect.config.and_then(|config| config.labels)))
    }

    /// The id of the image `reference` names, if it is this installation's.
    pub async fn owned_image(&self, reference: &str) -> Result<String> {
        let (id, labels) = self.inspect_image(reference).await?;
        self.check_ours("image", reference, labels.as_ref())?;
        Ok(id)
    }

    /// Refuses to move `reference` (`repo:tag`) when it names another installation's image.
    pub(super) async fn claim_tag(&self, reference: &str) -> Result<()> {
        match self.owned_image(reference).await {
            Ok(_) | Err(EngineError::NotFound(_)) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Adds `repo:tag` to an existing image (by id), unless that tag names another
    /// installation's image.
    pub async fn tag_image(&self, image: &str, repo: &str, tag: &str) -> Result<()> {
        self.claim_tag(&format!("{repo}:{tag}")).await?;
        let options = TagImageOptions {
            repo: Some(repo.to_owned()),
            tag: Some(tag.to_owned()),
        };
        self.docker
            .tag_image(image, Some(options))
            .await
            .map_err(EngineError::from_bollard)
    }

    /// The id of an image by name or id.
    pub async fn image_id(&self, image: &str) -> Result<String> {
        Ok(self.inspect_image(image).await?.0)
    }

    /// Removes the tag `tag` if it still names the image `image` (an id): a tag moved since
    /// the image was listed (by anyone) is left alone. The image goes with its last tag unless
    /// a container still uses it. True when the tag was removed.
    pub async fn remove_tag(&self, image: &str, tag: &str) -> Result<bool> {
        match self.image_id(tag).await {
            Ok(id) if id == image => {}
            Ok(_) | Err(EngineError::NotFound(_)) => return Ok(false),
            Err(error) => return Err(error),
        }
        let options = RemoveImageOptions {
            force: false,
            noprune: false,
            platforms: None,
        };
        match self.docker.remove_image(tag, Some(options), None).await {
            Ok(_) => Ok(true),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(false),
            Err(error) => Err(EngineError::from_bollard(error)),
        }
    }

    /// Whether the engine has the image `reference` (a name or an id), whoever made it.
    pub async fn has_image(&self, reference: &str) -> Result<bool> {
        match self.inspect_image(reference).await {
            Ok(_) => Ok(true),
            Err(EngineError::NotFound(_)) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Copies the image `reference` (with its name, labels and layers) from this engine to
    /// `target`: exported as a tar stream and loaded there as it arrives, never whole in
    /// memory.
    pub async fn copy_image_to(&self, target: &Engine, reference: &str) -> Result<()> {
        // The load wants a stream it owns; the export borrows this engine's client, so a task
        // relays it.
        let (mut sender, receiver) =
            futures::channel::mpsc::channel::<std::result::Result<Bytes, std::io::Error>>(8);
        let source = self.docker.clone();
        let name = reference.to_owned();
        let relay = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(async move {
            let mut export = std::pin::pin!(source.export_image(&name));
            while let Some(chunk) = export.next().await {
                let chunk = chunk.map_err(std::io::Error::other);
                let failed = chunk.is_err();
                if sender.send(chunk).await.is_err() || failed {
                    break;
                }
            }
        }));
        let options = ImportImageOptions {
            quiet: true,
            ..ImportImageOptions::default()
        };
        let mut load = std::pin::pin!(target.docker.import_image_stream(options, receiver, None));
        while let Some(message) = load.next().await {
            let message = message.map_err(EngineError::from_bollard)?;
            if let Some(error) = message.error_detail.and_then(|detail| detail.message) {
                return Err(EngineError::Api(format!("loading {reference}: {error}")));
            }
        }
        drop(relay);
        Ok(())
    }

    /// Pushes `repository:tag` (this installation's image) to its registry; returns the
    /// digest the registry gave it.
    pub async fn push_image(&self, repository: &str, tag: &str) -> Result<String> {
        let options = PushImageOptions {
            tag: Some(tag.to_owned()),
            platform: None,
        };
        let mut push = std::pin::pin!(self.docker.push_image(repository, Some(options), None));
        let mut digest = None;
        while let Some(message) = push.next().await {
            let message = message.map_err(EngineError::from_bollard)?;
            if let Some(error) = message.error_detail.and_then(|detail| detail.message) {
                return Err(EngineError::Api(format!(
                    "pushing {repository}:{tag}: {error}"
                )));
            }
            digest = digest.or(message.status.as_deref().and_then(pushed_digest));
        }
        digest.ok_or_else(|| {
            EngineError::Api(format!("the registry gave {repository}:{tag} no digest"))
        })
    }

    /// Pulls `reference` (`repository@digest`) from its registry; returns the image's id.
    pub async fn pull_image(&self, reference: &str) -> Result<String> {
        let options = CreateImageOptions {
            from_image: Some(reference.to_owned()),
            ..CreateImageOptions::default()
        };
        let mut pull = std::pin::pin!(self.docker.create_image(Some(options), None, None));
        while let Some(message) = pull.next().await {
            let message = message.map_err(EngineError::from_bollard)?;
            if let Some(error) = message.error_detail.and_then(|detail| detail.message) {
                return Err(EngineError::Api(format!("pulling {reference}: {error}")));
            }
        }
        self.image_id(reference).await
    }
}

/// The digest in the engine's last push message, `<tag>: digest: sha256:… size: N`.
fn pushed_digest(status: &str) -> Option<String> {
    let (_, rest) = status.split_once("digest: ")?;
    let digest = rest.split_whitespace().next()?;
    digest.starts_with("sha256:").then(|| digest.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_is_read_from_the_push_status() {
        assert_eq!(
            pushed_digest("7: digest: sha256:0a1b2c size: 528").as_deref(),
            Some("sha256:0a1b2c")
        );
        assert_eq!(pushed_digest("Pushed"), None);
        assert_eq!(pushed_digest("x: digest: md5:00 size: 1"), None);
    }
}
