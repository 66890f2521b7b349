//! Project networks: one bridge network per project, with a subnet Helvetia chose, so the
//! engine's small default address pools never run out.

use std::collections::HashMap;

use bollard::models::{Ipam, IpamConfig, NetworkCreateRequest};

use super::{Engine, EngineError, Result, labels};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSpec {
    pub name: String,
    pub subnet: String,
    pub project: String,
}

impl Engine {
    /// Creates the network unless it exists. An existing network of this installation is kept
    /// as it is (containers may be attached to it); anyone else's is refused.
    pub async fn ensure_network(&self, spec: &NetworkSpec) -> Result<()> {
        match self
            .docker
            .inspect_network(
                &spec.name,
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await
        {
            Ok(network) => return self.check_ours("network", &spec.name, network.labels.as_ref()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            Err(error) => return Err(EngineError::from_bollard(error)),
        }
        let request = NetworkCreateRequest {
            name: spec.name.clone(),
            driver: Some("bridge".into()),
            ipam: Some(Ipam {
                config: Some(vec![IpamConfig {
                    subnet: Some(spec.subnet.clone()),
                    ..IpamConfig::default()
                }]),
                ..Ipam::default()
            }),
            labels: Some(
                self.ownership_labels()
                    .into_iter()
                    .chain([(labels::PROJECT.to_owned(), spec.project.clone())])
                    .collect::<HashMap<_, _>>(),
            ),
            ..NetworkCreateRequest::default()
        };
        match self.docker.create_network(request).await {
            Ok(_) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError { message, .. })
                if message.contains("overlap") =>
            {
                Err(EngineError::SubnetInUse(spec.subnet.clone()))
            }
            Err(error) => Err(EngineError::from_bollard(error)),
        }
    }

    /// Removes a network; a missing one is not an error.
    pub async fn remove_network(&self, name: &str) -> Result<()> {
        match self.docker.remove_network(name).await {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(error) => Err(EngineError::from_bollard(error)),
        }
    }
}
