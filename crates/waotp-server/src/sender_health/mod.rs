//! The sender's health: what Meta's management webhooks (and a send's template errors, and
//! the doctor) say about the templates, the number and the account, kept in the store so that
//! every node and every restart sees it, and read on the hot path from an in-process copy
//! refreshed every second (and at once on the node that applied a change). From it: which
//! template a message goes out as ([`failover`]), the messaging limit learned from Meta, the
//! `/metrics` gauges, the dashboard's WhatsApp page, and the operator alerts ([`alerts`]).
//! Only the configured account's news are applied ([`account`]).

pub mod account;
pub mod alerts;
pub mod facts;
pub mod failover;

use std::collections::{HashMap, HashSet};
use std::fmt::{self, Write as _};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use waotp_store::{HealthApplied, HealthEvent, HealthFact, HealthKind, Store, StoreError};
use waotp_whatsapp::management_events::{self, Change};

use self::account::{Followed, Whose};
use crate::metrics::Metrics;
use crate::Clock;

/// How often each node reads the health again from the store.
pub const REFRESH: Duration = Duration::from_secs(1);
/// Templates (name and language) shown in `/metrics` at most.
const MAX_GAUGE_TEMPLATES: usize = 50;
/// Unknown field names logged at most (each once).
const MAX_LOGGED_FIELDS: usize = 64;

/// The health as last read: every fact of the followed sender, by subject.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub facts: Vec<HealthFact>,
    /// name → language → status, for the hot path (looked up by `&str`: no key is built).
    statuses: HashMap<String, HashMap<String, String>>,
    /// The newest messaging limit heard of for the followed account or its number
    /// ([`Followed::limits`]): `Some(None)` unlimited.
    limit: Option<Option<u64>>,
}

impl Snapshot {
    fn of(mut facts: Vec<HealthFact>, followed: &Followed) -> Snapshot {
        facts.retain(|f| followed.owns(f));
        let mut statuses = HashMap::new();
        let mut newest_limit: Option<(i64, Option<u64>)> = None;
        for f in &facts {
            match (f.kind, f.aspect.as_str()) {
                (HealthKind::Template, "status") => {
                    if let Some((name, lang)) = f.subject.split_once('/') {
                        statuses
                            .entry(name.to_owned())
                            .or_insert_with(HashMap::new)
                            .insert(lang.to_owned(), f.value.clone());
                    }
                }
                (_, "messaging_limit") if followed.limits(f) && newest_limit.is_none_or(|(at, _)| f.at_ms >= at) => {
                    let limit = facts::limit_value(&f.value);
                    newest_limit = Some((f.at_ms, (limit != u64::MAX).then_some(limit)));
                }
                _ => {}
            }
        }
        Snapshot { facts, statuses, limit: newest_limit.map(|(_, l)| l) }
    }

    /// A template's status, if Meta (or a send) said one.
    pub fn status(&self, name: &str, language: &str) -> Option<&str> {
        self.statuses.get(name)?.get(language).map(String::as_str)
    }

    /// Whether a template may be sent: unknown templates are (Meta decides).
    pub fn usable(&self, name: &str, language: &str) -> bool {
        self.status(name, language).is_none_or(facts::usable_status)
    }
}

pub struct SenderHealth {
    store: Arc<dyn Store>,
    clock: Clock,
    metrics: Arc<Metrics>,
    snapshot: RwLock<Arc<Snapshot>>,
    alerts: Option<alerts::Alerts>,
    /// (primary, language) → the template the last message of it went out as.
    in_use: Mutex<HashMap<(String, String), String>>,
    logged_fields: Mutex<HashSet<String>>,
    /// Whose news are the sender's health: management events of any other account change
    /// nothing.
    followed: Followed,
}

