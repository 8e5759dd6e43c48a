//! Reverse verification on SQLite: the session's code key in `reverse_sessions`, and an
//! inbound message decided on the session it names (migration 0010).

use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;
use waotp_core::reverse::{decide_inbound, InboundDecision, OtherSenders, Sender};
use waotp_core::{Msisdn, SealedCode, VerifyFacts};

use super::rows::{state_from, status_from, SessionRef};
use super::timeline::walk_and_write;
use super::uuid_from;
use crate::{InboundAttempt, InboundOutcome, Result, StoreError};

/// Refuses a reverse key another stored session holds (checked before a send counts anything;
/// the writer is single, so nothing can take it between this look and [`record`]).
pub(super) fn check_free(c: &Connection, key: &[u8; 32]) -> Result<()> {
    if key_exists(c, key)? {
        return Err(StoreError::Conflict("a reverse code that another session holds".into()));
    }
    Ok(())
}

/// Whether a stored session's code has this key.
pub(super) fn key_exists(c: &Connection, key: &[u8; 32]) -> Result<bool> {
    Ok(c.prepare_cached("SELECT 1 FROM reverse_sessions WHERE reverse_key = ?1")?
        .query_row([&key[..]], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Marks a new session reverse, with the key its text is found by and the app's text in force.
pub(super) fn record(
    c: &Connection,
    key: &[u8; 32],
    session_id: Uuid,
    sealed: &SealedCode,
    custom_text: Option<&str>,
) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO reverse_sessions (reverse_key, session_id, sealed_code, custom_text) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![&key[..], session_id.as_bytes(), &sealed.0, custom_text])?;
    Ok(())
}

pub(super) fn link_parts(c: &Connection, app_id: Uuid, session_id: Uuid) -> Result<Option<crate::ReverseLinkParts>> {
    Ok(c.prepare_cached(
        "SELECT r.sealed_code, r.custom_text FROM reverse_sessions r JOIN sessions s ON s.session_id = r.session_id \
         WHERE r.session_id = ?1 AND s.app_id = ?2",
    )?
    .query_row(params![session_id.as_bytes(), app_id.as_bytes()], |r| {
        Ok(crate::ReverseLinkParts { sealed_code: SealedCode(r.get(0)?), custom_text: r.get(1)? })
    })
    .optional()?)
}

pub(super) fn funnel(c: &Connection, since_ms: i64) -> Result<Vec<crate::ReverseFunnelRow>> {
    let mut stmt = c.prepare_cached(
        "SELECT s.app_id, s.created_at / ?2 AS day, count(*), count(CASE WHEN s.status = ?3 THEN 1 END) \
         FROM reverse_sessions r JOIN sessions s ON s.session_id = r.session_id WHERE s.created_at >= ?1 \
         GROUP BY s.app_id, day ORDER BY day, s.app_id",
    )?;
    let rows = stmt.query_map(params![since_ms, crate::DAY_MS, waotp_core::Status::Verified.code()], |r| {
        Ok(crate::ReverseFunnelRow {
            app_id: uuid_from(r.get(0)?)?,
            day: r.get(1)?,
            requested: r.get::<_, i64>(2)? as u64,
            verified: r.get::<_, i64>(3)? as u64,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn other_senders(c: &Connection, session_id: Uuid) -> Result<Option<OtherSenders>> {
    Ok(c.prepare_cached("SELECT wrong_senders, number_not_shared FROM reverse_sessions WHERE session_id = ?1")?
        .query_row([session_id.as_bytes()], |r| Ok(OtherSenders { wrong: r.get(0)?, number_not_shared: r.get(1)? }))
        .optional()?)
}

pub(super) fn verify_inbound(c: &Connection, a: &InboundAttempt) -> Result<InboundOutcome> {
    let found = c
        .prepare_cached(
            "SELECT s.id, s.session_id, s.app_id, s.msisdn, r.wrong_senders, s.state, s.status, s.wrong_attempts, \
             s.expires_at, s.callback_url, a.wa_phone_number_id, r.number_not_shared FROM reverse_sessions r \
             JOIN sessions s ON s.session_id = r.session_id JOIN apps a ON a.app_id = s.app_id \
             WHERE r.reverse_key = ?1",
        )?
        .query_row([&a.reverse_key[..]], |r| {
            let facts = VerifyFacts {
                state: state_from(r.get(5)?)?,
                status: status_from(r.get(6)?)?,
                wrong_attempts: r.get(7)?,
                expires_at_ms: r.get(8)?,
            };
            let session = SessionRef {
                row_id: r.get(0)?,
                app_id: uuid_from(r.get(2)?)?,
                status: facts.status,
                callback_url: r.get(9)?,
            };
            let number: Option<String> = r.get(10)?;
            let others = OtherSenders { wrong: r.get(4)?, number_not_shared: r.get(11)? };
            Ok((session, uuid_from(r.get(1)?)?, Msisdn::from_trusted(r.get(3)?), others, facts, number))
        })
        .optional()?;
    let Some((mut session, session_id, msisdn, others, facts, number)) = found else {
        return Ok(InboundOutcome::NoSession);
    };
    if !a.scope.admits(session.app_id, number.as_deref()) {
        return Ok(InboundOutcome::NoSession);
    }
    let seen = c
        .prepare_cached("SELECT 1 FROM reverse_messages WHERE message_id = ?1")?
        .query_row([&a.message_id], |_| Ok(()))
        .optional()?;
    if seen.is_some() {
        return Ok(InboundOutcome::Replayed);
    }
    let sender_number = match &a.from {
        Some(from) => Some(from.clone()),
        None => super::user_ids::first_number(c, &a.sender_ids)?,
    };
    let decision = decide_inbound(facts, a.now_ms, Sender::of(msisdn.as_str(), sender_number.as_deref()), others);
    let record_message = |c: &Connection| -> Result<()> {
        c.prepare_cached("INSERT INTO reverse_messages (message_id, session_id, created_at) VALUES (?1, ?2, ?3)")?
            .execute(params![a.message_id, session_id.as_bytes(), a.now_ms])?;
        Ok(())
    };
    match decision {
        InboundDecision::Owner(d) => {
            if let Some(write) = d.write() {
                record_message(c)?;
                walk_and_write(c, &mut session, write.report, Some(write), a.now_ms)?;
            }
        }
        InboundDecision::WrongSender { senders, counted: true } => {
            record_message(c)?;
            c.prepare_cached("UPDATE reverse_sessions SET wrong_senders = ?2 WHERE session_id = ?1")?
                .execute(params![session_id.as_bytes(), senders])?;
        }
        InboundDecision::NumberNotShared { messages, counted: true } => {
            record_message(c)?;
            c.prepare_cached("UPDATE reverse_sessions SET number_not_shared = ?2 WHERE session_id = ?1")?
                .execute(params![session_id.as_bytes(), messages])?;
        }
        InboundDecision::WrongSender { counted: false, .. }
        | InboundDecision::NumberNotShared { counted: false, .. }
        | InboundDecision::Closed(_) => {}
    }
    Ok(InboundOutcome::Decided {
        app_id: session.app_id,
        session_id,
        msisdn,
        decision,
        sender_number: sender_number.map(Msisdn::from_trusted),
    })
}
