use std::sync::Arc;

/// A storage failure. The server answers these with a generic 500 and logs the cause once.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(Arc<rusqlite::Error>),
    #[error("database error: {message}")]
    Postgres { message: String, code: Option<String> },
    #[error("no database connection: {0}")]
    Pool(String),
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    #[error("the store is shut down")]
    Closed,
    #[error("cannot open the database: {0}")]
    Open(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(Arc::new(e))
    }
}
