//! The dashboard's logins (see migration 0006 and [`crate::DashboardLogins`]).

use rusqlite::{params, Connection, OptionalExtension};

use crate::Result;

pub(super) fn create(c: &Connection, id_hash: &[u8; 32], now_ms: i64, expires_at_ms: i64) -> Result<()> {
    c.prepare_cached("INSERT INTO dashboard_logins (id_hash, created_at, expires_at) VALUES (?1, ?2, ?3)")?
        .execute(params![&id_hash[..], now_ms, expires_at_ms])?;
    Ok(())
}

pub(super) fn is_live(c: &Connection, id_hash: &[u8; 32], now_ms: i64) -> Result<bool> {
    Ok(c.prepare_cached("SELECT 1 FROM dashboard_logins WHERE id_hash = ?1 AND expires_at > ?2")?
        .query_row(params![&id_hash[..], now_ms], |_| Ok(()))
        .optional()?
        .is_some())
}

pub(super) fn end(c: &Connection, id_hash: &[u8; 32]) -> Result<bool> {
    Ok(c.prepare_cached("DELETE FROM dashboard_logins WHERE id_hash = ?1")?.execute([&id_hash[..]])? > 0)
}

pub(super) fn prune(c: &Connection, now_ms: i64) -> Result<()> {
    c.prepare_cached("DELETE FROM dashboard_logins WHERE expires_at <= ?1")?.execute([now_ms])?;
    Ok(())
}
