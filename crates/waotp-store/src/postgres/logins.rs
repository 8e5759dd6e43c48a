//! The dashboard's logins (see migration 0005 and [`crate::DashboardLogins`]): one row each,
//! so a logout on any node ends the login on every node.

use deadpool_postgres::GenericClient;

use super::{exec, fresh_exec, query_opt};
use crate::Result;

pub(super) async fn create<C: GenericClient>(c: &C, id_hash: &[u8; 32], now_ms: i64, expires_at_ms: i64) -> Result<()> {
    exec(
        c,
        "INSERT INTO dashboard_logins (id_hash, created_at, expires_at) VALUES ($1, $2, $3)",
        &[&&id_hash[..], &now_ms, &expires_at_ms],
    )
    .await?;
    Ok(())
}

pub(super) async fn is_live<C: GenericClient>(c: &C, id_hash: &[u8; 32], now_ms: i64) -> Result<bool> {
    let row = query_opt(
        c,
        "SELECT 1 FROM dashboard_logins WHERE id_hash = $1 AND expires_at > $2",
        &[&&id_hash[..], &now_ms],
    )
    .await?;
    Ok(row.is_some())
}

pub(super) async fn end<C: GenericClient>(c: &C, id_hash: &[u8; 32]) -> Result<bool> {
    Ok(exec(c, "DELETE FROM dashboard_logins WHERE id_hash = $1", &[&&id_hash[..]]).await? > 0)
}

/// Deletes expired logins (every node sweeps: rows another holds are skipped).
pub(super) async fn prune<C: GenericClient>(c: &C, now_ms: i64) -> Result<()> {
    fresh_exec(
        c,
        "DELETE FROM dashboard_logins WHERE id_hash IN (SELECT id_hash FROM dashboard_logins WHERE expires_at <= $1 \
         FOR UPDATE SKIP LOCKED)",
        &[&now_ms],
    )
    .await?;
    Ok(())
}
