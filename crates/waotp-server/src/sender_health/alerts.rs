//! Operator alerts: a signed POST (Standard Webhooks, as callbacks are signed) to `alert_url`
//! when the sender's health changes for the worse (a template unusable, a number's quality
//! down, a messaging limit changed, an account restricted) — one per change, sent by the node
//! that applied it, retried a few times with backoff, never holding up the webhook's answer.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::mpsc;
use waotp_store::FactChange;

use crate::callbacks::{GuardedResolver, Lookup};
use crate::secret::Secret;

/// Tries per alert, and the pause before the first retry (doubling).
const TRIES: u32 = 4;
const FIRST_RETRY: Duration = Duration::from_millis(500);
/// Alerts waiting to be sent at most; beyond, new ones are dropped (and logged).
const QUEUE: usize = 256;

/// Where alerts go.
#[derive(Clone, Debug)]
pub struct AlertConfig {
    /// An http(s) URL (checked as a callback URL is).
    pub url: String,
    /// `whsec_…`: signs each alert.
    pub secret: Secret,
}

/// What an alert says.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Alert {
    /// `template_unusable`, `template_usable`, `template_quality_dropped`,
    /// `template_category_changed`, `number_quality_dropped`, `messaging_limit_shrunk`,
    /// `messaging_limit_raised`, `messaging_limit_set`, `account_violation`, `account_disabled`,
    /// `account_reinstated`, `account_deleted`, `account_restricted`, `account_alert`.
    pub kind: &'static str,
    /// `template`, `number` or `account`.
    pub subject_type: &'static str,
    /// `name/language`, the number's digits, or the account's id.
    pub subject: String,
    pub aspect: String,
    pub old: Option<String>,
    pub new: String,
    pub reason: Option<String>,
    /// When it happened (RFC 3339).
    pub at: String,
    pub source: String,
}

impl Alert {
    pub fn of(kind: &'static str, c: &FactChange) -> Alert {
        Alert {
            kind,
            subject_type: c.fact.kind.as_str(),
            subject: c.fact.subject.clone(),
            aspect: c.fact.aspect.clone(),
            old: c.previous.clone(),
            new: c.fact.value.clone(),
            reason: c.fact.reason.clone(),
            at: crate::clock::rfc3339(c.fact.at_ms),
            source: c.fact.source.clone(),
        }
    }
}

/// The sending side: alerts are queued and sent by a task of their own.
#[derive(Clone)]
pub struct Alerts {
    tx: mpsc::Sender<Alert>,
}

impl Alerts {
    /// Starts the sender task.
    pub fn start(
        config: AlertConfig,
        deny_private: bool,
        lookup: Arc<dyn Lookup>,
        timeout: Duration,
    ) -> reqwest::Result<(Alerts, tokio::task::JoinHandle<()>)> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("waotp/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(GuardedResolver { deny_private, lookup }))
            .build()?;
        let (tx, mut rx) = mpsc::channel::<Alert>(QUEUE);
        let task = tokio::spawn(async move {
            while let Some(alert) = rx.recv().await {
                // One at a time, in order: alerts are rare.
                deliver(&http, &config, &alert).await;
            }
        });
        Ok((Alerts { tx }, task))
    }

    /// Queues an alert (never waits).
    pub fn send(&self, alert: Alert) {
        tracing::warn!(kind = alert.kind, subject = %alert.subject, new = %alert.new, "operator alert");
        if self.tx.try_send(alert).is_err() {
            tracing::error!("operator alerts are backed up: one was dropped");
        }
    }
}

async fn deliver(http: &reqwest::Client, config: &AlertConfig, alert: &Alert) {
    let payload = serde_json::to_vec(alert).expect("an alert serializes");
    let id = format!("alert_{}", uuid::Uuid::now_v7().simple());
    let mut pause = FIRST_RETRY;
    for attempt in 1..=TRIES {
        let timestamp = std::time::SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        let mut request = http
            .post(&config.url)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .body(payload.clone());
        if let Some(signature) = waotp_core::callback::sign(config.secret.expose(), &id, timestamp, &payload) {
            request = request.header("webhook-signature", signature);
        }
        match request.send().await {
            Ok(r) if r.status().is_success() => return,
            Ok(r) => tracing::warn!(status = r.status().as_u16(), attempt, "the alert URL refused an alert"),
            Err(e) => tracing::warn!(error = %waotp_whatsapp::error_chain(&e), attempt, "cannot reach the alert URL"),
        }
        if attempt < TRIES {
            tokio::time::sleep(pause).await;
            pause *= 2;
        }
    }
    tracing::error!(kind = alert.kind, subject = %alert.subject, "gave up on an operator alert");
}
