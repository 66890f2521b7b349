//! What is running: app containers, their events and health, and project networks. The routing
//! table derived from them is in [`crate::routes`].

use helvetia_core::container::{
    ContainerRecord, ContainerState, Health, ServiceEvent, ServiceEventKind,
};

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
