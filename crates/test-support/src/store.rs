//! A test server's SQLite database seen from outside: the installation's id, and statements a
//! test runs to lay out a state an earlier release left behind.

use helvetia_core::scope::Scope;
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

use crate::TestServer;

impl TestServer {
    async fn database(&self, read_only: bool) -> SqliteConnection {
        let options = SqliteConnectOptions::new()
            .filename(self.data_dir().join("helvetia.db"))
            .read_only(read_only);
        SqliteConnection::connect_with(&options).await.unwrap()
    }

    /// The names this server gives its engine objects (its installation's id is in its
    /// database).
    pub async fn scope(&self) -> Scope {
        let mut database = self.database(true).await;
        let instance: String =
            sqlx::query_scalar("SELECT value FROM server_settings WHERE name = 'instance_id'")
                .fetch_one(&mut database)
                .await
                .unwrap();
        Scope::new(instance)
    }

    /// Runs `statement` on the server's database. Stop the server first.
    pub async fn sql(&self, statement: &str) {
        let mut database = self.database(false).await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned()))
            .execute(&mut database)
            .await
            .unwrap();
    }
}
