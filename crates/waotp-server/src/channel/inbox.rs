//! The local inbox: with no WhatsApp account configured, each message is stored where its
//! app can read it (`GET /v1/inbox?msisdn=…`), so the whole flow works on a laptop.

use std::sync::Arc;

use async_trait::async_trait;
use waotp_core::Status;
use waotp_store::{DeliveryOutcome, InboxMessage, Store};

use super::{Channel, Delivery, OutboundMessage};
use crate::Clock;

pub struct InboxChannel {
    store: Arc<dyn Store>,
    clock: Clock,
}

impl InboxChannel {
    pub fn new(store: Arc<dyn Store>, clock: Clock) -> Self {
        InboxChannel { store, clock }
    }
}

#[async_trait]
impl Channel for InboxChannel {
    fn name(&self) -> &'static str {
        "local inbox"
    }

    fn checks_before_delivery(&self) -> bool {
        true
    }

    async fn deliver(&self, m: &OutboundMessage) -> Delivery {
        // The inbox is the database: while it is unavailable the message waits for it, as a
        // message waits for WhatsApp, until its code expires.
        let stored = crate::dispatch::while_unavailable(m.expires_at_ms, &self.clock, || {
            self.store.deliver_to_inbox(InboxMessage {
                app_id: m.app_id,
                session_id: m.session_id,
                msisdn: m.msisdn.clone(),
                text: m.message.text.clone(),
                created_at_ms: self.clock.now_ms(),
            })
        })
        .await;
        match stored {
            Ok(()) => Delivery::Recorded,
            Err(e) => Delivery::Outcome(DeliveryOutcome::Failed {
                status: Status::RequestError,
                error_code: None,
                error_text: format!("local inbox: {e}"),
            }),
        }
    }
}
