//! Meta's webhooks: the `X-Hub-Signature-256` check over the raw body, and the events waotp
//! reads from a payload (message statuses, the "I didn't request a code" button).

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq;
pub use users::{Identified, UserIdChange, UserIds};

/// `sha256=` and the hex HMAC-SHA256 of `body` keyed with the app secret.
pub fn sign(app_secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(app_secret).expect("any key size");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// Whether `header` is the signature of exactly these bytes, compared in constant time.
pub fn signature_valid(app_secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Some(header) = header else { return false };
    let expected = sign(app_secret, body);
    let presented = header.trim().to_ascii_lowercase();
    expected.len() == presented.len() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
}

mod users;

/// A message status Meta reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    Sent,
    Delivered,
    Read,
    Failed,
}

/// What waotp takes from a webhook payload; everything else is ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Status {
        wamid: String,
        status: DeliveryStatus,
        error: Option<(i64, String)>,
        /// What Meta says the message costs (its `pricing` object); `None` when absent or
        /// malformed (see [`pricing`]).
        pricing: Option<waotp_core::MessagePricing>,
    },
    /// The user pressed "I didn't request a code" under the message `wamid`.
    NotRequested { wamid: String },
    /// A text message the user sent to the business (reverse verification reads its code).
    Inbound(InboundText),
    /// Meta named one user by both phone number and business-scoped user id (a status of a
    /// message sent to the number, or a message from a user whose number is shared).
    Identified(Identified),
    /// A user's business-scoped user id changed (`user_id_update`, or the system messages
    /// `user_changed_number` and `user_changed_user_id`).
    UserIdChanged(UserIdChange),
    /// A status or message that names its user without a phone number (a username user whose
    /// number Meta does not share): counted, never an error.
    NoPhoneNumber,
}

/// An inbound text message: `messages[]` with `type: "text"`.
#[derive(Clone, PartialEq, Eq)]
pub struct InboundText {
    /// The sender's WhatsApp id (`from`, digits, no `+`): may differ from the number as
    /// dialled in a few countries (see `waotp_core::reverse::canonical`). `None` when Meta
    /// leaves it out: a username user whose number it does not share.
    pub from: Option<String>,
    /// The sender's business-scoped user id (`from_user_id`), its parent (`from_parent_user_id`)
    /// and username (`contacts[].profile.username`), as Meta sends them.
    pub user: UserIds,
    /// The message's `wamid`.
    pub message_id: String,
    /// The business number it was sent to (`metadata.phone_number_id`; empty if absent).
    pub to_phone_number_id: String,
    pub body: String,
    /// Unix seconds, as Meta sends it (a string); 0 if absent.
    pub timestamp: i64,
}

impl std::fmt::Debug for InboundText {
    /// The body may hold a code, the sender is a phone number: neither is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundText")
            .field("from", &self.from.as_deref().map(waotp_core::msisdn::mask))
            .field("user", &self.user)
            .field("message_id", &self.message_id)
            .field("to_phone_number_id", &self.to_phone_number_id)
            .field("body_chars", &self.body.chars().count())
            .field("timestamp", &self.timestamp)
            .finish()
    }
}

/// The longest inbound text read (WhatsApp allows 4,096 characters).
pub const MAX_INBOUND_TEXT: usize = 4096;

/// Why a webhook body was not read (see [`parse`] and [`crate::management_events::parse`]).
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// Meta's webhooks are JSON: this body is not one of them.
    #[error("not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
}

/// A webhook body read once, as JSON: what [`events_of`] and
/// [`crate::management_events::events_of`] both take.
pub fn read(body: &[u8]) -> Result<Value, PayloadError> {
    Ok(serde_json::from_slice(body)?)
}

/// The events of a payload, in payload order. Unknown fields, statuses (`played`) and
/// message types are skipped; a body that is not JSON is an error.
pub fn parse(body: &[u8]) -> Result<Vec<Event>, PayloadError> {
    Ok(events_of(&read(body)?))
}

