use std::sync::Arc;

/// A storage failure. The server answers [`StoreError::is_unavailable`] ones with a 503 (the
/// client may retry soon) and the rest with a generic 500, and logs the cause once.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(Arc<rusqlite::Error>),
    #[error("database error: {message}")]
    Postgres { message: String, code: Option<String> },
    #[error("no database connection: {0}")]
    Pool(String),
    /// The database cannot be reached or cannot write for now: refused or lost connections,
    /// a server shutting down, no connection within the configured wait.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    #[error("the store is shut down")]
    Closed,
    #[error("cannot open the database: {0}")]
    Open(String),
}

impl StoreError {
    /// Whether the failure is the database's state rather than the request's or the data's:
    /// nothing was written, and the same request may well succeed in a moment.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unavailable(_) | StoreError::Pool(_) => true,
            StoreError::Database(e) => sqlite_unavailable(e),
            _ => false,
        }
    }
}

/// SQLite failures of the file or the disk, not of the statement: read-only, full, I/O
/// errors, a lock held past the busy timeout, a file that cannot be opened.
fn sqlite_unavailable(e: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode::*;
    matches!(
        e.sqlite_error_code(),
        Some(
            DatabaseBusy
                | DatabaseLocked
                | ReadOnly
                | SystemIoFailure
                | DiskFull
                | CannotOpen
                | OutOfMemory
                | FileLockingProtocolFailed
                | PermissionDenied
        )
    )
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(Arc::new(e))
    }
}

/// Runs a store call again, with pauses doubling from `first` up to `longest`, while it fails
/// because the database is unavailable and `keep_trying()` says so: work that must outlive an
/// outage (a delivery's outcome, a send's counts given back) waits it out instead of being
/// lost to it. Any other answer, and the last unavailable one, is returned.
pub async fn retry_while_unavailable<T, F, Fut>(
    first: std::time::Duration,
    longest: std::time::Duration,
    mut keep_trying: impl FnMut() -> bool,
    mut call: F,
) -> crate::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = crate::Result<T>>,
{
    let mut pause = first;
    loop {
        match call().await {
            Err(e) if e.is_unavailable() && keep_trying() => {
                tracing::debug!(error = %e, "the database is unavailable; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(longest);
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::ffi;

    use super::StoreError;

    fn sqlite(code: i32) -> StoreError {
        StoreError::from(rusqlite::Error::SqliteFailure(ffi::Error::new(code), None))
    }

    #[test]
    fn failures_of_the_disk_or_the_lock_are_unavailable_those_of_the_statement_are_not() {
        for code in
            [ffi::SQLITE_FULL, ffi::SQLITE_READONLY, ffi::SQLITE_IOERR_WRITE, ffi::SQLITE_IOERR_FSYNC, ffi::SQLITE_BUSY]
        {
            assert!(sqlite(code).is_unavailable(), "{code}");
        }
        for code in [ffi::SQLITE_CONSTRAINT_UNIQUE, ffi::SQLITE_CORRUPT, ffi::SQLITE_ERROR, ffi::SQLITE_MISMATCH] {
            assert!(!sqlite(code).is_unavailable(), "{code}");
        }
        assert!(StoreError::Unavailable("x".into()).is_unavailable());
        assert!(StoreError::Pool("timed out".into()).is_unavailable());
        assert!(!StoreError::Corrupt("x".into()).is_unavailable());
        assert!(!StoreError::Postgres { message: "x".into(), code: Some("23505".into()) }.is_unavailable());
    }
}
