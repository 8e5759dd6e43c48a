//! A session's status changes on PostgreSQL, each with a callback per status taken: a
//! report's steps through `waotp_advance` (migration 0007), a verify's decision through
//! `waotp_verify_write` (migrations 0009, 0012).

use deadpool_postgres::{GenericClient, Transaction};
use uuid::Uuid;
use waotp_core::{Msisdn, Status, VerifyWrite};

use super::locks::session_lock;
use super::rows::{Newest, SessionRef};
use super::{query_one, status_from};
use crate::{Result, Timeline, VerifyAttempt};

pub(super) async fn advance(t: &Transaction<'_>, s: &mut SessionRef, next: Status, now_ms: i64) -> Result<bool> {
    advance_steps(t, s, &[next], now_ms).await
}

/// Statuses as the codes the database functions take.
pub(super) fn codes(statuses: &[Status]) -> Vec<i64> {
    statuses.iter().map(|s| i64::from(s.code())).collect()
}

/// Moves a session through `steps` in order (skipping any that would not move it forward),
/// with a callback for each step taken: `waotp_advance` (migration 0007), which locks the
/// session's row first and applies the order of statuses it is given ([`Status::ranks`]).
pub(super) async fn advance_steps<C: GenericClient>(
    c: &C,
    s: &mut SessionRef,
    steps: &[Status],
    now_ms: i64,
) -> Result<bool> {
    if steps.is_empty() {
        return Ok(false);
    }
    let steps = codes(steps);
    let (ranks, slots) = (Status::ranks(), Timeline::slots());
    let moved: Option<i64> = query_one(
        c,
        "SELECT waotp_advance($1, $2, $3, $4, $5)",
        &[&s.row_id, &steps, &now_ms, &&ranks[..], &&slots[..]],
    )
    .await?
    .get(0);
    match moved {
        Some(status) => {
            s.status = status_from(status)?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// The session a verify decision is written to: its key, and when.
pub(super) struct SessionKey<'a> {
    pub app_id: Uuid,
    pub sandbox: bool,
    pub msisdn: &'a Msisdn,
    pub challenge: &'a str,
    pub now_ms: i64,
}

impl<'a> SessionKey<'a> {
    pub fn of(a: &'a VerifyAttempt) -> SessionKey<'a> {
        SessionKey {
            app_id: a.app_id,
            sandbox: a.sandbox,
            msisdn: &a.msisdn,
            challenge: &a.challenge,
            now_ms: a.now_ms,
        }
    }
}

/// Stores a verify's decision with `waotp_verify_write` (migrations 0009, 0012), the session
/// written once: its new state and wrong tries, and the status its report walks to from the
/// status it was decided on ([`Timeline::walk`]), with a callback per status taken. False
/// (nothing written) if the session is no longer the key's newest with the facts it was
/// decided on.
pub(super) async fn write_verify<C: GenericClient>(
    c: &C,
    a: &SessionKey<'_>,
    n: &Newest,
    write: VerifyWrite,
) -> Result<bool> {
    let walk = Timeline::walk(n.facts.status, write.report);
    Ok(query_one(
        c,
        "SELECT waotp_verify_write($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        &[
            &session_lock(&a.app_id, a.sandbox, a.msisdn, a.challenge),
            &n.row_id,
            &a.app_id,
            &a.sandbox,
            &a.msisdn.as_str(),
            &a.challenge,
            &n.facts.state.code(),
            &i64::from(n.facts.status.code()),
            &i64::from(n.facts.wrong_attempts),
            &write.state.code(),
            &write.wrong_attempts.map(i64::from),
            &i64::from(walk.status.code()),
            &&walk.stamps[..],
            &codes(&walk.taken),
            &a.now_ms,
        ],
    )
    .await?
    .get(0))
}
