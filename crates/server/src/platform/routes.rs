//! The routing table Helvetia publishes and what follows from it: the store's routes with
//! Helvetia's own (the control plane, `/.well-known/…` on every host, aliases answered by the
//! API) and the issued certificates; publishing under the routing lock; where a service's
//! users reach it.

use helvetia_core::domain::{
    ACME_CHALLENGE_PATH, ACME_CHALLENGE_ROUTE, WELL_KNOWN_PATH, WELL_KNOWN_ROUTE,
};
use helvetia_core::edge::CONTROL_PLANE_ROUTE;
use helvetia_core::routing::{Backend, Route, RoutingTable, ServedCertificate};
use helvetia_core::service::Service;
use helvetia_engine::routing::RoutingError;
use helvetia_store::StoreError;
use tokio::sync::MutexGuard;

use super::{Platform, PlatformSettings, PublishError};

impl PlatformSettings {
    /// The route of Helvetia's own API at the public URL's host, relayed by the edge router
    /// to the API's listener; none without a public URL.
    pub fn control_plane_route(&self) -> Option<Route> {
        let public = self.public_url.as_ref()?;
        let address = self.control_plane_address();
        Some(Route {
            name: CONTROL_PLANE_ROUTE.to_owned(),
            path_prefix: None,
            redirect_to: None,
            basic_auth: None,
            hsts: None,
            hostnames: vec![public.host().to_owned()],
            backends: vec![Backend {
                address: address.ip().to_string(),
                port: address.port(),
            }],
        })
    }

    /// `table` with Helvetia's own routes added — the control plane's, and the domains'
    /// HTTP check on every host — and aliases sent to the API, which redirects them: every
    /// table published goes through here.
    pub fn with_control_plane(&self, mut table: RoutingTable) -> RoutingTable {
        if let Some(route) = self.control_plane_route() {
            table.insert(route);
        }
        let address = self.control_plane_address();
        let api = Backend {
            address: address.ip().to_string(),
            port: address.port(),
        };
        // An alias's requests are answered by the API (`api::redirects`).
        let aliases: Vec<String> = table
            .published()
            .filter(|route| route.redirect_to.is_some())
            .map(|route| route.name.clone())
            .collect();
        for name in aliases {
            if let Some(route) = table.route_mut(&name) {
                route.backends = vec![api.clone()];
            }
        }
        for (name, path) in [
            (WELL_KNOWN_ROUTE, WELL_KNOWN_PATH),
            (ACME_CHALLENGE_ROUTE, ACME_CHALLENGE_PATH),
        ] {
            table.insert(Route {
                name: name.to_owned(),
                path_prefix: Some(path.to_owned()),
                redirect_to: None,
                basic_auth: None,
                hsts: None,
                hostnames: vec![],
                backends: vec![api.clone()],
            });
        }
        table
    }
}

impl Platform {
    /// Exclusive right to change routing until the guard is dropped.
    pub async fn routing(&self) -> MutexGuard<'_, ()> {
        self.routing.lock().await
    }

    /// Applies `table` and waits until the edge router serves it. Call with the routing lock.
    pub async fn apply_and_confirm(&self, table: &RoutingTable) -> Result<(), RoutingError> {
        self.edge.apply(table).await?;
        self.edge
            .confirm(table, self.settings.confirm_timeout)
            .await?;
        let redirects = table
            .published()
            .filter_map(|route| Some((route, route.redirect_to.as_ref()?)))
            .flat_map(|(route, target)| {
                route
                    .hostnames
                    .iter()
                    .map(move |host| (host.clone(), target.clone()))
            })
            .collect();
        *self
            .redirects
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = redirects;
        // A new service, preview or domain may want a certificate: the task looks now.
        self.certificates_due.notify_one();
        Ok(())
    }

    /// Where a request for `host` (an alias domain) is redirected, if anywhere.
    pub fn redirect_for(&self, host: &str) -> Option<String> {
        self.redirects
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(host)
            .cloned()
    }

    /// Where a service's users reach it: its primary custom domain once routed, else its
    /// generated hostname — over HTTPS once a certificate for it is issued and served.
    pub async fn service_address(&self, service: &Service) -> String {
        let domains = match self.store.domains(service.id).await {
            Ok(domains) => domains,
            Err(error) => {
                tracing::warn!(%error, "reading a service's domains failed");
                return self.settings.service_url(service);
            }
        };
        if let Some(primary) = domains.iter().find(|d| d.primary && d.is_routed()) {
            let issued = primary
                .certificate
                .as_ref()
                .is_some_and(|certificate| certificate.not_after.is_some());
            return self.address(primary.name.as_str(), issued);
        }
        let host = self.settings.service_hostname(service);
        let issued = match self.store.certificates().await {
            Ok(certificates) => certificates.iter().any(|stored| {
                stored.subject.domain_id.is_none()
                    && stored.certificate.not_after.is_some()
                    && stored.subject.covers(&host)
            }),
            Err(error) => {
                tracing::warn!(%error, "reading the certificates failed");
                false
            }
        };
        self.address(&host, issued)
    }

    /// `host`'s URL: `https://` when it has a certificate and there is an HTTPS entry point.
    fn address(&self, host: &str, issued: bool) -> String {
        match (issued, self.settings.https_port) {
            (true, Some(443)) => format!("https://{host}"),
            (true, Some(port)) => format!("https://{host}:{port}"),
            _ => match self.settings.public_port {
                Some(port) if port != 80 => format!("http://{host}:{port}"),
                _ => format!("http://{host}"),
            },
        }
    }

    /// The routing table to publish: the store's, with the control plane's route and the
    /// issued certificates (a key that does not open is left out, and said so).
    pub async fn routing_table(&self) -> Result<RoutingTable, StoreError> {
        let mut table = self
            .settings
            .with_control_plane(self.store.routing_table().await?);
        for served in self.store.served_certificates().await? {
            let binding = crate::vault::certificate_key_binding(&served.subject);
            match self.vault.open(&binding, &served.sealed_key) {
                Ok(key_pem) => table.serve_certificate(ServedCertificate {
                    hostnames: served.subject.names,
                    chain_pem: served.chain_pem,
                    key_pem,
                }),
                Err(error) => {
                    let names = served.subject.joined_names();
                    tracing::error!(%names, %error, "a certificate's key does not open")
                }
            }
        }
        Ok(table)
    }

    /// Publishes the store's routing table as it is.
    pub async fn publish_routes(&self) -> Result<(), PublishError> {
        let guard = self.routing().await;
        self.publish_routes_locked(&guard).await
    }

    /// [`Platform::publish_routes`] for a caller that already holds the routing lock.
    pub async fn publish_routes_locked(
        &self,
        _held: &MutexGuard<'_, ()>,
    ) -> Result<(), PublishError> {
        let table = self.routing_table().await?;
        self.apply_and_confirm(&table).await?;
        Ok(())
    }
}
