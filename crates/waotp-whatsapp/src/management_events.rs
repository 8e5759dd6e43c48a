//! Meta's management webhooks (every field but `messages`): template status, quality and
//! category, the phone number's quality and messaging limit, the business's capabilities, the
//! account's state and alerts. Parsed tolerantly (whatsapp-operations.md §3): every enum is an
//! open string, a template id may be an integer or a string, `en-US` is read as `en_US`, and
//! a quality update is recognised by `new_quality_score` whatever its field says. A field
//! waotp does not know is returned as [`Change::Unknown`]: acknowledged, never an error.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// One change of a management webhook, with what waotp reads from it.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagementEvent {
    /// The change's `field`, as sent.
    pub field: String,
    /// The entry's id (the WABA's, or the business's).
    pub entry_id: String,
    /// The entry's `time` (Unix seconds), if given.
    pub time_s: Option<i64>,
    /// The change's `value`, as sent.
    pub value: Value,
    pub change: Change,
}

/// A template named in an event: name and language (normalised: `en-US` → `en_US`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRef {
    pub id: Option<String>,
    pub name: String,
    pub language: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `message_template_status_update`: `event` is the template's new state (`APPROVED`,
    /// `PAUSED`, `DISABLED`, `REJECTED`, …).
    TemplateStatus { template: TemplateRef, event: String, reason: Option<String>, detail: Option<String> },
    /// `message_template_quality_update`.
    TemplateQuality { template: TemplateRef, previous: Option<String>, new: String },
    /// `template_category_update`: completed (`previous` given) or announced for the next
    /// 24 h (`correct` given: `new` is still the current category).
    TemplateCategory { template: TemplateRef, previous: Option<String>, new: String, correct: Option<String> },
    /// `phone_number_quality_update`: the number (display digits), the event (`FLAGGED`,
    /// `UNFLAGGED`, `UPGRADE`, `DOWNGRADE`, `THROUGHPUT_UPGRADE`, `ONBOARDING`, …) and the
    /// limit it names: `business_limit` (`max_daily_conversations_per_business`) is the
    /// business portfolio's, shared by all its numbers (Meta's limits are per portfolio since
    /// October 2025); `number_limit` (`current_limit`, removed February 2026) the number's own.
    NumberQuality {
        number: String,
        event: String,
        business_limit: Option<String>,
        number_limit: Option<String>,
        old_limit: Option<String>,
    },
    /// `business_capability_update`: the messaging limit, if it names one.
    Capability { limit: Option<String> },
    /// `account_update`.
    Account {
        event: String,
        violation: Option<String>,
        ban_state: Option<String>,
        ban_date: Option<String>,
        restrictions: Option<Vec<String>>,
    },
    /// `account_alerts`.
    AccountAlert {
        entity_type: String,
        entity_id: String,
        severity: String,
        status: String,
        alert_type: String,
        description: Option<String>,
    },
    /// A template event without a name, or a field waotp does not read.
    Unknown,
}

/// The fields waotp reads (besides `messages`): what to subscribe the app to.
pub const FIELDS: [&str; 7] = [
    "message_template_status_update",
    "message_template_quality_update",
    "template_category_update",
    "phone_number_quality_update",
    "account_update",
    "account_alerts",
    "business_capability_update",
];

/// `en-US` → `en_US`; `en` stays.
/// Whether a template in `status` (a status as the template list gives it, or a status
/// webhook's `event`) may be sent: `Some(true)` for `APPROVED` and the events that leave or put
/// it in service (`FLAGGED`: still approved, at risk of a pause; `REINSTATED`, `UNARCHIVED`),
/// `Some(false)` for every status Meta documents as not sendable, `None` for a value Meta has not
/// documented (whatsapp-operations.md §2: "anything other than APPROVED cannot be sent", but an
/// unknown event may be news about a template that stays approved: the caller keeps what it
/// knew).
pub fn template_status_usable(status: &str) -> Option<bool> {
    match status {
        "APPROVED" | "FLAGGED" | "REINSTATED" | "UNARCHIVED" => Some(true),
        "PENDING" | "REJECTED" | "IN_APPEAL" | "PAUSED" | "DISABLED" | "ARCHIVED" | "PENDING_DELETION" | "DELETED"
        | "LIMIT_EXCEEDED" | "LOCKED" | "NOT_FOUND" => Some(false),
        _ => None,
    }
}

pub fn normalise_language(lang: &str) -> String {
    lang.trim().replace('-', "_")
}

/// A string, or a number written as one (ids and limits come either way).
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn template_ref(v: &Value) -> Option<TemplateRef> {
    Some(TemplateRef {
        id: text(&v["message_template_id"]),
        name: text(&v["message_template_name"])?,
        language: normalise_language(&text(&v["message_template_language"])?),
    })
}

/// A messaging limit: unique recipients per 24 h.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Recipients(u64),
    Unlimited,
}

