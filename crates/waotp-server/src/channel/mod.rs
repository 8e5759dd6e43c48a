//! Channels send a rendered message to a phone through a provider (WhatsApp's Cloud API). A
//! channel tries once and says what came of it; the dispatcher ([`crate::dispatch`]) owns the
//! look before each try, the retries and the recording. The local inbox is not a channel: it
//! is the database itself, written by the dispatcher ([`crate::dispatch::Route::Inbox`]).

mod whatsapp;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;
use waotp_core::{Msisdn, RenderedMessage, Status};
use waotp_store::WhatsAppSender;

pub use whatsapp::WhatsAppChannel;

/// A message ready to leave: the session it belongs to, what to deliver and who sends it.
#[derive(Debug, Clone)]
pub struct OutboundMessage {
    pub session_id: Uuid,
    pub app_id: Uuid,
    pub msisdn: Msisdn,
    pub message: RenderedMessage,
    /// The app's backup templates, rendered in the message's language, in order: sent instead
    /// when the primary is known unusable ([`crate::sender_health::failover`]).
    pub backups: Vec<RenderedMessage>,
    /// The code's own expiry: nothing is tried past it.
    pub expires_at_ms: i64,
    pub sender: Sender,
}

/// Who a message goes out from.
#[derive(Debug, Clone)]
pub enum Sender {
    /// The number of the server's configuration.
    Configured,
    /// The app's own number, its access token opened.
    App(Arc<WhatsAppSender>),
    /// The app's own number, whose stored token does not open (the server secret changed):
    /// its messages fail as request errors, saying this.
    Unusable(Arc<str>),
}

/// What one try came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The provider took the message, under this id.
    Sent { provider_id: String },
    /// It will not go out: report `status`.
    Failed { status: Status, error_code: Option<i64>, error_text: String },
    /// It may go out if tried again after `after`; if it is not, report `exhausted`.
    Retry { after: Duration, exhausted: Status, error_code: Option<i64>, error_text: String },
}

#[async_trait]
pub trait Channel: Send + Sync + 'static {
    /// A short name for logs, metrics and the startup banner.
    fn name(&self) -> &'static str;
    /// Tries to send once (`attempt`: 0, then 1 for the first retry, …). Errors are
    /// attempts, never panics.
    async fn send(&self, message: &OutboundMessage, attempt: u32) -> Attempt;
}
