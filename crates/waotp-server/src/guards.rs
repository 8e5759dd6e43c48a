//! The guards a production send and verify pass: which limits and rules apply to a request,
//! built from the app's settings. The store checks and counts them atomically; this module
//! only says what they are, and turns refusals into answers, logs and counts.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Mutex;

use waotp_core::calendar::month_of;
use waotp_core::policy::{conversion_prefix, number_block};
use waotp_core::{Msisdn, RefusalReason, RuleMode};
use waotp_store::{AppRecord, BillableCeiling, IdempotencyKey, Limit, Refusal, SendGuards, Signal, SignalRule};

use crate::ApiError;

/// Sends into one block of 100 consecutive numbers within a minute before the sequential
/// rule fires.
pub const SEQUENTIAL_THRESHOLD: u64 = 10;
pub const SEQUENTIAL_WINDOW_MS: i64 = 60_000;
/// A 6-digit range (e.g. `628123`) with at least this many sends in an hour…
pub const CONVERSION_MIN_SENDS: u64 = 20;
/// …of which fewer than this share were verified fires the conversion rule.
pub const CONVERSION_MIN_RATE: f64 = 0.1;
pub const CONVERSION_WINDOW_MS: i64 = 3_600_000;

/// The guards of a production send at `now_ms`, with the app's monthly ceiling of billable
/// messages (a reverse start, which sends nothing billable, drops it).
pub fn send_guards(
    app: &AppRecord,
    msisdn: &Msisdn,
    client_ip: Option<IpAddr>,
    idempotency: Option<IdempotencyKey>,
    now_ms: i64,
) -> SendGuards {
    let s = &app.settings;
    let id = app.app_id;
    let mut limits = Vec::new();
    if let Some(rps) = s.rps_limit {
        limits.push(Limit {
            key: format!("rps:{id}"),
            limit: u64::from(rps),
            window_ms: 1000,
            reason: RefusalReason::RateLimitedApp,
        });
    }
    if let (Some(per_minute), Some(ip)) = (s.ip_send_limit, client_ip) {
        limits.push(Limit {
            key: format!("ip:{id}:{ip}"),
            limit: u64::from(per_minute),
            window_ms: 60_000,
            reason: RefusalReason::RateLimitedIp,
        });
    }
    limits.push(Limit {
        key: format!("send:{id}:{}", msisdn.as_str()),
        limit: u64::from(s.msisdn_send_limit),
        window_ms: i64::from(s.msisdn_send_window) * 1000,
        reason: RefusalReason::RateLimitedMsisdn,
    });
    let mut signals = Vec::new();
    if s.sequential_mode != RuleMode::Off {
        signals.push(Signal {
            rule: SignalRule::Sequential {
                key: format!("seq:{id}:{}", number_block(msisdn.as_str())),
                threshold: SEQUENTIAL_THRESHOLD,
                window_ms: SEQUENTIAL_WINDOW_MS,
            },
            enforce: s.sequential_mode == RuleMode::Enforce,
        });
    }
    if s.conversion_mode != RuleMode::Off {
        let prefix = conversion_prefix(msisdn.as_str());
        signals.push(Signal {
            rule: SignalRule::Conversion {
                sent_key: format!("conv-sent:{id}:{prefix}"),
                verified_key: format!("conv-ok:{id}:{prefix}"),
                min_sends: CONVERSION_MIN_SENDS,
                min_rate: CONVERSION_MIN_RATE,
                window_ms: CONVERSION_WINDOW_MS,
            },
            enforce: s.conversion_mode == RuleMode::Enforce,
        });
    }
    let billable_ceiling = s.billable_ceiling.map(|limit| BillableCeiling { limit, month: month_of(now_ms) });
    SendGuards { idempotency, check_blocklist: true, limits, signals, use_quota: true, billable_ceiling }
}

/// The verify limit of a msisdn.
pub fn verify_limit(app: &AppRecord, msisdn: &Msisdn) -> Limit {
    let s = &app.settings;
    Limit {
        key: format!("verify:{}:{}", app.app_id, msisdn.as_str()),
        limit: u64::from(s.msisdn_verify_limit),
        window_ms: i64::from(s.msisdn_verify_window) * 1000,
        reason: RefusalReason::RateLimitedMsisdn,
    }
}

/// Counters a successful verify feeds (conversion tracking).
pub fn on_verified(app: &AppRecord, msisdn: &Msisdn) -> Vec<(String, i64)> {
    if app.settings.conversion_mode == RuleMode::Off {
        return Vec::new();
    }
    vec![(format!("conv-ok:{}:{}", app.app_id, conversion_prefix(msisdn.as_str())), CONVERSION_WINDOW_MS)]
}

/// Whether the app accepts numbers of this msisdn's country (calling codes are prefix-free,
/// so a prefix test is exact).
pub fn country_allowed(app: &AppRecord, msisdn: &Msisdn) -> bool {
    let allowed = &app.settings.allowed_countries;
    allowed.is_empty() || allowed.iter().any(|cc| msisdn.as_str().starts_with(cc.as_str()))
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        ApiError::Refused(refusal)
    }
}

/// Log lines per reason and second; the rest are only counted, so an attack cannot flood
/// the logs.
const LOGS_PER_SECOND: u32 = 5;

#[derive(Clone, Copy, Default)]
struct Tally {
    count: u64,
    second: u64,
    logged: u32,
}

/// Refusals and monitored signals, counted by reason (for `/metrics` and operators).
#[derive(Default)]
pub struct Counts(Mutex<BTreeMap<&'static str, Tally>>);

impl Counts {
    /// No counts yet (also for a `static`).
    pub const fn new() -> Self {
        Counts(Mutex::new(BTreeMap::new()))
    }

    /// Counts one; returns whether it should also be logged (at most a few per second).
    pub fn add(&self, reason: &'static str) -> bool {
        let second = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut map = self.0.lock().expect("counts");
        let tally = map.entry(reason).or_default();
        tally.count += 1;
        if tally.second != second {
            tally.second = second;
            tally.logged = 0;
        }
        tally.logged += 1;
        tally.logged <= LOGS_PER_SECOND
    }

    pub fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        self.0.lock().expect("counts").iter().map(|(k, t)| (*k, t.count)).collect()
    }
}

/// Refusals by (app, UTC day, reason) not yet added to the store's daily counts. Each node
/// keeps its own tally and adds it every few seconds (and before the funnel page reads them),
/// so a flood of refused requests costs no extra write per request.
#[derive(Default)]
pub struct DailyRefusals(Mutex<std::collections::HashMap<(uuid::Uuid, i64, RefusalReason), u64>>);

impl DailyRefusals {
    pub fn add(&self, app_id: uuid::Uuid, now_ms: i64, reason: RefusalReason) {
        let day = now_ms.div_euclid(waotp_store::DAY_MS);
        *self.0.lock().expect("refusal tally").entry((app_id, day, reason)).or_default() += 1;
    }

    /// Adds the tally to the store; on failure it is kept for the next try.
    pub async fn flush(&self, store: &dyn waotp_store::Store) -> waotp_store::Result<()> {
        let taken = std::mem::take(&mut *self.0.lock().expect("refusal tally"));
        if taken.is_empty() {
            return Ok(());
        }
        let counts = taken
            .iter()
            .map(|(&(app_id, day, reason), &count)| waotp_store::RefusalCount { app_id, day, reason, count })
            .collect();
        if let Err(e) = store.add_refusals(counts).await {
            let mut map = self.0.lock().expect("refusal tally");
            for (k, n) in taken {
                *map.entry(k).or_default() += n;
            }
            return Err(e);
        }
        Ok(())
    }
}
