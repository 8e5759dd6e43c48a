//! The advisory locks of PostgreSQL's writes: what must not interleave across nodes takes a
//! transaction-level lock on a key first (a session's key, an idempotency key, a provider's
//! message id).

use deadpool_postgres::Transaction;
use sha2::{Digest, Sha256};
use uuid::Uuid;
use waotp_core::Msisdn;

use super::exec;
use crate::Result;

/// Takes a transaction-level advisory lock on a key made of `parts`: sends and verifies of
/// one (app, msisdn, challenge), or uses of one idempotency key, take turns on every node.
pub(super) async fn lock_key(t: &Transaction<'_>, parts: &[&[u8]]) -> Result<()> {
    exec(t, "SELECT pg_advisory_xact_lock($1)", &[&lock_id(parts)]).await?;
    Ok(())
}

/// An advisory lock id for a key made of `parts`.
fn lock_id(parts: &[&[u8]]) -> i64 {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part);
    }
    let digest = hash.finalize();
    i64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// Takes the advisory lock of a provider's message id: a webhook reporting on the message and
/// the delivery recording its id take turns on every node, so an early event is either seen
/// by the recording or kept for it (see `early_events`). Taken before any session row lock.
pub(super) async fn lock_provider_id(t: &Transaction<'_>, provider_id: &str) -> Result<()> {
    lock_key(t, &[b"provider_id", provider_id.as_bytes()]).await
}

/// The lock key of a session's (app, sandbox, msisdn, challenge).
pub(super) fn session_lock(app_id: &Uuid, sandbox: bool, msisdn: &Msisdn, challenge: &str) -> i64 {
    lock_id(&[b"session", app_id.as_bytes(), &[u8::from(sandbox)], msisdn.as_str().as_bytes(), challenge.as_bytes()])
}
