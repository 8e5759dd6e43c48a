//! The delivery worker: takes each stored session off the request path and hands its message
//! to the channel. Sessions accepted before a crash (their sealed code still stored) are found
//! again at startup and delivered then.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, Semaphore};
use waotp_core::{CodeKey, Status, Template};
use waotp_store::{DeliveryCheck, DeliveryOutcome, PendingDelivery, Store};

use crate::auth::{AppCache, TemplateChoice};
use crate::channel::{Channel, Delivery, OutboundMessage};
use crate::metrics::Metrics;
use crate::Clock;

/// Deliveries in flight at once.
const CONCURRENCY: usize = 256;

/// Where the send route puts a session once it is stored.
#[derive(Clone)]
pub struct Queue {
    tx: mpsc::UnboundedSender<OutboundMessage>,
    depth: Arc<AtomicI64>,
}

impl Queue {
    pub fn push(&self, message: OutboundMessage) {
        // The worker only stops with the process; a session not pushed is still stored and
        // is delivered at the next start.
        if self.tx.send(message).is_ok() {
            self.depth.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Messages waiting for the channel.
    pub fn depth(&self) -> i64 {
        self.depth.load(Ordering::Relaxed)
    }
}

/// Starts the worker, after queueing whatever an earlier run left undelivered.
pub async fn start(
    store: Arc<dyn Store>,
    key: Arc<CodeKey>,
    apps: AppCache,
    channel: Arc<dyn Channel>,
    clock: Clock,
    metrics: Arc<Metrics>,
) -> anyhow::Result<(Queue, tokio::task::JoinHandle<()>)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let queue = Queue { tx, depth: Arc::default() };
    let mut recovered = 0usize;
    let mut after = 0;
    loop {
        let page = store.undelivered(after, 500).await?;
        let Some(last) = page.last() else { break };
        after = last.row_id;
        for pending in page {
            match reopen(&pending, &key, &apps).await {
                Some(message) => {
                    queue.push(message);
                    recovered += 1;
                }
                None => {
                    let outcome = DeliveryOutcome::Failed {
                        status: Status::RequestError,
                        error_code: None,
                        error_text: "the code could not be recovered (server secret changed?)".into(),
                    };
                    store.record_delivery(pending.session_id, outcome, clock.now_ms()).await?;
                }
            }
        }
    }
    if recovered > 0 {
        tracing::info!(recovered, "queued sessions left undelivered by an earlier run");
    }
    let worker = tokio::spawn(run(rx, queue.depth.clone(), store, channel, clock, metrics));
    Ok((queue, worker))
}

/// Rebuilds the message of a session stored before a restart.
async fn reopen(p: &PendingDelivery, key: &CodeKey, apps: &AppCache) -> Option<OutboundMessage> {
    let code = key.unseal(&p.session_id, &p.sealed_code)?;
    let app = apps.get(p.app_id).await.ok()??;
    let message = match app.template(&p.template_name, &p.lang_code) {
        TemplateChoice::Registered(t) => t.render(&code, &p.content).ok()?,
        _ => Template::meta_authentication(&p.template_name, &p.lang_code).render(&code, &p.content).ok()?,
    };
    Some(OutboundMessage {
        session_id: p.session_id,
        app_id: p.app_id,
        msisdn: p.msisdn.clone(),
        message,
        expires_at_ms: p.expires_at_ms,
    })
}

async fn run(
    mut rx: mpsc::UnboundedReceiver<OutboundMessage>,
    depth: Arc<AtomicI64>,
    store: Arc<dyn Store>,
    channel: Arc<dyn Channel>,
    clock: Clock,
    metrics: Arc<Metrics>,
) {
    let slots = Arc::new(Semaphore::new(CONCURRENCY));
    while let Some(message) = rx.recv().await {
        depth.fetch_sub(1, Ordering::Relaxed);
        let Ok(permit) = slots.clone().acquire_owned().await else {
            break;
        };
        let (store, channel, clock, metrics) = (store.clone(), channel.clone(), clock.clone(), metrics.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let started = std::time::Instant::now();
            // Checked right before sending: a number blocked after its request was accepted is
            // not sent to (status 9); a code superseded, used, locked or expired meanwhile is
            // not sent at all.
            let check = store.delivery_check(message.app_id, message.session_id, &message.msisdn, clock.now_ms()).await;
            let delivery = match check {
                Ok(DeliveryCheck::Blocked(code)) => Delivery::Outcome(DeliveryOutcome::Failed {
                    status: Status::Blocked,
                    error_code: None,
                    error_text: format!("{code}: blocked after the request was accepted"),
                }),
                Ok(DeliveryCheck::Stale(reason)) => {
                    Delivery::Outcome(DeliveryOutcome::Skipped { reason: reason.to_owned() })
                }
                _ => channel.deliver(&message).await,
            };
            let outcome = match &delivery {
                Delivery::Recorded => "delivered",
                Delivery::Outcome(DeliveryOutcome::Sent { .. }) => "sent",
                Delivery::Outcome(DeliveryOutcome::Failed { .. }) => "failed",
                Delivery::Outcome(DeliveryOutcome::Skipped { .. }) => "skipped",
            };
            metrics.observe(
                "waotp_channel_delivery_seconds",
                &[("channel", channel.name()), ("outcome", outcome)],
                started.elapsed(),
            );
            if let Delivery::Outcome(outcome) = delivery {
                if let DeliveryOutcome::Failed { status, error_code, error_text } = &outcome {
                    tracing::warn!(
                        session_id = %message.session_id,
                        msisdn = %message.msisdn,
                        status = status.code(),
                        ?error_code,
                        error = %error_text,
                        "delivery failed"
                    );
                }
                if let Err(e) = store.record_delivery(message.session_id, outcome, clock.now_ms()).await {
                    tracing::error!(session_id = %message.session_id, error = %e, "cannot record delivery");
                }
            }
        });
    }
}
