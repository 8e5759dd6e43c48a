//! Pooled connections across a failover: which of them may still be used.
//!
//! A connection to a server that died is closed, and the pools drop a closed connection on
//! its way out (deadpool's fast recycling checks exactly that). A connection to a server that
//! is still up but no longer takes writes is not closed: an old primary fenced with
//! `default_transaction_read_only` (as a switchover does, or a managed service whose disk is
//! full), answers every write with SQLSTATE 25006 while its connections stay open. The
//! heartbeat finds that within a beat: when a beat fails because the database is unavailable,
//! every connection made before the failure is suspect, and each is dropped the next time it
//! would leave its pool. New connections find the primary afresh (with
//! `target_session_attrs=read-write`, the first of the URL's hosts that takes writes).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use deadpool_postgres::{Hook, HookError};

/// When the database last failed the heartbeat, shared by the store's pools and its heartbeat.
#[derive(Clone)]
pub(super) struct Fence {
    /// The instant the offsets below count from.
    base: Instant,
    /// Nanoseconds after `base` of the last failure, plus one (0: none yet).
    failed_at: Arc<AtomicU64>,
}

impl Fence {
    pub(super) fn new() -> Fence {
        Fence { base: Instant::now(), failed_at: Arc::default() }
    }

    /// The database failed now: every connection made so far is suspect.
    pub(super) fn failed(&self) {
        self.failed_at_instant(Instant::now());
    }

    /// The database failed at `at`.
    fn failed_at_instant(&self, at: Instant) {
        let at = at.saturating_duration_since(self.base).as_nanos() as u64 + 1;
        self.failed_at.fetch_max(at, Ordering::Relaxed);
    }

    /// Whether a connection made at `created` was made before the last failure.
    fn suspect(&self, created: Instant) -> bool {
        match self.failed_at.load(Ordering::Relaxed) {
            0 => false,
            at => created.saturating_duration_since(self.base).as_nanos() < u128::from(at - 1),
        }
    }

    /// A pool's `pre_recycle` hook: a suspect connection is dropped instead of handed out (the
    /// pool makes a new one in its place).
    pub(super) fn hook(&self) -> Hook {
        let fence = self.clone();
        Hook::sync_fn(move |_client, metrics| {
            if fence.suspect(metrics.created) {
                Err(HookError::message("made before the database failed the heartbeat"))
            } else {
                Ok(())
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio_postgres::config::{Host, TargetSessionAttrs};

    use super::Fence;
    use crate::postgres::PgOptions;

    #[test]
    fn several_hosts_and_the_primary_only_reach_the_driver_in_either_url_form() {
        for url in [
            "postgres://u:p@db1.internal:5433,db2.internal:5434/waotp?sslmode=require&target_session_attrs=read-write&pool_size=8",
            "postgres://u:p@/waotp?host=db1.internal,db2.internal&port=5433,5434&sslmode=require&target_session_attrs=read-write",
        ] {
            let options = PgOptions::from_url(url).unwrap();
            assert!(!options.url.contains("sslmode") && !options.url.contains("pool_size"), "{}", options.url);
            let config = options.driver_config().unwrap();
            let hosts = [Host::Tcp("db1.internal".into()), Host::Tcp("db2.internal".into())];
            assert_eq!(config.get_hosts(), &hosts, "{url}");
            assert_eq!(config.get_ports(), &[5433, 5434], "{url}");
            assert_eq!(config.get_target_session_attrs(), TargetSessionAttrs::ReadWrite, "{url}");
            assert_eq!(config.get_dbname(), Some("waotp"), "{url}");
            // Each host gets its share of the wait (a host that drops packets must leave time
            // for the next), unless the URL sets connect_timeout.
            assert_eq!(config.get_connect_timeout(), Some(&(crate::DEFAULT_DATABASE_WAIT / 2)), "{url}");
        }
        let own = PgOptions::from_url("postgres://u@h1,h2/db?connect_timeout=5").unwrap().driver_config().unwrap();
        assert_eq!(own.get_connect_timeout(), Some(&Duration::from_secs(5)));
    }

    #[test]
    fn connections_made_before_a_failure_are_suspect_and_later_ones_are_not() {
        let fence = Fence::new();
        let before = fence.base + Duration::from_millis(10);
        let after = fence.base + Duration::from_millis(30);
        assert!(!fence.suspect(before), "no failure yet");
        fence.failed_at_instant(fence.base + Duration::from_millis(20));
        assert!(fence.suspect(before));
        assert!(!fence.suspect(after));
        // A later failure moves the fence forward, an earlier one does not move it back.
        fence.failed_at_instant(fence.base + Duration::from_millis(40));
        fence.failed_at_instant(fence.base + Duration::from_millis(5));
        assert!(fence.suspect(after));
        // A connection made before the fence existed (none is: the pools come after it).
        assert!(fence.suspect(fence.base - Duration::from_millis(1)));
    }
}
