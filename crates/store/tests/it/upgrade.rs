//! Upgrades: a database written by an earlier release is migrated when the store opens it, and
//! its rows read back as today's code expects them.

use helvetia_core::routing::route_name;
use helvetia_core::service::Port;
use sqlx::migrate::Migrator;

use crate::backend::{Blank, TestDb};
use crate::projects::{project, service};

/// What a release whose schema ended at migration 8 wrote: a web service and a worker, whose
/// "no port" it stored as 0.
const BEFORE_NULLABLE_PORTS: i64 = 8;
const SERVICES_WITH_PORT_ZERO: &str = "
    INSERT INTO teams (name, created_at) VALUES ('default', 0);
    INSERT INTO projects (team_id, name, created_at) SELECT id, 'demo', 0 FROM teams;
    INSERT INTO services (project_id, name, repo, branch, dockerfile, context, port, created_at,
                          updated_at)
        SELECT id, 'web', 'https://git.example.org/demo.git', 'main', 'Dockerfile', '.', 8080,
               0, 0
        FROM projects;
    INSERT INTO services (project_id, name, repo, branch, dockerfile, context, port, created_at,
                          updated_at)
        SELECT id, 'jobs', 'https://git.example.org/demo.git', 'main', 'Dockerfile', '.', 0, 0, 0
        FROM projects;
";

/// The migrations of an earlier release: those up to `version`.
fn until(mut migrator: Migrator, version: i64) -> Migrator {
    let earlier: Vec<_> = migrator
        .migrations
        .iter()
        .filter(|migration| migration.version <= version)
        .cloned()
        .collect();
    migrator.migrations = earlier.into();
    migrator
}

/// Migrates `$pool` (of either backend) as the earlier release did, writes what it wrote, and
/// closes it.
macro_rules! written_before_nullable_ports {
    ($pool:expr, $migrations:literal) => {
        until(sqlx::migrate!($migrations), BEFORE_NULLABLE_PORTS)
            .run(&$pool)
            .await
            .unwrap();
        sqlx::raw_sql(SERVICES_WITH_PORT_ZERO)
            .execute(&$pool)
            .await
            .unwrap();
        $pool.close().await;
    };
}

async fn worker_ports_read_as_none(db: TestDb) {
    let team = db.store.default_team().await.unwrap();
    let web = db
        .store
        .service(team, &project("demo"), &service("web"))
        .await
        .unwrap();
    assert_eq!(web.settings.port.map(Port::get), Some(8080));
    let worker = db
        .store
        .service(team, &project("demo"), &service("jobs"))
        .await
        .unwrap();
    assert_eq!(worker.settings.port, None);
    let routes = db.store.routing_table().await.unwrap();
    assert!(routes.route(&route_name("demo", "web")).is_some());
    assert!(
        routes.route(&route_name("demo", "jobs")).is_none(),
        "a worker has no route"
    );
    db.drop().await;
}

#[tokio::test]
async fn a_workers_port_stored_as_zero_becomes_none_on_sqlite() {
    let blank = Blank::sqlite();
    let helvetia_store::Location::SqliteFile(path) = &blank.location else {
        unreachable!("a SQLite blank is a file");
    };
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    written_before_nullable_ports!(pool, "migrations/sqlite");
    worker_ports_read_as_none(blank.open().await).await;
}

#[tokio::test]
async fn a_workers_port_stored_as_zero_becomes_none_on_postgres() {
    let blank = Blank::postgres().await;
    let helvetia_store::Location::Postgres(url) = &blank.location else {
        unreachable!("a PostgreSQL blank is a URL");
    };
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    written_before_nullable_ports!(pool, "migrations/postgres");
    worker_ports_read_as_none(blank.open().await).await;
}
