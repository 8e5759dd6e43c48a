//! SQLite migrations, tracked in `PRAGMA user_version`. Shipped files are never edited.

use rusqlite::{Connection, TransactionBehavior};

use crate::{Result, StoreError};

const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/sqlite/0001_init.sql"),
    include_str!("../../migrations/sqlite/0002_guards.sql"),
    include_str!("../../migrations/sqlite/0003_whatsapp.sql"),
    include_str!("../../migrations/sqlite/0004_dashboard.sql"),
    include_str!("../../migrations/sqlite/0005_early_webhook_events.sql"),
    include_str!("../../migrations/sqlite/0006_dashboard_logins.sql"),
    include_str!("../../migrations/sqlite/0007_counters_in_memory.sql"),
    include_str!("../../migrations/sqlite/0008_no_msisdn_index.sql"),
    include_str!("../../migrations/sqlite/0009_sender_health.sql"),
    include_str!("../../migrations/sqlite/0010_reverse.sql"),
    include_str!("../../migrations/sqlite/0011_reverse_settings.sql"),
    include_str!("../../migrations/sqlite/0012_reverse_wrong_senders.sql"),
    include_str!("../../migrations/sqlite/0013_whatsapp_user_ids.sql"),
    include_str!("../../migrations/sqlite/0014_costs.sql"),
];

/// How many migrations this build applies.
pub(crate) fn count() -> usize {
    MIGRATIONS.len()
}

/// Brings the schema up to date. Runs under a write lock, so a server and a CLI starting
/// together do not both migrate.
pub(crate) fn apply(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if current > known {
        return Err(StoreError::Open(format!(
            "the database is at schema version {current}, newer than this waotp ({known}); upgrade waotp"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.execute_batch(sql)?;
        tracing::info!(version = i + 1, "applied SQLite migration");
    }
    tx.execute_batch(&format!("PRAGMA user_version = {known}"))?;
    tx.commit()?;
    Ok(())
}
