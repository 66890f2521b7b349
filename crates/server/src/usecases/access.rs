//! What a caller may touch: names resolved to the projects and services the caller's team
//! owns. Another team's service is "not found", never "forbidden", so names do not leak.

use std::ops::Deref;

use helvetia_core::auth::Caller;
use helvetia_core::name::{ProjectName, ServiceName};
use helvetia_core::service::Service;
use helvetia_core::validation::FieldErrors;

use super::{App, Result};

/// A service the caller owns. Only [`service`] makes one, so an operation that takes it cannot
/// skip the ownership check.
#[derive(Debug, Clone)]
pub struct OwnedService(Service);

impl OwnedService {
    pub fn into_service(self) -> Service {
        self.0
    }
}

impl Deref for OwnedService {
    type Target = Service;
    fn deref(&self) -> &Service {
        &self.0
    }
}

/// Parses a project name given as `{project}` (errors are reported under `project`).
pub fn project_name(raw: &str) -> Result<ProjectName> {
    Ok(ProjectName::parse(raw).map_err(|e| FieldErrors::single("project", e))?)
}

/// The service `project`/`service` names, if the caller owns it. Invalid names are reported
/// under `project` and `service`, together.
pub async fn service(
    app: &App,
    caller: &Caller,
    project: &str,
    service: &str,
) -> Result<OwnedService> {
    let mut errors = FieldErrors::new();
    let project = errors.check("project", ProjectName::parse(project));
    let service = errors.check("service", ServiceName::parse(service));
    let (project, name) = errors.finish(|| Some((project?, service?)))?;
    Ok(OwnedService(
        app.store.service(caller.team, &project, &name).await?,
    ))
}
