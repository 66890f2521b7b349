//! What Helvetia's images and build cache take on disk, and freeing it. On an engine others
//! use too (the host's), only this installation's images are counted or removed, by their
//! labels; build cache carries no owner, so it is only ever pruned on Helvetia's own builder
//! engine, where all of it is Helvetia's.
//!
//! Sizes come from the engine's `/system/df` and the prune from `/build/prune`, asked over the
//! socket in this engine's API version (1.41): bollard reads both in a newer shape.

use std::collections::HashMap;

use hyper::Method;
use serde::Deserialize;

use super::socket;
use super::{Engine, EngineError, Result, labels};

/// The disk-usage answer can list thousands of images and cache records.
const MAX_DF_BODY: usize = 64 << 20;
const MAX_PRUNE_BODY: usize = 16 << 20;

/// Bytes an engine holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineDisk {
    /// The layers of this installation's images: on the host engine each image's own
    /// (its size less what it shares with other images, so a base image is not counted); on
    /// the builder every layer (all of them are Helvetia's).
    pub images: u64,
    /// The build cache not held by an image (which `images` counts).
    pub build_cache: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DiskUsage {
    #[serde(default)]
    layers_size: i64,
    #[serde(default)]
    images: Option<Vec<ImageUsage>>,
    #[serde(default)]
    build_cache: Option<Vec<CacheUsage>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ImageUsage {
    #[serde(default)]
    size: i64,
    #[serde(default)]
    shared_size: i64,
    #[serde(default)]
    labels: Option<HashMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CacheUsage {
    #[serde(default)]
    size: i64,
    #[serde(default)]
    shared: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PruneAnswer {
    #[serde(default)]
    space_reclaimed: i64,
}

fn bytes(size: i64) -> u64 {
    u64::try_from(size).unwrap_or(0)
}

impl Engine {
    fn local_socket(&self) -> Result<&std::path::Path> {
        self.socket.as_deref().map_err(|scheme| {
            EngineError::Unreachable(format!(
                "disk usage needs the Docker engine's local unix socket, but DOCKER_HOST is a \
                 `{scheme}` address"
            ))
        })
    }

    async fn disk_usage(&self) -> Result<DiskUsage> {
        socket::json(
            self.local_socket()?,
            Method::GET,
            "/v1.41/system/df",
            MAX_DF_BODY,
        )
        .await
    }

    /// What this installation's images take on this engine, an engine others use too.
    pub async fn owned_disk(&self) -> Result<EngineDisk> {
        let usage = self.disk_usage().await?;
        let images = usage
            .images
            .unwrap_or_default()
            .iter()
            .filter(|image| {
                let label = |key| image.labels.as_ref().and_then(|labels| labels.get(key));
                label(labels::MANAGED).map(String::as_str) == Some("true")
                    && label(labels::INSTANCE).map(String::as_str) == Some(self.scope.instance())
            })
            .map(|image| bytes(image.size) - bytes(image.shared_size).min(bytes(image.size)))
            .sum();
        Ok(EngineDisk {
            images,
            build_cache: 0,
        })
    }

    /// What this engine holds in all: only for the builder engine, which is Helvetia's alone.
    pub async fn whole_disk(&self) -> Result<EngineDisk> {
        let usage = self.disk_usage().await?;
        let build_cache = usage
            .build_cache
            .unwrap_or_default()
            .iter()
            .filter(|record| !record.shared)
            .map(|record| bytes(record.size))
            .sum();
        Ok(EngineDisk {
            images: bytes(usage.layers_size),
            build_cache,
        })
    }

    /// Prunes build cache, least recently used first, until at most `keep` bytes of it are
    /// left (records in use by a running build stay). Returns the bytes freed. Only for the
    /// builder engine: on a shared engine this would prune others' cache.
    pub async fn prune_build_cache_to(&self, keep: u64) -> Result<u64> {
        let answer: PruneAnswer = socket::json(
            self.local_socket()?,
            Method::POST,
            &format!("/v1.41/build/prune?all=1&keep-storage={keep}"),
            MAX_PRUNE_BODY,
        )
        .await?;
        Ok(bytes(answer.space_reclaimed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_disk_usage_of_an_old_engine_is_read() {
        let answer = r#"{"LayersSize": 3000, "Images": [
            {"Size": 1000, "SharedSize": 400, "Labels": {"io.helvetia.managed": "true"}},
            {"Size": 500, "SharedSize": -1, "Labels": null}],
            "BuildCache": [{"Size": 70, "Shared": true}, {"Size": 30, "Shared": false}],
            "Containers": [], "Volumes": []}"#;
        let usage: DiskUsage = serde_json::from_str(answer).unwrap();
        assert_eq!(usage.layers_size, 3000);
        let images = usage.images.unwrap();
        assert_eq!(bytes(images[1].shared_size), 0);
        assert_eq!(usage.build_cache.unwrap().len(), 2);
        let none: DiskUsage =
            serde_json::from_str(r#"{"LayersSize": 0, "Images": null, "BuildCache": null}"#)
                .unwrap();
        assert!(none.images.is_none());
    }
}
