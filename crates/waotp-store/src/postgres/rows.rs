//! What a session's row reads as on PostgreSQL: its state code, the [`SessionRef`] a status
//! change works on, the newest session of a verify's key, and a session found by its public
//! id (its row locked).

use deadpool_postgres::Transaction;
use tokio_postgres::Row;
use uuid::Uuid;
use waotp_core::{SessionState, Status, VerifyFacts};

use super::{query_opt, small, status_from};
use crate::code_hash;
use crate::{Result, StoreError};

pub(super) fn state_from(code: i64) -> Result<SessionState> {
    SessionState::from_code(code).ok_or_else(|| StoreError::Corrupt(format!("session state {code}")))
}

/// What a status change needs to know about its session (loaded with its row locked).
#[derive(Clone)]
pub(super) struct SessionRef {
    pub row_id: i64,
    pub app_id: Uuid,
    pub status: Status,
}

/// A [`SessionRef`] from a row of `id, app_id, status`.
pub(super) fn session_ref(r: &Row) -> Result<SessionRef> {
    Ok(SessionRef { row_id: r.get(0), app_id: r.get(1), status: status_from(r.get(2))? })
}

/// The newest session of a verify's key, as [`waotp_core::VerifyDecision::decide`] needs it.
pub(super) struct Newest {
    pub row_id: i64,
    pub session_id: Uuid,
    pub hash: waotp_core::CodeHash,
    pub facts: VerifyFacts,
}

impl Newest {
    /// From a row holding the row id and session id at `row_id`, `row_id + 1`, and the code
    /// hash, state, status, wrong tries and expiry from column 4 on (as the verify's and the
    /// inbound message's queries both select them).
    pub(super) fn from_row(row: &tokio_postgres::Row, row_id: usize) -> Result<Newest> {
        Ok(Newest {
            row_id: row.get(row_id),
            session_id: row.get(row_id + 1),
            hash: code_hash(row.get(4))?,
            facts: VerifyFacts {
                state: state_from(row.get(5))?,
                status: status_from(row.get(6))?,
                wrong_attempts: small(row.get(7))?,
                expires_at_ms: row.get(8),
            },
        })
    }
}

/// A session by its public id with its row locked, and whether its message still waits
/// for its channel.
pub(super) async fn locate(t: &Transaction<'_>, session_id: Uuid) -> Result<Option<(SessionRef, bool)>> {
    query_opt(
        t,
        "SELECT id, app_id, status, sealed_code IS NOT NULL FROM sessions WHERE session_id = $1 \
         FOR UPDATE",
        &[&session_id],
    )
    .await?
    .map(|r| Ok((session_ref(&r)?, r.get(3))))
    .transpose()
}

/// The row of `session_id` (locked) if it belongs to `app_id`.
pub(super) async fn owned_row(t: &Transaction<'_>, app_id: Uuid, session_id: Uuid) -> Result<Option<i64>> {
    Ok(locate(t, session_id).await?.filter(|(s, _)| s.app_id == app_id).map(|(s, _)| s.row_id))
}
