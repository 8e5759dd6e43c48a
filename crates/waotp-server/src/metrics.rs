//! Prometheus metrics, served on their own listener (`--metrics-listen`). Labels stay
//! low-cardinality: an app id at most, never a msisdn.
//!
//! Built on `prometheus-client` (the Prometheus project's Rust client) rather than `metrics` +
//! `metrics-exporter-prometheus`: its registry is a value each server owns (tests run many
//! servers in one process, each with its own counts, where `metrics` wants one global
//! recorder), its families are typed label sets (an app id is a `Uuid` hashed as it is, so the
//! hot path builds no string), and it writes both the OpenMetrics and the classic text format,
//! every family with its `# HELP` and `# TYPE`.

use std::fmt::{self, Write};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    text, DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder,
};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::guards::Counts;
use crate::AppState;

/// Upper bounds (seconds) of the channel latency histogram.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// The `Content-Type` of the OpenMetrics text format, served to scrapers that ask for it.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// An app id as a label value, written (hyphenated) only when scraped.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
struct AppId(uuid::Uuid);

impl EncodeLabelValue for AppId {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> fmt::Result {
        write!(encoder, "{}", self.0)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AppOutcome {
    app_id: AppId,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FieldOutcome {
    field: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CategoryCountry {
    category: &'static str,
    country: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Direction {
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallbackAttempt {
    result: &'static str,
    attempt: u32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelOutcome {
    channel: &'static str,
    outcome: &'static str,
}

fn delivery_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// This process's counters and histograms, and the registry that writes them.
pub struct Metrics {
    registry: Registry,
    sends: Family<AppOutcome, Counter>,
    verifies: Family<AppOutcome, Counter>,
    callback_attempts: Family<CallbackAttempt, Counter>,
    whatsapp_events: Family<Outcome, Counter>,
    whatsapp_webhooks_refused: Family<Reason, Counter>,
    whatsapp_early_events_evicted: Counter,
    channel_delivery: Family<ChannelOutcome, Histogram>,
    connections_closed: Family<Reason, Counter>,
    management_events: Family<FieldOutcome, Counter>,
    template_switches: Family<Direction, Counter>,
    billable_messages: Family<CategoryCountry, Counter>,
}

impl Metrics {
    /// The metrics of one server; refusals and monitored pumping signals are counted in
    /// `refusals` and `signals` (which also throttle their log lines) and read from there.
    pub fn new(refusals: Arc<Counts>, signals: Arc<Counts>) -> Self {
        let m = Metrics {
            registry: Registry::default(),
            sends: Family::default(),
            verifies: Family::default(),
            callback_attempts: Family::default(),
            whatsapp_events: Family::default(),
            whatsapp_webhooks_refused: Family::default(),
            whatsapp_early_events_evicted: Counter::default(),
            channel_delivery: Family::new_with_constructor(delivery_histogram),
            connections_closed: Family::default(),
            management_events: Family::default(),
            template_switches: Family::default(),
            billable_messages: Family::default(),
        };
        let mut registry = Registry::default();
        // Counter names go without `_total`: the encoder adds it.
        registry.register(
            "waotp_sends",
            "Production sends by app and outcome (accepted, replayed, refused)",
            m.sends.clone(),
        );
        registry.register("waotp_verifies", "Production verifies by app and outcome", m.verifies.clone());
        registry.register_collector(Box::new(Tally {
            name: "waotp_refusals",
            help: "Refused sends and verifies by reason code.",
            label: "reason",
            counts: refusals,
        }));
        registry.register_collector(Box::new(Tally {
            name: "waotp_pumping_signals",
            help: "Pumping rules that fired in monitor mode, by rule.",
            label: "rule",
            counts: signals,
        }));
        registry.register(
            "waotp_whatsapp_management_events",
            "Meta's management webhook changes by field and outcome (applied, duplicate, ignored, other_account, unknown_account)",
            m.management_events.clone(),
        );
        registry.register(
            "waotp_whatsapp_template_switches",
            "Switches of a template's messages to a backup template (to_backup) and back (to_primary)",
            m.template_switches.clone(),
        );
        registry.register(
            "waotp_callback_attempts",
            "Callback attempts by result and attempt number",
            m.callback_attempts.clone(),
        );
        registry.register(
            "waotp_whatsapp_events",
            "WhatsApp status events by outcome: applied to their session, or kept until the send records its message id",
            m.whatsapp_events.clone(),
        );
        registry.register(
            "waotp_whatsapp_webhooks_refused",
            "WhatsApp webhooks refused before anything was applied: unsigned, bad_signature, too_large",
            m.whatsapp_webhooks_refused.clone(),
        );
        registry.register(
            "waotp_whatsapp_early_events_evicted",
            "Kept WhatsApp events dropped, the oldest first, to stay within the store's bound",
            m.whatsapp_early_events_evicted.clone(),
        );
        registry.register(
            "waotp_channel_delivery_seconds",
            "Time a channel took to deliver a message, by channel and outcome (the local inbox: 0 when the message was stored with its send)",
            m.channel_delivery.clone(),
        );
        registry.register(
            "waotp_http_connections_closed",
            "Connections waotp closed for a limit: header_timeout, idle_timeout, over_limit or over_address_limit (answered 503)",
            m.connections_closed.clone(),
        );
        registry.register(
            "waotp_whatsapp_billable_messages",
            "Billable WhatsApp messages recorded from Meta's pricing, by category (Meta's known ones, else other) and \
             the recipient's country (ISO 3166-1 alpha-2, or unknown)",
            m.billable_messages.clone(),
        );
        Metrics { registry, ..m }
    }

    /// A production send of an app: `accepted`, `replayed` or `refused`.
    pub fn send(&self, app_id: uuid::Uuid, outcome: &'static str) {
        self.sends.get_or_create(&AppOutcome { app_id: AppId(app_id), outcome }).inc();
    }

    /// A production verify of an app, by outcome (`verified`, `wrong_code`, ...).
    pub fn verify(&self, app_id: uuid::Uuid, outcome: &'static str) {
        self.verifies.get_or_create(&AppOutcome { app_id: AppId(app_id), outcome }).inc();
    }

    /// A callback attempt (numbered from 1) and its result.
    pub fn callback_attempt(&self, result: &'static str, attempt: u32) {
        self.callback_attempts.get_or_create(&CallbackAttempt { result, attempt }).inc();
    }

    /// A WhatsApp status event `applied` or `kept`.
    pub fn whatsapp_event(&self, outcome: &'static str) {
        self.whatsapp_events.get_or_create(&Outcome { outcome }).inc();
    }

    /// A WhatsApp webhook refused before anything was applied.
    pub fn whatsapp_webhook_refused(&self, reason: &'static str) {
        self.whatsapp_webhooks_refused.get_or_create(&Reason { reason }).inc();
    }

    /// Kept WhatsApp events dropped to stay within the store's bound.
    pub fn whatsapp_early_events_evicted(&self, n: u64) {
        self.whatsapp_early_events_evicted.inc_by(n);
    }

    /// A connection closed for a limit.
    pub fn connection_closed(&self, reason: &'static str) {
        self.connections_closed.get_or_create(&Reason { reason }).inc();
    }

    /// A management webhook change, by field (`other` for fields waotp does not read).
    pub fn management_event(&self, field: &'static str, outcome: &'static str) {
        self.management_events.get_or_create(&FieldOutcome { field, outcome }).inc();
    }

    /// A template's messages switched to a backup (`to_backup`) or back (`to_primary`).
    pub fn template_switch(&self, direction: &'static str) {
        self.template_switches.get_or_create(&Direction { direction }).inc();
    }

    /// A billable message recorded: its category as a label of a small known set (else
    /// `other`), its country a region of the numbering metadata (else `unknown`), so the
    /// series stay a few hundred at most.
    pub fn billable_message(&self, category: &str, country: Option<&'static str>) {
        let labels = CategoryCountry {
            category: waotp_core::MessagePricing::category_label(category),
            country: country.unwrap_or("unknown"),
        };
        self.billable_messages.get_or_create(&labels).inc();
    }

    /// The time a channel took to deliver a message.
    pub fn delivery(&self, channel: &'static str, outcome: &'static str, took: Duration) {
        self.channel_delivery.get_or_create(&ChannelOutcome { channel, outcome }).observe(took.as_secs_f64());
    }

    /// The exposition in `format`, with `readings` (values read at scrape time) after the
    /// process's own counters.
    pub fn render(&self, readings: Readings, format: Format) -> String {
        let mut now = Registry::default();
        now.register_collector(Box::new(readings));
        let mut out = String::new();
        let written = match format {
            Format::OpenMetrics => text::encode_registry(&mut out, &self.registry)
                .and_then(|()| text::encode_registry(&mut out, &now))
                .and_then(|()| text::encode_eof(&mut out)),
            Format::Prometheus => prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
                .and_then(|()| prometheus_client::encoding::prometheus_text::encode(&mut out, &now)),
        };
        written.expect("writing to a String does not fail");
        out
    }

    /// The process's counters and histograms in the classic text format (for tests).
    pub fn text(&self) -> String {
        self.render(Readings::default(), Format::Prometheus)
    }
}

/// The text formats `/metrics` speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 (`application/openmetrics-text`), what Prometheus asks for first.
    OpenMetrics,
    /// The classic Prometheus text format 0.0.4 (`text/plain`), for everything else.
    Prometheus,
}

impl Format {
    /// The format an `Accept` header asks for.
    pub fn accepted(headers: &HeaderMap) -> Format {
        let accept = headers.get_all(header::ACCEPT).iter().filter_map(|v| v.to_str().ok());
        if accept.into_iter().any(|v| v.contains("application/openmetrics-text")) {
            Format::OpenMetrics
        } else {
            Format::Prometheus
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => OPENMETRICS,
            Format::Prometheus => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        }
    }
}

/// Gauges read at scrape time; a reading that failed is left out rather than shown stale.
#[derive(Debug, Default)]
pub struct Readings {
    pub delivery_queue: Option<i64>,
    pub callbacks_pending: Option<i64>,
    /// Stored sessions by lifecycle status name.
    pub sessions: Option<Vec<(&'static str, i64)>>,
    /// The sender's health gauges (templates, number quality, messaging limit), written by
    /// the sender's health itself.
    pub sender_health: Option<Arc<dyn Collector>>,
}

impl Collector for Readings {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let mut gauge = |name, help, value: Option<i64>| -> fmt::Result {
            if let Some(value) = value {
                let metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
                ConstGauge::new(value).encode(metric)?;
            }
            Ok(())
        };
        gauge("waotp_delivery_queue", "Stored sessions waiting for the channel in this process.", self.delivery_queue)?;
        gauge(
            "waotp_callbacks_pending",
            "Callbacks in the outbox not yet delivered or given up.",
            self.callbacks_pending,
        )?;
        if let Some(sessions) = &self.sessions {
            let mut metric = encoder.encode_descriptor(
                "waotp_sessions",
                "Stored sessions by lifecycle status.",
                None,
                MetricType::Gauge,
            )?;
            for (status, n) in sessions {
                let labels = [("status", *status)];
                ConstGauge::new(*n).encode(metric.encode_family(&labels)?)?;
            }
        }
        if let Some(health) = &self.sender_health {
            health.encode(encoder)?;
        }
        Ok(())
    }
}

/// A counter family kept by a [`Counts`] (refusals, pumping signals), read when scraped.
struct Tally {
    name: &'static str,
    help: &'static str,
    label: &'static str,
    counts: Arc<Counts>,
}

impl fmt::Debug for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tally").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Collector for Tally {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let mut metric = encoder.encode_descriptor(self.name, self.help, None, MetricType::Counter)?;
        for (value, n) in self.counts.snapshot() {
            let labels = [(self.label, value)];
            ConstCounter::new(n).encode(metric.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// The router of the metrics listener.
pub fn router(state: AppState) -> Router {
    Router::new().route("/metrics", get(scrape)).with_state(state)
}

async fn scrape(State(state): State<AppState>, headers: HeaderMap) -> impl IntoResponse {
    let readings = Readings {
        delivery_queue: Some(state.dispatch.depth()),
        callbacks_pending: state.store.pending_callbacks().await.ok().map(|n| n as i64),
        sessions: state
            .store
            .sessions_by_status()
            .await
            .ok()
            .map(|by_status| by_status.into_iter().map(|(status, n)| (status.name(), n as i64)).collect()),
        sender_health: Some(state.sender_health.clone()),
    };
    let format = Format::accepted(&headers);
    ([(header::CONTENT_TYPE, format.content_type())], state.metrics.render(readings, format))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_in_both_formats() {
        let refusals = Arc::new(Counts::new());
        refusals.add("quota_exhausted");
        let m = Metrics::new(refusals, Arc::default());
        let app = uuid::Uuid::nil();
        m.send(app, "accepted");
        m.send(app, "accepted");
        m.callback_attempt("delivered", 1);
        m.delivery("x", "sent", Duration::from_millis(3));
        let readings = || Readings { delivery_queue: Some(4), ..Readings::default() };
        let text = m.render(readings(), Format::Prometheus);
        assert!(text.contains("# TYPE waotp_sends_total counter\n"), "{text}");
        assert!(text.contains(&format!("waotp_sends_total{{app_id=\"{app}\",outcome=\"accepted\"}} 2\n")));
        assert!(text.contains("# HELP waotp_refusals_total Refused sends and verifies by reason code.\n"), "{text}");
        assert!(text.contains("waotp_refusals_total{reason=\"quota_exhausted\"} 1\n"));
        assert!(text.contains("waotp_callback_attempts_total{result=\"delivered\",attempt=\"1\"} 1\n"));
        assert!(
            text.contains("waotp_channel_delivery_seconds_bucket{channel=\"x\",outcome=\"sent\",le=\"0.0025\"} 0\n")
        );
        assert!(text.contains("waotp_channel_delivery_seconds_bucket{channel=\"x\",outcome=\"sent\",le=\"0.005\"} 1\n"));
        assert!(text.contains("waotp_channel_delivery_seconds_count{channel=\"x\",outcome=\"sent\"} 1\n"));
        assert!(text.contains("# TYPE waotp_delivery_queue gauge\nwaotp_delivery_queue 4\n"), "{text}");
        assert!(!text.contains("# EOF"));

        let open = m.render(readings(), Format::OpenMetrics);
        assert!(open.contains("# TYPE waotp_sends counter\n"), "{open}");
        assert!(open.contains(&format!("waotp_sends_total{{app_id=\"{app}\",outcome=\"accepted\"}} 2\n")));
        assert!(open.contains("waotp_delivery_queue 4\n"));
        assert!(open.ends_with("# EOF\n"), "{open}");
    }

    #[test]
    fn the_format_follows_the_accept_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(Format::accepted(&headers), Format::Prometheus);
        // What Prometheus sends.
        headers.insert(
            header::ACCEPT,
            "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1"
                .parse()
                .unwrap(),
        );
        assert_eq!(Format::accepted(&headers), Format::OpenMetrics);
    }
}
