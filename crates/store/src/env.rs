//! Environment variables, as stored: plain values, and secrets only in sealed form (the
//! server seals and opens them; the store never sees a secret's plaintext).

use helvetia_core::audit::AuditAction;
use helvetia_core::auth::Actor;
use helvetia_core::env::MAX_VARS;
use jiff::Timestamp;

use crate::audit::audit;
use crate::sealed::SealedAt;
use crate::{Result, Store, StoreError, WritePool, now_millis, timestamp, with_pool};

/// Whose variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvScope {
    Project {
        project_id: i64,
    },
    Service {
        project_id: i64,
        service_id: i64,
    },
    /// A service's variables for its previews, over its own.
    Previews {
        project_id: i64,
        service_id: i64,
    },
}

impl EnvScope {
    pub fn project_id(self) -> i64 {
        match self {
            EnvScope::Project { project_id }
            | EnvScope::Service { project_id, .. }
            | EnvScope::Previews { project_id, .. } => project_id,
        }
    }

    pub fn service_id(self) -> Option<i64> {
        match self {
            EnvScope::Project { .. } => None,
            EnvScope::Service { service_id, .. } | EnvScope::Previews { service_id, .. } => {
                Some(service_id)
            }
        }
    }

    fn previews(self) -> bool {
        matches!(self, EnvScope::Previews { .. })
    }
}

/// Every sealed value, sealed again under a new master key, to store in one transaction.
#[derive(Debug, Default)]
pub struct Resealed {
    /// Secret variables, by id.
    pub variables: Vec<(i64, String)>,
    /// Notification channels' secrets, by id.
    pub channels: Vec<(i64, String)>,
    /// ACME accounts' credentials, by directory.
    pub acme_accounts: Vec<(String, String)>,
    /// Certificates' private keys, by certificate id.
    pub certificate_keys: Vec<(i64, String)>,
    /// Everything else the vault sealed (TOTP keys, signing keys, receivers' and the GitHub
    /// App's secrets, GitHub tokens).
    pub elsewhere: Vec<(SealedAt, String)>,
}

/// A variable ready to store: a plain value, or a sealed secret with the key that sealed it.
#[derive(Debug, Clone)]
pub struct StoredValue {
    pub name: String,
    pub value: String,
    pub secret: bool,
    pub build: bool,
    pub build_arg: bool,
    pub key_id: Option<String>,
}

/// A stored variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvRecord {
    pub id: i64,
    pub project_id: i64,
    /// `None` for a project variable.
    pub service_id: Option<i64>,
    pub name: String,
    /// The plain value, or the sealed secret.
    pub value: String,
    pub secret: bool,
    pub build: bool,
    /// Passed to builds as a build argument.
    pub build_arg: bool,
    pub key_id: Option<String>,
    pub version: i64,
    pub updated_at: Timestamp,
    /// A service's variable for its previews only.
    pub preview: bool,
}

#[derive(sqlx::FromRow)]
struct EnvRow {
    id: i64,
    project_id: i64,
    service_id: Option<i64>,
    name: String,
    value: String,
    secret: bool,
    build: bool,
    build_arg: bool,
    key_id: Option<String>,
    version: i64,
    updated_at: i64,
    preview: bool,
}

impl TryFrom<EnvRow> for EnvRecord {
    type Error = StoreError;
    fn try_from(row: EnvRow) -> Result<EnvRecord> {
        Ok(EnvRecord {
            id: row.id,
            project_id: row.project_id,
            service_id: row.service_id,
            name: row.name,
            value: row.value,
            secret: row.secret,
            build: row.build,
            build_arg: row.build_arg,
            key_id: row.key_id,
            version: row.version,
            updated_at: timestamp(row.updated_at)?,
            preview: row.preview,
        })
    }
}

macro_rules! select_env {
    ($($where:tt)+) => {
        concat!(
            "SELECT id, project_id, service_id, name, value, secret, build, build_arg, key_id,
                    version, updated_at, preview
             FROM env_vars WHERE ",
            $($where)+
        )
    };
}