/// A messaging limit as Meta writes it (`TIER_2K`, `UNTIERED`, or a number such as `2000`
/// or `-1`); `None` if it is neither (e.g. `TIER_NOT_SET`: keep what was known).
pub fn tier_limit(tier: &str) -> Option<Limit> {
    let t = tier.trim().to_ascii_uppercase();
    if matches!(t.as_str(), "TIER_UNLIMITED" | "UNTIERED" | "UNLIMITED" | "-1") {
        return Some(Limit::Unlimited);
    }
    let n = t.strip_prefix("TIER_").unwrap_or(&t);
    let (digits, factor) = match n.strip_suffix('K') {
        Some(d) => (d, 1000),
        None => (n, 1),
    };
    digits.parse::<u64>().ok().map(|d| Limit::Recipients(d.saturating_mul(factor)))
}

/// The management changes of a payload, in payload order (`messages` and `user_id_update`
/// changes are [`crate::webhook::parse`]'s and left out). A body that is not JSON is an error.
pub fn parse(body: &[u8]) -> Result<Vec<ManagementEvent>, crate::webhook::PayloadError> {
    Ok(events_of(&crate::webhook::read(body)?))
}

/// The management changes of a payload already read ([`crate::webhook::read`]).
pub fn events_of(v: &Value) -> Vec<ManagementEvent> {
    let mut out = Vec::new();
    for entry in v["entry"].as_array().into_iter().flatten() {
        let entry_id = text(&entry["id"]).unwrap_or_default();
        let time_s = entry["time"].as_i64().or_else(|| entry["time"].as_str().and_then(|s| s.parse().ok()));
        for change in entry["changes"].as_array().into_iter().flatten() {
            let field = change["field"].as_str().unwrap_or("").to_owned();
            if field == "messages" || field == "user_id_update" {
                continue;
            }
            let value = change["value"].clone();
            let change = classify(&field, &value);
            out.push(ManagementEvent { field, entry_id: entry_id.clone(), time_s, value, change });
        }
    }
    out
}

fn classify(field: &str, v: &Value) -> Change {
    // Older copies of Meta's page send quality updates under the status field.
    if !v["new_quality_score"].is_null() {
        return match (template_ref(v), text(&v["new_quality_score"])) {
            (Some(template), Some(new)) => {
                Change::TemplateQuality { template, previous: text(&v["previous_quality_score"]), new }
            }
            _ => Change::Unknown,
        };
    }
    match field {
        "message_template_status_update" => match (template_ref(v), text(&v["event"])) {
            (Some(template), Some(event)) => {
                // Why: the rejection's reason, else the pause's title (`FIRST_PAUSE`, `UNPAUSE`, …).
                let detail = text(&v["rejection_info"]["reason"])
                    .or_else(|| text(&v["other_info"]["title"]))
                    .or_else(|| text(&v["other_info"]["description"]));
                Change::TemplateStatus {
                    template,
                    event: event.to_ascii_uppercase(),
                    reason: text(&v["reason"]),
                    detail,
                }
            }
            _ => Change::Unknown,
        },
        "template_category_update" => match (template_ref(v), text(&v["new_category"])) {
            (Some(template), Some(new)) => Change::TemplateCategory {
                template,
                previous: text(&v["previous_category"]),
                new,
                correct: text(&v["correct_category"]),
            },
            _ => Change::Unknown,
        },
        "phone_number_quality_update" => Change::NumberQuality {
            number: text(&v["display_phone_number"])
                .map(|n| n.chars().filter(char::is_ascii_digit).collect())
                .unwrap_or_default(),
            event: text(&v["event"]).unwrap_or_default().to_ascii_uppercase(),
            business_limit: text(&v["max_daily_conversations_per_business"]),
            number_limit: text(&v["current_limit"]),
            old_limit: text(&v["old_limit"]),
        },
        "business_capability_update" => Change::Capability {
            limit: text(&v["max_daily_conversations_per_business"])
                .or_else(|| text(&v["max_daily_conversation_per_phone"])),
        },
        "account_update" => Change::Account {
            event: text(&v["event"]).unwrap_or_default().to_ascii_uppercase(),
            violation: text(&v["violation_info"]["violation_type"]),
            ban_state: text(&v["ban_info"]["waba_ban_state"]),
            ban_date: text(&v["ban_info"]["waba_ban_date"]),
            restrictions: v["restriction_info"]
                .as_array()
                .map(|r| r.iter().filter_map(|x| text(&x["restriction_type"])).collect()),
        },
        "account_alerts" => {
            let a = &v["alert_info"];
            Change::AccountAlert {
                entity_type: text(&v["entity_type"]).unwrap_or_default(),
                entity_id: text(&v["entity_id"]).unwrap_or_default(),
                severity: text(&a["alert_severity"]).unwrap_or_default(),
                status: text(&a["alert_status"]).unwrap_or_default(),
                alert_type: text(&a["alert_type"]).unwrap_or_default(),
                description: text(&a["alert_description"]),
            }
        }
        _ => Change::Unknown,
    }
}