/// The events of a payload already read ([`read`]), in payload order.
pub fn events_of(v: &Value) -> Vec<Event> {
    let mut events = Vec::new();
    let mut identified = Identities::default();
    let changes = v["entry"].as_array().into_iter().flatten().flat_map(|entry| {
        // The WhatsApp Business Account's id: digits. Anything else names no business, and its
        // business-scoped user ids are not learned.
        let id = entry["id"].as_str().unwrap_or("");
        let digits = !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_digit());
        let business = if digits { id.to_owned() } else { String::new() };
        entry["changes"].as_array().into_iter().flatten().map(move |change| (business.clone(), change))
    });
    for (business, change) in changes {
        let value = &change["value"];
        // Without a business, ids mean nothing: no pair or change is reported.
        let named = !business.is_empty();
        if change["field"] == "user_id_update" {
            if named {
                events.extend(users::user_id_updates(&business, value).map(Event::UserIdChanged));
            }
            continue;
        }
        if change["field"] != "messages" {
            continue;
        }
        for contact in value["contacts"].as_array().into_iter().flatten() {
            identified.add(&business, users::contact(contact), &mut events, false);
        }
        for s in value["statuses"].as_array().into_iter().flatten() {
            identified.add(&business, users::recipient(s), &mut events, true);
            let Some(wamid) = s["id"].as_str() else { continue };
            let status = match s["status"].as_str() {
                Some("sent") => DeliveryStatus::Sent,
                Some("delivered") => DeliveryStatus::Delivered,
                Some("read") => DeliveryStatus::Read,
                Some("failed") => DeliveryStatus::Failed,
                _ => continue,
            };
            let error = s["errors"].as_array().and_then(|e| e.first()).map(|e| {
                let title = e["title"].as_str().or(e["message"].as_str()).unwrap_or("").to_owned();
                let details = e["error_data"]["details"].as_str().map(|d| format!(": {d}")).unwrap_or_default();
                (e["code"].as_i64().unwrap_or(0), format!("{title}{details}"))
            });
            events.push(Event::Status { wamid: wamid.to_owned(), status, error, pricing: pricing(&s["pricing"]) });
        }
        for m in value["messages"].as_array().into_iter().flatten() {
            let sender = users::sender(m, value);
            identified.add(&business, sender.clone(), &mut events, true);
            if named && m["type"] == "system" {
                events.extend(users::system_change(&business, m).map(Event::UserIdChanged));
            }
            let pressed = m["type"] == "button" && m["button"]["payload"] == "DID_NOT_REQUEST_CODE";
            if let (true, Some(wamid)) = (pressed, m["context"]["id"].as_str()) {
                events.push(Event::NotRequested { wamid: wamid.to_owned() });
            }
            if let (true, Some(id), Some(body)) = (m["type"] == "text", m["id"].as_str(), m["text"]["body"].as_str()) {
                if sender.wa_id.is_none() && sender.user_id.is_none() {
                    continue;
                }
                events.push(Event::Inbound(InboundText {
                    from: sender.wa_id.clone(),
                    user: UserIds { business: business.clone(), ..sender },
                    message_id: id.to_owned(),
                    to_phone_number_id: value["metadata"]["phone_number_id"].as_str().unwrap_or("").to_owned(),
                    body: body.chars().take(MAX_INBOUND_TEXT).collect(),
                    timestamp: m["timestamp"].as_str().and_then(|t| t.parse().ok()).unwrap_or(0),
                }));
            }
        }
    }
    events
}

/// The identities a payload names, each reported once.
#[derive(Default)]
struct Identities {
    seen: std::collections::HashSet<(String, String, String)>,
}

impl Identities {
    /// A number and BSUID named together, the first time: an [`Event::Identified`], in payload
    /// order (before the message that names them, after a change that came earlier). With
    /// `count_missing`, a user named without a number is an [`Event::NoPhoneNumber`] (a contact
    /// entry only repeats its status's or message's user).
    fn add(&mut self, business: &str, user: UserIds, events: &mut Vec<Event>, count_missing: bool) {
        match (user.wa_id, user.user_id) {
            (Some(wa_id), Some(user_id))
                if !business.is_empty() && self.seen.insert((business.to_owned(), wa_id.clone(), user_id.clone())) =>
            {
                events.push(Event::Identified(Identified {
                    business: business.to_owned(),
                    wa_id,
                    user_id,
                    parent_user_id: user.parent_user_id,
                }));
            }
            (None, Some(_)) if count_missing => events.push(Event::NoPhoneNumber),
            _ => {}
        }
    }
}

/// A status's `pricing` object (`billable`, `category`, `pricing_model`, `type`): values kept as
/// given; a missing or malformed one (no category, nothing saying whether it is billable) is
/// `None`, never an error.
pub fn pricing(p: &Value) -> Option<waotp_core::MessagePricing> {
    let text = |key: &str| p[key].as_str();
    waotp_core::MessagePricing::from_fields(
        p["billable"].as_bool(),
        text("category"),
        text("pricing_model"),
        text("type"),
    )
}

#[cfg(test)]
mod tests;
