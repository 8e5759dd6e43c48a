//! PostgreSQL's errors as [`StoreError`]s: the one place that reads SQLSTATEs.

use tokio_postgres::error::SqlState;

use crate::StoreError;

/// Whether an SQLSTATE says the server cannot serve now rather than that the statement is
/// wrong: connection exceptions (class 08), insufficient resources (53: disk full, too many
/// connections), a server shutting down or starting (57P01–57P03), system errors (58), and a
/// read-only transaction (25006: a standby, during a failover).
fn unavailable_state(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("58")
        || matches!(code, "57P01" | "57P02" | "57P03" | "25006")
}

/// Whether an SQLSTATE says the transaction lost to a concurrent one (a deadlock, a
/// serialization failure): the same transaction, run again, would likely not hit it.
fn conflict_state(code: &str) -> bool {
    code == SqlState::T_R_DEADLOCK_DETECTED.code() || code == SqlState::T_R_SERIALIZATION_FAILURE.code()
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        let message = describe(&e);
        match e.as_db_error() {
            Some(db) => {
                let code = db.code().code();
                if unavailable_state(code) {
                    StoreError::Unavailable(message)
                } else if conflict_state(code) {
                    StoreError::Conflict(message)
                } else {
                    StoreError::Backend(message)
                }
            }
            None => {
                let mut source = std::error::Error::source(&e);
                let mut io = false;
                while let Some(s) = source {
                    io |= s.is::<std::io::Error>();
                    source = s.source();
                }
                // A closed connection, or any failure to talk to the server (refused, reset,
                // timed out, a failed TLS handshake), is the server's absence, not the
                // statement's fault.
                if e.is_closed() || io {
                    StoreError::Unavailable(message)
                } else {
                    StoreError::Backend(message)
                }
            }
        }
    }
}

/// What the driver says of a failure, with its causes: a server's error by its message alone
/// (a DETAIL can quote row values), else each cause in turn ("error connecting to server:
/// Connection refused"). The driver's errors never hold the connection's password.
pub(super) fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{}: {} ({})", db.severity(), db.message(), db.code().code());
    }
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::{conflict_state, unavailable_state};

    #[test]
    fn sqlstates_of_an_absent_or_overloaded_server_are_unavailable() {
        for code in ["08006", "08001", "57P01", "57P02", "57P03", "53300", "53100", "58030", "25006"] {
            assert!(unavailable_state(code), "{code}");
        }
        for code in ["23505", "40001", "40P01", "42P01", "57014", "22001"] {
            assert!(!unavailable_state(code), "{code}");
        }
    }

    #[test]
    fn deadlocks_and_serialization_failures_are_conflicts() {
        for code in ["40001", "40P01"] {
            assert!(conflict_state(code), "{code}");
        }
        for code in ["23505", "08006", "40002", "57014"] {
            assert!(!conflict_state(code), "{code}");
        }
    }
}
