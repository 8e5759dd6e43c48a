//! What a management event means for the sender's health (the facts it sets), and which
//! changes an operator is alerted to. Pure: no I/O.

use waotp_store::{template_subject, FactChange, HealthFact, HealthKind};
use waotp_whatsapp::management_events::{template_status_usable, tier_limit, Change, Limit, ManagementEvent};

/// Template statuses a send may use ([`template_status_usable`]). Only statuses Meta documents
/// are stored as a template's `status` ([`facts_of`]), so an unknown one never reaches here.
pub fn usable_status(status: &str) -> bool {
    template_status_usable(status) == Some(true)
}

/// GREEN 3, YELLOW 2, RED 1, anything else (UNKNOWN, NA) 0: the quality gauges' encoding.
pub fn quality_rank(rating: &str) -> i64 {
    match rating {
        "GREEN" => 3,
        "YELLOW" => 2,
        "RED" => 1,
        _ => 0,
    }
}

/// A messaging limit as stored: a number of recipients, or `unlimited`.
pub fn limit_text(tier: &str) -> Option<String> {
    match tier_limit(tier)? {
        Limit::Recipients(n) => Some(n.to_string()),
        Limit::Unlimited => Some("unlimited".into()),
    }
}

/// Longest text kept from Meta's payload in one fact (descriptions can be long).
const MAX_TEXT: usize = 300;

pub fn clip(s: String) -> String {
    if s.len() <= MAX_TEXT {
        return s;
    }
    let mut end = MAX_TEXT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The facts an event sets, as of `at_ms`.
pub fn facts_of(e: &ManagementEvent, at_ms: i64) -> Vec<HealthFact> {
    let fact = |kind, subject: &str, aspect: &str, value: &str, reason: Option<String>| HealthFact {
        kind,
        subject: clip(subject.to_owned()),
        aspect: clip(aspect.to_owned()),
        value: clip(value.to_owned()),
        reason: reason.map(clip),
        at_ms,
        source: "webhook".into(),
    };
    let template = |t: &waotp_whatsapp::management_events::TemplateRef| template_subject(&t.name, &t.language);
    match &e.change {
        Change::TemplateStatus { template: t, event, reason, detail } => {
            let reason = detail.clone().or_else(|| reason.clone().filter(|r| r != "NONE"));
            // An event Meta has not documented is kept as news, not as the template's status:
            // the template stays as usable as it was.
            let aspect = if template_status_usable(event).is_some() { "status" } else { "other_event" };
            vec![fact(HealthKind::Template, &template(t), aspect, event, reason)]
        }
        Change::TemplateQuality { template: t, previous, new } => {
            vec![fact(
                HealthKind::Template,
                &template(t),
                "quality",
                new,
                previous.as_ref().map(|p| format!("was {p}")),
            )]
        }
        Change::TemplateCategory { template: t, new, correct, .. } => {
            let reason = correct.as_ref().map(|c| format!("becomes {c} within 24 h"));
            vec![fact(HealthKind::Template, &template(t), "category", new, reason)]
        }
        Change::NumberQuality { number, event, business_limit, number_limit, .. } => {
            let mut facts = vec![fact(HealthKind::Number, number, "event", event, None)];
            // FLAGGED: the number's quality fell to low; UNFLAGGED: it recovered [INF].
            let rating = match event.as_str() {
                "FLAGGED" => Some("RED"),
                "UNFLAGGED" => Some("GREEN"),
                _ => None,
            };
            if let Some(rating) = rating {
                facts.push(fact(HealthKind::Number, number, "quality_rating", rating, Some(event.clone())));
            }
            // The portfolio's limit is the account's, whichever of its numbers the event names;
            // `current_limit` (older events, read only without the portfolio's) the number's own.
            match (business_limit, number_limit) {
                (Some(limit), _) => {
                    if let Some(limit) = limit_text(limit) {
                        let reason = Some(format!("{event} of number {number}"));
                        facts.push(fact(HealthKind::Account, &e.entry_id, "messaging_limit", &limit, reason));
                    }
                }
                (None, Some(limit)) => {
                    if let Some(limit) = limit_text(limit) {
                        facts.push(fact(HealthKind::Number, number, "messaging_limit", &limit, Some(event.clone())));
                    }
                }
                (None, None) => {}
            }
            facts
        }
        Change::Capability { limit } => limit
            .as_deref()
            .and_then(limit_text)
            .map(|limit| fact(HealthKind::Account, &e.entry_id, "messaging_limit", &limit, None))
            .into_iter()
            .collect(),
        Change::Account { event, violation, ban_state, ban_date, restrictions } => {
            let mut facts = Vec::new();
            if event == "ACCOUNT_VIOLATION" {
                let v = violation.as_deref().unwrap_or("VIOLATION");
                facts.push(fact(HealthKind::Account, &e.entry_id, "violation", v, None));
            }
            if let Some(state) = ban_state {
                facts.push(fact(HealthKind::Account, &e.entry_id, "ban_state", state, ban_date.clone()));
            }
            if event == "ACCOUNT_DELETED" {
                facts.push(fact(HealthKind::Account, &e.entry_id, "deleted", "ACCOUNT_DELETED", None));
            }
            if let Some(r) = restrictions {
                let value = if r.is_empty() { "NONE".to_owned() } else { r.join(",") };
                facts.push(fact(HealthKind::Account, &e.entry_id, "restriction", &value, None));
            }
            facts
        }
        Change::AccountAlert { entity_id, severity, status, alert_type, description, .. } => {
            let subject = if entity_id.is_empty() { &e.entry_id } else { entity_id };
            let reason = Some(match description {
                Some(d) => format!("{severity}: {d}"),
                None => severity.clone(),
            });
            vec![fact(HealthKind::Account, subject, &format!("alert {alert_type}"), status, reason)]
        }
        Change::Unknown => Vec::new(),
    }
}

/// The alert a changed fact raises, if an operator should hear of it: its kind.
pub fn alert_kind(c: &FactChange) -> Option<&'static str> {
    let (new, old) = (c.fact.value.as_str(), c.previous.as_deref());
    match (c.fact.kind, c.fact.aspect.as_str()) {
        (HealthKind::Template, "status") if !usable_status(new) => Some("template_unusable"),
        (HealthKind::Template, "status") if old.is_some_and(|o| !usable_status(o)) => Some("template_usable"),
        (HealthKind::Template, "quality") => {
            // The event names the rating it left; the stored one may be older or absent.
            let was = old.or_else(|| c.fact.reason.as_deref().and_then(|r| r.strip_prefix("was ")));
            (quality_rank(new) < was.map_or(0, quality_rank)).then_some("template_quality_dropped")
        }
        (HealthKind::Template, "category") => Some("template_category_changed"),
        (HealthKind::Number, "quality_rating") => {
            // First heard of: a drop only if it is not the best rating (an UNFLAGGED is news
            // of a recovery, not of a drop).
            let was = old.map_or(quality_rank("GREEN"), quality_rank);
            (quality_rank(new) < was).then_some("number_quality_dropped")
        }
        (_, "messaging_limit") => Some(match (old.map(limit_value), limit_value(new)) {
            (Some(o), n) if n < o => "messaging_limit_shrunk",
            (Some(_), _) => "messaging_limit_raised",
            (None, _) => "messaging_limit_set",
        }),
        (HealthKind::Account, "violation") => Some("account_violation"),
        (HealthKind::Account, "ban_state") if new == "REINSTATE" => Some("account_reinstated"),
        (HealthKind::Account, "ban_state") => Some("account_disabled"),
        (HealthKind::Account, "deleted") => Some("account_deleted"),
        (HealthKind::Account, "restriction") if new != "NONE" => Some("account_restricted"),
        (HealthKind::Account, aspect) if aspect.starts_with("alert ") && new == "ACTIVE" => Some("account_alert"),
        _ => None,
    }
}

