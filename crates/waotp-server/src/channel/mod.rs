//! Channels deliver a rendered message to a phone. The local inbox ships now; the WhatsApp
//! Cloud API channel implements the same trait.

mod inbox;
mod whatsapp;

use async_trait::async_trait;
use uuid::Uuid;
use waotp_core::{Msisdn, RenderedMessage};
use waotp_store::DeliveryOutcome;

pub use inbox::InboxChannel;
pub use whatsapp::WhatsAppChannel;

/// A message ready to leave: the session it belongs to and what to deliver.
#[derive(Debug, Clone)]
pub struct OutboundMessage {
    pub session_id: Uuid,
    pub app_id: Uuid,
    pub msisdn: Msisdn,
    pub message: RenderedMessage,
    /// The code's own expiry: a channel never retries past it.
    pub expires_at_ms: i64,
}

/// What happened to a message, as far as the dispatcher needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The channel recorded the outcome itself, in the same transaction as its own write
    /// (the local inbox does this).
    Recorded,
    /// The dispatcher records this outcome.
    Outcome(DeliveryOutcome),
}

#[async_trait]
pub trait Channel: Send + Sync + 'static {
    /// A short name for logs and the startup banner.
    fn name(&self) -> &'static str;
    /// Whether the channel makes the last look before sending itself, atomically with its
    /// delivery (then the dispatcher skips its own `delivery_check`).
    fn checks_before_delivery(&self) -> bool {
        false
    }
    /// Delivers one message. Errors are outcomes (status 6–10), never panics.
    async fn deliver(&self, message: &OutboundMessage) -> Delivery;
}
