//! Named volumes: a service's persistent storage.

use std::collections::HashMap;
use std::path::Path;

use bollard::models::VolumeCreateRequest;
use bollard::query_parameters::{ListVolumesOptions, RemoveVolumeOptions};

use super::{Engine, EngineError, Result, labels};

impl Engine {
    /// Creates the volume unless it exists; an existing one of this installation (with its
    /// data) is kept, anyone else's is refused.
    pub async fn ensure_volume(&self, name: &str, project: &str) -> Result<()> {
        match self.docker.inspect_volume(name).await {
            Ok(volume) => return self.check_ours("volume", name, Some(&volume.labels)),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            Err(error) => return Err(EngineError::from_bollard(error)),
        }
        let request = VolumeCreateRequest {
            name: Some(name.to_owned()),
            labels: Some(
                self.ownership_labels()
                    .into_iter()
                    .chain([(labels::PROJECT.to_owned(), project.to_owned())])
                    .collect::<HashMap<_, _>>(),
            ),
            ..VolumeCreateRequest::default()
        };
        self.docker
            .create_volume(request)
            .await
            .map(|_| ())
            .map_err(EngineError::from_bollard)
    }

    /// Bytes stored in a volume (0 when it does not exist yet). Walks its directory on the
    /// host: the engine's own disk-usage figures changed shape across API versions.
    pub async fn volume_size(&self, name: &str) -> Result<u64> {
        let volume = match self.docker.inspect_volume(name).await {
            Ok(volume) => volume,
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => return Ok(0),
            Err(error) => return Err(EngineError::from_bollard(error)),
        };
        let mountpoint = volume.mountpoint;
        tokio::task::spawn_blocking(move || directory_size(Path::new(&mountpoint)))
            .await
            .map_err(|e| EngineError::Api(e.to_string()))
    }

    /// Names of this installation's volumes.
    pub async fn managed_volumes(&self) -> Result<Vec<String>> {
        let options = ListVolumesOptions {
            filters: Some(self.owned_filters(&[])),
        };
        let response = self
            .docker
            .list_volumes(Some(options))
            .await
            .map_err(EngineError::from_bollard)?;
        Ok(response
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.name)
            .collect())
    }

    /// Deletes a volume and its data. A missing one is not an error; one still used by a
    /// container is (`Conflict`-like API error), and stays.
    pub async fn remove_volume(&self, name: &str) -> Result<()> {
        match self
            .docker
            .remove_volume(name, Some(RemoveVolumeOptions { force: false }))
            .await
        {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(error) => Err(EngineError::from_bollard(error)),
        }
    }
}

fn directory_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|entry| entry.ok())
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => directory_size(&entry.path()),
            Ok(kind) if kind.is_file() => entry.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}
