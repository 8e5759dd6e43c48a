//! The app's text reply to the user of a verified reverse session (`reverse_reply`): a
//! service message Meta may bill, so its pricing is recorded with the session. Its message id
//! is recorded with the session's inbound messages (`reverse_messages`, migration 0010:
//! WhatsApp's message ids are unique, an outbound one never names an inbound message), where a
//! status report on a message id no session sent looks before keeping it.

use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use super::early_events;
use crate::types::ProviderEvent;
use crate::{ProviderReport, Result};

/// Records message `provider_id` as the reply to session `session_id`, and the pricing of its
/// reports kept so far (the writer is single: a report is either kept before this or finds it).
pub(super) fn record(c: &Connection, session_id: Uuid, provider_id: &str, now_ms: i64) -> Result<()> {
    let row: Option<i64> = c
        .prepare_cached("SELECT id FROM sessions WHERE session_id = ?1")?
        .query_row([session_id.as_bytes()], |r| r.get(0))
        .optional()?;
    let Some(row_id) = row else { return Ok(()) };
    c.prepare_cached(
        "INSERT INTO reverse_messages (message_id, session_id, created_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT (message_id) DO NOTHING",
    )?
    .execute(params![provider_id, session_id.as_bytes(), now_ms])?;
    for event in early_events::take(c, provider_id)? {
        report(c, row_id, provider_id, &event, now_ms)?;
    }
    Ok(())
}

/// The row of the session message `provider_id` is the reply to, if it is one.
pub(super) fn session_of(c: &Connection, provider_id: &str) -> Result<Option<i64>> {
    Ok(c.prepare_cached(
        "SELECT s.id FROM reverse_messages m JOIN sessions s ON s.session_id = m.session_id WHERE m.message_id = ?1",
    )?
    .query_row([provider_id], |r| r.get(0))
    .optional()?)
}

/// A report on the reply of session row `row_id`: its pricing recorded with the session;
/// nothing else (its steps are not the session's).
pub(super) fn report(
    c: &Connection,
    row_id: i64,
    provider_id: &str,
    event: &ProviderEvent,
    now_ms: i64,
) -> Result<ProviderReport> {
    let cost = match event.pricing() {
        Some(pricing) => super::costs::record(c, row_id, provider_id, pricing, now_ms)?,
        None => None,
    };
    Ok(ProviderReport::applied(cost))
}
