//! The callback delivery worker and the expiry sweeper.
//!
//! The worker claims due callbacks from the store's outbox, at most one per session (the
//! oldest pending), so a session's statuses go out in order: the next one becomes due only
//! after the previous one was received or given up. Attempts run concurrently, bounded in all
//! and per destination host; a callback whose host is saturated is deferred without using an
//! attempt, so one slow or dead receiver never holds the others up.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use reqwest::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use waotp_core::{AttemptFailure, CallbackMode};
use waotp_store::{AttemptRecord, CallbackJob, CallbackNext, Store};

use super::guard::{address_allowed, GuardedResolver, RefusedByPolicy};
use super::CallbackConfig;
use crate::auth::AppCache;
use crate::metrics::Metrics;
use crate::Clock;

/// How long a claimed callback stays leased beyond its attempt's timeout.
const LEASE_MARGIN: Duration = Duration::from_secs(30);
/// How long a callback may wait for a free slot of its host before it is put back.
const HOST_WAIT: Duration = Duration::from_millis(250);
/// When a callback put back for a busy host is tried again.
const HOST_BUSY_DELAY: Duration = Duration::from_secs(1);
/// First and longest pause between tries of recording an attempt the database was
/// unavailable for.
const RECORD_RETRY_FIRST: Duration = Duration::from_millis(100);
const RECORD_RETRY_MAX: Duration = Duration::from_secs(2);

struct Worker {
    store: Arc<dyn Store>,
    apps: AppCache,
    clock: Clock,
    config: CallbackConfig,
    http: reqwest::Client,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
    metrics: Arc<Metrics>,
}

/// Starts the callback worker and the expiry sweeper.
pub async fn start(
    store: Arc<dyn Store>,
    apps: AppCache,
    clock: Clock,
    config: CallbackConfig,
    sweep_every: Duration,
    retention: Duration,
    metrics: Arc<Metrics>,
) -> Result<Vec<(&'static str, tokio::task::JoinHandle<()>)>, crate::StartError> {
    // Leases of a process that died: this process is now the only worker of this store.
    store.release_callback_leases().await.map_err(crate::StartError::store("releasing the callback leases"))?;
    let http = reqwest::Client::builder()
        // Never through a proxy from the environment: the guard must see the address used.
        .no_proxy()
        .timeout(config.timeout)
        .connect_timeout(config.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("waotp/", env!("CARGO_PKG_VERSION")))
        .dns_resolver(Arc::new(GuardedResolver { deny_private: config.deny_private, lookup: config.lookup.clone() }))
        .build()
        .map_err(|source| crate::StartError::HttpClient { what: "building the callback client", source })?;
    let worker = Arc::new(Worker {
        store: store.clone(),
        apps,
        clock: clock.clone(),
        config,
        http,
        hosts: Mutex::default(),
        metrics,
    });
    Ok(vec![
        ("callback worker", tokio::spawn(worker.run())),
        ("expiry sweeper", tokio::spawn(sweep(store.clone(), clock.clone(), sweep_every))),
        ("retention", tokio::spawn(prune(store, clock, retention, sweep_every))),
    ])
}

/// Retention: deletes old rows in small batches with pauses between them, so the writer
/// never holds traffic up for long.
async fn prune(store: Arc<dyn Store>, clock: Clock, retention: Duration, every: Duration) {
    const BATCH: usize = 500;
    loop {
        let before = clock.now_ms() - retention.as_millis() as i64;
        match store.prune_older_than(before, BATCH).await {
            Ok(n) if n > 0 => {
                tracing::debug!(rows = n, "pruned rows past the retention age");
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "retention pruning failed"),
        }
        tokio::time::sleep(every * 20).await;
    }
}

/// Reports status 5 for sessions whose time limit passed without a final status.
async fn sweep(store: Arc<dyn Store>, clock: Clock, every: Duration) {
    const BATCH: usize = 1000;
    loop {
        match store.expire_due(clock.now_ms(), BATCH).await {
            Ok(n) if n == BATCH => continue,
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "expiry sweep failed"),
        }
        if let Err(e) = store.prune_guards(clock.now_ms()).await {
            tracing::error!(error = %e, "pruning counters failed");
        }

        tokio::time::sleep(every).await;
    }
}

