//! Reverse verification on PostgreSQL: the session's code key in `reverse_sessions`, and an
//! inbound message decided on the session it names (migration 0014).

use deadpool_postgres::{GenericClient, Transaction};
use uuid::Uuid;
use waotp_core::reverse::{decide_inbound, InboundDecision, OtherSenders, Sender};
use waotp_core::{Msisdn, SealedCode};

use super::rows::Newest;
use super::timeline::{write_verify, SessionKey};
use super::{exec, query_opt};
use crate::{InboundAttempt, InboundOutcome, Result, StoreError};

/// Marks a new session reverse (with the app's text in force), in the send's transaction; a
/// key another session holds is a conflict (the send is refused, its counts given back).
pub(super) async fn record(
    t: &Transaction<'_>,
    key: &[u8; 32],
    session_id: Uuid,
    sealed: &SealedCode,
    custom_text: Option<&str>,
) -> Result<()> {
    let inserted = exec(
        t,
        "INSERT INTO reverse_sessions (reverse_key, session_id, sealed_code, custom_text) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (reverse_key) DO NOTHING",
        &[&&key[..], &session_id, &sealed.0, &custom_text],
    )
    .await?;
    if inserted == 0 {
        return Err(StoreError::Conflict("a reverse code that another session holds".into()));
    }
    Ok(())
}

pub(super) async fn key_exists<C: GenericClient>(c: &C, key: &[u8; 32]) -> Result<bool> {
    Ok(query_opt(c, "SELECT 1 FROM reverse_sessions WHERE reverse_key = $1", &[&&key[..]]).await?.is_some())
}

pub(super) async fn link_parts<C: GenericClient>(
    c: &C,
    app_id: Uuid,
    session_id: Uuid,
) -> Result<Option<crate::ReverseLinkParts>> {
    let row = query_opt(
        c,
        "SELECT r.sealed_code, r.custom_text FROM reverse_sessions r JOIN sessions s ON s.session_id = r.session_id \
         WHERE r.session_id = $1 AND s.app_id = $2",
        &[&session_id, &app_id],
    )
    .await?;
    Ok(row.map(|r| crate::ReverseLinkParts { sealed_code: SealedCode(r.get(0)), custom_text: r.get(1) }))
}

pub(super) async fn funnel<C: GenericClient>(c: &C, since_ms: i64) -> Result<Vec<crate::ReverseFunnelRow>> {
    let rows = super::query(
        c,
        "SELECT s.app_id, s.created_at / $2 AS day, count(*), count(CASE WHEN s.status = $3 THEN 1 END) \
         FROM reverse_sessions r JOIN sessions s ON s.session_id = r.session_id WHERE s.created_at >= $1 \
         GROUP BY s.app_id, day ORDER BY day, s.app_id",
        &[&since_ms, &crate::DAY_MS, &i64::from(waotp_core::Status::Verified.code())],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| crate::ReverseFunnelRow {
            app_id: r.get(0),
            day: r.get(1),
            requested: r.get::<_, i64>(2) as u64,
            verified: r.get::<_, i64>(3) as u64,
        })
        .collect())
}

pub(super) async fn other_senders<C: GenericClient>(c: &C, session_id: Uuid) -> Result<Option<OtherSenders>> {
    let row = query_opt(
        c,
        "SELECT wrong_senders, number_not_shared FROM reverse_sessions WHERE session_id = $1",
        &[&session_id],
    )
    .await?;
    Ok(row.map(|r| OtherSenders {
        wrong: r.get::<_, i32>(0).max(0) as u32,
        number_not_shared: r.get::<_, i32>(1).max(0) as u32,
    }))
}

