//! Images: find one to reuse, tag it for a new deployment, remove old ones, prune build cache.

use bollard::query_parameters::{
    ListImagesOptions, PruneBuildOptions, RemoveImageOptions, TagImageOptions,
};

use super::{Engine, EngineError, Result, labels};

/// An image Helvetia built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedImage {
    pub id: String,
    pub tags: Vec<String>,
    pub deployment: Option<i64>,
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
                id: image.id,
                tags: image.repo_tags,
            })
            .collect())
    }

    /// Adds `repo:tag` to an existing image.
    pub async fn tag_image(&self, image: &str, repo: &str, tag: &str) -> Result<()> {
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
        let inspect = self
            .docker
            .inspect_image(image)
            .await
            .map_err(EngineError::from_bollard)?;
        inspect
            .id
            .ok_or_else(|| EngineError::NotFound(format!("image {image}")))
    }

    /// Removes one tag (or an image by id). An image still used by a container stays.
    pub async fn remove_image(&self, image: &str) -> Result<()> {
        let options = RemoveImageOptions {
            force: false,
            noprune: false,
            platforms: None,
        };
        match self.docker.remove_image(image, Some(options), None).await {
            Ok(_) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(error) => Err(EngineError::from_bollard(error)),
        }
    }

    /// Removes build cache no image refers to any more; the layer cache of current builds is
    /// kept, so the next build stays fast.
    pub async fn prune_dangling_build_cache(&self) -> Result<i64> {
        let options = PruneBuildOptions {
            all: Some(false),
            ..PruneBuildOptions::default()
        };
        let pruned = self
            .docker
            .prune_build(Some(options))
            .await
            .map_err(EngineError::from_bollard)?;
        Ok(pruned.space_reclaimed.unwrap_or(0))
    }
}