impl Worker {
    async fn run(self: Arc<Self>) {
        let slots = Arc::new(Semaphore::new(self.config.max_in_flight));
        loop {
            let free = slots.available_permits();
            if free == 0 {
                // Wait for one attempt to finish.
                if let Ok(p) = slots.clone().acquire_owned().await {
                    drop(p);
                }
                continue;
            }
            let now = self.clock.now_ms();
            let lease = (self.config.timeout + LEASE_MARGIN).as_millis() as i64;
            let jobs = match self.store.claim_callbacks(now, now + lease, free.min(512)).await {
                Ok(jobs) => jobs,
                Err(e) => {
                    tracing::error!(error = %e, "cannot claim callbacks");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let full = jobs.len() == free.min(512);
            for job in jobs {
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    return;
                };
                let worker = self.clone();
                tokio::spawn(async move { worker.deliver(job, permit).await });
            }
            if !full {
                tokio::time::sleep(self.config.poll).await;
            }
        }
    }

    fn host_slots(&self, host: &str) -> Arc<Semaphore> {
        let mut hosts = self.hosts.lock().expect("host map");
        if hosts.len() >= 10_000 {
            // Forget idle hosts (all permits free), so many distinct hosts cannot grow the map.
            let per_host = self.config.per_host;
            hosts.retain(|_, slots| slots.available_permits() < per_host);
        }
        hosts.entry(host.to_owned()).or_insert_with(|| Arc::new(Semaphore::new(self.config.per_host))).clone()
    }

    async fn deliver(&self, job: CallbackJob, _slot: OwnedSemaphorePermit) {
        // The schedule's first delay comes before the first attempt (normally 0 s).
        if job.attempts == 0 {
            let first = self.config.schedule.first().copied().unwrap_or_default();
            let due = job.happened_at_ms + first.as_millis() as i64;
            if self.clock.now_ms() < due {
                self.finish(&job, None, CallbackNext::DeferTo(due)).await;
                return;
            }
        }
        let (attempt, next) = match url::Url::parse(&job.url) {
            Ok(url) => {
                let host = url.host_str().unwrap_or_default().to_owned();
                let slots = self.host_slots(&host);
                let Ok(Ok(_host_slot)) = tokio::time::timeout(HOST_WAIT, slots.acquire_owned()).await else {
                    let later = self.clock.now_ms() + HOST_BUSY_DELAY.as_millis() as i64;
                    self.finish(&job, None, CallbackNext::DeferTo(later)).await;
                    return;
                };
                let (attempt, retry_after) = self.attempt(&job, url).await;
                let next = self.next_step(&job, &attempt, retry_after);
                (Some(attempt), next)
            }
            Err(e) => {
                let attempt = AttemptRecord {
                    at_ms: self.clock.now_ms(),
                    http_status: None,
                    error: Some(AttemptFailure::Unreachable.logged(&format!("invalid URL: {e}"))),
                    latency_ms: 0,
                };
                (Some(attempt), CallbackNext::GiveUp)
            }
        };
        self.finish(&job, attempt, next).await;
    }

    async fn finish(&self, job: &CallbackJob, attempt: Option<AttemptRecord>, next: CallbackNext) {
        let result = match next {
            CallbackNext::Delivered => Some("delivered"),
            CallbackNext::RetryAt(_) => Some("retry"),
            CallbackNext::GiveUp => Some("failed"),
            CallbackNext::DeferTo(_) => None,
        };
        if let (Some(result), Some(_)) = (result, &attempt) {
            self.metrics.callback_attempt(result, job.attempts + 1);
        }
        if let Some(error) = attempt.as_ref().and_then(|a| a.error.as_deref()) {
            let attempt = job.attempts + 1;
            tracing::info!(session_id = %job.session_id, status = job.status.code(), attempt, error, "callback attempt failed");
        }
        if let CallbackNext::GiveUp = next {
            tracing::warn!(session_id = %job.session_id, status = job.status.code(), "callback failed for good");
        }
        // While the database is unavailable (down, or failing over to a standby) the record
        // waits for it, as long as the lease lasts: a callback received but not recorded would
        // hold its session's next callbacks back until its lease ran out, and then go out again.
        // After the lease, the record would be refused anyway (another attempt may be under way).
        let recorded = waotp_store::retry_while_unavailable(
            RECORD_RETRY_FIRST,
            RECORD_RETRY_MAX,
            || self.clock.now_ms() < job.lease_until_ms,
            || self.store.finish_callback(job, attempt.clone(), next.clone(), self.clock.now_ms()),
        )
        .await;
        if let Err(e) = recorded {
            tracing::error!(session_id = %job.session_id, error = %e, "cannot record callback attempt");
        }
    }

    /// One HTTP attempt; returns its record and the receiver's `Retry-After`, if any.
    async fn attempt(&self, job: &CallbackJob, mut url: url::Url) -> (AttemptRecord, Option<Duration>) {
        let at_ms = self.clock.now_ms();
        let started = Instant::now();
        let record = |http_status: Option<u16>, error: Option<String>| AttemptRecord {
            at_ms,
            http_status,
            error,
            latency_ms: started.elapsed().as_millis() as i64,
        };
        // An address literal never goes through the resolver: check it here.
        if let Some(ip) = url.host_str().and_then(|h| h.trim_matches(['[', ']']).parse::<IpAddr>().ok()) {
            if !address_allowed(ip, self.config.deny_private) {
                let detail = format!("address {ip} is not allowed for callbacks");
                return (record(None, Some(AttemptFailure::RefusedByPolicy.logged(&detail))), None);
            }
        }
        let app = match self.apps.get(job.app_id).await {
            Ok(Some(app)) => app,
            _ => return (record(None, Some(AttemptFailure::Unreachable.logged("the app no longer exists"))), None),
        };
        let settings = &app.record.settings;
        let timestamp = at_ms / 1000;
        let (request, payload) = match settings.callback_mode {
            CallbackMode::Get => {
                url.query_pairs_mut()
                    .append_pair("session_id", &job.session_id.to_string())
                    .append_pair("status", &job.status.code().to_string());
                let payload = match url.query() {
                    Some(q) => format!("{}?{q}", url.path()),
                    None => url.path().to_owned(),
                };
                (self.http.get(url), payload.into_bytes())
            }
            CallbackMode::Post => {
                let body = json!({
                    "session_id": job.session_id,
                    "status": job.status.code(),
                    "status_name": job.status.name(),
                    "challenge": job.challenge,
                    "timestamp": crate::clock::rfc3339(job.happened_at_ms),
                })
                .to_string()
                .into_bytes();
                let request = self
                    .http
                    .post(url)
                    .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                    .body(body.clone());
                (request, body)
            }
        };
        let mut request = request.header("webhook-id", &job.webhook_id);
        if settings.callback_signing {
            let secret = match &app.callback_secret {
                Ok(secret) => secret,
                // Never sent unsigned: the receiver would rightly refuse it, or wrongly take it.
                Err(e) => {
                    let detail = format!("cannot sign: the app's callback secret: {e}");
                    return (record(None, Some(AttemptFailure::Unreachable.logged(&detail))), None);
                }
            };
            if let Some(signature) = waotp_core::callback::sign(secret, &job.webhook_id, timestamp, &payload) {
                request =
                    request.header("webhook-timestamp", timestamp.to_string()).header("webhook-signature", signature);
            }
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status();
                let retry_after = response
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                // Read at most a little of the body (so a small answer leaves the connection
                // reusable); a receiver cannot make waotp hold a large one in memory.
                let mut response = response;
                let mut read = 0usize;
                while let Ok(Some(chunk)) = response.chunk().await {
                    read += chunk.len();
                    if read > 64 * 1024 {
                        break;
                    }
                }
                let error = (!status.is_success()).then(|| format!("HTTP {}", status.as_u16()));
                (record(Some(status.as_u16()), error), retry_after)
            }
            Err(e) => (record(None, Some(describe(&e))), None),
        }
    }

