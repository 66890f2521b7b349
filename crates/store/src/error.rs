//! The store's one error type. Infrastructure errors stop here: callers see what happened
//! (not found, conflict, illegal transition), never a driver type to match on.

use helvetia_core::deployment::IllegalTransition;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    /// A uniqueness rule or the current state forbids the change.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    IllegalTransition(#[from] IllegalTransition),
    /// A conditional change found the row no longer as the caller read it.
    #[error("{0} changed since it was read")]
    Stale(String),
    /// The database holds something this version cannot interpret.
    #[error("unreadable stored data: {0}")]
    Corrupt(String),
    #[error("database configuration: {0}")]
    Config(String),
    #[error("database error: {0}")]
    Backend(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// Turns a unique-constraint violation into a [`StoreError::Conflict`] with `message`;
    /// anything else stays a backend error. Inserting and reporting the violation (rather than
    /// checking first) is the only race-free way to enforce uniqueness.
    pub(crate) fn unique(message: impl Into<String>) -> impl FnOnce(sqlx::Error) -> StoreError {
        let message = message.into();
        move |error| {
            let is_unique = error
                .as_database_error()
                .is_some_and(|db| db.is_unique_violation());
            if is_unique {
                StoreError::Conflict(message)
            } else {
                StoreError::Backend(error)
            }
        }
    }

    pub(crate) fn corrupt(what: &str, error: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt(format!("{what}: {error}"))
    }

    /// Why the database cannot serve right now, when that passes by itself or by an
    /// operator's hand (the database restarting, its disk full), rather than the request or
    /// the data being wrong: callers answer "try again later", not "internal error".
    pub fn outage(&self) -> Option<Outage> {
        let StoreError::Backend(error) = self else {
            return None;
        };
        match error {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => Some(Outage::Unreachable),
            sqlx::Error::Database(database) => {
                let code = database.code()?;
                match code.as_ref() {
                    // SQLite: SQLITE_FULL; PostgreSQL: disk_full.
                    "13" | "53100" => Some(Outage::StorageFull),
                    // PostgreSQL shutting down or starting (admin_shutdown, crash_shutdown,
                    // cannot_connect_now) and the connection exceptions (class 08).
                    "57P01" | "57P02" | "57P03" => Some(Outage::Unreachable),
                    code if code.starts_with("08") => Some(Outage::Unreachable),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

/// See [`StoreError::outage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    /// The database does not answer (restarting, unreachable, shutting down).
    Unreachable,
    /// The database's disk is full: nothing can be written until space is freed.
    StorageFull,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_out_of_reach_is_an_outage_and_a_wrong_request_is_not() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        for error in [
            sqlx::Error::Io(refused),
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
        ] {
            assert_eq!(
                StoreError::Backend(error).outage(),
                Some(Outage::Unreachable)
            );
        }
        assert_eq!(StoreError::Backend(sqlx::Error::RowNotFound).outage(), None);
        assert_eq!(StoreError::NotFound("project x".into()).outage(), None);
        assert_eq!(StoreError::Corrupt("a row".into()).outage(), None);
    }
}
