//! Meta's webhooks: the `X-Hub-Signature-256` check over the raw body, and the events waotp
//! reads from a payload (message statuses, the "I didn't request a code" button).

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq;

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
}

/// An inbound text message: `messages[]` with `type: "text"`.
#[derive(Clone, PartialEq, Eq)]
pub struct InboundText {
    /// The sender's WhatsApp id (`from`, digits, no `+`): may differ from the number as
    /// dialled in a few countries (see `waotp_core::reverse::canonical`).
    pub from: String,
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
            .field("from", &waotp_mask(&self.from))
            .field("message_id", &self.message_id)
            .field("to_phone_number_id", &self.to_phone_number_id)
            .field("body_chars", &self.body.chars().count())
            .field("timestamp", &self.timestamp)
            .finish()
    }
}

/// `62812****890`: a number's first 5 and last 3 digits.
fn waotp_mask(digits: &str) -> String {
    let n = digits.chars().count();
    if n <= 8 {
        return "*".repeat(n);
    }
    let head: String = digits.chars().take(5).collect();
    let tail: String = digits.chars().skip(n - 3).collect();
    format!("{head}{}{tail}", "*".repeat(n - 8))
}

/// The longest inbound text read (WhatsApp allows 4,096 characters).
pub const MAX_INBOUND_TEXT: usize = 4096;

/// The events of a payload, in payload order. Unknown fields, statuses (`played`) and
/// message types are skipped; a body that is not JSON is an error.
pub fn parse(body: &[u8]) -> Result<Vec<Event>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let mut events = Vec::new();
    let values = v["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|entry| entry["changes"].as_array().into_iter().flatten())
        .filter(|change| change["field"] == "messages")
        .map(|change| &change["value"]);
    for value in values {
        for s in value["statuses"].as_array().into_iter().flatten() {
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
            let pressed = m["type"] == "button" && m["button"]["payload"] == "DID_NOT_REQUEST_CODE";
            if let (true, Some(wamid)) = (pressed, m["context"]["id"].as_str()) {
                events.push(Event::NotRequested { wamid: wamid.to_owned() });
            }
            if let (true, Some(from), Some(id), Some(body)) =
                (m["type"] == "text", m["from"].as_str(), m["id"].as_str(), m["text"]["body"].as_str())
            {
                events.push(Event::Inbound(InboundText {
                    from: from.to_owned(),
                    message_id: id.to_owned(),
                    to_phone_number_id: value["metadata"]["phone_number_id"].as_str().unwrap_or("").to_owned(),
                    body: body.chars().take(MAX_INBOUND_TEXT).collect(),
                    timestamp: m["timestamp"].as_str().and_then(|t| t.parse().ok()).unwrap_or(0),
                }));
            }
        }
    }
    Ok(events)
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
mod tests {
    use super::*;

    #[test]
    fn signatures() {
        let body = br#"{"object":"whatsapp_business_account"}"#;
        let sig = sign(b"app-secret", body);
        assert!(sig.starts_with("sha256=") && sig.len() == 71);
        assert!(signature_valid(b"app-secret", body, Some(&sig)));
        assert!(signature_valid(b"app-secret", body, Some(&sig.to_uppercase().replace("SHA256", "sha256"))));
        assert!(!signature_valid(b"other", body, Some(&sig)));
        assert!(!signature_valid(b"app-secret", b"{}", Some(&sig)));
        assert!(!signature_valid(b"app-secret", body, None));
        assert!(!signature_valid(b"app-secret", body, Some("sha256=00")));
    }

    #[test]
    fn parses_statuses_errors_and_the_button() {
        let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[
          {"field":"messages","value":{"messaging_product":"whatsapp","metadata":{},
            "statuses":[
              {"id":"wamid.A","status":"delivered","timestamp":"1","recipient_id":"1","future_field":1},
              {"id":"wamid.B","status":"failed","timestamp":"1","errors":[{"code":131026,"title":"Message undeliverable","error_data":{"details":"x"}}]},
              {"id":"wamid.C","status":"played","timestamp":"1"}],
            "messages":[{"type":"button","button":{"payload":"DID_NOT_REQUEST_CODE"},"context":{"id":"wamid.A"}},
                        {"type":"text","text":{"body":"hi"}}]}},
          {"field":"account_update","value":{}}]}]}"#;
        assert_eq!(
            parse(body).unwrap(),
            vec![
                Event::Status {
                    wamid: "wamid.A".into(),
                    status: DeliveryStatus::Delivered,
                    error: None,
                    pricing: None
                },
                Event::Status {
                    wamid: "wamid.B".into(),
                    status: DeliveryStatus::Failed,
                    error: Some((131026, "Message undeliverable: x".into())),
                    pricing: None,
                },
                Event::NotRequested { wamid: "wamid.A".into() },
            ]
        );
        assert!(parse(b"nope").is_err());
        assert_eq!(parse(b"{}").unwrap(), vec![]);
    }

    #[test]
    fn parses_the_pricing_of_a_status_and_tolerates_a_bad_one() {
        let status = |pricing: &str| {
            let body = format!(
                r#"{{"entry":[{{"changes":[{{"field":"messages","value":{{"statuses":[
                  {{"id":"wamid.P","status":"delivered","timestamp":"1","recipient_id":"1","pricing":{pricing}}}]}}}}]}}]}}"#
            );
            match parse(body.as_bytes()).unwrap().pop() {
                Some(Event::Status { pricing, .. }) => pricing,
                other => panic!("{other:?}"),
            }
        };
        let p = status(r#"{"billable":true,"pricing_model":"PMP","type":"regular","category":"authentication"}"#);
        assert_eq!(
            p,
            Some(waotp_core::MessagePricing {
                billable: true,
                category: "authentication".into(),
                pricing_model: "PMP".into(),
                pricing_type: Some("regular".into()),
            })
        );
        let p = status(r#"{"pricing_model":"PMP","type":"free_customer_service","category":"utility"}"#).unwrap();
        assert!(!p.billable, "no billable: from the type");
        let p = status(r#"{"billable":true,"pricing_model":"CBP","category":"a_new_category"}"#).unwrap();
        assert_eq!((p.category.as_str(), p.pricing_type), ("a_new_category", None), "unknown values kept");
        for bad in
            [r#""PMP""#, "null", "{}", r#"{"billable":"yes","category":"x"}"#, r#"{"billable":true,"category":7}"#]
        {
            assert_eq!(status(bad), None, "{bad}");
        }
    }

    #[test]
    fn parses_inbound_text_messages() {
        let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[
          {"field":"messages","value":{"messaging_product":"whatsapp",
            "metadata":{"display_phone_number":"15550000000","phone_number_id":"123"},
            "contacts":[{"profile":{"name":"A"},"wa_id":"551187654321"}],
            "messages":[{"from":"551187654321","id":"wamid.IN","timestamp":"1764700000","type":"text",
                         "text":{"body":"ABCDEFGHJK is my verification code"}},
                        {"from":"551187654321","id":"wamid.IMG","timestamp":"1","type":"image","image":{}}]}}]}]}"#;
        let events = parse(body).unwrap();
        assert_eq!(
            events,
            vec![Event::Inbound(InboundText {
                from: "551187654321".into(),
                message_id: "wamid.IN".into(),
                to_phone_number_id: "123".into(),
                body: "ABCDEFGHJK is my verification code".into(),
                timestamp: 1_764_700_000,
            })]
        );
        let shown = format!("{events:?}");
        assert!(!shown.contains("ABCDEFGHJK") && !shown.contains("551187654321"), "{shown}");
        assert_eq!(parse(b"{}").unwrap(), vec![]);
    }
}
