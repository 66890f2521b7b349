//! Helvetia's persistent state: the single source of truth for projects, services,
//! deployments, the job queue, API tokens and the audit log.
//!
//! One [`Store`] runs on SQLite (the default, a file in the data dir) or PostgreSQL. Both
//! backends run the *same* SQL text: queries use `$N` placeholders (which SQLite understands
//! too), timestamps are stored as integer milliseconds and booleans as `BOOLEAN`, so every query
//! decodes identically. [`with_pool!`] expands a query body once per backend; only the few
//! statements whose dialects differ (the job claim's row locking) have two spellings. This
//! avoids both `sqlx::Any` (which cannot decode timestamps and booleans on both) and a second
//! hand-written copy of every query.
//!
//! All SQL lives in this crate. Read [`queue`] for how jobs are claimed, then [`deployments`]
//! for how state changes are recorded.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use jiff::Timestamp;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Postgres, Sqlite, Transaction};

pub mod audit;
pub mod certificates;
pub mod changes;
pub mod check_waits;
pub mod credentials;
pub mod deliveries;
pub mod deployments;
pub mod devices;
pub mod domains;
pub mod env;
mod error;
pub mod github;
pub mod github_users;
pub mod hooks;
pub mod links;
pub mod logs;
pub mod metrics;
pub mod notifications;
pub mod oidc;
pub mod previews;
pub mod projects;
pub mod queue;
pub mod routes;
pub mod runtime;
pub mod sealed;
pub mod services;
pub mod sessions;
pub mod teams;
pub mod tokens;
pub mod users;
pub mod volumes;

pub use error::{Outage, StoreError};

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Db,
    changes: changes::Changes,
}

#[derive(Clone)]
enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to whichever backend the store uses. The body is compiled
/// once per backend, so it must only use SQL both understand.
macro_rules! with_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.db {
            $crate::Db::Sqlite($pool) => $body,
            $crate::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// Begins a transaction that will write. On SQLite it takes the write lock up front
/// (`BEGIN IMMEDIATE`): a deferred transaction that reads and then writes fails with
/// `SQLITE_BUSY` instead of waiting when another writer got there first.
pub(crate) trait WritePool {
    type Db: sqlx::Database;
    fn begin_write(
        &self,
    ) -> impl Future<Output = Result<Transaction<'static, Self::Db>, sqlx::Error>> + Send;
}

impl WritePool for SqlitePool {
    type Db = Sqlite;
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

impl WritePool for PgPool {
    type Db = Postgres;
    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        self.begin().await
    }
}

/// Which database to open. Its `Debug` form hides the password of a PostgreSQL URL.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite file, created if missing.
    SqliteFile(std::path::PathBuf),
    /// A `postgres://` URL.
    Postgres(String),
}

impl Location {
    /// `postgres://…`/`postgresql://…` URLs select PostgreSQL; anything else is refused so a
    /// typo cannot silently fall back to an empty SQLite file.
    pub fn from_url(url: &str) -> Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Location::Postgres(url.to_owned()))
        } else {
            Err(StoreError::Config(
                "the database URL must start with postgres:// (leave it unset for SQLite)".into(),
            ))
        }
    }
}

/// Held while a server uses a PostgreSQL database; dropping it releases the lock.
pub struct InstanceLock(#[allow(dead_code)] sqlx::PgConnection);

/// "HELV" in ASCII: the advisory-lock key that marks a database as in use by a server.
const INSTANCE_LOCK_KEY: i64 = 0x4845_4c56;

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::SqliteFile(path) => f.debug_tuple("SqliteFile").field(path).finish(),
            Location::Postgres(url) => f
                .debug_tuple("Postgres")
                .field(&redact_password(url))
                .finish(),
        }
    }
}

/// `postgres://user:secret@host/db` as `postgres://user:***@host/db`.
pub fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((credentials, host)) => {
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

/// Whether an idle pooled connection may be handed out: only outside a transaction. One still
/// counted inside one is broken for good: when a COMMIT fails (SQLite with its disk full
/// rolls the transaction back itself), sqlx keeps counting the transaction open, the ROLLBACK
/// on drop fails as well, and every later BEGIN on that connection fails ("non-zero
/// transaction depth") long after space returned. Such a connection is closed instead.
fn idle_outside_a_transaction<C: sqlx::Connection>(
    connection: &mut C,
    _: sqlx::pool::PoolConnectionMetadata,
) -> std::pin::Pin<Box<dyn Future<Output = std::result::Result<bool, sqlx::Error>> + Send + '_>> {
    let usable = !connection.is_in_transaction();
    if !usable {
        tracing::warn!("closing a database connection left inside a failed transaction");
    }
    Box::pin(std::future::ready(Ok(usable)))
}

