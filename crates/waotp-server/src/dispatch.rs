//! The delivery worker: takes each stored session off the request path and delivers its
//! message: into the local inbox, or through a channel. It owns delivery: the last look before
//! each try (a code superseded, used, locked or expired meanwhile is not sent; a number blocked
//! meanwhile is reported 9), the retries a channel asks for (never past the code's expiry),
//! and the recording of the outcome. Sessions accepted before a crash (their sealed code still
//! stored) are found again at startup and delivered then.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, Semaphore};
use uuid::Uuid;
use waotp_core::{CodeKey, Status};
use waotp_store::{DeliveryOutcome, InboxMessage, PendingDelivery, Store, BLOCKED_AFTER_ACCEPTED};

use crate::auth::AppCache;
use crate::channel::{Attempt, Channel, OutboundMessage};
use crate::metrics::Metrics;
use crate::Clock;

/// Deliveries in flight at once.
const CONCURRENCY: usize = 256;
/// Most retries of one message (each also bounded by the code's expiry).
const MAX_RETRIES: u32 = 6;

/// Where messages are delivered.
#[derive(Clone)]
pub enum Route {
    /// The local inbox (no WhatsApp account configured), where each app reads its messages
    /// (`GET /v1/inbox`). The inbox is the database: a send stores its message with its
    /// session ([`Queue::delivers_to_inbox`]); a session stored without it (by an older
    /// version, or while a WhatsApp channel was configured) comes here, where one store write
    /// makes the last look, stores the message and records it sent and delivered
    /// ([`Store::deliver_to_inbox`]).
    Inbox,
    /// A provider's channel.
    Channel(Arc<dyn Channel>),
}

impl Route {
    pub fn name(&self) -> &'static str {
        match self {
            Route::Inbox => "local inbox",
            Route::Channel(channel) => channel.name(),
        }
    }
}
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
    /// Messages go to the local inbox ([`Route::Inbox`]).
    inbox: bool,
}

impl Queue {
    /// Whether messages go to the local inbox: a send then stores its message with its session
    /// (see [`waotp_store::NewSession::inbox_text`]), and only sessions stored otherwise (by an
    /// older version, say) come through here.
    pub fn delivers_to_inbox(&self) -> bool {
        self.inbox
    }

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
    route: Route,
    clock: Clock,
    metrics: Arc<Metrics>,
    capacity: usize,
) -> (Queue, Vec<(&'static str, tokio::task::JoinHandle<()>)>) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let queue = Queue {
        tx,
        depth: Arc::default(),
        tracked: Arc::default(),
        overflow: Arc::new(AtomicBool::new(true)),
        inbox: matches!(route, Route::Inbox),
    };
    let backlog = tokio::spawn(read_backlog(queue.clone(), store.clone(), key, apps, clock.clone()));
    let worker = tokio::spawn(run(rx, queue.clone(), store, route, clock, metrics));
    (queue, vec![("delivery worker", worker), ("delivery backlog reader", backlog)])
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
async fn while_unavailable<T, F, Fut>(until_ms: i64, clock: &Clock, write: F) -> waotp_store::Result<T>
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
    let backups =
        crate::sender_health::failover::render_backups(&app, &p.template_name, &p.lang_code, &code, &p.content);
    Ok(OutboundMessage {
        session_id: p.session_id,
        app_id: p.app_id,
        msisdn: p.msisdn.clone(),
        message,
        backups,
        expires_at_ms: p.expires_at_ms,
        sender: app.sender.clone(),
    })
}

