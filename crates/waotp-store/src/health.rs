//! The sender's health as Meta reports it (management webhooks, a send's error, the doctor):
//! facts about templates, the phone number and the account, each the newest word on one
//! (kind, subject, aspect), and the recent management events that brought them.

use async_trait::async_trait;

use crate::Result;

/// Management events remembered (for deduplication and the dashboard); older ones go.
pub const HEALTH_EVENTS_MAX: i64 = 1_000;

/// What a health fact is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HealthKind {
    /// A message template in one language: subject `name/language` ([`template_subject`]).
    Template,
    /// A phone number: subject its display number, digits only.
    Number,
    /// The WhatsApp Business account (or the business): subject its id.
    Account,
}

impl HealthKind {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthKind::Template => "template",
            HealthKind::Number => "number",
            HealthKind::Account => "account",
        }
    }

    pub fn parse(s: &str) -> Option<HealthKind> {
        match s {
            "template" => Some(HealthKind::Template),
            "number" => Some(HealthKind::Number),
            "account" => Some(HealthKind::Account),
            _ => None,
        }
    }
}

/// The subject of a template's facts: `name/language`.
pub fn template_subject(name: &str, language: &str) -> String {
    format!("{name}/{language}")
}

/// One thing known about the sender: e.g. template `auth_a/en_US`'s `status` is `PAUSED`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthFact {
    pub kind: HealthKind,
    pub subject: String,
    /// Which property: `status`, `quality`, `category`, `quality_rating`, `messaging_limit`,
    /// `flag`, `ban_state`, `violation`, `alert`, …
    pub aspect: String,
    pub value: String,
    pub reason: Option<String>,
    /// When it became true (Meta's event time, ms): an older fact never replaces a newer one.
    pub at_ms: i64,
    /// Who said it: `webhook`, `send`, `doctor`.
    pub source: String,
}

/// How far a webhook's fact may predate a fact another source (a send's error, the doctor)
/// recorded and still replace it. Those are stamped by a node's clock in milliseconds, Meta's
/// events by Meta's clock in whole seconds: without the grace, Meta approving a template a
/// moment after a send was answered 132015 would lose to that answer, and the primary would
/// stay on its backup until the next event. A wrong replacement heals itself: the next send
/// Meta refuses records the template unusable again.
pub const CLOCK_GRACE_MS: i64 = 60_000;

impl HealthFact {
    /// Whether this fact replaces a stored one of the same (kind, subject, aspect) that became
    /// true at `stored_at_ms`, said by `stored_source`: unless the stored one is newer (ties go
    /// to the later call), with [`CLOCK_GRACE_MS`] for a webhook over another source.
    pub fn replaces(&self, stored_at_ms: i64, stored_source: &str) -> bool {
        let grace = if self.source == "webhook" && stored_source != "webhook" { CLOCK_GRACE_MS } else { 0 };
        stored_at_ms <= self.at_ms.saturating_add(grace)
    }
}

/// A management event as received, for deduplication and the dashboard's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthEvent {
    /// SHA-256 of the field, its canonical value and the entry's time: a replay has the same.
    pub hash: [u8; 32],
    pub field: String,
    /// A one-line summary (no secrets, no msisdn).
    pub summary: String,
    pub at_ms: i64,
    pub received_at_ms: i64,
}

/// A fact whose value changed, and the value it had (`None`: nothing was known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactChange {
    pub fact: HealthFact,
    pub previous: Option<String>,
}

/// What recording an event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthApplied {
    /// The event was recorded before: nothing changed.
    Duplicate,
    /// Recorded; these facts changed value (a fact older than the stored one, or with the same
    /// value, is not among them).
    Applied(Vec<FactChange>),
}

/// The sender's health, shared by every node on the database.
#[async_trait]
pub trait SenderHealthStore: Send + Sync {
    /// Records `event` (if given) and applies `facts`, atomically. An event whose hash is known
    /// changes nothing ([`HealthApplied::Duplicate`]). Each fact replaces the stored one of the
    /// same (kind, subject, aspect) unless that one is newer ([`HealthFact::replaces`]). Only the newest [`HEALTH_EVENTS_MAX`] events are kept.
    async fn apply_health(
        &self,
        event: Option<HealthEvent>,
        facts: Vec<HealthFact>,
        now_ms: i64,
    ) -> Result<HealthApplied>;
    /// Every stored fact (they are few: a handful of templates, numbers and accounts).
    async fn health_facts(&self) -> Result<Vec<HealthFact>>;
    /// The newest events, newest first.
    async fn health_events(&self, limit: usize) -> Result<Vec<HealthEvent>>;

    /// Records a template's status from any source (`doctor`, `send`, `webhook`) as of `at_ms`.
    async fn record_template_status(
        &self,
        name: &str,
        language: &str,
        status: &str,
        source: &str,
        at_ms: i64,
    ) -> Result<HealthApplied> {
        let fact = HealthFact {
            kind: HealthKind::Template,
            subject: template_subject(name, language),
            aspect: "status".into(),
            value: status.to_owned(),
            reason: None,
            at_ms,
            source: source.to_owned(),
        };
        self.apply_health(None, vec![fact], at_ms).await
    }
}
