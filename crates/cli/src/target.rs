//! `PROJECT/SERVICE` arguments, checked locally so typos fail before any request.

use anyhow::anyhow;
use helvetia_core::name::{ProjectName, ServiceName};

#[derive(Debug, Clone)]
pub struct ServiceTarget {
    pub project: ProjectName,
    pub service: ServiceName,
}

impl ServiceTarget {
    /// The API path of the service.
    pub fn path(&self) -> String {
        format!(
            "/api/v1/projects/{}/services/{}",
            self.project, self.service
        )
    }
}

impl std::fmt::Display for ServiceTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.project, self.service)
    }
}

impl std::str::FromStr for ServiceTarget {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        let (project, service) = s
            .split_once('/')
            .ok_or_else(|| anyhow!("expected PROJECT/SERVICE, got `{s}`"))?;
        Ok(ServiceTarget {
            project: ProjectName::parse(project)
                .map_err(|e| anyhow!("invalid project name `{project}`: {e}"))?,
            service: ServiceName::parse(service)
                .map_err(|e| anyhow!("invalid service name `{service}`: {e}"))?,
        })
    }
}

pub fn project(s: &str) -> anyhow::Result<ProjectName> {
    ProjectName::parse(s).map_err(|e| anyhow!("invalid project name `{s}`: {e}"))
}