/// Decides on the session and writes the outcome with `waotp_verify_write` (which refuses if
/// the session changed since it was read: then a conflict, and the transaction runs again).
pub(super) async fn verify_inbound(t: &Transaction<'_>, a: &InboundAttempt) -> Result<InboundOutcome> {
    let row = query_opt(
        t,
        "SELECT s.id, s.session_id, s.app_id, s.msisdn, s.code_hash, s.state, s.status, s.wrong_attempts, \
         s.expires_at, s.challenge, s.sandbox, a.wa_phone_number_id, r.wrong_senders, r.number_not_shared \
         FROM reverse_sessions r \
         JOIN sessions s ON s.session_id = r.session_id JOIN apps a ON a.app_id = s.app_id \
         WHERE r.reverse_key = $1",
        &[&&a.reverse_key[..]],
    )
    .await?;
    let Some(row) = row else { return Ok(InboundOutcome::NoSession) };
    let newest = Newest::from_row(&row, 0)?;
    let app_id: Uuid = row.get(2);
    if !a.scope.admits(app_id, row.get::<_, Option<&str>>(11)) {
        return Ok(InboundOutcome::NoSession);
    }
    let msisdn = Msisdn::from_trusted(row.get(3));
    if query_opt(t, "SELECT 1 FROM reverse_messages WHERE message_id = $1", &[&a.message_id]).await?.is_some() {
        return Ok(InboundOutcome::Replayed);
    }
    let (wrong_senders, not_shared): (i32, i32) = (row.get(12), row.get(13));
    let others = OtherSenders { wrong: wrong_senders.max(0) as u32, number_not_shared: not_shared.max(0) as u32 };
    let sender_number = match &a.from {
        Some(from) => Some(from.clone()),
        None => super::user_ids::first_number(t, &a.sender_ids).await?,
    };
    let sender = Sender::of(msisdn.as_str(), sender_number.as_deref());
    let decision = decide_inbound(newest.facts, a.now_ms, sender, others);
    let session_id = newest.session_id;
    let write = match decision {
        InboundDecision::Owner(d) => d.write().map(Some),
        InboundDecision::WrongSender { counted: true, .. } | InboundDecision::NumberNotShared { counted: true, .. } => {
            Some(None)
        }
        InboundDecision::WrongSender { counted: false, .. }
        | InboundDecision::NumberNotShared { counted: false, .. }
        | InboundDecision::Closed(_) => None,
    };
    let Some(write) = write else {
        return Ok(InboundOutcome::Decided {
            app_id,
            session_id,
            msisdn,
            decision,
            sender_number: sender_number.map(Msisdn::from_trusted),
        });
    };
    // A concurrent delivery of the same message waits here for this one, then finds it.
    let recorded = exec(
        t,
        "INSERT INTO reverse_messages (message_id, session_id, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (message_id) DO NOTHING",
        &[&a.message_id, &session_id, &a.now_ms],
    )
    .await?;
    if recorded == 0 {
        return Ok(InboundOutcome::Replayed);
    }
    match (write, decision) {
        (Some(write), _) => {
            let challenge: String = row.get(9);
            let key =
                SessionKey { app_id, sandbox: row.get(10), msisdn: &msisdn, challenge: &challenge, now_ms: a.now_ms };
            if !write_verify(t, &key, &newest, write).await? {
                return Err(StoreError::Conflict(
                    "a reverse session changed while an inbound message was decided".into(),
                ));
            }
        }
        (None, InboundDecision::WrongSender { senders, .. }) => {
            // Written only if no other message counted meanwhile (else the transaction runs again).
            let counted = exec(
                t,
                "UPDATE reverse_sessions SET wrong_senders = $2 WHERE session_id = $1 AND wrong_senders = $3",
                &[&session_id, &(senders as i32), &wrong_senders],
            )
            .await?;
            if counted == 0 {
                return Err(StoreError::Conflict("a reverse session's wrong senders changed meanwhile".into()));
            }
        }
        (None, InboundDecision::NumberNotShared { messages, .. }) => {
            // Written only if no other message counted meanwhile (else the transaction runs again).
            let counted = exec(
                t,
                "UPDATE reverse_sessions SET number_not_shared = $2 WHERE session_id = $1 AND number_not_shared = $3",
                &[&session_id, &(messages as i32), &not_shared],
            )
            .await?;
            if counted == 0 {
                return Err(StoreError::Conflict("a reverse session's unshared senders changed meanwhile".into()));
            }
        }
        (None, _) => {}
    }
    Ok(InboundOutcome::Decided {
        app_id,
        session_id,
        msisdn,
        decision,
        sender_number: sender_number.map(Msisdn::from_trusted),
    })
}