async fn run(
    mut rx: mpsc::Receiver<OutboundMessage>,
    queue: Queue,
    store: Arc<dyn Store>,
    route: Route,
    clock: Clock,
    metrics: Arc<Metrics>,
) {
    let slots = Arc::new(Semaphore::new(CONCURRENCY));
    while let Some(message) = rx.recv().await {
        queue.depth.fetch_sub(1, Ordering::Relaxed);
        let Ok(permit) = slots.clone().acquire_owned().await else {
            break;
        };
        let (store, route, clock, metrics, queue) =
            (store.clone(), route.clone(), clock.clone(), metrics.clone(), queue.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let started = std::time::Instant::now();
            let outcome = match &route {
                Route::Inbox => to_inbox(store.as_ref(), &message, &clock).await,
                Route::Channel(channel) => Some(through(store.as_ref(), channel.as_ref(), &message, &clock).await),
            };
            let label = match &outcome {
                None => "delivered",
                Some(DeliveryOutcome::Sent { .. }) => "sent",
                Some(DeliveryOutcome::Failed { .. }) => "failed",
                Some(DeliveryOutcome::Skipped(_)) => "skipped",
            };
            metrics.delivery(route.name(), label, started.elapsed());
            if let Some(outcome) = outcome {
                record(store.as_ref(), &message, outcome, &clock).await;
            }
            queue.done(&message.session_id);
        });
    }
}

/// Stores the message in the local inbox; `None` once done (that write also made the last
/// look and recorded the outcome), or the failure to record.
async fn to_inbox(store: &dyn Store, m: &OutboundMessage, clock: &Clock) -> Option<DeliveryOutcome> {
    // While the database is unavailable the message waits for it, as a message waits for
    // WhatsApp, until its code expires.
    let stored = while_unavailable(m.expires_at_ms, clock, || {
        store.deliver_to_inbox(InboxMessage {
            app_id: m.app_id,
            session_id: m.session_id,
            msisdn: m.msisdn.clone(),
            text: m.message.text.clone(),
            created_at_ms: clock.now_ms(),
        })
    })
    .await;
    stored.err().map(|e| DeliveryOutcome::Failed {
        status: Status::RequestError,
        error_code: None,
        error_text: format!("local inbox: {e}"),
    })
}

/// Sends the message through the channel: looks before each try, retries what the channel
/// says is retryable while retries and the code's lifetime last, and says what to record.
async fn through(store: &dyn Store, channel: &dyn Channel, m: &OutboundMessage, clock: &Clock) -> DeliveryOutcome {
    let mut attempt = 0;
    loop {
        // A failed look (the database away) does not hold the message back: the recording
        // waits for the database, and a code that can no longer be used is refused at verify.
        let when = if attempt == 0 { BLOCKED_AFTER_ACCEPTED } else { "before a retry" };
        let check = store.delivery_check(m.app_id, m.session_id, &m.msisdn, clock.now_ms()).await;
        if let Some(stopped) = check.ok().and_then(|check| DeliveryOutcome::stopped(check, when)) {
            return stopped;
        }
        match channel.send(m, attempt).await {
            Attempt::Sent { provider_id } => return DeliveryOutcome::Sent { provider_id },
            Attempt::Failed { status, error_code, error_text } => {
                return DeliveryOutcome::Failed { status, error_code, error_text }
            }
            Attempt::Retry { after, exhausted, error_code, error_text } => {
                let too_late = clock.now_ms() + after.as_millis() as i64 >= m.expires_at_ms;
                if attempt >= MAX_RETRIES || too_late {
                    return DeliveryOutcome::Failed {
                        status: exhausted,
                        error_code,
                        error_text: format!("{error_text} (gave up after {} tries)", attempt + 1),
                    };
                }
                tracing::debug!(session_id = %m.session_id, ?error_code, retry_in = ?after, "the send will be retried");
                tokio::time::sleep(after).await;
                attempt += 1;
            }
        }
    }
}

/// Records what became of a message, waiting out an outage of the database while its code
/// lives.
async fn record(store: &dyn Store, m: &OutboundMessage, outcome: DeliveryOutcome, clock: &Clock) {
    if let DeliveryOutcome::Failed { status, error_code, error_text } = &outcome {
        tracing::warn!(
            session_id = %m.session_id,
            msisdn = %m.msisdn,
            status = status.code(),
            ?error_code,
            error = %error_text,
            "delivery failed"
        );
    }
    let recorded = while_unavailable(m.expires_at_ms, clock, || {
        store.record_delivery(m.session_id, outcome.clone(), clock.now_ms())
    })
    .await;
    if let Err(e) = recorded {
        tracing::error!(session_id = %m.session_id, error = %e, "cannot record delivery");
    }
}
