//! Message costs on PostgreSQL (migration 0018): each message's pricing once, with its
//! session's app and country, and the billable messages of each app and month. A pricing and
//! the delivery recording its message id take the id's advisory lock
//! (`locks::lock_provider_id`), so a kept pricing is either seen by the recording or kept
//! for it, as a status event is.

use deadpool_postgres::{GenericClient, Transaction};
use uuid::Uuid;
use waotp_core::calendar::month_of;
use waotp_core::MessagePricing;

use super::{early_events, exec, fresh_exec, query, query_opt};
use crate::types::ProviderEvent;
use crate::{CostWindow, CountryCount, MessageCount, PricingOutcome, RecordedCost, Result, DAY_MS};

/// Records a message's pricing for the session that sent it, or keeps it for the delivery
/// that will record its message id (under the id's lock).
pub(super) async fn report(
    t: &Transaction<'_>,
    provider_id: &str,
    p: &MessagePricing,
    now_ms: i64,
) -> Result<PricingOutcome> {
    super::locks::lock_provider_id(t, provider_id).await?;
    let row = query_opt(t, "SELECT id FROM sessions WHERE provider_id = $1 ORDER BY id DESC LIMIT 1", &[&provider_id])
        .await?;
    Ok(match row {
        Some(row) => record(t, row.get(0), p, now_ms).await?.map_or(PricingOutcome::Known, PricingOutcome::Recorded),
        None => {
            let event = ProviderEvent::Pricing(p.clone());
            PricingOutcome::Kept { evicted: early_events::keep(t, provider_id, &event, now_ms).await? }
        }
    })
}

/// Records the pricing of the message of session row `row_id` (its provider id recorded)
/// unless that message's was recorded before; what was recorded.
pub(super) async fn record(
    t: &Transaction<'_>,
    row_id: i64,
    p: &MessagePricing,
    now_ms: i64,
) -> Result<Option<RecordedCost>> {
    let session =
        query_opt(t, "SELECT app_id, session_id, msisdn, provider_id FROM sessions WHERE id = $1", &[&row_id]).await?;
    let Some(session) = session else { return Ok(None) };
    let (app_id, session_id): (Uuid, Uuid) = (session.get(0), session.get(1));
    let (msisdn, provider_id): (String, Option<String>) = (session.get(2), session.get(3));
    let Some(provider_id) = provider_id else { return Ok(None) };
    let country = waotp_core::numbering::region(&msisdn);
    let inserted = exec(
        t,
        "INSERT INTO message_costs (provider_id, app_id, session_id, country, billable, category, pricing_model, \
         pricing_type, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (provider_id) DO NOTHING",
        &[
            &provider_id,
            &app_id,
            &session_id,
            &country,
            &p.billable,
            &p.category,
            &p.pricing_model,
            &p.pricing_type,
            &now_ms,
        ],
    )
    .await?;
    if inserted == 0 {
        return Ok(None);
    }
    if p.billable {
        exec(
            t,
            "INSERT INTO billable_months (app_id, month, billable) VALUES ($1, $2, 1) \
             ON CONFLICT (app_id, month) DO UPDATE SET billable = billable_months.billable + 1",
            &[&app_id, &month_of(now_ms)],
        )
        .await?;
    }
    Ok(Some(RecordedCost { app_id, session_id, country, pricing: p.clone() }))
}

pub(super) async fn billable_in_month<C: GenericClient>(c: &C, app_id: Uuid, month: i64) -> Result<u64> {
    let row = query_opt(c, "SELECT billable FROM billable_months WHERE app_id = $1 AND month = $2", &[&app_id, &month])
        .await?;
    Ok(row.map_or(0, |r| r.get::<_, i64>(0)).max(0) as u64)
}

pub(super) async fn message_counts<C: GenericClient>(c: &C, w: &CostWindow) -> Result<Vec<MessageCount>> {
    let rows = query(
        c,
        "SELECT country, category, billable, created_at / $4 AS day, count(*) FROM message_costs \
         WHERE created_at >= $1 AND created_at < $2 AND ($3::uuid IS NULL OR app_id = $3) \
         GROUP BY country, category, billable, day ORDER BY day, country, category, billable",
        &[&w.from_ms, &w.to_ms, &w.app_id, &DAY_MS],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| MessageCount {
            country: r.get(0),
            category: r.get(1),
            billable: r.get(2),
            day: r.get(3),
            messages: r.get::<_, i64>(4) as u64,
        })
        .collect())
}

pub(super) async fn verified_by_country<C: GenericClient>(c: &C, w: &CostWindow) -> Result<Vec<CountryCount>> {
    let rows = query(
        c,
        "SELECT msisdn, count(*) FROM sessions WHERE status = $4 AND NOT sandbox AND created_at >= $1 \
         AND created_at < $2 AND ($3::uuid IS NULL OR app_id = $3) GROUP BY msisdn",
        &[&w.from_ms, &w.to_ms, &w.app_id, &i64::from(waotp_core::Status::Verified.code())],
    )
    .await?;
    Ok(crate::costs::by_country(rows.iter().map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1) as u64))))
}

/// Retention: among the oldest `limit` costs, those created before `before_ms`, and the
/// billable counts of months that ended before it; how many costs went.
pub(super) async fn prune_older_than(t: &Transaction<'_>, before_ms: i64, limit: usize) -> Result<usize> {
    let costs = fresh_exec(
        t,
        "DELETE FROM message_costs WHERE id IN (SELECT id FROM (SELECT id, created_at FROM message_costs \
         ORDER BY id LIMIT $2) oldest WHERE created_at < $1)",
        &[&before_ms, &(limit as i64)],
    )
    .await?;
    exec(t, "DELETE FROM billable_months WHERE month < $1", &[&month_of(before_ms)]).await?;
    Ok(costs as usize)
}