impl SenderHealth {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Clock,
        metrics: Arc<Metrics>,
        alerts: Option<alerts::Alerts>,
        followed: Followed,
    ) -> Arc<SenderHealth> {
        Arc::new(SenderHealth {
            store,
            clock,
            metrics,
            snapshot: RwLock::default(),
            alerts,
            in_use: Mutex::default(),
            logged_fields: Mutex::default(),
            followed,
        })
    }

    /// The health as last read (cheap: a reference count).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.read().expect("health snapshot").clone()
    }

    /// Reads the health from the store again.
    pub async fn refresh(&self) -> Result<(), StoreError> {
        let facts = self.store.health_facts().await?;
        *self.snapshot.write().expect("health snapshot") = Arc::new(Snapshot::of(facts, &self.followed));
        Ok(())
    }

    async fn refresh_or_log(&self) {
        if let Err(e) = self.refresh().await {
            tracing::warn!(error = %e, "cannot read the sender's health back; the next refresh will");
        }
    }

    /// Refreshes every [`REFRESH`], for as long as the server runs.
    pub fn start(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let health = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(REFRESH);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                if let Err(e) = health.refresh().await {
                    tracing::debug!(error = %e, "cannot read the sender's health; will retry");
                }
            }
        })
    }

    /// The messaging limit Meta gave (recipients per 24 h): `None` if none was heard of,
    /// `Some(None)` for unlimited.
    pub fn learned_limit(&self) -> Option<Option<u64>> {
        self.snapshot().limit
    }

    /// Applies a signed webhook body's management changes (its `messages` changes are not
    /// read here): each recorded once, its facts applied in time order, the alerts of what
    /// changed queued. An error is the store's: the webhook should be answered 500 (Meta
    /// retries).
    pub async fn apply_webhook(&self, payload: &serde_json::Value) -> Result<(), StoreError> {
        let events = management_events::events_of(payload);
        let now = self.clock.now_ms();
        let mut changed = false;
        for e in events {
            let field = known_field(&e.field);
            if matches!(e.change, Change::Unknown) {
                self.log_unknown(&e.field);
                self.metrics.management_event(field, "ignored");
                continue;
            }
            let whose = self.followed.whose(&e.entry_id);
            if whose != Whose::Ours {
                self.not_ours(whose, field, &e.entry_id);
                continue;
            }
            if let Change::TemplateStatus { event, .. } = &e.change {
                if management_events::template_status_usable(event).is_none() {
                    // Kept as news (not as the template's status): logged once.
                    self.log_unknown(&format!("{}: {event}", e.field));
                }
            }
            // Meta's time, but never ahead of ours: a fact stamped in the future would outrank
            // every later word on it.
            let at_ms = e.time_s.map_or(now, |s| s.saturating_mul(1000).min(now));
            let facts = facts::facts_of(&e, at_ms);
            let event = HealthEvent {
                hash: e.hash(now.div_euclid(1000)),
                field: e.field.clone(),
                summary: summary(&e),
                at_ms,
                received_at_ms: now,
            };
            match self.store.apply_health(Some(event), facts, now).await? {
                HealthApplied::Duplicate => self.metrics.management_event(field, "duplicate"),
                HealthApplied::Applied(changes) => {
                    self.metrics.management_event(field, "applied");
                    changed |= !changes.is_empty();
                    for c in &changes {
                        tracing::info!(
                            kind = c.fact.kind.as_str(),
                            subject = %c.fact.subject,
                            aspect = %c.fact.aspect,
                            old = c.previous.as_deref().unwrap_or("-"),
                            new = %c.fact.value,
                            "the sender's health changed"
                        );
                    }
                    self.alert(&changes);
                }
            }
        }
        if changed {
            // Applied and committed: a failed read-back must not have Meta send it again (the
            // next periodic refresh catches up).
            self.refresh_or_log().await;
        }
        Ok(())
    }

    /// Records a template's status from any source (`doctor`, `send`), now; alerts and
    /// refreshes this node's copy if it changed.
    pub async fn record_template_status(
        &self,
        name: &str,
        language: &str,
        status: &str,
        source: &str,
    ) -> Result<(), StoreError> {
        let applied = self.store.record_template_status(name, language, status, source, self.clock.now_ms()).await?;
        if let HealthApplied::Applied(changes) = applied {
            if !changes.is_empty() {
                self.alert(&changes);
                self.refresh_or_log().await;
            }
        }
        Ok(())
    }

    fn alert(&self, changes: &[waotp_store::FactChange]) {
        let Some(alerts) = &self.alerts else { return };
        for c in changes {
            if let Some(kind) = facts::alert_kind(c) {
                alerts.send(alerts::Alert::of(kind, c));
            }
        }
    }

    /// Counts an event of an account waotp does not follow, and logs it once (per account).
    fn not_ours(&self, whose: Whose, field: &'static str, entry_id: &str) {
        match whose {
            Whose::Ours => {}
            Whose::OtherAccount => {
                self.metrics.management_event(field, "other_account");
                if self.first_time(&format!("\0account {entry_id}")) {
                    tracing::info!(
                        account = entry_id,
                        "a management webhook of another WhatsApp Business Account than whatsapp_waba_id: \
                         acknowledged and ignored"
                    );
                }
            }
            Whose::NoAccountKnown => {
                self.metrics.management_event(field, "unknown_account");
                if self.first_time("\0no account") {
                    tracing::warn!(
                        account = entry_id,
                        "Meta's management webhooks (templates, number, account, messaging limit) are ignored: \
                         whatsapp_waba_id is not set; set it to the number's WhatsApp Business Account"
                    );
                }
            }
        }
    }

    fn log_unknown(&self, field: &str) {
        if self.first_time(field) {
            tracing::info!(field, "a WhatsApp webhook field waotp does not read: acknowledged and ignored");
        }
    }

    /// Whether a line is logged for the first time (at most [`MAX_LOGGED_FIELDS`] are kept).
    fn first_time(&self, what: &str) -> bool {
        let mut logged = self.logged_fields.lock().expect("logged fields");
        logged.len() < MAX_LOGGED_FIELDS && logged.insert(what.to_owned())
    }

    /// The gauges of `/metrics`.
    fn encode_gauges(&self, encoder: &mut DescriptorEncoder) -> fmt::Result {
        let snapshot = self.snapshot();
        let templates: Vec<&HealthFact> = snapshot
            .facts
            .iter()
            .filter(|f| f.kind == HealthKind::Template && f.aspect == "status")
            .take(MAX_GAUGE_TEMPLATES)
            .collect();
        if !templates.is_empty() {
            let mut usable = encoder.encode_descriptor(
                "waotp_whatsapp_template_usable",
                "Whether a template may be sent (1) or not (0), by name and language, as Meta last said.",
                None,
                MetricType::Gauge,
            )?;
            for f in &templates {
                let (name, lang) = f.subject.split_once('/').unwrap_or((&f.subject, ""));
                let labels = [("name", name), ("language", lang), ("status", f.value.as_str())];
                ConstGauge::new(i64::from(facts::usable_status(&f.value))).encode(usable.encode_family(&labels)?)?;
            }
        }
        let numbers: Vec<&HealthFact> = snapshot
            .facts
            .iter()
            .filter(|f| f.kind == HealthKind::Number && f.aspect == "quality_rating")
            .take(MAX_GAUGE_TEMPLATES)
            .collect();
        if !numbers.is_empty() {
            let mut quality = encoder.encode_descriptor(
                "waotp_whatsapp_number_quality",
                "A phone number's quality rating: GREEN 3, YELLOW 2, RED 1, unknown 0.",
                None,
                MetricType::Gauge,
            )?;
            for f in numbers {
                let labels = [("phone", f.subject.as_str())];
                ConstGauge::new(facts::quality_rank(&f.value)).encode(quality.encode_family(&labels)?)?;
            }
        }
        if let Some(limit) = snapshot.limit {
            let metric = encoder.encode_descriptor(
                "waotp_whatsapp_messaging_limit",
                "Unique recipients per 24 h Meta allows the sender (-1: unlimited), as last heard.",
                None,
                MetricType::Gauge,
            )?;
            ConstGauge::new(limit.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX))).encode(metric)?;
        }
        Ok(())
    }
}

