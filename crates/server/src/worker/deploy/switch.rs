//! Switch: the service's route moves to the new containers under the routing lock, and the
//! deployment is recorded live once the edge router confirms it.

use std::time::Instant;

use helvetia_core::deployment::DeploymentStatus;
use helvetia_core::routing::{Backend, route_name};

use helvetia_core::deployment::FailureCause;

use super::{Deploy, Failure, Ready};
use crate::failpoint::{self, Failpoint};

impl Deploy<'_> {
    /// Points the service's route at the new container, confirms the edge router serves it,
    /// and records the deployment live — all under the routing lock.
    pub(super) async fn switch(&mut self, ready: &[Ready]) -> Result<(), Failure> {
        let platform = self.platform;
        let guard = platform.routing().await;
        let mut table = platform.routing_table().await?;
        let name = route_name(self.service.project.as_str(), self.service.name.as_str());
        let backends: Vec<Backend> = ready.iter().filter_map(|r| r.backend.clone()).collect();
        match table.route_mut(&name) {
            Some(route) => {
                route.backends = backends.clone();
                if !backends.is_empty() {
                    let list: Vec<String> = backends.iter().map(Backend::to_string).collect();
                    self.log.line(format!(
                        "Switching {} to {}",
                        route.hostnames.join(", "),
                        list.join(", ")
                    ));
                }
            }
            // A worker has no route: only the switch of the live deployment is recorded.
            None if backends.is_empty() => {}
            None => {
                return Err(Failure::failed(
                    FailureCause::Routing,
                    "the service has no route",
                ));
            }
        }
        failpoint::reached(Failpoint::BeforeConfirm).await;
        let started = Instant::now();
        if let Err(error) = platform.apply_and_confirm(&table).await {
            // Put back what the store says is serving: the previous version.
            if let Err(restore) = platform.publish_routes_locked(&guard).await {
                tracing::error!(%restore, "restoring the previous routes failed");
            }
            return Err(Failure::failed(
                FailureCause::Routing,
                format!("the edge router did not take the new route: {error}"),
            ));
        }
        failpoint::reached(Failpoint::AfterConfirm).await;
        self.log.line(format!(
            "The edge router serves the new route (confirmed in {} ms)",
            started.elapsed().as_millis()
        ));
        let url = platform.service_address(&self.service).await;
        let result = self
            .to(DeploymentStatus::Live, &format!("serving {url}"))
            .await;
        if result.is_err() {
            // The store still says the previous version serves: make the router agree before
            // this deployment's containers are removed.
            if let Err(restore) = platform.publish_routes_locked(&guard).await {
                tracing::error!(%restore, "restoring the previous routes failed");
            }
        }
        drop(guard);
        result
    }
}
