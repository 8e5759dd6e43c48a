//! The delivery worker: takes each stored session off the request path and hands its message
//! to the channel. Sessions accepted before a crash (their sealed code still stored) are found
//! again at startup and delivered then.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, Semaphore};
use uuid::Uuid;
use waotp_core::{CodeKey, Status};
use waotp_store::{DeliveryCheck, DeliveryOutcome, PendingDelivery, Store, BLOCKED_AFTER_ACCEPTED};

use crate::auth::AppCache;
use crate::channel::{Channel, Delivery, OutboundMessage};
use crate::metrics::Metrics;
use crate::Clock;

/// Deliveries in flight at once.
const CONCURRENCY: usize = 256;
/// Sessions read back from the database per page when the queue overflowed.
const PAGE: usize = 500;
/// How often a node sharing its database looks for deliveries a dead node left behind.
const ORPHAN_SCAN: std::time::Duration = std::time::Duration::from_secs(2);

/// Where the send route puts a session once it is stored. Bounded: when it is full the
/// session simply stays in the database (its code sealed) and the backlog reader brings it
/// back once there is room, so memory stays bounded however fast sends outrun the channel.
#[derive(Clone)]
pub struct Queue {
    tx: mpsc::Sender<OutboundMessage>,
    depth: Arc<AtomicI64>,
    /// Sessions queued or being delivered by this process: never queued twice.
    tracked: Arc<Mutex<HashSet<Uuid>>>,
    /// Some stored sessions are not in the queue: the backlog reader has work.
    overflow: Arc<AtomicBool>,
}

impl Queue {
    pub fn push(&self, message: OutboundMessage) {
        let id = message.session_id;
        if !self.tracked.lock().expect("tracked").insert(id) {
            return;
        }
        if self.tx.try_send(message).is_ok() {
            self.depth.fetch_add(1, Ordering::Relaxed);
        } else {
            self.tracked.lock().expect("tracked").remove(&id);
            self.overflow.store(true, Ordering::Relaxed);
        }
    }

    /// Messages waiting for the channel.
    pub fn depth(&self) -> i64 {
        self.depth.load(Ordering::Relaxed)
    }

    fn done(&self, id: &Uuid) {
        self.tracked.lock().expect("tracked").remove(id);
    }
}

