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
}
