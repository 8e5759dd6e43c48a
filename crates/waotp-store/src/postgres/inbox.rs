//! The local inbox on PostgreSQL: a message delivered to it (the session marked sent and
//! delivered in the same transaction, after the same look as before any send), read back by
//! number, and marked read.

use deadpool_postgres::{GenericClient, Transaction};
use tokio_postgres::Row;
use uuid::Uuid;

use waotp_core::{DeliveryFacts, Msisdn, Status};

use super::rows::{locate, session_ref, state_from};
use super::sessions::record_delivery;
use super::timeline::advance;
use super::{prefixes, query, query_one, query_opt};
use crate::{Blocklisted, DeliveryCheck, DeliveryOutcome, InboxMessage, Result, Timeline, BLOCKED_AFTER_ACCEPTED};

/// The local inbox's delivery, in the caller's transaction (four round trips with its BEGIN and
/// COMMIT): one statement locks the session and loads the last look's facts, as before any send
/// ([`DeliveryCheck::decide`] decides); then one stores the message and marks the session sent
/// and delivered with its sealed code forgotten, in one new row version; or what the look found
/// is recorded instead.
pub(super) async fn deliver_to_inbox(t: &Transaction<'_>, m: &InboxMessage) -> Result<()> {
    let row = query_opt(
        t,
        concat!(
            "SELECT s.id, s.app_id, s.status, s.sealed_code IS NOT NULL, s.state, s.expires_at, \
             coalesce(bl.number, false), coalesce(bl.prefix, false) FROM sessions s, (",
            blocklist_lookup!("true", "$2", "$5", "$3", "$4"),
            ") bl WHERE s.session_id = $1 FOR UPDATE OF s"
        ),
        &[&m.session_id, &m.app_id, &prefixes(&m.msisdn), &m.msisdn.as_str(), &Uuid::nil()],
    )
    .await?;
    // A second delivery of the same session records nothing.
    let Some(row) = row.filter(|r| r.get::<_, bool>(3)) else {
        return Ok(());
    };
    let session = session_ref(&row)?;
    let facts = DeliveryFacts {
        session: if session.app_id == m.app_id { Some((state_from(row.get(4))?, row.get(5))) } else { None },
        blocked: Blocklisted::from_matches(row.get(6), row.get(7)),
    };
    let check = DeliveryCheck::decide(facts, m.created_at_ms);
    if let Some(outcome) = DeliveryOutcome::stopped(check, BLOCKED_AFTER_ACCEPTED) {
        return record_delivery(t, m.session_id, &outcome, m.created_at_ms).await;
    }
    let steps = [i64::from(Status::Sent.code()), i64::from(Status::Delivered.code())];
    let (ranks, slots) = (Status::ranks(), Timeline::slots());
    query_one(
        t,
        "WITH m AS (INSERT INTO inbox (app_id, session_id, msisdn, text, created_at) VALUES ($1, $2, $3, $4, $5)) \
         SELECT waotp_advance($6, $7, $5, $8, $9, true)",
        &[
            &m.app_id,
            &m.session_id,
            &m.msisdn.as_str(),
            &m.text,
            &m.created_at_ms,
            &session.row_id,
            &&steps[..],
            &&ranks[..],
            &&slots[..],
        ],
    )
    .await?;
    Ok(())
}

pub(super) async fn inbox<C: GenericClient>(
    c: &C,
    app_id: Uuid,
    msisdn: &Msisdn,
    limit: usize,
) -> Result<Vec<InboxMessage>> {
    let rows = query(
        c,
        "SELECT app_id, session_id, msisdn, text, created_at FROM inbox WHERE app_id = $1 AND msisdn = $2 \
         ORDER BY id DESC LIMIT $3",
        &[&app_id, &msisdn.as_str(), &(limit as i64)],
    )
    .await?;
    Ok(rows.iter().map(inbox_message).collect())
}

/// An [`InboxMessage`] from a row of `app_id, session_id, msisdn, text, created_at`.
pub(super) fn inbox_message(r: &Row) -> InboxMessage {
    InboxMessage {
        app_id: r.get(0),
        session_id: r.get(1),
        msisdn: Msisdn::from_trusted(r.get(2)),
        text: r.get(3),
        created_at_ms: r.get(4),
    }
}

pub(super) async fn mark_read(t: &Transaction<'_>, app_id: Uuid, session_ids: &[Uuid], now_ms: i64) -> Result<()> {
    for id in session_ids {
        if let Some((mut session, _)) = locate(t, *id).await? {
            if session.app_id == app_id {
                advance(t, &mut session, Status::Read, now_ms).await?;
            }
        }
    }
    Ok(())
}
