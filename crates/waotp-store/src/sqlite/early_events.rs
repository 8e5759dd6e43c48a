//! Provider events for message ids no session has recorded yet (see migration 0005): kept
//! here by a webhook, taken in arrival order by the delivery that records the id. The single
//! writer runs both in turn, so an event is either seen by the recording or kept for it.

use rusqlite::{params, Connection};
use waotp_core::Status;

use super::rows::status_from;
use crate::types::ProviderEvent;
use crate::{Result, StoreError, EARLY_EVENTS_MAX, EARLY_EVENT_TTL_MS};

/// Keeps `event` for `provider_id`; returns how many of the oldest kept events went to stay
/// within [`EARLY_EVENTS_MAX`].
pub(super) fn keep(c: &Connection, provider_id: &str, event: &ProviderEvent, now_ms: i64) -> Result<u64> {
    let (steps, error, not_requested) = event.columns();
    let (billable, category, model, pricing_type) = event.pricing_columns();
    let steps = steps.iter().map(|s| s.code().to_string()).collect::<Vec<_>>().join(",");
    c.prepare_cached(
        "INSERT INTO early_webhook_events (provider_id, received_at, steps, error_code, error_text, not_requested, \
         pricing_billable, pricing_category, pricing_model, pricing_type) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        provider_id,
        now_ms,
        steps,
        error.map(|e| e.0),
        error.map(|e| &e.1),
        not_requested,
        billable,
        category,
        model,
        pricing_type
    ])?;
    // Ids grow with arrival: every row more than the bound behind the newest is among the oldest.
    let evicted = c
        .prepare_cached("DELETE FROM early_webhook_events WHERE id <= ?1")?
        .execute([c.last_insert_rowid() - EARLY_EVENTS_MAX])?;
    Ok(evicted as u64)
}

/// A kept event's row: id, steps, error code and text, not requested, and its pricing columns.
type KeptRow = (i64, String, Option<i64>, Option<String>, bool, PricingColumns);
type PricingColumns = (Option<bool>, Option<String>, Option<String>, Option<String>);

/// Takes (reads and deletes) the events kept for `provider_id`, in arrival order.
pub(super) fn take(c: &Connection, provider_id: &str) -> Result<Vec<ProviderEvent>> {
    // One statement reads and deletes them (RETURNING's order is unspecified: sorted by id).
    let mut rows = c
        .prepare_cached(
            "DELETE FROM early_webhook_events WHERE provider_id = ?1 \
             RETURNING id, steps, error_code, error_text, not_requested, pricing_billable, pricing_category, \
             pricing_model, pricing_type",
        )?
        .query_map([provider_id], |r| {
            let pricing = (r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?);
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get(2)?, r.get(3)?, r.get(4)?, pricing))
        })?
        .collect::<rusqlite::Result<Vec<KeptRow>>>()?;
    rows.sort_by_key(|row| row.0);
    rows.into_iter()
        .map(|(_, steps, code, text, not_requested, pricing)| {
            let steps = steps
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| {
                    let code = s.parse::<i64>().map_err(|e| StoreError::Corrupt(format!("early event step: {e}")))?;
                    Ok(status_from(code)?)
                })
                .collect::<Result<Vec<Status>>>()?;
            Ok(ProviderEvent::from_columns(steps, code, text, not_requested, pricing))
        })
        .collect()
}

/// Forgets events kept longer than [`EARLY_EVENT_TTL_MS`].
pub(super) fn expire(c: &Connection, now_ms: i64) -> Result<()> {
    c.prepare_cached("DELETE FROM early_webhook_events WHERE received_at < ?1")?
        .execute([now_ms - EARLY_EVENT_TTL_MS])?;
    Ok(())
}
