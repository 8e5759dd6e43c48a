//! Sessions on PostgreSQL, read: a session's record, the dashboard's and the admin API's
//! searches, the funnel, the newest inbox messages, the counts by status, and the facts of a
//! delivery's last look. Nothing here writes.

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use uuid::Uuid;
use waotp_core::{DeliveryFacts, Msisdn, Status};

use super::inbox::inbox_message;
use super::rows::state_from;
use super::{prefixes, query, query_fresh, query_one, query_opt, small, status_from};
use crate::{
    Blocklisted, DeliveryCheck, FunnelRow, InboxMessage, Result, SessionQuery, SessionRecord, Timeline, DAY_MS,
};

/// The columns [`session_record`] reads, in its order.
const RECORD_COLUMNS: &str = "session_id, app_id, msisdn, challenge, state, status, wrong_attempts, try_count, \
     template_name, lang_code, callback_url, provider_id, error_code, error_text, sealed_code IS NULL, created_at, \
     expires_at, not_requested_at IS NOT NULL, sandbox, sent_at, delivered_at, read_at, failed_at, closed_at";

fn session_record(r: &Row) -> Result<SessionRecord> {
    Ok(SessionRecord {
        session_id: r.get(0),
        app_id: r.get(1),
        msisdn: Msisdn::from_trusted(r.get(2)),
        challenge: r.get(3),
        state: state_from(r.get(4))?,
        status: status_from(r.get(5))?,
        wrong_attempts: small(r.get(6))?,
        try_count: small(r.get(7))?,
        template_name: r.get(8),
        lang_code: r.get(9),
        callback_url: r.get(10),
        provider_id: r.get(11),
        error_code: r.get(12),
        error_text: r.get(13),
        delivered_to_channel: r.get(14),
        created_at_ms: r.get(15),
        expires_at_ms: r.get(16),
        not_requested: r.get(17),
        sandbox: r.get(18),
        timeline: Timeline {
            sent_at_ms: r.get(19),
            delivered_at_ms: r.get(20),
            read_at_ms: r.get(21),
            failed_at_ms: r.get(22),
            closed_at_ms: r.get(23),
        },
    })
}

pub(super) async fn get<C: GenericClient>(c: &C, app_id: Uuid, session_id: Uuid) -> Result<Option<SessionRecord>> {
    let sql = format!("SELECT {RECORD_COLUMNS} FROM sessions WHERE session_id = $1 AND app_id = $2");
    query_opt(c, &sql, &[&session_id, &app_id]).await?.as_ref().map(session_record).transpose()
}

/// Sessions matching every field given, newest first. Planned afresh with its values (see
/// [`query_fresh`]): the fields not given fold away, and the plan uses the index of the one
/// that is (a cached generic plan would have to serve every combination).
pub(super) async fn search<C: GenericClient>(c: &C, q: &SessionQuery) -> Result<Vec<SessionRecord>> {
    query_fresh(c, &search_sql(q), &[&q.app_id, &q.session_id, &q.msisdn, &q.challenge, &(q.limit as i64)])
        .await?
        .iter()
        .map(session_record)
        .collect()
}

/// PostgreSQL's plan for a search (EXPLAIN's lines, planned afresh with its values as
/// [`search`] is), for the test that pins which index it uses.
pub async fn explain_search(c: &tokio_postgres::Client, q: &SessionQuery) -> Result<String> {
    let sql = format!("EXPLAIN (COSTS OFF) {}", search_sql(q));
    let rows = c.query(&sql, &[&q.app_id, &q.session_id, &q.msisdn, &q.challenge, &(q.limit as i64)]).await?;
    Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>().join("\n"))
}

/// A search's statement, over $1 app id, $2 session id, $3 msisdn, $4 challenge (each null
/// when not searched for) and $5 the limit. A msisdn is found through `sessions_by_key`
/// (app_id, sandbox, msisdn, challenge, id), so that no index of its own is written on every
/// send for the dashboard's sake. PostgreSQL (15) does not skip an index's leading columns, so
/// the search names them: every app (apps are never deleted) and both sandbox values, each
/// pair one range of the index (in id order when a challenge is given too), of which the
/// newest `limit` ids are taken, then the newest `limit` of them all, and only those rows
/// read. A session id goes through its own unique index.
fn search_sql(q: &SessionQuery) -> String {
    if q.msisdn.is_some() && q.session_id.is_none() {
        // ($2 is null here: named so that both statements take the same parameters.)
        format!(
            "SELECT {RECORD_COLUMNS} FROM sessions WHERE id IN (\
               SELECT p.id FROM apps a CROSS JOIN (VALUES (false), (true)) AS v(sandbox) \
               CROSS JOIN LATERAL (SELECT s.id FROM sessions s \
                 WHERE s.app_id = a.app_id AND s.sandbox = v.sandbox AND s.msisdn = $3 \
                 AND ($4::text IS NULL OR s.challenge = $4) AND ($2::uuid IS NULL OR s.session_id = $2) \
                 ORDER BY s.id DESC LIMIT $5) p \
               WHERE ($1::uuid IS NULL OR a.app_id = $1) ORDER BY p.id DESC LIMIT $5) \
             ORDER BY id DESC LIMIT $5"
        )
    } else {
        format!(
            "SELECT {RECORD_COLUMNS} FROM sessions WHERE ($1::uuid IS NULL OR app_id = $1) \
             AND ($2::uuid IS NULL OR session_id = $2) AND ($3::text IS NULL OR msisdn = $3) \
             AND ($4::text IS NULL OR challenge = $4) ORDER BY id DESC LIMIT $5"
        )
    }
}

