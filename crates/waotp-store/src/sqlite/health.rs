//! The sender's health (see migration 0009 and [`crate::SenderHealthStore`]).

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::{FactChange, HealthApplied, HealthEvent, HealthFact, HealthKind, Result, StoreError, HEALTH_EVENTS_MAX};

pub(super) fn apply(
    c: &Connection,
    event: Option<&HealthEvent>,
    facts: &[HealthFact],
    now_ms: i64,
) -> Result<HealthApplied> {
    if let Some(e) = event {
        let inserted = c
            .prepare_cached(
                "INSERT INTO sender_health_events (hash, field, summary, at_ms, received_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (hash) DO NOTHING",
            )?
            .execute(params![&e.hash[..], e.field, e.summary, e.at_ms, e.received_at_ms])?;
        if inserted == 0 {
            return Ok(HealthApplied::Duplicate);
        }
        c.prepare_cached(
            "DELETE FROM sender_health_events WHERE seq <= (SELECT MAX(seq) FROM sender_health_events) - ?1",
        )?
        .execute([HEALTH_EVENTS_MAX])?;
    }
    let mut changes = Vec::new();
    for f in facts {
        let kind = f.kind.as_str();
        let stored: Option<(String, i64, String)> = c
            .prepare_cached(
                "SELECT value, at_ms, source FROM sender_health WHERE kind = ?1 AND subject = ?2 AND aspect = ?3",
            )?
            .query_row(params![kind, f.subject, f.aspect], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        if stored.as_ref().is_some_and(|(_, at, source)| !f.replaces(*at, source)) {
            continue;
        }
        c.prepare_cached(
            "INSERT INTO sender_health (kind, subject, aspect, value, reason, at_ms, source, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (kind, subject, aspect) DO UPDATE SET \
             value = excluded.value, reason = excluded.reason, at_ms = excluded.at_ms, source = excluded.source, \
             updated_at = excluded.updated_at",
        )?
        .execute(params![kind, f.subject, f.aspect, f.value, f.reason, f.at_ms, f.source, now_ms])?;
        let previous = stored.map(|(v, ..)| v);
        if previous.as_deref() != Some(f.value.as_str()) {
            changes.push(FactChange { fact: f.clone(), previous });
        }
    }
    Ok(HealthApplied::Applied(changes))
}

fn fact_from(r: &Row<'_>) -> rusqlite::Result<(String, HealthFact)> {
    let kind: String = r.get(0)?;
    Ok((
        kind,
        HealthFact {
            kind: HealthKind::Template,
            subject: r.get(1)?,
            aspect: r.get(2)?,
            value: r.get(3)?,
            reason: r.get(4)?,
            at_ms: r.get(5)?,
            source: r.get(6)?,
        },
    ))
}

pub(super) fn facts(c: &Connection) -> Result<Vec<HealthFact>> {
    let mut stmt = c.prepare_cached(
        "SELECT kind, subject, aspect, value, reason, at_ms, source FROM sender_health ORDER BY kind, subject, aspect",
    )?;
    let rows = stmt.query_map([], fact_from)?;
    let mut out = Vec::new();
    for row in rows {
        let (kind, mut fact) = row?;
        fact.kind = HealthKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("health kind {kind}")))?;
        out.push(fact);
    }
    Ok(out)
}

pub(super) fn events(c: &Connection, limit: usize) -> Result<Vec<HealthEvent>> {
    let mut stmt = c.prepare_cached(
        "SELECT hash, field, summary, at_ms, received_at FROM sender_health_events ORDER BY seq DESC LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit as i64], |r| {
        let hash: Vec<u8> = r.get(0)?;
        Ok(HealthEvent {
            hash: hash.try_into().unwrap_or([0; 32]),
            field: r.get(1)?,
            summary: r.get(2)?,
            at_ms: r.get(3)?,
            received_at_ms: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
