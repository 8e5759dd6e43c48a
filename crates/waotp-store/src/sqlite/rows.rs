//! What a session's row reads as on SQLite: its status and state codes, the [`SessionRef`] a
//! status change works on, a session found by its public id, and an inbox message. The
//! feature modules read their rows through these; nothing here writes.

use rusqlite::{Connection, OptionalExtension};
use uuid::Uuid;
use waotp_core::{Msisdn, SessionState, Status};

use super::uuid_from;
use crate::{InboxMessage, Result};

pub(super) fn status_from(code: i64) -> rusqlite::Result<Status> {
    Status::from_code(code).ok_or(rusqlite::Error::IntegralValueOutOfRange(0, code))
}

pub(super) fn state_from(code: i64) -> rusqlite::Result<SessionState> {
    SessionState::from_code(code).ok_or(rusqlite::Error::IntegralValueOutOfRange(0, code))
}

/// What a status change needs to know about its session.
#[derive(Clone)]
pub(super) struct SessionRef {
    pub row_id: i64,
    pub app_id: Uuid,
    pub status: Status,
    pub callback_url: Option<String>,
}

/// A [`SessionRef`] from a row of `id, app_id, status, callback_url`.
pub(super) fn session_ref(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionRef> {
    Ok(SessionRef {
        row_id: r.get(0)?,
        app_id: uuid_from(r.get(1)?)?,
        status: status_from(r.get(2)?)?,
        callback_url: r.get(3)?,
    })
}

/// A session by its public id, across apps (callers check the owner where it matters).
pub(super) fn locate(c: &Connection, session_id: Uuid) -> Result<Option<SessionRef>> {
    Ok(c.prepare_cached("SELECT id, app_id, status, callback_url FROM sessions WHERE session_id = ?1")?
        .query_row([session_id.as_bytes()], session_ref)
        .optional()?)
}

/// An [`InboxMessage`] from a row of `app_id, session_id, msisdn, text, created_at`.
pub(super) fn inbox_message(r: &rusqlite::Row<'_>) -> rusqlite::Result<InboxMessage> {
    Ok(InboxMessage {
        app_id: uuid_from(r.get(0)?)?,
        session_id: uuid_from(r.get(1)?)?,
        msisdn: Msisdn::from_trusted(r.get(2)?),
        text: r.get(3)?,
        created_at_ms: r.get(4)?,
    })
}