/// Production sessions created at or after `since_ms`, by app and UTC day; each stage counts
/// the sessions that reached it or a later one.
pub(super) async fn funnel<C: GenericClient>(c: &C, since_ms: i64) -> Result<Vec<FunnelRow>> {
    let rows = query(
        c,
        // A stage counts the sessions that reached it or a later one; a verified code was
        // received, whatever receipts came (read receipts can be off).
        "SELECT app_id, created_at / $2 AS day, count(*), \
         count(coalesce(sent_at, delivered_at, read_at, CASE WHEN status = $3 THEN 0 END)), \
         count(coalesce(delivered_at, read_at, CASE WHEN status = $3 THEN 0 END)), \
         count(coalesce(read_at, CASE WHEN status = $3 THEN 0 END)), count(CASE WHEN status = $3 THEN 1 END) \
         FROM sessions WHERE NOT sandbox AND created_at >= $1 \
         AND NOT EXISTS (SELECT 1 FROM reverse_sessions r WHERE r.session_id = sessions.session_id) \
         GROUP BY app_id, day ORDER BY day, app_id",
        &[&since_ms, &DAY_MS, &i64::from(Status::Verified.code())],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| FunnelRow {
            app_id: r.get(0),
            day: r.get(1),
            requested: r.get::<_, i64>(2) as u64,
            sent: r.get::<_, i64>(3) as u64,
            delivered: r.get::<_, i64>(4) as u64,
            read: r.get::<_, i64>(5) as u64,
            verified: r.get::<_, i64>(6) as u64,
        })
        .collect())
}

/// The newest inbox messages of every app.
pub(super) async fn recent_inbox<C: GenericClient>(c: &C, limit: usize) -> Result<Vec<InboxMessage>> {
    let rows = query(
        c,
        "SELECT app_id, session_id, msisdn, text, created_at FROM inbox ORDER BY id DESC LIMIT $1",
        &[&(limit as i64)],
    )
    .await?;
    Ok(rows.iter().map(inbox_message).collect())
}

pub(super) async fn by_status<C: GenericClient>(c: &C) -> Result<Vec<(Status, u64)>> {
    query(c, "SELECT status, count(*) FROM sessions GROUP BY status ORDER BY status", &[])
        .await?
        .iter()
        .map(|r| Ok((status_from(r.get(0))?, r.get::<_, i64>(1) as u64)))
        .collect()
}

/// Loads the check's facts in one statement (the session's state and expiry, which kinds of
/// blocklist entry match the number) and lets [`DeliveryCheck::decide`] decide.
pub(super) async fn delivery_check<C: GenericClient>(
    c: &C,
    app_id: Uuid,
    session_id: Uuid,
    msisdn: &Msisdn,
    now_ms: i64,
) -> Result<DeliveryCheck> {
    let row = query_one(
        c,
        concat!(
            "SELECT s.state, s.expires_at, coalesce(bl.number, false), coalesce(bl.prefix, false) FROM (",
            blocklist_lookup!("true", "$2", "$5", "$3", "$4"),
            ") bl LEFT JOIN sessions s ON s.session_id = $1 AND s.app_id = $2"
        ),
        &[&session_id, &app_id, &prefixes(msisdn), &msisdn.as_str(), &Uuid::nil()],
    )
    .await?;
    let session = match (row.get::<_, Option<i64>>(0), row.get::<_, Option<i64>>(1)) {
        (Some(state), Some(expires_at)) => Some((state_from(state)?, expires_at)),
        _ => None,
    };
    let blocked = Blocklisted::from_matches(row.get(2), row.get(3));
    Ok(DeliveryCheck::decide(DeliveryFacts { session, blocked }, now_ms))
}
