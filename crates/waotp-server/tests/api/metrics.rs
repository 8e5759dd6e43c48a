//! `/metrics` as a scraper sees it: parsed by a standard exposition parser, every family
//! described.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use prometheus_parse::{LineInfo, Scrape, Value};
use serde_json::json;

use waotp_test_support::app::*;
use waotp_test_support::receiver::Receiver;

/// The metrics listener of `app`, on its own port as `metrics_listen` serves it.
async fn metrics_listener(app: &TestApp) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/metrics", listener.local_addr().unwrap());
    let router = waotp_server::metrics::router(app.state.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}

/// One scrape: (content type, body).
async fn scrape(http: &reqwest::Client, url: &str, accept: Option<&str>) -> (String, String) {
    let mut req = http.get(url);
    if let Some(accept) = accept {
        req = req.header("accept", accept);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
    (content_type, res.text().await.unwrap())
}

/// The families of a classic text exposition by name, with their type, as the parser reads
/// the `# TYPE` lines (a histogram under its own name, not its `_bucket` series).
fn types(text: &str) -> BTreeMap<String, prometheus_parse::SampleType> {
    text.lines()
        .filter_map(|line| match LineInfo::parse(line) {
            LineInfo::Type { metric_name, metric_alias, sample_type } => {
                Some((metric_alias.unwrap_or(metric_name), sample_type))
            }
            _ => None,
        })
        .collect()
}

fn counter(scrape: &Scrape, family: &str, label: (&str, &str)) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == family && s.labels.get(label.0) == Some(label.1))
        .map(|s| match s.value {
            Value::Counter(n) => n,
            ref other => panic!("{family} is a {other:?}, not a counter"),
        })
        .sum()
}

/// Acceptance: after sends, verifies, refusals, a callback and a pumping signal in monitor
/// mode, the scrape parses, every sample belongs to a family with `# HELP` and `# TYPE`
/// (the refusal and signal families included), and the OpenMetrics form (what Prometheus
/// asks for) describes the same families and ends with `# EOF`.
#[tokio::test]
async fn every_metrics_family_has_help_and_type() {
    let app = spawn_app().await;
    let url = metrics_listener(&app).await;
    let rx = Receiver::start().await;

    // A send with a callback, delivered and verified; a wrong code.
    let sent = app.send(json!({ "msisdn": MSISDN, "callback_url": format!("{}/cb", rx.base) })).await;
    assert_eq!(sent.status, 201);
    app.wait_inbox(MSISDN, 1).await;
    assert_ne!(app.verify(json!({ "msisdn": MSISDN, "otp": "000000" })).await.status, 200);
    assert_eq!(app.verify(json!({ "msisdn": MSISDN, "otp": sent.otp() })).await.status, 200);
    // A burst of sequential numbers: a pumping signal, monitored (the default), not refused.
    for i in 0..12 {
        assert_eq!(app.send(send_body(&format!("62812345678{i:02}"))).await.status, 201);
    }
    // No quota left: a refusal.
    assert!(app.state.store.set_quota(app.app_id, Some(0)).await.unwrap());
    app.state.invalidate_app(app.app_id);
    assert_eq!(app.send(send_body("6281399990001")).await.status, 403);

    let (content_type, text) = eventually("a delivered callback counted", Duration::from_secs(15), || async {
        let (content_type, text) = scrape(&app.http, &url, None).await;
        if text.contains("waotp_callback_attempts_total{result=\"delivered\"") {
            Ok((content_type, text))
        } else {
            Err(text)
        }
    })
    .await;
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");

    // Every line is a comment or a sample the parser reads.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        match LineInfo::parse(line) {
            LineInfo::Sample { value, .. } => assert!(value.parse::<f64>().is_ok(), "{line}"),
            other => panic!("not a sample: {line} ({other:?})"),
        }
    }
    let parsed = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let types = types(&text);
    let histograms: BTreeSet<&str> = types
        .iter()
        .filter(|(_, t)| **t == prometheus_parse::SampleType::Histogram)
        .map(|(name, _)| name.as_str())
        .collect();
    for (family, kind) in &types {
        assert!(parsed.docs.contains_key(family), "{family} ({kind:?}) has no # HELP in\n{text}");
    }
    for sample in &parsed.samples {
        // The parser types a sample by its family's `# TYPE`; a histogram's `_sum` and
        // `_count` are the only series it leaves untyped.
        let family = match sample.value {
            Value::Untyped(_) => {
                let base = sample.metric.strip_suffix("_sum").or_else(|| sample.metric.strip_suffix("_count"));
                base.filter(|b| histograms.contains(b)).unwrap_or_else(|| {
                    panic!("{} has no # TYPE in\n{text}", sample.metric);
                })
            }
            _ => sample.metric.as_str(),
        };
        assert!(types.contains_key(family) && parsed.docs.contains_key(family), "{family} in\n{text}");
    }
    for family in [
        "waotp_sends_total",
        "waotp_verifies_total",
        "waotp_refusals_total",
        "waotp_pumping_signals_total",
        "waotp_callback_attempts_total",
        "waotp_channel_delivery_seconds",
        "waotp_delivery_queue",
        "waotp_callbacks_pending",
        "waotp_sessions",
    ] {
        assert!(parsed.samples.iter().any(|s| s.metric == family), "no {family} sample in\n{text}");
    }
    let id = app.app_id.to_string();
    assert_eq!(counter(&parsed, "waotp_sends_total", ("outcome", "accepted")), 13.0);
    assert_eq!(counter(&parsed, "waotp_sends_total", ("app_id", &id)), 14.0);
    assert_eq!(counter(&parsed, "waotp_verifies_total", ("outcome", "verified")), 1.0);
    assert_eq!(counter(&parsed, "waotp_verifies_total", ("outcome", "wrong_code")), 1.0);
    assert_eq!(counter(&parsed, "waotp_refusals_total", ("reason", "quota_exhausted")), 1.0);
    assert!(counter(&parsed, "waotp_pumping_signals_total", ("rule", "sequential_numbers")) >= 1.0);
    assert!(counter(&parsed, "waotp_callback_attempts_total", ("result", "delivered")) >= 1.0);
    // Never a msisdn in a label.
    assert!(!text.contains("62812") && !text.contains("62813"));

    // What Prometheus asks for: OpenMetrics, with the same families (a counter's family is
    // named without `_total` there).
    let prometheus_accept = "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1";
    let (content_type, open) = scrape(&app.http, &url, Some(prometheus_accept)).await;
    assert_eq!(content_type, "application/openmetrics-text; version=1.0.0; charset=utf-8");
    assert!(open.ends_with("# EOF\n"), "{open}");
    let described = |prefix: &str| -> BTreeSet<String> {
        open.lines()
            .filter_map(|l| l.strip_prefix(prefix))
            .filter_map(|l| l.split(' ').next())
            .map(str::to_owned)
            .collect()
    };
    let expected: BTreeSet<String> = types.keys().map(|f| f.strip_suffix("_total").unwrap_or(f).to_owned()).collect();
    assert_eq!(described("# TYPE "), expected);
    assert_eq!(described("# HELP "), expected);
}
