//! The sender's health (see migration 0013 and [`crate::SenderHealthStore`]). Writes are rare
//! (Meta's management events), so they take one transaction-level advisory lock: two nodes
//! given the same event, or two events on the same fact, apply one after the other.

use deadpool_postgres::GenericClient;

use super::{exec, query, query_opt};
use crate::{FactChange, HealthApplied, HealthEvent, HealthFact, HealthKind, Result, StoreError, HEALTH_EVENTS_MAX};

/// Any fixed number: the advisory lock of health writes.
const HEALTH_LOCK: i64 = 0x7761_6f74_705f_6865;

pub(super) async fn apply<C: GenericClient>(
    c: &C,
    event: Option<&HealthEvent>,
    facts: &[HealthFact],
    now_ms: i64,
) -> Result<HealthApplied> {
    exec(c, "SELECT pg_advisory_xact_lock($1)", &[&HEALTH_LOCK]).await?;
    if let Some(e) = event {
        let inserted = exec(
            c,
            "INSERT INTO sender_health_events (hash, field, summary, at_ms, received_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (hash) DO NOTHING",
            &[&&e.hash[..], &e.field, &e.summary, &e.at_ms, &e.received_at_ms],
        )
        .await?;
        if inserted == 0 {
            return Ok(HealthApplied::Duplicate);
        }
        exec(
            c,
            "DELETE FROM sender_health_events WHERE seq <= (SELECT MAX(seq) FROM sender_health_events) - $1",
            &[&HEALTH_EVENTS_MAX],
        )
        .await?;
    }
    let mut changes = Vec::new();
    for f in facts {
        let kind = f.kind.as_str();
        let stored = query_opt(
            c,
            "SELECT value, at_ms, source FROM sender_health WHERE kind = $1 AND subject = $2 AND aspect = $3",
            &[&kind, &f.subject, &f.aspect],
        )
        .await?
        .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1), r.get::<_, String>(2)));
        if stored.as_ref().is_some_and(|(_, at, source)| !f.replaces(*at, source)) {
            continue;
        }
        exec(
            c,
            "INSERT INTO sender_health (kind, subject, aspect, value, reason, at_ms, source, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (kind, subject, aspect) DO UPDATE SET \
             value = excluded.value, reason = excluded.reason, at_ms = excluded.at_ms, source = excluded.source, \
             updated_at = excluded.updated_at",
            &[&kind, &f.subject, &f.aspect, &f.value, &f.reason, &f.at_ms, &f.source, &now_ms],
        )
        .await?;
        let previous = stored.map(|(v, ..)| v);
        if previous.as_deref() != Some(f.value.as_str()) {
            changes.push(FactChange { fact: f.clone(), previous });
        }
    }
    Ok(HealthApplied::Applied(changes))
}

pub(super) async fn facts<C: GenericClient>(c: &C) -> Result<Vec<HealthFact>> {
    query(
        c,
        "SELECT kind, subject, aspect, value, reason, at_ms, source FROM sender_health ORDER BY kind, subject, aspect",
        &[],
    )
    .await?
    .iter()
    .map(|r| {
        let kind: String = r.get(0);
        Ok(HealthFact {
            kind: HealthKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("health kind {kind}")))?,
            subject: r.get(1),
            aspect: r.get(2),
            value: r.get(3),
            reason: r.get(4),
            at_ms: r.get(5),
            source: r.get(6),
        })
    })
    .collect()
}

pub(super) async fn events<C: GenericClient>(c: &C, limit: usize) -> Result<Vec<HealthEvent>> {
    Ok(query(
        c,
        "SELECT hash, field, summary, at_ms, received_at FROM sender_health_events ORDER BY seq DESC LIMIT $1",
        &[&(limit as i64)],
    )
    .await?
    .iter()
    .map(|r| HealthEvent {
        hash: r.get::<_, Vec<u8>>(0).try_into().unwrap_or([0; 32]),
        field: r.get(1),
        summary: r.get(2),
        at_ms: r.get(3),
        received_at_ms: r.get(4),
    })
    .collect())
}
