//! Reverse verification's storage (issue 20): a session started with `"method": "reverse"`
//! keeps the keyed hash of its code in `reverse_sessions` ([`crate::NewSession::reverse_key`]),
//! and an inbound WhatsApp message from the user decides on it ([`ReverseStore::verify_inbound`]).

use async_trait::async_trait;
use uuid::Uuid;
use waotp_core::{Guess, Msisdn, VerifyDecision};

use crate::Result;

/// An inbound message holding a candidate code, as the webhook (or the local inbox) read it.
#[derive(Debug, Clone)]
pub struct InboundAttempt {
    /// [`waotp_core::CodeKey::reverse_lookup`] of the candidate code.
    pub reverse_key: [u8; 32],
    /// The same candidate, compared with the session's code hash (constant time).
    pub guess: Guess,
    /// The sender as the provider reports it (`messages[].from`): compared with the session's
    /// msisdn after [`waotp_core::reverse::canonical`].
    pub from: String,
    /// The provider's message id: a message seen before changes nothing.
    pub message_id: String,
    pub now_ms: i64,
}

/// What an inbound message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundOutcome {
    /// No reverse session has this code: nothing was read beyond one key, nothing written.
    NoSession,
    /// This message id changed the session before: nothing changed now.
    Replayed,
    /// The session's decision, as the verify route would have decided it: `Verified` when
    /// the code is its pending one and the sender its msisdn, `WrongCode` (a counted try) when
    /// the sender is another number, `NotFound`/`Expired`/`Locked` as for a verify.
    Decided { app_id: Uuid, session_id: Uuid, msisdn: Msisdn, decision: VerifyDecision },
}

/// Reverse verifications started on one UTC day by one app, and how many were verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReverseFunnelRow {
    pub app_id: Uuid,
    /// Days since the Unix epoch (UTC).
    pub day: i64,
    pub requested: u64,
    pub verified: u64,
}

/// Reverse verification: the inbound side of a reverse session.
#[async_trait]
pub trait ReverseStore: Send + Sync {
    /// Finds the reverse session whose code hashes to `attempt.reverse_key` (one key read)
    /// and decides on it ([`VerifyDecision::decide`], the sender standing for the code's
    /// owner) and stores the outcome with the message id, atomically. A message id recorded
    /// before is [`InboundOutcome::Replayed`]. Nothing is written when no session is found.
    async fn verify_inbound(&self, attempt: InboundAttempt) -> Result<InboundOutcome>;
    /// Whether the session was started as a reverse verification.
    async fn is_reverse(&self, session_id: Uuid) -> Result<bool>;
    /// The sealed code of the app's reverse session (for its link and QR code); `None` if the
    /// app has no such reverse session.
    /// Reverse verifications created at or after `since_ms`, by app and UTC day (the
    /// template funnel, [`crate::DashboardStore::funnel`], leaves them out).
    async fn reverse_funnel(&self, since_ms: i64) -> Result<Vec<ReverseFunnelRow>>;
    async fn reverse_sealed_code(&self, app_id: Uuid, session_id: Uuid) -> Result<Option<waotp_core::SealedCode>>;
}
