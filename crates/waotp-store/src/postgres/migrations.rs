//! PostgreSQL migrations, tracked in `waotp_schema`. Shipped files are never edited.

use super::{exec, query_opt};
use crate::{Result, StoreError};

const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/postgres/0001_init.sql"),
    include_str!("../../migrations/postgres/0002_functions.sql"),
    include_str!("../../migrations/postgres/0003_dashboard.sql"),
    include_str!("../../migrations/postgres/0004_early_webhook_events.sql"),
    include_str!("../../migrations/postgres/0005_dashboard_logins.sql"),
    include_str!("../../migrations/postgres/0006_delivery_check_in_rust.sql"),
    include_str!("../../migrations/postgres/0007_advance_takes_the_order.sql"),
    include_str!("../../migrations/postgres/0008_unlogged_counters.sql"),
    include_str!("../../migrations/postgres/0009_verify_writes_what_rust_decided.sql"),
    include_str!("../../migrations/postgres/0010_session_born_as_stored.sql"),
    include_str!("../../migrations/postgres/0011_no_msisdn_index.sql"),
    include_str!("../../migrations/postgres/0012_verify_written_once.sql"),
    include_str!("../../migrations/postgres/0013_sender_health.sql"),
    include_str!("../../migrations/postgres/0014_reverse.sql"),
    include_str!("../../migrations/postgres/0015_reverse_settings.sql"),
    include_str!("../../migrations/postgres/0016_reverse_wrong_senders.sql"),
    include_str!("../../migrations/postgres/0017_whatsapp_user_ids.sql"),
    include_str!("../../migrations/postgres/0018_costs.sql"),
];

/// Any fixed number: the advisory lock that lets one node at a time migrate.
const MIGRATION_LOCK: i64 = 0x7761_6f74_705f_6d69;

pub(crate) fn count() -> usize {
    MIGRATIONS.len()
}

/// Brings the schema up to date, in one transaction under an advisory lock: nodes starting
/// together wait for the first, then find nothing left to do.
pub(crate) async fn apply(conn: &mut deadpool_postgres::Object) -> Result<()> {
    let t = conn.transaction().await?;
    exec(&t, "SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
    t.batch_execute("CREATE TABLE IF NOT EXISTS waotp_schema (version bigint NOT NULL)").await?;
    let current = match query_opt(&t, "SELECT version FROM waotp_schema", &[]).await? {
        Some(row) => row.get::<_, i64>(0),
        None => {
            exec(&t, "INSERT INTO waotp_schema (version) VALUES (0)", &[]).await?;
            0
        }
    };
    let known = MIGRATIONS.len() as i64;
    if current > known {
        return Err(StoreError::Open(format!(
            "the database is at schema version {current}, newer than this waotp ({known}); upgrade waotp"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        t.batch_execute(sql).await?;
        tracing::info!(version = i + 1, "applied PostgreSQL migration");
    }
    exec(&t, "UPDATE waotp_schema SET version = $1", &[&known]).await?;
    t.commit().await?;
    Ok(())
}
