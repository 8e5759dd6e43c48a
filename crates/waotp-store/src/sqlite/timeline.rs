//! A session's status changes on SQLite: every one walks the session's timeline
//! ([`Timeline::walk`]) and writes the row once, with a queued callback for each status taken.
//! A verify's write (state, wrong tries) rides along in the same row update.

use rusqlite::{params, Connection};
use waotp_core::{Status, VerifyWrite};

use super::callbacks;
use super::rows::SessionRef;
use crate::{Result, Timeline};

/// Moves a session to `next` if that is forward in its lifecycle, and queues the callback
/// in the same transaction; returns whether it moved. Every status change goes through here.
pub(super) fn advance(c: &Connection, s: &mut SessionRef, next: Status, now_ms: i64) -> Result<bool> {
    advance_steps(c, s, &[next], now_ms)
}

/// Moves a session through `steps` in order (skipping any that would not move it forward),
/// with one row update and a callback for each step taken.
///
/// Each step's time goes in the session's timeline (the dashboard's, and the funnel's), and
/// each column keeps its first time. Delivery progress (1 Sent, 2 Delivered, 3 Read) is a fact
/// about the message even when the status has already moved past it (a read receipt that
/// arrives after the code was verified): its time is kept then too, with no status change and
/// no callback.
pub(super) fn advance_steps(c: &Connection, s: &mut SessionRef, steps: &[Status], now_ms: i64) -> Result<bool> {
    walk_and_write(c, s, steps.iter().copied(), None, now_ms)
}

/// [`advance_steps`], and a verify's write (state, wrong tries) in the same row update: a
/// verified session is written once, not once for its state and again for its status.
pub(super) fn walk_and_write(
    c: &Connection,
    s: &mut SessionRef,
    steps: impl IntoIterator<Item = Status>,
    verify: Option<VerifyWrite>,
    now_ms: i64,
) -> Result<bool> {
    let before = s.status;
    let walk = Timeline::walk(s.status, steps);
    let stamp = walk.stamps;
    s.status = walk.status;
    if let Some(url) = &s.callback_url {
        for &next in &walk.taken {
            callbacks::enqueue(c, s.row_id, next, url, now_ms)?;
        }
    }
    if s.status == before && verify.is_none() {
        if stamp[..3].contains(&true) {
            c.prepare_cached(
                "UPDATE sessions SET sent_at = CASE WHEN ?3 THEN coalesce(sent_at, ?2) ELSE sent_at END, \
                 delivered_at = CASE WHEN ?4 THEN coalesce(delivered_at, ?2) ELSE delivered_at END, \
                 read_at = CASE WHEN ?5 THEN coalesce(read_at, ?2) ELSE read_at END \
                 WHERE id = ?1 AND ((?3 AND sent_at IS NULL) OR (?4 AND delivered_at IS NULL) OR (?5 AND read_at IS NULL))",
            )?
            .execute(params![s.row_id, now_ms, stamp[0], stamp[1], stamp[2]])?;
        }
        return Ok(false);
    }
    c.prepare_cached(
        "UPDATE sessions SET status = ?2, updated_at = ?3, \
         sent_at = CASE WHEN ?4 THEN coalesce(sent_at, ?3) ELSE sent_at END, \
         delivered_at = CASE WHEN ?5 THEN coalesce(delivered_at, ?3) ELSE delivered_at END, \
         read_at = CASE WHEN ?6 THEN coalesce(read_at, ?3) ELSE read_at END, \
         failed_at = CASE WHEN ?7 THEN coalesce(failed_at, ?3) ELSE failed_at END, \
         closed_at = CASE WHEN ?8 THEN coalesce(closed_at, ?3) ELSE closed_at END, \
         state = coalesce(?9, state), wrong_attempts = coalesce(?10, wrong_attempts) WHERE id = ?1",
    )?
    .execute(params![
        s.row_id,
        s.status.code(),
        now_ms,
        stamp[0],
        stamp[1],
        stamp[2],
        stamp[3],
        stamp[4],
        verify.map(|w| w.state.code()),
        verify.and_then(|w| w.wrong_attempts),
    ])?;
    Ok(s.status != before)
}
