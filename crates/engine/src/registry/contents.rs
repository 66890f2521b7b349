//! What the registry holds, and reclaiming it: its manifests by repository and tag (the
//! registry's HTTP API), deleting the ones no deployment needs, and its garbage collection,
//! which removes the blobs no manifest refers to any more. The collection must not run while
//! an image is pushed (it would delete the blobs of a push not yet committed): the caller
//! holds the builder, the only pusher, meanwhile.

use std::path::Path;
use std::time::Duration;

use reqwest::{Method, StatusCode, header};
use serde::Deserialize;

use super::{CONFIG_FILE, Registry, STORAGE_DIR};
use crate::process::Program;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The collection walks every repository and blob; a large registry takes minutes.
const COLLECT_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// The manifest formats Helvetia's images are pushed in; without them the registry would
/// answer a tag with a converted (and differently digested) manifest.
const MANIFEST_TYPES: &str = "application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.index.v1+json";

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("the registry at {address}: {message}")]
    Http { address: String, message: String },
    #[error("the registry's garbage collection: {0}")]
    Collection(String),
    #[error("measuring the registry's storage: {0}")]
    Storage(std::io::Error),
}

/// An image manifest in the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub repository: String,
    pub tag: String,
    pub digest: String,
}

#[derive(Deserialize)]
struct Catalog {
    #[serde(default)]
    repositories: Vec<String>,
}

#[derive(Deserialize)]
struct Tags {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

impl Registry {
    fn failed(&self, message: impl std::fmt::Display) -> RegistryError {
        RegistryError::Http {
            address: self.address.to_string(),
            message: message.to_string(),
        }
    }

    async fn send(&self, method: Method, path: &str) -> Result<reqwest::Response, RegistryError> {
        let client = crate::loopback::client(REQUEST_TIMEOUT).map_err(|e| self.failed(e))?;
        client
            .request(method, format!("http://{}{path}", self.address))
            .header(header::ACCEPT, MANIFEST_TYPES)
            .send()
            .await
            .map_err(|e| self.failed(e))
    }

    /// Every page of a paginated list (`_catalog`, `tags/list`), following its `Link`s.
    async fn pages<T: serde::de::DeserializeOwned>(
        &self,
        first: String,
    ) -> Result<Vec<T>, RegistryError> {
        let mut pages = vec![];
        let mut next = Some(first);
        while let Some(path) = next.take() {
            let response = self.send(Method::GET, &path).await?;
            if response.status() == StatusCode::NOT_FOUND {
                break;
            }
            if !response.status().is_success() {
                return Err(self.failed(format!("{path}: {}", response.status())));
            }
            next = next_page(response.headers());
            pages.push(response.json().await.map_err(|e| self.failed(e))?);
        }
        Ok(pages)
    }

    /// Every tagged manifest, with its digest.
    pub async fn manifests(&self) -> Result<Vec<Manifest>, RegistryError> {
        let mut manifests = vec![];
        let catalogs: Vec<Catalog> = self.pages("/v2/_catalog?n=1000".to_owned()).await?;
        for repository in catalogs.into_iter().flat_map(|page| page.repositories) {
            let lists: Vec<Tags> = self
                .pages(format!("/v2/{repository}/tags/list?n=1000"))
                .await?;
            for tag in lists
                .into_iter()
                .flat_map(|page| page.tags.unwrap_or_default())
            {
                let path = format!("/v2/{repository}/manifests/{tag}");
                let response = self.send(Method::HEAD, &path).await?;
                if response.status() == StatusCode::NOT_FOUND {
                    continue;
                }
                let digest = response
                    .headers()
                    .get("docker-content-digest")
                    .and_then(|value| value.to_str().ok())
                    .ok_or_else(|| self.failed(format!("{path}: no digest")))?
                    .to_owned();
                manifests.push(Manifest {
                    repository: repository.clone(),
                    tag,
                    digest,
                });
            }
        }
        Ok(manifests)
    }

    /// Deletes a manifest (and every tag naming it); its blobs go at the next collection.
    pub async fn delete(&self, manifest: &Manifest) -> Result<(), RegistryError> {
        let path = format!("/v2/{}/manifests/{}", manifest.repository, manifest.digest);
        let response = self.send(Method::DELETE, &path).await?;
        match response.status() {
            status if status.is_success() || status == StatusCode::NOT_FOUND => Ok(()),
            status => Err(self.failed(format!("DELETE {path}: {status}"))),
        }
    }

    /// The bytes the registry's storage takes.
    pub async fn storage_bytes(&self) -> Result<u64, RegistryError> {
        let storage = self.state_dir.join(STORAGE_DIR);
        tokio::task::spawn_blocking(move || directory_bytes(&storage))
            .await
            .map_err(|e| RegistryError::Storage(std::io::Error::other(e)))?
            .map_err(RegistryError::Storage)
    }

    /// Removes the blobs no manifest refers to, and the manifests no tag names. Returns the
    /// bytes freed. No push may run meanwhile.
    pub async fn collect_garbage(&self) -> Result<u64, RegistryError> {
        let before = self.storage_bytes().await?;
        let output = Program::new(&self.binary)
            .arg("garbage-collect")
            .arg("--delete-untagged")
            .arg(self.state_dir.join(CONFIG_FILE))
            .timeout(COLLECT_TIMEOUT)
            .run()
            .await
            .map_err(|e| RegistryError::Collection(e.to_string()))?;
        if !output.success {
            let said = output.stderr.lines().last().unwrap_or_default().to_owned();
            return Err(RegistryError::Collection(said));
        }
        Ok(before.saturating_sub(self.storage_bytes().await?))
    }
}

/// The path of the next page in a `Link: </v2/…?last=…&n=…>; rel="next"` header.
fn next_page(headers: &header::HeaderMap) -> Option<String> {
    let link = headers.get(header::LINK)?.to_str().ok()?;
    let (target, relation) = link.split_once(';')?;
    relation.contains("rel=\"next\"").then(|| {
        target
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_owned()
    })
}

/// The sizes of the files under `dir` (none is a hard link: the registry writes blobs once).
fn directory_bytes(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => return Err(error),
        };
        for entry in entries {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                pending.push(entry.path());
            } else if kind.is_file() {
                total += entry.metadata()?.len();
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_page_is_read_from_the_link_header() {
        let mut headers = header::HeaderMap::new();
        assert_eq!(next_page(&headers), None);
        headers.insert(
            header::LINK,
            "</v2/_catalog?last=b&n=1000>; rel=\"next\""
                .parse()
                .unwrap(),
        );
        assert_eq!(
            next_page(&headers).as_deref(),
            Some("/v2/_catalog?last=b&n=1000")
        );
    }

    #[test]
    fn a_directory_s_bytes_are_its_files_sizes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/b/blob"), vec![0u8; 1000]).unwrap();
        std::fs::write(dir.path().join("top"), b"xyz").unwrap();
        assert_eq!(directory_bytes(dir.path()).unwrap(), 1003);
        assert_eq!(directory_bytes(&dir.path().join("missing")).unwrap(), 0);
    }
}