/// The variables of one [`EnvScope`], bound as `$1` (project id), `$2` (service id, NULL for
/// the project's own) and `$3` (whether the previews' variables).
macro_rules! in_scope {
    () => {
        "project_id = $1 AND (($2 IS NULL AND service_id IS NULL) OR service_id = $2)
         AND preview = $3"
    };
}

/// Sets one variable of a scope, counting its versions; `$conflict` is the scope's unique
/// index (project variables and service variables have one each).
macro_rules! upsert_env {
    ($conflict:literal) => {
        concat!(
            "INSERT INTO env_vars (project_id, service_id, name, value, secret, build, key_id,
                                   version, created_at, updated_at, preview, build_arg)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $8, $9, $10)
             ON CONFLICT ",
            $conflict,
            " DO UPDATE SET
                 value = excluded.value, secret = excluded.secret, build = excluded.build,
                 build_arg = excluded.build_arg, key_id = excluded.key_id, version = env_vars.version + 1,
                 updated_at = excluded.updated_at"
        )
    };
}

/// The `server_settings` row holding the id of the master key that sealed the secrets.
const MASTER_KEY_ID: &str = "master_key_id";

const SET_SETTING: &str = "INSERT INTO server_settings (name, value) VALUES ($1, $2)
                           ON CONFLICT (name) DO UPDATE SET value = excluded.value";

