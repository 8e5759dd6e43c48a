//! What the double sends to waotp's webhook: the signed status webhooks of each message it
//! accepted (with the business-scoped user id and pricing Meta adds), and the payloads tests
//! script (inbound messages, management changes).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::{title, DoublePricing, Inner};
use crate::webhook::sign;

impl Inner {
    /// Sends the status webhooks of one message, signed, retrying a few times on non-200.
    pub(super) async fn report(
        self: Arc<Self>,
        to: String,
        wamid: String,
        failure: Option<i64>,
        pricing: Option<DoublePricing>,
    ) {
        let Some(url) = self.config.webhook_url.clone() else { return };
        let b = &self.config.webhooks;
        let mut statuses = vec!["sent"];
        match failure {
            Some(_) => statuses.push("failed"),
            None if b.only_sent => {}
            None => {
                if !b.skip_delivered {
                    statuses.push("delivered");
                }
                statuses.push("read");
                if b.reorder && statuses.len() == 3 {
                    statuses.swap(1, 2);
                }
            }
        }
        let mut priced = false;
        for status in statuses {
            let mut s = json!({
                "id": wamid, "status": status, "recipient_id": to,
                "timestamp": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()).to_string(),
            });
            // Since April 2026 Meta names the recipient by its business-scoped user id too (not on
            // the failure of a message sent to a number), and repeats both in `contacts`.
            let contacts = if status == "failed" {
                json!([])
            } else {
                s["recipient_user_id"] = json!(bsuid_of(&to));
                json!([{ "profile": { "name": "Test User" }, "wa_id": to, "user_id": bsuid_of(&to) }])
            };
            // Meta's: on `sent`, and on the first of `delivered` or `read`.
            let on_delivery = matches!(status, "delivered" | "read") && !priced;
            if let (Some(p), true) = (&pricing, status == "sent" || on_delivery) {
                s["pricing"] = p.json();
                priced |= on_delivery;
            }
            if let (Some(code), "failed") = (failure, status) {
                s["errors"] = json!([{ "code": code, "title": title(code), "message": title(code),
                    "error_data": { "details": "reported by the Graph API double" },
                    "href": "/documentation/business-messaging/whatsapp/support/error-codes" }]);
            }
            let mut value = json!({ "messaging_product": "whatsapp",
                "metadata": { "display_phone_number": "15550000000", "phone_number_id": self.config.phone_number_id },
                "statuses": [s] });
            if contacts.as_array().is_some_and(|c| !c.is_empty()) {
                value["contacts"] = contacts;
            }
            let payload = json!({ "object": "whatsapp_business_account", "entry": [{ "id": self.config.waba_id,
                "changes": [{ "field": "messages", "value": value }] }] })
            .to_string();
            let times = if b.duplicate { 2 } else { 1 };
            for _ in 0..times {
                self.deliver_webhook(&url, &payload).await;
            }
            tokio::time::sleep(self.config.webhook_gap).await;
        }
    }

    async fn deliver_webhook(&self, url: &str, payload: &str) {
        let signature = sign(self.config.app_secret.as_bytes(), payload.as_bytes());
        for attempt in 0..5u32 {
            let sent = self
                .http
                .post(url)
                .header("content-type", "application/json")
                .header("x-hub-signature-256", &signature)
                .body(payload.to_owned())
                .send()
                .await;
            if matches!(&sent, Ok(r) if r.status().is_success()) {
                self.acknowledged.fetch_add(1, Ordering::SeqCst);
                return;
            }
            tokio::time::sleep(Duration::from_millis(100 * 2u64.pow(attempt))).await;
        }
    }
}

/// The `value` of Meta's inbound `messages` change for one text message from `from`
/// (`contacts[].wa_id`, `messages[].from/id/timestamp/type/text.body`, `metadata`): what
/// [`GraphDouble::send_change`] posts as the user's message to the business.
pub fn inbound_text_value(
    display_phone_number: &str,
    phone_number_id: &str,
    from: &str,
    message_id: &str,
    body: &str,
) -> Value {
    let time = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    json!({ "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": display_phone_number, "phone_number_id": phone_number_id },
            "contacts": [{ "profile": { "name": "Test User" }, "wa_id": from }],
            "messages": [{ "from": from, "id": message_id, "timestamp": time.to_string(), "type": "text",
                           "text": { "body": body } }] })
}

/// The business-scoped user id the double gives the user of `wa_id` (Meta's form: a country
/// code, a period, digits; `ZZ`, no country, here), the same every time.
pub fn bsuid_of(wa_id: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(wa_id.as_bytes());
    let n = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    format!("ZZ.{n:020}")
}

/// An inbound text from a user Meta names only by a business-scoped user id (a username user
/// whose number it does not share): Meta's own example's shape.
pub fn inbound_text_without_number(phone_number_id: &str, user_id: &str, message_id: &str, body: &str) -> Value {
    let time = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    json!({ "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "15550000000", "phone_number_id": phone_number_id },
            "contacts": [{ "profile": { "name": "Test User", "username": "@testuser" }, "user_id": user_id }],
            "messages": [{ "from_user_id": user_id, "id": message_id, "timestamp": time.to_string(), "type": "text",
                           "text": { "body": body } }] })
}

/// Meta's webhook envelope around one change.
pub fn change_envelope(waba_id: &str, field: &str, value: Value) -> Value {
    let time = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    json!({ "object": "whatsapp_business_account",
            "entry": [{ "id": waba_id, "time": time, "changes": [{ "field": field, "value": value }] }] })
}
