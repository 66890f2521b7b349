//! Fresh PostgreSQL databases for tests, on the server `HELVETIA_TEST_DATABASE_URL` names.

use std::process::Command;

/// A database created for one test, dropped (forcibly) when this is dropped.
pub struct TestDatabase {
    pub url: String,
    pub name: String,
    admin_url: String,
}

impl TestDatabase {
    pub fn create() -> TestDatabase {
        let admin_url = std::env::var("HELVETIA_TEST_DATABASE_URL").expect(
            "HELVETIA_TEST_DATABASE_URL must name a PostgreSQL server (the README's test command sets it)",
        );
        let name = format!("helvetia_test_{:016x}", rand::random::<u64>());
        psql(&admin_url, &format!("CREATE DATABASE {name}"));
        let url = match admin_url.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => panic!("HELVETIA_TEST_DATABASE_URL has no database part"),
        };
        TestDatabase {
            url,
            name,
            admin_url,
        }
    }

    /// Everything the database holds, as `pg_dump` writes it.
    pub fn dump(&self) -> String {
        let output = Command::new("pg_dump")
            .arg("--dbname")
            .arg(&self.url)
            .output()
            .expect("pg_dump");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        psql(
            &self.admin_url,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

fn psql(url: &str, statement: &str) {
    let output = Command::new("psql")
        .args([
            "--quiet",
            "--no-psqlrc",
            "--dbname",
            url,
            "--command",
            statement,
        ])
        .output()
        .expect("psql");
    assert!(
        output.status.success(),
        "{statement}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
