//! Persistent volumes of services.

use helvetia_core::audit::AuditAction;
use helvetia_core::auth::Actor;
use helvetia_core::service::Service;
use helvetia_core::volume::Volume;

use crate::audit::audit;
use crate::{Result, Store, StoreError, WritePool, now_millis, timestamp, with_pool};

#[derive(sqlx::FromRow)]
struct VolumeRow {
    name: String,
    path: String,
    engine_name: String,
    created_at: i64,
}

fn target(service: &Service, name: &str) -> String {
    format!("{}/{} volume {name}", service.project, service.name)
}

impl Store {
    /// Adds a volume that the engine knows as `engine_name`.
    pub async fn add_volume(
        &self,
        actor: &Actor,
        service: &Service,
        name: &str,
        path: &str,
        engine_name: &str,
    ) -> Result<Volume> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "INSERT INTO volumes (service_id, name, path, created_at, engine_name)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(service.id)
            .bind(name)
            .bind(path)
            .bind(now_millis())
            .bind(engine_name)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::unique(format!(
                "the service already has a volume named `{name}` or mounted at {path}"
            )))?;
            audit!(tx, actor, AuditAction::VolumeAdd, target(service, name));
            tx.commit().await?;
        });
        self.volumes(service.id)
            .await?
            .into_iter()
            .find(|v| v.name == name)
            .ok_or_else(|| StoreError::NotFound(format!("volume `{name}`")))
    }

    pub async fn volumes(&self, service_id: i64) -> Result<Vec<Volume>> {
        let rows: Vec<VolumeRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT name, path, engine_name, created_at FROM volumes
                 WHERE service_id = $1 ORDER BY name",
            )
            .bind(service_id)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|row| {
                Ok(Volume {
                    name: row.name,
                    path: row.path,
                    engine_name: row.engine_name,
                    created_at: timestamp(row.created_at)?,
                })
            })
            .collect()
    }

    /// The engine names of every service's volumes: what the engine must keep.
    pub async fn all_engine_volume_names(&self) -> Result<Vec<String>> {
        let names = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT engine_name FROM volumes")
                .fetch_all(pool)
                .await?
        });
        Ok(names)
    }

    pub async fn remove_volume(&self, actor: &Actor, service: &Service, name: &str) -> Result<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let removed = sqlx::query("DELETE FROM volumes WHERE service_id = $1 AND name = $2")
                .bind(service.id)
                .bind(name)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if removed == 0 {
                return Err(StoreError::NotFound(format!("volume `{name}`")));
            }
            audit!(tx, actor, AuditAction::VolumeRemove, target(service, name));
            tx.commit().await?;
        });
        Ok(())
    }
}