/// A stored limit as a number (`unlimited` the largest).
pub fn limit_value(stored: &str) -> u64 {
    stored.parse().unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(kind: HealthKind, aspect: &str, value: &str, previous: Option<&str>) -> FactChange {
        FactChange {
            fact: HealthFact {
                kind,
                subject: "s".into(),
                aspect: aspect.into(),
                value: value.into(),
                reason: None,
                at_ms: 0,
                source: "webhook".into(),
            },
            previous: previous.map(str::to_owned),
        }
    }

    #[test]
    fn alerts() {
        let t = HealthKind::Template;
        assert_eq!(alert_kind(&change(t, "status", "PAUSED", Some("APPROVED"))), Some("template_unusable"));
        assert_eq!(alert_kind(&change(t, "status", "APPROVED", Some("PAUSED"))), Some("template_usable"));
        assert_eq!(alert_kind(&change(t, "status", "APPROVED", None)), None);
        assert_eq!(alert_kind(&change(t, "status", "LOCKED", Some("APPROVED"))), Some("template_unusable"));
        assert_eq!(alert_kind(&change(t, "other_event", "SOMETHING_NEW", Some("APPROVED"))), None);
        assert_eq!(alert_kind(&change(t, "quality", "YELLOW", Some("GREEN"))), Some("template_quality_dropped"));
        assert_eq!(alert_kind(&change(t, "quality", "GREEN", Some("YELLOW"))), None);
        let n = HealthKind::Number;
        assert_eq!(alert_kind(&change(n, "messaging_limit", "250", Some("2000"))), Some("messaging_limit_shrunk"));
        assert_eq!(
            alert_kind(&change(n, "messaging_limit", "unlimited", Some("2000"))),
            Some("messaging_limit_raised")
        );
        assert_eq!(alert_kind(&change(n, "quality_rating", "RED", Some("GREEN"))), Some("number_quality_dropped"));
        assert_eq!(alert_kind(&change(n, "quality_rating", "RED", None)), Some("number_quality_dropped"));
        assert_eq!(alert_kind(&change(n, "quality_rating", "GREEN", None)), None, "a first UNFLAGGED is no drop");
        assert_eq!(alert_kind(&change(n, "quality_rating", "GREEN", Some("RED"))), None);
        assert_eq!(alert_kind(&change(n, "event", "UPGRADE", None)), None);
        let a = HealthKind::Account;
        assert_eq!(alert_kind(&change(a, "ban_state", "DISABLE", None)), Some("account_disabled"));
        assert_eq!(alert_kind(&change(a, "alert X", "NONE", Some("ACTIVE"))), None);
    }
}