/// A field name as a metric label: the fields waotp reads, or `other`.
fn known_field(field: &str) -> &'static str {
    management_events::FIELDS.iter().find(|f| **f == field).copied().unwrap_or("other")
}

/// One line for the dashboard's list of events.
fn summary(e: &management_events::ManagementEvent) -> String {
    let mut s = String::new();
    let _ = match &e.change {
        Change::TemplateStatus { template, event, reason, .. } => write!(
            s,
            "template {} ({}) {event}{}",
            template.name,
            template.language,
            reason.as_deref().filter(|r| *r != "NONE").map(|r| format!(": {r}")).unwrap_or_default()
        ),
        Change::TemplateQuality { template, previous, new } => write!(
            s,
            "template {} ({}) quality {} → {new}",
            template.name,
            template.language,
            previous.as_deref().unwrap_or("?")
        ),
        Change::TemplateCategory { template, previous, new, correct } => match correct {
            Some(c) => {
                write!(s, "template {} ({}) category {new} becomes {c} within 24 h", template.name, template.language)
            }
            None => write!(
                s,
                "template {} ({}) category {} → {new}",
                template.name,
                template.language,
                previous.as_deref().unwrap_or("?")
            ),
        },
        Change::NumberQuality { number, event, business_limit, number_limit, .. } => {
            let limit = business_limit.as_deref().or(number_limit.as_deref());
            write!(s, "number {number} {event}{}", limit.map(|l| format!(", limit {l}")).unwrap_or_default())
        }
        Change::Capability { limit } => write!(s, "business limit {}", limit.as_deref().unwrap_or("?")),
        Change::Account { event, violation, ban_state, .. } => write!(
            s,
            "account {event}{}{}",
            violation.as_deref().map(|v| format!(" {v}")).unwrap_or_default(),
            ban_state.as_deref().map(|b| format!(" {b}")).unwrap_or_default()
        ),
        Change::AccountAlert { severity, status, alert_type, .. } => {
            write!(s, "alert {alert_type} {severity} {status}")
        }
        Change::Unknown => write!(s, "{}", e.field),
    };
    facts::clip(s)
}

/// `/metrics` reads the gauges at each scrape.
impl Collector for SenderHealth {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        self.encode_gauges(&mut encoder)
    }
}

impl fmt::Debug for SenderHealth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SenderHealth").field("facts", &self.snapshot().facts.len()).finish_non_exhaustive()
    }
}