    fn next_step(&self, job: &CallbackJob, attempt: &AttemptRecord, retry_after: Option<Duration>) -> CallbackNext {
        if attempt.error.is_none() {
            return CallbackNext::Delivered;
        }
        let made = job.attempts as usize + 1;
        let Some(&scheduled) = self.config.schedule.get(made) else {
            return CallbackNext::GiveUp;
        };
        let delay = match retry_after {
            Some(asked) => asked.min(self.config.max_retry_after),
            None => jitter(scheduled),
        };
        CallbackNext::RetryAt(self.clock.now_ms() + delay.as_millis() as i64)
    }
}

/// ±20 %.
fn jitter(d: Duration) -> Duration {
    d.mul_f64(rand::rng().random_range(0.8..=1.2))
}

/// A failed request as the attempt log keeps it: its coarse failure, then the detail.
fn describe(e: &reqwest::Error) -> String {
    let (failure, what) = if e.is_timeout() {
        (AttemptFailure::Timeout, "timed out")
    } else if refused_by_policy(e) {
        (AttemptFailure::RefusedByPolicy, "cannot connect")
    } else if e.is_connect() {
        (AttemptFailure::Unreachable, "cannot connect")
    } else {
        (AttemptFailure::Unreachable, "request failed")
    };
    failure.logged(&format!("{what}{}", waotp_whatsapp::error_chain(e)))
}

/// Whether the guarded resolver refused every address of the name (its error is among the
/// causes).
fn refused_by_policy(e: &reqwest::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.is::<RefusedByPolicy>() {
            return true;
        }
        cause = c.source();
    }
    false
}
