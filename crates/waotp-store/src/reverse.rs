//! Reverse verification's storage (issue 20): a session started with `"method": "reverse"`
//! keeps the keyed hash of its prefilled text in `reverse_sessions`
//! ([`crate::NewSession::reverse_key`]), and an inbound WhatsApp message from the user decides
//! on it ([`ReverseStore::verify_inbound`], by [`waotp_core::reverse::decide_inbound`]).

use async_trait::async_trait;
use uuid::Uuid;
use waotp_core::reverse::{InboundDecision, OtherSenders};
use waotp_core::Msisdn;

use crate::Result;

/// An inbound message, as the webhook (or the local inbox) read it.
#[derive(Debug, Clone)]
pub struct InboundAttempt {
    /// [`waotp_core::CodeKey::reverse_lookup`] of the message's text: it names a session only
    /// when the text is that session's prefilled text.
    pub reverse_key: [u8; 32],
    /// The sender as the provider reports it (`messages[].from`): compared with the session's
    /// msisdn after [`waotp_core::reverse::canonical`]. `None` when Meta leaves it out (a
    /// username user whose number it does not share): then the number a BSUID of
    /// `sender_ids` stands for, if one was learned ([`ReverseStore::learn_user_ids`]).
    pub from: Option<String>,
    /// The sender's BSUIDs (its own, then its parent's), looked up in order when `from` is
    /// `None`.
    pub sender_ids: Vec<crate::UserKey>,
    /// The provider's message id: a message seen before changes nothing.
    pub message_id: String,
    pub now_ms: i64,
    /// Whose sessions the message may decide on; another's is [`InboundOutcome::NoSession`].
    pub scope: InboundScope,
}

/// Whose sessions an inbound message may decide on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundScope {
    /// Any app's (an operator's tool on the database).
    Any,
    /// This app's only (the local inbox's simulation, called with an app's credentials).
    App(Uuid),
    /// A message Meta delivered to this phone number: the sessions of the apps that send from
    /// it (their own sender), and, when it is the server's configured number (`configured`),
    /// of the apps without a sender of their own. A code sent to another business's number
    /// proves nothing to this one.
    Number { phone_number_id: String, configured: bool },
}

impl InboundScope {
    /// Whether a session of `app_id`, whose own sender is `app_number` (its phone number id),
    /// is within the scope.
    pub fn admits(&self, app_id: Uuid, app_number: Option<&str>) -> bool {
        match self {
            InboundScope::Any => true,
            InboundScope::App(id) => *id == app_id,
            InboundScope::Number { phone_number_id, configured } => match app_number {
                Some(own) => own == phone_number_id,
                None => *configured,
            },
        }
    }
}

/// What an inbound message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundOutcome {
    /// No reverse session has this text: nothing was read beyond one key, nothing written.
    NoSession,
    /// This message id changed the session before: nothing changed now.
    Replayed,
    /// The session's decision ([`waotp_core::reverse::decide_inbound`]), written as decided:
    /// the owner's `Verified`, or a stranger's message counted apart (never the owner's
    /// wrong try).
    /// `sender_number`: the sender's number, as sent or as its BSUID stands for (`None`: not
    /// shared, nor learned).
    Decided { app_id: Uuid, session_id: Uuid, msisdn: Msisdn, decision: InboundDecision, sender_number: Option<Msisdn> },
}

/// What a reverse session's link is made of: its code, sealed, and the app's own text in
/// force when it started (`None`: waotp's default for its language).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReverseLinkParts {
    pub sealed_code: waotp_core::SealedCode,
    pub custom_text: Option<String>,
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
    /// Finds the reverse session whose prefilled text hashes to `attempt.reverse_key` (one
    /// key read), decides on it ([`waotp_core::reverse::decide_inbound`]) and stores the
    /// outcome with the message id, atomically. A message id recorded before is
    /// [`InboundOutcome::Replayed`]. Nothing is written when no session is found.
    async fn verify_inbound(&self, attempt: InboundAttempt) -> Result<InboundOutcome>;
    /// `Some(other senders counted)` when the session was started as a reverse verification.
    async fn reverse_other_senders(&self, session_id: Uuid) -> Result<Option<OtherSenders>>;
    /// Writes what webhooks taught about business-scoped user ids ([`crate::UserIdFact`]), in
    /// order, by the rules of [`crate::user_ids`].
    async fn learn_user_ids(&self, facts: Vec<crate::UserIdFact>, now_ms: i64) -> Result<()>;
    /// The number a BSUID stands for, if learned.
    async fn user_number(&self, key: crate::UserKey) -> Result<Option<String>>;
    /// Reverse verifications created at or after `since_ms`, by app and UTC day (the
    /// template funnel, [`crate::DashboardStore::funnel`], leaves them out).
    async fn reverse_funnel(&self, since_ms: i64) -> Result<Vec<ReverseFunnelRow>>;
    /// What the app's reverse session's link and QR code are made of; `None` if the app has no
    /// such reverse session.
    async fn reverse_link_parts(&self, app_id: Uuid, session_id: Uuid) -> Result<Option<ReverseLinkParts>>;
    /// Records message `provider_id` as the app's text reply to the user of reverse session
    /// `session_id` (`reverse_reply`, a service message Meta may bill), with the session's
    /// inbound messages: a status report on it ([`crate::DeliveryStore::report_provider_status`])
    /// then records its pricing with the session, and moves nothing (the session's status is
    /// its code's). Its reports that came before this were kept, as any early report is: their
    /// pricing is recorded now, with `now_ms`. Nothing for a session that is gone.
    async fn record_reverse_reply(&self, session_id: Uuid, provider_id: &str, now_ms: i64) -> Result<()>;
}
