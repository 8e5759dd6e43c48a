//! Provider events for message ids no session has recorded yet (see migration 0004): kept
//! here by a webhook on any node, taken in arrival order by the delivery that records the id
//! on any node. Both take the message id's advisory lock first (`locks::lock_provider_id`),
//! so an event is either seen by the recording or kept for it, never lost in between.

use deadpool_postgres::{GenericClient, Transaction};
use waotp_core::Status;

use super::{exec, fresh_exec, query, query_one, status_from};
use crate::types::ProviderEvent;
use crate::{Result, EARLY_EVENTS_MAX, EARLY_EVENT_TTL_MS};

/// Keeps `event` for `provider_id` (its lock held); returns how many of the oldest kept
/// events went to stay within [`EARLY_EVENTS_MAX`].
pub(super) async fn keep(t: &Transaction<'_>, provider_id: &str, event: &ProviderEvent, now_ms: i64) -> Result<u64> {
    let (steps, error, not_requested) = event.columns();
    let (billable, category, model, pricing_type) = event.pricing_columns();
    let steps: Vec<i64> = steps.iter().map(|s| i64::from(s.code())).collect();
    let id: i64 = query_one(
        t,
        "INSERT INTO early_webhook_events (provider_id, received_at, steps, error_code, error_text, not_requested, \
         pricing_billable, pricing_category, pricing_model, pricing_type) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        &[
            &provider_id,
            &now_ms,
            &steps,
            &error.map(|e| e.0),
            &error.map(|e| e.1.as_str()),
            &not_requested,
            &billable,
            &category,
            &model,
            &pricing_type,
        ],
    )
    .await?
    .get(0);
    // Ids grow with arrival: every row more than the bound behind the newest is among the
    // oldest. Rows another transaction holds are being deleted already: skipped, not waited for.
    let evicted = exec(
        t,
        "DELETE FROM early_webhook_events WHERE id IN (SELECT id FROM early_webhook_events WHERE id <= $1 \
         FOR UPDATE SKIP LOCKED)",
        &[&(id - EARLY_EVENTS_MAX)],
    )
    .await?;
    Ok(evicted)
}

/// Takes (deletes and returns) the events kept for `provider_id` (its lock held), in arrival
/// order.
pub(super) async fn take(t: &Transaction<'_>, provider_id: &str) -> Result<Vec<ProviderEvent>> {
    let mut rows = query(
        t,
        "DELETE FROM early_webhook_events WHERE provider_id = $1 \
         RETURNING id, steps, error_code, error_text, not_requested, pricing_billable, pricing_category, \
         pricing_model, pricing_type",
        &[&provider_id],
    )
    .await?;
    rows.sort_by_key(|r| r.get::<_, i64>(0));
    rows.iter()
        .map(|r| {
            let steps = r.get::<_, Vec<i64>>(1).into_iter().map(status_from).collect::<Result<Vec<Status>>>()?;
            let pricing = (r.get(5), r.get(6), r.get(7), r.get(8));
            Ok(ProviderEvent::from_columns(steps, r.get(2), r.get(3), r.get(4), pricing))
        })
        .collect()
}

/// Forgets events kept longer than [`EARLY_EVENT_TTL_MS`] (every node sweeps: rows another
/// holds are skipped).
pub(super) async fn expire<C: GenericClient>(c: &C, now_ms: i64) -> Result<()> {
    fresh_exec(
        c,
        "DELETE FROM early_webhook_events WHERE id IN (SELECT id FROM early_webhook_events WHERE received_at < $1 \
         FOR UPDATE SKIP LOCKED)",
        &[&(now_ms - EARLY_EVENT_TTL_MS)],
    )
    .await?;
    Ok(())
}