impl ManagementEvent {
    /// SHA-256 of the field, the value in canonical form (keys sorted) and the entry's time
    /// and id: a webhook Meta sends again hashes the same. An entry without a time hashes with
    /// the minute it was received in (`received_s`), so that Meta's quick retries are still
    /// one event while the same news told again later (paused, approved, paused) is not
    /// taken for a retry of the first.
    pub fn hash(&self, received_s: i64) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.field.as_bytes());
        h.update([0]);
        h.update(self.entry_id.as_bytes());
        h.update([0]);
        match self.time_s {
            Some(time) => h.update(time.to_be_bytes()),
            None => {
                h.update(b"received");
                h.update((received_s.div_euclid(60)).to_be_bytes());
            }
        }
        // serde_json's map is ordered by key: the canonical form.
        h.update(serde_json::to_vec(&self.value).unwrap_or_default());
        h.finalize().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(field: &str, value: &str) -> ManagementEvent {
        let body = format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"102290129340398","time":1782476724,"changes":[{{"field":"{field}","value":{value}}}]}}]}}"#
        );
        let mut events = parse(body.as_bytes()).unwrap();
        assert_eq!(events.len(), 1);
        events.remove(0)
    }

    #[test]
    fn template_events_take_integer_ids_and_hyphenated_languages() {
        let e = one(
            "message_template_status_update",
            r#"{ "event": "REJECTED", "message_template_id": 1689556908129835, "message_template_name": "abandoned_cart",
  "message_template_language": "en", "reason": "INVALID_FORMAT", "message_template_category": "MARKETING",
  "rejection_info": { "reason": "Your template has parameters placed next to each other.", "recommendation": "Separate them." } }"#,
        );
        let Change::TemplateStatus { template, event, reason, detail } = e.change else { panic!() };
        assert_eq!(template.id.as_deref(), Some("1689556908129835"));
        assert_eq!((template.name.as_str(), template.language.as_str()), ("abandoned_cart", "en"));
        assert_eq!((event.as_str(), reason.as_deref()), ("REJECTED", Some("INVALID_FORMAT")));
        assert!(detail.unwrap().starts_with("Your template"));
        let q = one(
            "message_template_status_update",
            r#"{ "previous_quality_score": "GREEN", "new_quality_score": "YELLOW", "message_template_id": "806312974732579",
  "message_template_name": "welcome_template", "message_template_language": "en-US" }"#,
        );
        let Change::TemplateQuality { template, previous, new } = q.change else {
            panic!("routed by new_quality_score")
        };
        assert_eq!((template.language.as_str(), previous.as_deref(), new.as_str()), ("en_US", Some("GREEN"), "YELLOW"));
    }

    #[test]
    fn unknown_fields_and_nameless_events_are_unknown_not_errors() {
        assert_eq!(one("message_echoes", "{}").change, Change::Unknown);
        assert_eq!(one("message_template_status_update", r#"{"event":"APPROVED"}"#).change, Change::Unknown);
        assert!(parse(br#"{"entry":[{"changes":[{"field":"messages","value":{}}]}]}"#).unwrap().is_empty());
        assert!(matches!(parse(b"nope"), Err(crate::webhook::PayloadError::NotJson(_))));
    }

    #[test]
    fn tiers() {
        assert_eq!(tier_limit("TIER_250"), Some(Limit::Recipients(250)));
        assert_eq!(tier_limit("TIER_2K"), Some(Limit::Recipients(2000)));
        assert_eq!(tier_limit("TIER_100K"), Some(Limit::Recipients(100_000)));
        assert_eq!(tier_limit("2000"), Some(Limit::Recipients(2000)));
        assert_eq!(tier_limit("TIER_UNLIMITED"), Some(Limit::Unlimited));
        assert_eq!(tier_limit("UNTIERED"), Some(Limit::Unlimited));
        assert_eq!(tier_limit("-1"), Some(Limit::Unlimited));
        assert_eq!(tier_limit("TIER_NOT_SET"), None);
    }

    #[test]
    fn the_hash_ignores_key_order_but_not_time() {
        let a = one("account_update", r#"{"event":"ACCOUNT_VIOLATION","violation_info":{"violation_type":"ADULT"}}"#);
        let b = one("account_update", r#"{"violation_info":{"violation_type":"ADULT"},"event":"ACCOUNT_VIOLATION"}"#);
        assert_eq!(a.hash(0), b.hash(1_000_000), "the entry's time, not the receipt's");
        let mut c = a.clone();
        c.time_s = Some(1);
        assert_ne!(a.hash(0), c.hash(0));
        // Without an entry time: the same minute of receipt is a retry, a later one is news.
        c.time_s = None;
        assert_eq!(c.hash(120), c.hash(179));
        assert_ne!(c.hash(120), c.hash(180));
    }
}
