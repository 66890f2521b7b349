//! What is running: app containers, project networks, and the routing table derived from them.
//!
//! The routing table is always computed from these rows — hostnames of each service and the
//! addresses of its `serving` containers — never kept separately, so the edge router's
//! configuration can be rebuilt from the store at any time.

use std::collections::HashMap;

use helvetia_core::container::{
    ContainerRecord, ContainerState, Health, ServiceEvent, ServiceEventKind,
};
use helvetia_core::domain::Hsts;
use helvetia_core::routing::{Backend, BasicAuth, Route, RoutingTable, route_name};

use crate::{Result, Store, StoreError, WritePool, now_millis, timestamp, with_pool};

#[derive(sqlx::FromRow)]
struct ContainerRow {
    id: i64,
    deployment_id: i64,
    service_id: i64,
    name: String,
    engine_id: Option<String>,
    address: Option<String>,
    port: Option<i64>,
    state: String,
    health: Option<String>,
}

impl TryFrom<ContainerRow> for ContainerRecord {
    type Error = StoreError;
    fn try_from(row: ContainerRow) -> Result<ContainerRecord> {
        Ok(ContainerRecord {
            id: row.id,
            deployment_id: row.deployment_id,
            service_id: row.service_id,
            name: row.name,
            engine_id: row.engine_id,
            address: row.address,
            port: row.port.and_then(|p| u16::try_from(p).ok()),
            state: row
                .state
                .parse()
                .map_err(|e| StoreError::corrupt("container state", e))?,
            health: row
                .health
                .map(|h| h.parse())
                .transpose()
                .map_err(|e| StoreError::corrupt("container health", e))?,
        })
    }
}