const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);
const SQLITE_MAX_CONNECTIONS: u32 = 8;
const POSTGRES_MAX_CONNECTIONS: u32 = 16;
/// How long a query waits for a PostgreSQL connection — a free one, or a new one while the
/// database does not answer (restarting) — before failing as an outage: a request is then
/// answered 503 within seconds instead of holding its client for long.
const POSTGRES_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

impl Store {
    /// Opens the database and applies any migration it has not seen yet.
    pub async fn open(location: &Location) -> Result<Store> {
        let store = match location {
            Location::SqliteFile(path) => Store::open_sqlite(path).await?,
            Location::Postgres(url) => Store::open_postgres(url).await?,
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn open_sqlite(path: &Path) -> Result<Store> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(SQLITE_MAX_CONNECTIONS)
            .before_acquire(idle_outside_a_transaction)
            .connect_with(options)
            .await?;
        Ok(Store {
            db: Db::Sqlite(pool),
            changes: changes::Changes::default(),
        })
    }

    async fn open_postgres(url: &str) -> Result<Store> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(POSTGRES_MAX_CONNECTIONS)
            .acquire_timeout(POSTGRES_ACQUIRE_TIMEOUT)
            .before_acquire(idle_outside_a_transaction)
            .connect_with(options)
            .await?;
        Ok(Store {
            db: Db::Postgres(pool),
            changes: changes::Changes::default(),
        })
    }

    async fn migrate(&self) -> Result<()> {
        match &self.db {
            Db::Sqlite(pool) => sqlx::migrate!("migrations/sqlite").run(pool).await?,
            Db::Postgres(pool) => sqlx::migrate!("migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    /// Makes sure no other server uses this database. SQLite needs nothing here: its file lives
    /// in the data dir, which the server locks. Two servers with different data dirs could
    /// share one PostgreSQL database, so there the lock is a session-level advisory lock held on
    /// a dedicated connection for as long as the returned guard lives.
    pub async fn lock_instance(&self) -> Result<Option<InstanceLock>> {
        let Db::Postgres(pool) = &self.db else {
            return Ok(None);
        };
        let mut connection = pool.acquire().await?.detach();
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(INSTANCE_LOCK_KEY)
            .fetch_one(&mut connection)
            .await?;
        if locked {
            Ok(Some(InstanceLock(connection)))
        } else {
            Err(StoreError::Conflict(
                "another Helvetia server is using this database".into(),
            ))
        }
    }

    /// `"sqlite"` or `"postgres"`, for logs and the health endpoint.
    pub fn backend(&self) -> &'static str {
        match &self.db {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// A cheap query that proves the database answers.
    pub async fn ping(&self) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// Waits for in-flight queries and closes every connection.
    pub async fn close(&self) {
        with_pool!(self, |pool| pool.close().await)
    }
}

/// Milliseconds since the epoch, the form every timestamp is stored in.
/// The SQL condition "`column` is one of `teams`" (`None`: every team). Team ids are integers,
/// written inline: a list of any length, the same text on both backends, nothing to escape.
pub(crate) fn in_teams(column: &str, teams: Option<&[helvetia_core::auth::TeamId]>) -> String {
    match teams {
        None => "TRUE".to_owned(),
        Some([]) => "FALSE".to_owned(),
        Some(teams) => {
            let ids: Vec<String> = teams.iter().map(|team| team.0.to_string()).collect();
            format!("{column} IN ({})", ids.join(", "))
        }
    }
}

pub(crate) fn millis(at: Timestamp) -> i64 {
    at.as_millisecond()
}

pub(crate) fn timestamp(ms: i64) -> Result<Timestamp> {
    Timestamp::from_millisecond(ms)
        .map_err(|e| StoreError::Corrupt(format!("timestamp {ms} out of range: {e}")))
}

pub(crate) fn opt_timestamp(ms: Option<i64>) -> Result<Option<Timestamp>> {
    ms.map(timestamp).transpose()
}

pub(crate) fn now_millis() -> i64 {
    millis(Timestamp::now())
}

#[cfg(test)]
mod tests {
    #[test]
    fn debug_hides_database_passwords() {
        let location = super::Location::Postgres("postgres://app:s3cret@db:5432/helvetia".into());
        let shown = format!("{location:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            shown.contains("postgres://app:***@db:5432/helvetia"),
            "{shown}"
        );
    }
}
