//! The routing table, derived from what runs: every service's hostnames (generated and
//! custom domains) and the addresses of its `serving` containers. It is computed from these
//! rows every time, never kept separately, so the edge router's configuration can be rebuilt
//! from the store at any time.

use std::collections::HashMap;

use helvetia_core::domain::Hsts;
use helvetia_core::routing::{Backend, BasicAuth, Route, RoutingTable, route_name};

use crate::{Result, Store, with_pool};

#[derive(sqlx::FromRow)]
struct ServiceRouteRow {
    service_id: i64,
    project: String,
    service: String,
}

#[derive(sqlx::FromRow)]
struct HostnameRow {
    service_id: i64,
    hostname: String,
}

#[derive(sqlx::FromRow)]
struct DomainRouteRow {
    id: i64,
    service_id: i64,
    name: String,
    path_prefix: String,
    redirect: bool,
    /// The service's primary domain, when verified: where an alias redirects.
    primary_name: Option<String>,
    basic_auth_user: Option<String>,
    basic_auth_hash: Option<String>,
    hsts_max_age: Option<i64>,
    hsts_include_subdomains: bool,
    hsts_preload: bool,
}

#[derive(sqlx::FromRow)]
struct BackendRow {
    service_id: i64,
    address: String,
    port: i64,
}

impl Store {
    /// The routing table: every service with its hostnames, verified domains and serving
    /// containers.
    pub async fn routing_table(&self) -> Result<RoutingTable> {
        let (services, hostnames, backends, domains): (
            Vec<ServiceRouteRow>,
            Vec<HostnameRow>,
            Vec<BackendRow>,
            Vec<DomainRouteRow>,
        ) = with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            // A worker (no port) answers no HTTP: it has no route at all.
            let services = sqlx::query_as(
                "SELECT s.id AS service_id, p.name AS project, s.name AS service
                     FROM services s JOIN projects p ON p.id = s.project_id
                     WHERE s.port IS NOT NULL",
            )
            .fetch_all(&mut *tx)
            .await?;
            let hostnames = sqlx::query_as("SELECT service_id, hostname FROM hostnames")
                .fetch_all(&mut *tx)
                .await?;
            // A container the engine is restarting, or a `recreate` deploy stopped, has no
            // process behind its address: it is routed again once it answers
            // (`Health::is_routed`).
            let backends = sqlx::query_as(
                "SELECT service_id, address, port FROM containers
                     WHERE state = 'serving' AND address IS NOT NULL AND port IS NOT NULL
                       AND (health IS NULL OR health NOT IN ('restarting', 'stopped'))",
            )
            .fetch_all(&mut *tx)
            .await?;
            let domains = sqlx::query_as(
                "SELECT d.id, d.service_id, d.name, d.path_prefix, d.redirect,
                        d.basic_auth_user, d.basic_auth_hash, d.hsts_max_age,
                        d.hsts_include_subdomains, d.hsts_preload,
                        (SELECT p.name FROM domains p
                         WHERE p.service_id = d.service_id AND p.is_primary
                           AND p.verification IS NOT NULL) AS primary_name
                 FROM domains d WHERE d.verification IS NOT NULL",
            )
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            (services, hostnames, backends, domains)
        });
        let mut routes: HashMap<i64, Route> = services
            .into_iter()
            .map(|row| {
                let route = Route {
                    name: route_name(&row.project, &row.service),
                    path_prefix: None,
                    redirect_to: None,
                    basic_auth: None,
                    hsts: None,
                    hostnames: vec![],
                    backends: vec![],
                };
                (row.service_id, route)
            })
            .collect();
        for row in hostnames {
            if let Some(route) = routes.get_mut(&row.service_id) {
                route.hostnames.push(row.hostname);
            }
        }
        for row in backends {
            if let (Some(route), Ok(port)) =
                (routes.get_mut(&row.service_id), u16::try_from(row.port))
            {
                route.backends.push(Backend {
                    address: row.address,
                    port,
                });
            }
        }
        let mut table = RoutingTable::new();
        // Verified domains: on the service's route, or a route of their own when they take a
        // path prefix, redirect to the primary domain, or have basic auth or HSTS (which apply
        // to their hosts alone, not the generated hostname's).
        for domain in domains {
            let Some(route) = routes.get_mut(&domain.service_id) else {
                continue;
            };
            let redirect_to = domain
                .primary_name
                .filter(|primary| domain.redirect && *primary != domain.name);
            let basic_auth = domain
                .basic_auth_user
                .zip(domain.basic_auth_hash)
                .map(|(user, hash)| BasicAuth { user, hash });
            let hsts = domain.hsts_max_age.map(|max_age| Hsts {
                max_age_seconds: u64::try_from(max_age).unwrap_or_default(),
                include_subdomains: domain.hsts_include_subdomains,
                preload: domain.hsts_preload,
            });
            let own = redirect_to.is_some() || basic_auth.is_some() || hsts.is_some();
            if domain.path_prefix.is_empty() && !own {
                route.hostnames.push(domain.name);
                continue;
            }
            table.insert(Route {
                name: format!("{}_domain{}", route.name, domain.id),
                hostnames: vec![domain.name],
                path_prefix: Some(domain.path_prefix).filter(|prefix| !prefix.is_empty()),
                backends: match redirect_to {
                    Some(_) => vec![],
                    None => route.backends.clone(),
                },
                redirect_to,
                basic_auth,
                hsts,
            });
        }
        for route in routes.into_values() {
            table.insert(route);
        }
        Ok(table)
    }

    /// The hostnames of a service.
    pub async fn hostnames(&self, service_id: i64) -> Result<Vec<String>> {
        let names = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT hostname FROM hostnames WHERE service_id = $1 ORDER BY id")
                .bind(service_id)
                .fetch_all(pool)
                .await?
        });
        Ok(names)
    }

    /// Rewrites every generated hostname for `base_domain` (`<service>.<project>.<base>`, and
    /// `<label>.<service>.<project>.<base>` for a preview), so a
    /// changed base domain takes effect at the next start.
    pub async fn sync_generated_hostnames(&self, base_domain: &str) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE hostnames SET hostname = (
                     SELECT COALESCE(pv.label || '.' || parent.name, s.name)
                            || '.' || p.name || '.' || $1
                     FROM services s JOIN projects p ON p.id = s.project_id
                          LEFT JOIN services parent ON parent.id = s.preview_of
                          LEFT JOIN previews pv ON pv.service_id = s.id
                     WHERE s.id = hostnames.service_id)
                 WHERE generated",
            )
            .bind(base_domain)
            .execute(pool)
            .await?;
        });
        Ok(())
    }
}