macro_rules! select_containers {
    ($where:literal) => {
        concat!(
            "SELECT id, deployment_id, service_id, name, engine_id, address, port, state, health
             FROM containers WHERE ",
            $where
        )
    };
}

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
    /// Records a container about to be created, in state `starting`.
    pub async fn reserve_container(
        &self,
        deployment_id: i64,
        service_id: i64,
        name: &str,
        port: Option<u16>,
    ) -> Result<ContainerRecord> {
        let row: ContainerRow =
            with_pool!(self, |pool| {
                let now = now_millis();
                sqlx::query_as(
                "INSERT INTO containers (deployment_id, service_id, name, port, state, created_at,
                                         updated_at)
                 VALUES ($1, $2, $3, $4, 'starting', $5, $5)
                 RETURNING id, deployment_id, service_id, name, engine_id, address, port, state,
                           health",
            )
            .bind(deployment_id)
            .bind(service_id)
            .bind(name)
            .bind(port.map(i64::from))
            .bind(now)
            .fetch_one(pool)
            .await
            .map_err(StoreError::unique(format!("container `{name}` already exists")))?
            });
        row.try_into()
    }

    /// Records the engine's id and the container's address.
    pub async fn record_container_engine(
        &self,
        id: i64,
        engine_id: &str,
        address: Option<&str>,
    ) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE containers SET engine_id = $1, address = $2, updated_at = $3 WHERE id = $4",
            )
            .bind(engine_id)
            .bind(address)
            .bind(now_millis())
            .bind(id)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Updates a container's address (it changes when the engine restarts a container).
    /// Returns true when it changed.
    pub async fn update_container_address(&self, engine_id: &str, address: &str) -> Result<bool> {
        let changed = with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE containers SET address = $1, updated_at = $2
                 WHERE engine_id = $3 AND (address IS NULL OR address <> $1)",
            )
            .bind(address)
            .bind(now_millis())
            .bind(engine_id)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(changed > 0)
    }

    pub async fn set_container_state(&self, id: i64, state: ContainerState) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query("UPDATE containers SET state = $1, updated_at = $2 WHERE id = $3")
                .bind(state.as_str())
                .bind(now_millis())
                .bind(id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Records what the health monitor saw. Returns the previous value.
    pub async fn set_container_health(&self, id: i64, health: Health) -> Result<Option<Health>> {
        let found: Option<(Option<String>, i64)> = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let found = sqlx::query_as("SELECT health, service_id FROM containers WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            sqlx::query("UPDATE containers SET health = $1, updated_at = $2 WHERE id = $3")
                .bind(health.as_str())
                .bind(now_millis())
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            found
        });
        let Some((previous, service_id)) = found else {
            return Ok(None);
        };
        if previous.as_deref() != Some(health.as_str()) {
            self.changed(service_id);
        }
        previous
            .map(|h| h.parse())
            .transpose()
            .map_err(|e| StoreError::corrupt("container health", e))
    }

    /// The container the engine knows as `engine_id`, if Helvetia recorded it.
    pub async fn container_by_engine_id(&self, engine_id: &str) -> Result<Option<ContainerRecord>> {
        let row: Option<ContainerRow> = with_pool!(self, |pool| {
            sqlx::query_as(select_containers!("engine_id = $1"))
                .bind(engine_id)
                .fetch_optional(pool)
                .await?
        });
        row.map(ContainerRecord::try_from).transpose()
    }

    /// Appends to a service's event history.
    pub async fn record_event(
        &self,
        service_id: i64,
        container: Option<&str>,
        kind: ServiceEventKind,
        message: &str,
    ) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO service_events (service_id, container, kind, message, at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(service_id)
            .bind(container)
            .bind(kind.as_str())
            .bind(message)
            .bind(now_millis())
            .execute(pool)
            .await?;
        });
        self.changed(service_id);
        Ok(())
    }

    /// A service's most recent events, newest first.
    pub async fn service_events(&self, service_id: i64, limit: i64) -> Result<Vec<ServiceEvent>> {
        let rows: Vec<(i64, Option<String>, String, String, i64)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, container, kind, message, at FROM service_events
                 WHERE service_id = $1 ORDER BY id DESC LIMIT $2",
            )
            .bind(service_id)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(id, container, kind, message, at)| {
                Ok(ServiceEvent {
                    id,
                    container,
                    kind: kind
                        .parse()
                        .map_err(|e| StoreError::corrupt("service event kind", e))?,
                    message,
                    at: timestamp(at)?,
                })
            })
            .collect()
    }

    pub async fn deployment_containers(&self, deployment_id: i64) -> Result<Vec<ContainerRecord>> {
        let rows: Vec<ContainerRow> = with_pool!(self, |pool| {
            sqlx::query_as(select_containers!("deployment_id = $1 ORDER BY id"))
                .bind(deployment_id)
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(ContainerRecord::try_from).collect()
    }

    /// A service's containers in `state`.
    pub async fn service_containers(
        &self,
        service_id: i64,
        state: ContainerState,
    ) -> Result<Vec<ContainerRecord>> {
        let rows: Vec<ContainerRow> = with_pool!(self, |pool| {
            sqlx::query_as(select_containers!(
                "service_id = $1 AND state = $2 ORDER BY id"
            ))
            .bind(service_id)
            .bind(state.as_str())
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(ContainerRecord::try_from).collect()
    }

    /// Every container the engine should have (starting, ready, serving or draining).
    pub async fn active_containers(&self) -> Result<Vec<ContainerRecord>> {
        let rows: Vec<ContainerRow> = with_pool!(self, |pool| {
            sqlx::query_as(select_containers!(
                "state IN ('starting', 'ready', 'serving', 'draining') ORDER BY id"
            ))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(ContainerRecord::try_from).collect()
    }

    /// The names of the containers the engine may hold: the active ones, and every container
    /// of a deployment still in progress (its job removes them itself if it does not go live).
    pub async fn wanted_container_names(&self) -> Result<Vec<String>> {
        let names = with_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT c.name FROM containers c JOIN deployments d ON d.id = c.deployment_id
                 WHERE c.state IN ('starting', 'ready', 'serving', 'draining')
                    OR d.status IN ('queued', 'cloning', 'building', 'starting', 'health_checking')
                 ORDER BY c.name",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(names)
    }

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

    /// The network of a project: its name and subnet. Allocated on first use as `name`, with a
    /// subnet from `candidates` (skipping subnets in `avoid`, which the engine reported as
    /// taken); a network already recorded keeps the name it was created with.
    pub async fn project_network(
        &self,
        project_id: i64,
        name: &str,
        candidates: impl Iterator<Item = String> + Send,
        avoid: &[String],
    ) -> Result<(String, String)> {
        let existing: Option<(String, String)> = with_pool!(self, |pool| {
            sqlx::query_as("SELECT name, subnet FROM networks WHERE project_id = $1")
                .bind(project_id)
                .fetch_optional(pool)
                .await?
        });
        if let Some(network) = existing.filter(|(_, subnet)| !avoid.contains(subnet)) {
            return Ok(network);
        }
        let candidates: Vec<String> = candidates.collect();
        let subnet = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query("DELETE FROM networks WHERE project_id = $1")
                .bind(project_id)
                .execute(&mut *tx)
                .await?;
            let used: Vec<String> = sqlx::query_scalar("SELECT subnet FROM networks")
                .fetch_all(&mut *tx)
                .await?;
            let subnet = candidates
                .into_iter()
                .find(|c| !used.contains(c) && !avoid.contains(c))
                .ok_or_else(|| {
                    StoreError::Conflict("the project network address pool is exhausted".into())
                })?;
            sqlx::query(
                "INSERT INTO networks (project_id, name, subnet, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(project_id)
            .bind(name)
            .bind(&subnet)
            .bind(now_millis())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            subnet
        });
        Ok((name.to_owned(), subnet))
    }
}
