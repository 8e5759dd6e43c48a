//! The app's text reply to the user of a verified reverse session (`reverse_reply`): a
//! service message Meta may bill, so its pricing is recorded with the session. Its message id
//! is recorded with the session's inbound messages (`reverse_messages`, migration 0014:
//! WhatsApp's message ids are unique, an outbound one never names an inbound message), where a
//! status report on a message id no session sent looks before keeping it. Both take the
//! message id's advisory lock (`locks::lock_provider_id`), so a report is either kept
//! before the reply is recorded (and its pricing recorded then) or finds it.

use deadpool_postgres::Transaction;
use uuid::Uuid;

use super::{early_events, exec, query_opt};
use crate::types::ProviderEvent;
use crate::{ProviderReport, Result};

/// Records message `provider_id` as the reply to session `session_id`, and the pricing of its
/// reports kept so far.
pub(super) async fn record(t: &Transaction<'_>, session_id: Uuid, provider_id: &str, now_ms: i64) -> Result<()> {
    super::locks::lock_provider_id(t, provider_id).await?;
    let row = query_opt(t, "SELECT id FROM sessions WHERE session_id = $1", &[&session_id]).await?;
    let Some(row) = row else { return Ok(()) };
    exec(
        t,
        "INSERT INTO reverse_messages (message_id, session_id, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (message_id) DO NOTHING",
        &[&provider_id, &session_id, &now_ms],
    )
    .await?;
    for event in early_events::take(t, provider_id).await? {
        report(t, row.get(0), provider_id, &event, now_ms).await?;
    }
    Ok(())
}

/// The row of the session message `provider_id` is the reply to, if it is one (its lock held).
pub(super) async fn session_of(t: &Transaction<'_>, provider_id: &str) -> Result<Option<i64>> {
    let row = query_opt(
        t,
        "SELECT s.id FROM reverse_messages m JOIN sessions s ON s.session_id = m.session_id WHERE m.message_id = $1",
        &[&provider_id],
    )
    .await?;
    Ok(row.map(|r| r.get(0)))
}

/// A report on the reply of session row `row_id`: its pricing recorded with the session;
/// nothing else (its steps are not the session's).
pub(super) async fn report(
    t: &Transaction<'_>,
    row_id: i64,
    provider_id: &str,
    event: &ProviderEvent,
    now_ms: i64,
) -> Result<ProviderReport> {
    let cost = match event.pricing() {
        Some(pricing) => super::costs::record(t, row_id, provider_id, pricing, now_ms).await?,
        None => None,
    };
    Ok(ProviderReport::applied(cost))
}