impl Store {
    /// Sets variables of one scope in one transaction: all are written or none. Audited as
    /// `env.set` on `target` with the names (never the values).
    pub async fn set_env(
        &self,
        actor: &Actor,
        scope: EnvScope,
        target: &str,
        vars: &[StoredValue],
    ) -> Result<()> {
        let names: Vec<&str> = vars.iter().map(|v| v.name.as_str()).collect();
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let now = now_millis();
            for var in vars {
                let query = match scope {
                    EnvScope::Project { .. } => {
                        sqlx::query(upsert_env!("(project_id, name) WHERE service_id IS NULL"))
                    }
                    EnvScope::Service { .. } | EnvScope::Previews { .. } => sqlx::query(
                        upsert_env!("(service_id, preview, name) WHERE service_id IS NOT NULL"),
                    ),
                };
                query
                    .bind(scope.project_id())
                    .bind(scope.service_id())
                    .bind(&var.name)
                    .bind(&var.value)
                    .bind(var.secret)
                    .bind(var.build)
                    .bind(&var.key_id)
                    .bind(now)
                    .bind(scope.previews())
                    .bind(var.build_arg)
                    .execute(&mut *tx)
                    .await?;
            }
            let count: i64 =
                sqlx::query_scalar(concat!("SELECT COUNT(*) FROM env_vars WHERE ", in_scope!()))
                    .bind(scope.project_id())
                    .bind(scope.service_id())
                    .bind(scope.previews())
                    .fetch_one(&mut *tx)
                    .await?;
            if count > MAX_VARS as i64 {
                return Err(StoreError::Conflict(format!(
                    "{target} would have {count} variables; at most {MAX_VARS} are allowed"
                )));
            }
            audit!(
                tx,
                actor,
                AuditAction::EnvSet,
                format!("{target} {}", names.join(","))
            );
            tx.commit().await?;
        });
        Ok(())
    }

    /// Removes variables of one scope. Returns how many existed.
    pub async fn unset_env(
        &self,
        actor: &Actor,
        scope: EnvScope,
        target: &str,
        names: &[String],
    ) -> Result<u64> {
        let removed = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let mut removed = 0;
            for name in names {
                removed += sqlx::query(concat!(
                    "DELETE FROM env_vars WHERE name = $4 AND ",
                    in_scope!()
                ))
                .bind(scope.project_id())
                .bind(scope.service_id())
                .bind(scope.previews())
                .bind(name)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
            audit!(
                tx,
                actor,
                AuditAction::EnvUnset,
                format!("{target} {}", names.join(","))
            );
            tx.commit().await?;
            removed
        });
        Ok(removed)
    }

    /// The variables of one scope, by name.
    pub async fn env(&self, scope: EnvScope) -> Result<Vec<EnvRecord>> {
        let rows: Vec<EnvRow> = with_pool!(self, |pool| {
            sqlx::query_as(select_env!(in_scope!(), " ORDER BY name"))
                .bind(scope.project_id())
                .bind(scope.service_id())
                .bind(scope.previews())
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(EnvRecord::try_from).collect()
    }

    /// Every variable a service's containers get: its project's, then its own (which win).
    /// For the previews of `service_id`, its variables for previews come last and win.
    pub async fn service_env(
        &self,
        project_id: i64,
        service_id: i64,
        previews: bool,
    ) -> Result<Vec<EnvRecord>> {
        let rows: Vec<EnvRow> = with_pool!(self, |pool| {
            sqlx::query_as(select_env!(
                "project_id = $1 AND (service_id IS NULL OR service_id = $2)
                 AND (NOT preview OR $3)
                 ORDER BY service_id NULLS FIRST, preview, name"
            ))
            .bind(project_id)
            .bind(service_id)
            .bind(previews)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(EnvRecord::try_from).collect()
    }

    /// Every secret of every team, for key checks and rotation.
    pub async fn all_secrets(&self) -> Result<Vec<EnvRecord>> {
        let rows: Vec<EnvRow> = with_pool!(self, |pool| {
            sqlx::query_as(select_env!("secret ORDER BY id"))
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(EnvRecord::try_from).collect()
    }

    /// Replaces every secret's sealed value (re-encryption under a new key) — variables',
    /// notification channels', ACME accounts' and certificates', and those `elsewhere` — and
    /// records the new key id, in one transaction: either every secret moves to the new key or
    /// none.
    pub async fn reseal_secrets(&self, resealed: &Resealed, key_id: &str) -> Result<()> {
        let Resealed {
            variables: resealed,
            channels,
            acme_accounts,
            certificate_keys,
            elsewhere,
        } = resealed;
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            for (directory, sealed) in acme_accounts {
                sqlx::query(
                    "UPDATE acme_accounts SET sealed_credentials = $1 WHERE directory = $2",
                )
                .bind(sealed)
                .bind(directory)
                .execute(&mut *tx)
                .await?;
            }
            for (id, sealed) in certificate_keys {
                sqlx::query("UPDATE certificates SET sealed_key = $1 WHERE id = $2")
                    .bind(sealed)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            for (at, sealed) in elsewhere {
                let query = sqlx::query(sqlx::AssertSqlSafe(at.update())).bind(sealed);
                let query = match at {
                    SealedAt::Totp(id)
                    | SealedAt::GithubToken(id)
                    | SealedAt::HookSecret(id)
                    | SealedAt::RegistryPassword(id) => query.bind(*id),
                    SealedAt::GithubAuthorization(key) | SealedAt::SigningKey(key) => {
                        query.bind(key.as_str())
                    }
                    SealedAt::GithubApp(_) => query,
                };
                query.execute(&mut *tx).await?;
            }
            for (id, secret) in channels {
                sqlx::query("UPDATE notification_channels SET secret = $1 WHERE id = $2")
                    .bind(secret)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            for (id, value) in resealed {
                sqlx::query("UPDATE env_vars SET value = $1, key_id = $2 WHERE id = $3 AND secret")
                    .bind(value)
                    .bind(key_id)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(SET_SETTING)
                .bind(MASTER_KEY_ID)
                .bind(key_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// The id of the master key that sealed the secrets, once one did.
    pub async fn master_key_id(&self) -> Result<Option<String>> {
        let value = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT value FROM server_settings WHERE name = $1")
                .bind(MASTER_KEY_ID)
                .fetch_optional(pool)
                .await?
        });
        Ok(value)
    }

    /// Records the id of the master key that seals the secrets from now on.
    pub async fn set_master_key_id(&self, key_id: &str) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query(SET_SETTING)
                .bind(MASTER_KEY_ID)
                .bind(key_id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Records the environment digest a deployment started with.
    pub async fn record_env_digest(&self, deployment_id: i64, digest: &str) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query("UPDATE deployments SET env_digest = $1 WHERE id = $2")
                .bind(digest)
                .bind(deployment_id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The environment digest a deployment started with.
    pub async fn env_digest(&self, deployment_id: i64) -> Result<Option<String>> {
        let digest: Option<Option<String>> = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT env_digest FROM deployments WHERE id = $1")
                .bind(deployment_id)
                .fetch_optional(pool)
                .await?
        });
        Ok(digest.flatten())
    }
}