/// Starts the worker and the backlog reader; the reader first brings back whatever an
/// earlier run left undelivered.
pub async fn start(
    store: Arc<dyn Store>,
    key: Arc<CodeKey>,
    apps: AppCache,
    channel: Arc<dyn Channel>,
    clock: Clock,
    metrics: Arc<Metrics>,
    capacity: usize,
) -> anyhow::Result<(Queue, Vec<(&'static str, tokio::task::JoinHandle<()>)>)> {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let queue = Queue { tx, depth: Arc::default(), tracked: Arc::default(), overflow: Arc::new(AtomicBool::new(true)) };
    let backlog = tokio::spawn(read_backlog(queue.clone(), store.clone(), key, apps, clock.clone()));
    let worker = tokio::spawn(run(rx, queue.clone(), store, channel, clock, metrics));
    Ok((queue, vec![("delivery worker", worker), ("delivery backlog reader", backlog)]))
}

/// Brings stored, undelivered sessions that are not queued (after a restart, after the
/// queue overflowed, or — on a shared database — left behind by a node that died) back into
/// the queue, waiting for room.
async fn read_backlog(queue: Queue, store: Arc<dyn Store>, key: Arc<CodeKey>, apps: AppCache, clock: Clock) {
    let mut last_scan = std::time::Instant::now();
    loop {
        let orphans_due = store.multi_node() && last_scan.elapsed() >= ORPHAN_SCAN;
        if queue.overflow.swap(false, Ordering::Relaxed) || orphans_due {
            last_scan = std::time::Instant::now();
            let mut after = 0;
            let mut requeued = 0usize;
            loop {
                let page = match store.undelivered(after, PAGE).await {
                    Ok(page) => page,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot read undelivered sessions; will retry");
                        queue.overflow.store(true, Ordering::Relaxed);
                        // The database is likely away: look again in a while, not in a spin.
                        tokio::time::sleep(RETRY_MAX).await;
                        break;
                    }
                };
                let Some(last) = page.last() else { break };
                after = last.row_id;
                for pending in page {
                    if !queue.tracked.lock().expect("tracked").insert(pending.session_id) {
                        continue;
                    }
                    match reopen(&pending, &key, &apps).await {
                        Ok(message) => {
                            if queue.tx.send(message).await.is_err() {
                                return;
                            }
                            queue.depth.fetch_add(1, Ordering::Relaxed);
                            requeued += 1;
                        }
                        Err(why) => {
                            queue.done(&pending.session_id);
                            let outcome = DeliveryOutcome::Failed {
                                status: Status::RequestError,
                                error_code: None,
                                error_text: why,
                            };
                            if let Err(e) = store.record_delivery(pending.session_id, outcome, clock.now_ms()).await {
                                tracing::error!(error = %e, "cannot record an unrecoverable session");
                            }
                        }
                    }
                }
            }
            if requeued > 0 {
                tracing::info!(requeued, "queued stored sessions that were waiting outside the queue");
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// First and longest pause between tries of a store write the database was unavailable for.
const RETRY_FIRST: std::time::Duration = std::time::Duration::from_millis(100);
const RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(2);

/// Runs a store write again while the database is unavailable and `until_ms` (a code's
/// expiry) has not passed: a message's outcome, or the message itself, waits out an outage
/// instead of being lost to it. Other errors return at once.
pub(crate) async fn while_unavailable<T, F, Fut>(until_ms: i64, clock: &Clock, write: F) -> waotp_store::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = waotp_store::Result<T>>,
{
    waotp_store::retry_while_unavailable(RETRY_FIRST, RETRY_MAX, || clock.now_ms() < until_ms, write).await
}

/// Rebuilds the message of a session stored before a restart, or says why it cannot go out:
/// its code cannot be unsealed, or its template no longer resolves as it did when the send was
/// accepted (the same selection as the send route's: [`waotp_core::template::select`]).
async fn reopen(p: &PendingDelivery, key: &CodeKey, apps: &AppCache) -> Result<OutboundMessage, String> {
    const UNRECOVERABLE: &str = "the code could not be recovered (server secret changed?)";
    let code = key.unseal(&p.session_id, &p.sealed_code).ok_or(UNRECOVERABLE)?;
    let app = apps.get(p.app_id).await.ok().flatten().ok_or(UNRECOVERABLE)?;
    let message = app
        .template(&p.template_name, &p.lang_code)
        .and_then(|template| template.render(&code, &p.content))
        .map_err(|e| e.to_string())?;
    Ok(OutboundMessage {
        session_id: p.session_id,
        app_id: p.app_id,
        msisdn: p.msisdn.clone(),
        message,
        expires_at_ms: p.expires_at_ms,
    })
}

async fn run(
    mut rx: mpsc::Receiver<OutboundMessage>,
    queue: Queue,
    store: Arc<dyn Store>,
    channel: Arc<dyn Channel>,
    clock: Clock,
    metrics: Arc<Metrics>,
) {
    let slots = Arc::new(Semaphore::new(CONCURRENCY));
    while let Some(message) = rx.recv().await {
        queue.depth.fetch_sub(1, Ordering::Relaxed);
        let Ok(permit) = slots.clone().acquire_owned().await else {
            break;
        };
        let (store, channel, clock, metrics, queue) =
            (store.clone(), channel.clone(), clock.clone(), metrics.clone(), queue.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let started = std::time::Instant::now();
            // Checked right before sending: a number blocked after its request was accepted is
            // not sent to (status 9); a code superseded, used, locked or expired meanwhile is
            // not sent at all.
            let check = if channel.checks_before_delivery() {
                Ok(DeliveryCheck::Send)
            } else {
                store.delivery_check(message.app_id, message.session_id, &message.msisdn, clock.now_ms()).await
            };
            let stopped = check.ok().and_then(|check| DeliveryOutcome::stopped(check, BLOCKED_AFTER_ACCEPTED));
            let delivery = match stopped {
                Some(outcome) => Delivery::Outcome(outcome),
                None => channel.deliver(&message).await,
            };
            let outcome = match &delivery {
                Delivery::Recorded => "delivered",
                Delivery::Outcome(DeliveryOutcome::Sent { .. }) => "sent",
                Delivery::Outcome(DeliveryOutcome::Failed { .. }) => "failed",
                Delivery::Outcome(DeliveryOutcome::Skipped { .. }) => "skipped",
            };
            metrics.delivery(channel.name(), outcome, started.elapsed());
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
                let recorded = while_unavailable(message.expires_at_ms, &clock, || {
                    store.record_delivery(message.session_id, outcome.clone(), clock.now_ms())
                })
                .await;
                if let Err(e) = recorded {
                    tracing::error!(session_id = %message.session_id, error = %e, "cannot record delivery");
                }
            }
            queue.done(&message.session_id);
        });
    }
}
