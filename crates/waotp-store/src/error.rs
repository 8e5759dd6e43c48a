/// A storage failure, in terms that do not depend on the backend: each backend classifies
/// its driver's errors into these kinds where they arise (`sqlite::error`, `postgres::error`),
/// so no driver type or error code crosses into the server. The server answers
/// [`StoreError::is_retryable`] ones with a 503 (the client may retry soon) and the rest
/// with a generic 500, and logs the cause once.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or cannot write for now: refused or lost connections,
    /// a server shutting down, a full disk or a read-only file, a lock held past the wait, no
    /// connection within the configured wait.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The work collided with concurrent work (a deadlock, a serialization failure) more
    /// often than the backend retries it.
    #[error("database conflict: {0}")]
    Conflict(String),
    /// Any other failure of the database or its driver: what the driver said (without the
    /// detail lines that may quote row values).
    #[error("database error: {0}")]
    Backend(String),
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    #[error("the store is shut down")]
    Closed,
    #[error("cannot open the database: {0}")]
    Open(String),
}

impl StoreError {
    /// Whether the same request, sent again in a moment, may well succeed: the database is
    /// unavailable, or the work lost to concurrent work more often than the backend retries.
    /// Nothing was written either way.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Conflict(_))
    }

    /// Whether the failure is the database's state rather than the request's or the data's:
    /// nothing was written, and the same request may well succeed in a moment.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
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
    use super::StoreError;

    #[test]
    fn only_unavailable_failures_are_unavailable() {
        assert!(StoreError::Unavailable("x".into()).is_unavailable());
        for e in [
            StoreError::Conflict("x".into()),
            StoreError::Backend("x".into()),
            StoreError::Corrupt("x".into()),
            StoreError::Closed,
            StoreError::Open("x".into()),
        ] {
            assert!(!e.is_unavailable(), "{e}");
        }
    }
}
