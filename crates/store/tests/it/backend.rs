//! Fresh databases for tests.

use helvetia_core::auth::{Actor, TeamId};
use helvetia_store::{Location, Store};
use sqlx::Connection;

pub struct TestDb {
    pub store: Store,
    pub location: Location,
    cleanup: Cleanup,
}

enum Cleanup {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Database { admin_url: String, name: String },
}

/// A database no store has opened (and migrated) yet.
pub struct Blank {
    pub location: Location,
    cleanup: Cleanup,
}

impl Blank {
    pub fn sqlite() -> Blank {
        let dir = tempfile::tempdir().expect("temp dir");
        Blank {
            location: Location::SqliteFile(dir.path().join("helvetia.db")),
            cleanup: Cleanup::Dir(dir),
        }
    }

    pub async fn postgres() -> Blank {
        let admin_url = std::env::var("HELVETIA_TEST_DATABASE_URL").expect(
            "HELVETIA_TEST_DATABASE_URL must name a PostgreSQL server for the store suite \
             (the README's test command sets it)",
        );
        let name = format!("helvetia_test_{}", rand::random::<u64>());
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .expect("connect to HELVETIA_TEST_DATABASE_URL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create test database");
        admin.close().await.ok();
        Blank {
            location: Location::Postgres(database_url(&admin_url, &name)),
            cleanup: Cleanup::Database { admin_url, name },
        }
    }

    /// Opens the store, which migrates the database.
    pub async fn open(self) -> TestDb {
        let store = Store::open(&self.location).await.expect("open the store");
        TestDb {
            store,
            location: self.location,
            cleanup: self.cleanup,
        }
    }
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        Blank::sqlite().open().await
    }

    pub async fn postgres() -> TestDb {
        Blank::postgres().await.open().await
    }

    /// Opens the same database again, as a restarted server would.
    pub async fn reopen(&self) -> Store {
        Store::open(&self.location).await.expect("reopen")
    }

    pub async fn drop(self) {
        self.store.close().await;
        if let Cleanup::Database { admin_url, name } = self.cleanup {
            let mut admin = sqlx::PgConnection::connect(&admin_url)
                .await
                .expect("connect");
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut admin)
            .await
            .expect("drop test database");
        }
    }

    /// An admin caller of the default team, whose token is not in the store (id 0 is never assigned), so it is
    /// never mistaken for a token a test creates.
    pub async fn admin(&self) -> Actor {
        let team = self.store.default_team().await.expect("default team");
        caller(team, 0)
    }
}

pub fn caller(team: TeamId, token_id: i64) -> Actor {
    Actor::system(team, format!("token:{token_id}(test)"))
}

/// `admin_url` with its database name replaced by `name`.
fn database_url(admin_url: &str, name: &str) -> String {
    let mut url = url::Url::parse(admin_url).expect("HELVETIA_TEST_DATABASE_URL is a URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}
