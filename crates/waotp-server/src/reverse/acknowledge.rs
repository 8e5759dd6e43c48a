//! The answer to a message that verified its reverse session: a ✅ reaction (free), then the
//! app's text reply if it set one (`reverse_reply`). The reply is a service message: free
//! within the business number's monthly allowance of free service messages, billed beyond it
//! since 2026-10-01 (`docs/src/reference/whatsapp-operations.md`, section 7). So its message id
//! is recorded with the session ([`waotp_store::ReverseStore::record_reverse_reply`]): the
//! pricing its delivered status carries is recorded with the session, in the reports and in
//! the app's monthly count of billable messages, as a template's is.

use uuid::Uuid;

use super::{describe, Reverse, ACK_EMOJI};
use crate::channel::Sender;
use crate::guards::Counts;
use crate::AppState;

/// Reacts to a verified message (and sends the app's reply), in the background: from the
/// number of `app_id`'s sender, to `to`.
pub(super) fn spawn(state: &AppState, app_id: Uuid, session_id: Uuid, to: String, message_id: &str) {
    let (state, message_id) = (state.clone(), message_id.to_owned());
    tokio::spawn(async move {
        let (sender, reply) = match state.apps.get(app_id).await {
            Ok(Some(app)) => (app.sender.clone(), app.record.settings.reverse_reply.clone()),
            _ => (Sender::Configured, None),
        };
        let Some(wamid) = state.reverse.acknowledge(&sender, &to, &message_id, reply.as_deref()).await else {
            return;
        };
        if let Err(e) = state.store.record_reverse_reply(session_id, &wamid, state.clock.now_ms()).await {
            static LOGGED: Counts = Counts::new();
            if LOGGED.add("reply_not_recorded") {
                tracing::warn!(error = %e, %session_id, "could not record a reverse verification's reply: \
                    its pricing will not be recorded");
            }
        }
    });
}

impl Reverse {
    /// Reacts ✅ to the user's message, from the number the app sends from (free for every
    /// number: `whatsapp-operations.md` section 7), then sends the app's text reply if it set
    /// one (a service message inside the window the user's message opened: free within the
    /// number's monthly allowance, billed beyond it since 2026-10-01); the reply's message id,
    /// if it was sent. Failures are logged, never retried.
    async fn acknowledge(&self, sender: &Sender, to: &str, message_id: &str, reply: Option<&str>) -> Option<String> {
        let (client, w) = self.graph.as_ref()?;
        let (pnid, token) = match sender {
            Sender::App(own) => (own.phone_number_id.as_str(), own.access_token.as_str()),
            Sender::Configured => (w.phone_number_id.as_str(), w.access_token.expose()),
            Sender::Unusable(_) => return None,
        };
        static LOGGED: Counts = Counts::new();
        let reaction = waotp_whatsapp::client::reaction_message(to, message_id, ACK_EMOJI);
        if let Err(e) = client.send_json(pnid, token, &reaction).await {
            if LOGGED.add("reaction_failed") {
                tracing::warn!(error = %describe(&e), "could not react to a verified inbound message");
            }
        }
        let text = waotp_whatsapp::client::text_message(to, reply?);
        match client.send_json(pnid, token, &text).await {
            Ok(wamid) => Some(wamid),
            Err(e) => {
                if LOGGED.add("reply_failed") {
                    tracing::warn!(error = %describe(&e), "could not send the text reply to a verified inbound message");
                }
                None
            }
        }
    }
}
