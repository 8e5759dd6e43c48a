//! SQLite's errors as [`StoreError`]s: the one place that reads SQLite's error codes.

use crate::StoreError;

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        if unavailable(&e) {
            StoreError::Unavailable(e.to_string())
        } else {
            StoreError::Backend(e.to_string())
        }
    }
}

/// SQLite failures of the file or the disk, not of the statement: read-only, full, I/O
/// errors, a lock held past the busy timeout, a file that cannot be opened.
fn unavailable(e: &rusqlite::Error) -> bool {
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

#[cfg(test)]
mod tests {
    use rusqlite::ffi;

    use crate::StoreError;

    fn sqlite(code: i32) -> StoreError {
        StoreError::from(rusqlite::Error::SqliteFailure(ffi::Error::new(code), None))
    }

    #[test]
    fn failures_of_the_disk_or_the_lock_are_unavailable_those_of_the_statement_are_not() {
        for code in
            [ffi::SQLITE_FULL, ffi::SQLITE_READONLY, ffi::SQLITE_IOERR_WRITE, ffi::SQLITE_IOERR_FSYNC, ffi::SQLITE_BUSY]
        {
            assert!(matches!(sqlite(code), StoreError::Unavailable(_)), "{code}");
        }
        for code in [ffi::SQLITE_CONSTRAINT_UNIQUE, ffi::SQLITE_CORRUPT, ffi::SQLITE_ERROR, ffi::SQLITE_MISMATCH] {
            assert!(matches!(sqlite(code), StoreError::Backend(_)), "{code}");
        }
    }
}
