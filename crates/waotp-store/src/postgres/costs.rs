//! Message costs on PostgreSQL (migration 0018): each message's pricing once, with its
//! session's app and country, and the billable messages of each app and month. A pricing comes
//! with its status report, under the message id's advisory lock (`sessions::report`).

use deadpool_postgres::{GenericClient, Transaction};
use uuid::Uuid;
use waotp_core::calendar::month_of;
use waotp_core::MessagePricing;

use super::{exec, fresh_exec, query, query_fresh, query_opt};
use crate::{CostWindow, CountryCount, MessageCount, RecordedCost, Result, DAY_MS};

/// Records the pricing of message `provider_id` of session row `row_id` unless that
/// message's was recorded before; what was recorded.
pub(super) async fn record(
    t: &Transaction<'_>,
    row_id: i64,
    provider_id: &str,
    p: &MessagePricing,
    now_ms: i64,
) -> Result<Option<RecordedCost>> {
    let session = query_opt(t, "SELECT app_id, session_id, msisdn FROM sessions WHERE id = $1", &[&row_id]).await?;
    let Some(session) = session else { return Ok(None) };
    let (app_id, session_id, msisdn): (Uuid, Uuid, String) = (session.get(0), session.get(1), session.get(2));
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

/// The verified production sessions of the window, by country: read within the window's ids
/// ([`crate::costs::WINDOW_IDS_SQL`], one statement) with the ids as values the plan is made
/// for, grouped by number in the database, counted by country on a blocking thread (the
/// numbering metadata's parse is not for an async worker).
pub(super) async fn verified_by_country<C: GenericClient>(c: &C, w: &CostWindow) -> Result<Vec<CountryCount>> {
    let (from, to) = crate::costs::window_id_targets(w);
    let bounds = query_fresh(c, crate::costs::WINDOW_IDS_SQL, &[&from, &to]).await?;
    let (first, end): (Option<i64>, Option<i64>) = bounds.first().map_or((None, None), |r| (r.get(0), r.get(1)));
    let Some((first, end)) = first.zip(end) else { return Ok(Vec::new()) };
    let verified = i64::from(waotp_core::Status::Verified.code());
    let rows = match &w.app_id {
        Some(app_id) => {
            query_fresh(c, VERIFIED_OF_APP, &[&first, &end, &w.from_ms, &w.to_ms, &verified, app_id]).await?
        }
        None => query_fresh(c, VERIFIED, &[&first, &end, &w.from_ms, &w.to_ms, &verified]).await?,
    };
    let numbers: Vec<(String, u64)> = rows.iter().map(|r| (r.get(0), r.get::<_, i64>(1).max(0) as u64)).collect();
    tokio::task::spawn_blocking(move || crate::costs::by_country(numbers)).await.map_err(|_| crate::StoreError::Closed)
}

/// PostgreSQL's plans (EXPLAIN's text, without costs) of a report's reads of `sessions` for
/// the window, planned as [`verified_by_country`] plans them (with the values it runs with):
/// for the test that pins them to the primary key.
pub async fn explain_verified(c: &tokio_postgres::Client, w: &CostWindow) -> Result<Vec<String>> {
    let explain = |rows: Vec<tokio_postgres::Row>| rows.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>();
    let (from, to) = crate::costs::window_id_targets(w);
    let ids = explain(c.query(&format!("EXPLAIN (COSTS OFF) {}", crate::costs::WINDOW_IDS_SQL), &[&from, &to]).await?);
    let bounds = c.query(crate::costs::WINDOW_IDS_SQL, &[&from, &to]).await?;
    let (first, end): (Option<i64>, Option<i64>) = (bounds[0].get(0), bounds[0].get(1));
    let verified = i64::from(waotp_core::Status::Verified.code());
    let read = match &w.app_id {
        Some(app_id) => {
            let sql = format!("EXPLAIN (COSTS OFF) {VERIFIED_OF_APP}");
            c.query(&sql, &[&first, &end, &w.from_ms, &w.to_ms, &verified, app_id]).await?
        }
        None => {
            let sql = format!("EXPLAIN (COSTS OFF) {VERIFIED}");
            c.query(&sql, &[&first, &end, &w.from_ms, &w.to_ms, &verified]).await?
        }
    };
    Ok(vec![ids.join("\n"), explain(read).join("\n")])
}

const VERIFIED: &str = "SELECT msisdn, count(*) FROM sessions WHERE id >= $1 AND id < $2 \
    AND created_at >= $3 AND created_at < $4 AND status = $5 AND NOT sandbox GROUP BY msisdn";
const VERIFIED_OF_APP: &str = "SELECT msisdn, count(*) FROM sessions WHERE id >= $1 AND id < $2 \
    AND created_at >= $3 AND created_at < $4 AND status = $5 AND NOT sandbox AND app_id = $6 GROUP BY msisdn";

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
