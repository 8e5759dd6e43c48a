//! Prometheus metrics, served on their own listener (`--metrics-listen`). Labels stay
//! low-cardinality: an app id at most, never a msisdn.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::AppState;

/// Upper bounds (seconds) of the channel latency histogram.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// What each metric is, for `# HELP` and `# TYPE`.
const DESCRIPTIONS: &[(&str, &str, &str)] = &[
    ("waotp_sends_total", "counter", "Production sends by app and outcome (accepted, replayed, refused)."),
    ("waotp_verifies_total", "counter", "Production verifies by app and outcome."),
    ("waotp_refusals_total", "counter", "Refused sends and verifies by reason code."),
    ("waotp_pumping_signals_total", "counter", "Pumping rules that fired in monitor mode, by rule."),
    ("waotp_callback_attempts_total", "counter", "Callback attempts by result and attempt number."),
    (
        "waotp_whatsapp_events_total",
        "counter",
        "WhatsApp status events by outcome: applied to their session, or kept until the send records its message id.",
    ),
    (
        "waotp_whatsapp_webhooks_refused_total",
        "counter",
        "WhatsApp webhooks refused before anything was applied: unsigned, bad_signature, too_large.",
    ),
    (
        "waotp_whatsapp_early_events_evicted_total",
        "counter",
        "Kept WhatsApp events dropped, the oldest first, to stay within the store's bound.",
    ),
    (
        "waotp_channel_delivery_seconds",
        "histogram",
        "Time a channel took to deliver a message, by channel and outcome.",
    ),
    (
        "waotp_http_connections_closed_total",
        "counter",
        "Connections waotp closed for a limit: header_timeout, idle_timeout, or over_limit (answered 503).",
    ),
    ("waotp_delivery_queue", "gauge", "Stored sessions waiting for the channel in this process."),
    ("waotp_callbacks_pending", "gauge", "Callbacks in the outbox not yet delivered or given up."),
    ("waotp_sessions", "gauge", "Stored sessions by lifecycle status."),
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    total: u64,
}

/// Counters and histograms, keyed by name and rendered labels.
#[derive(Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<(&'static str, String), u64>>,
    /// Counters of the hot path (sends, verifies), by app and outcome: no string is built per
    /// request; labels are written at scrape time.
    per_app: Mutex<BTreeMap<(&'static str, uuid::Uuid, &'static str), u64>>,
    histograms: Mutex<BTreeMap<(&'static str, String), Histogram>>,
}

fn labels(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> =
        pairs.iter().map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))).collect();
    inner.join(",")
}

impl Metrics {
    pub fn inc(&self, name: &'static str, pairs: &[(&str, &str)]) {
        self.add(name, pairs, 1);
    }

    pub fn add(&self, name: &'static str, pairs: &[(&str, &str)], n: u64) {
        *self.counters.lock().expect("metrics").entry((name, labels(pairs))).or_default() += n;
    }

    /// Counts one event of an app with an outcome (`app_id` and `outcome` labels).
    pub fn inc_app(&self, name: &'static str, app_id: uuid::Uuid, outcome: &'static str) {
        *self.per_app.lock().expect("metrics").entry((name, app_id, outcome)).or_default() += 1;
    }

    pub fn observe(&self, name: &'static str, pairs: &[(&str, &str)], took: Duration) {
        let secs = took.as_secs_f64();
        let mut histograms = self.histograms.lock().expect("metrics");
        let h = histograms.entry((name, labels(pairs))).or_default();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                h.counts[i] += 1;
            }
        }
        h.sum += secs;
        h.total += 1;
    }

    /// The text exposition format, with `gauges` (name, labels, value) read at scrape time.
    pub fn render(&self, gauges: &[(&'static str, String, f64)]) -> String {
        let mut out = String::new();
        let mut described = std::collections::BTreeSet::new();
        let mut describe = |out: &mut String, name: &str| {
            if described.insert(name.to_owned()) {
                if let Some((_, kind, help)) = DESCRIPTIONS.iter().find(|(n, ..)| *n == name) {
                    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
                }
            }
        };
        for ((name, l), value) in self.counters.lock().expect("metrics").iter() {
            describe(&mut out, name);
            let _ = writeln!(out, "{name}{{{l}}} {value}");
        }
        for ((name, app_id, outcome), value) in self.per_app.lock().expect("metrics").iter() {
            describe(&mut out, name);
            let _ = writeln!(out, "{name}{{app_id=\"{app_id}\",outcome=\"{outcome}\"}} {value}");
        }
        for ((name, l), h) in self.histograms.lock().expect("metrics").iter() {
            describe(&mut out, name);
            let sep = if l.is_empty() { "" } else { "," };
            for (bound, count) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(out, "{name}_bucket{{{l}{sep}le=\"{bound}\"}} {count}");
            }
            let _ = writeln!(out, "{name}_bucket{{{l}{sep}le=\"+Inf\"}} {}", h.total);
            let _ = writeln!(out, "{name}_sum{{{l}}} {}", h.sum);
            let _ = writeln!(out, "{name}_count{{{l}}} {}", h.total);
        }
        for (name, l, value) in gauges {
            describe(&mut out, name);
            let _ = writeln!(out, "{name}{{{l}}} {value}");
        }
        out
    }
}

/// The router of the metrics listener.
pub fn router(state: AppState) -> Router {
    Router::new().route("/metrics", get(scrape)).with_state(state)
}

async fn scrape(State(state): State<AppState>) -> impl IntoResponse {
    let mut gauges = vec![("waotp_delivery_queue", String::new(), state.dispatch.depth() as f64)];
    if let Ok(pending) = state.store.pending_callbacks().await {
        gauges.push(("waotp_callbacks_pending", String::new(), pending as f64));
    }
    if let Ok(by_status) = state.store.sessions_by_status().await {
        for (status, n) in by_status {
            gauges.push(("waotp_sessions", labels(&[("status", status.name())]), n as f64));
        }
    }
    let mut text = state.metrics.render(&gauges);
    for (reason, n) in state.refusals.snapshot() {
        let _ = writeln!(text, "waotp_refusals_total{{reason=\"{reason}\"}} {n}");
    }
    for (rule, n) in state.signals.snapshot() {
        let _ = writeln!(text, "waotp_pumping_signals_total{{rule=\"{rule}\"}} {n}");
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_exposition_format() {
        let m = Metrics::default();
        let app = uuid::Uuid::nil();
        m.inc_app("waotp_sends_total", app, "accepted");
        m.inc_app("waotp_sends_total", app, "accepted");
        m.inc("waotp_callback_attempts_total", &[("result", "delivered"), ("attempt", "1")]);
        m.observe("waotp_channel_delivery_seconds", &[("channel", "x")], Duration::from_millis(3));
        let text = m.render(&[("waotp_delivery_queue", String::new(), 4.0)]);
        assert!(text.contains("# TYPE waotp_sends_total counter\n"));
        assert!(text.contains(&format!("waotp_sends_total{{app_id=\"{app}\",outcome=\"accepted\"}} 2\n")));
        assert!(text.contains("waotp_callback_attempts_total{result=\"delivered\",attempt=\"1\"} 1\n"));
        assert!(text.contains("waotp_channel_delivery_seconds_bucket{channel=\"x\",le=\"0.0025\"} 0\n"));
        assert!(text.contains("waotp_channel_delivery_seconds_bucket{channel=\"x\",le=\"0.005\"} 1\n"));
        assert!(text.contains("waotp_channel_delivery_seconds_count{channel=\"x\"} 1\n"));
        assert!(text.contains("waotp_delivery_queue{} 4\n"));
    }
}
