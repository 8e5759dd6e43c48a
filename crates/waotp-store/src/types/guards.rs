//! The guards' records: the limits and pumping signals a send is checked and counted against
//! in its own transaction, the blocklist, idempotency, and the outcomes of a send and a verify.

use uuid::Uuid;
use waotp_core::policy::{sliding_estimate, wait_for_room, Pumping};
use waotp_core::{Msisdn, PumpingRule, RefusalReason, SealedCode};

/// A sliding-window limit checked and counted atomically with the request it guards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    pub key: String,
    pub limit: u64,
    pub window_ms: i64,
    /// The refusal when it is exceeded.
    pub reason: RefusalReason,
}

impl Limit {
    /// The refusal of one more event, given the key's (previous window, current window)
    /// counts before it; `None`: it fits.
    pub fn refusal(&self, (previous, current): (u64, u64), now_ms: i64) -> Option<Refusal> {
        let wait = wait_for_room(previous, current, self.limit, now_ms, self.window_ms);
        (wait > 0).then_some(Refusal::retry_after(self.reason, wait))
    }
}

/// A pumping rule evaluated with a send.
#[derive(Debug, Clone, PartialEq)]
pub enum SignalRule {
    /// More than `threshold` sends into one number block within the window.
    Sequential { key: String, threshold: u64, window_ms: i64 },
    /// A range with at least `min_sends` sends in the window but fewer than `min_rate` of
    /// them verified.
    Conversion { sent_key: String, verified_key: String, min_sends: u64, min_rate: f64, window_ms: i64 },
}

impl SignalRule {
    pub fn rule(&self) -> PumpingRule {
        match self {
            SignalRule::Sequential { .. } => PumpingRule::SequentialNumbers,
            SignalRule::Conversion { .. } => PumpingRule::LowConversionPrefix,
        }
    }

    pub fn window_ms(&self) -> i64 {
        match self {
            SignalRule::Sequential { window_ms, .. } | SignalRule::Conversion { window_ms, .. } => *window_ms,
        }
    }

    /// Whether the rule fires for one more send ([`Pumping::fires`]), given `counts`: a
    /// counter's (previous window, current window) counts before this send.
    pub fn fires<E>(
        &self,
        now_ms: i64,
        mut counts: impl FnMut(&str) -> std::result::Result<(u64, u64), E>,
    ) -> std::result::Result<bool, E> {
        let window_ms = self.window_ms();
        let mut estimate = |key: &str| -> std::result::Result<f64, E> {
            let (previous, current) = counts(key)?;
            Ok(sliding_estimate(previous, current, now_ms, window_ms))
        };
        Ok(match self {
            SignalRule::Sequential { key, threshold, .. } => {
                Pumping::Sequential { threshold: *threshold }.fires(estimate(key)?, 0.0)
            }
            SignalRule::Conversion { sent_key, verified_key, min_sends, min_rate, .. } => {
                Pumping::Conversion { min_sends: *min_sends, min_rate: *min_rate }
                    .fires(estimate(sent_key)?, estimate(verified_key)?)
            }
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    pub rule: SignalRule,
    /// `Monitor`: reported, not refused; `Enforce`: refused. (`Off` rules are not sent.)
    pub enforce: bool,
}

impl Signal {
    /// The refusal of a send that fires an enforced signal: try again after its window.
    pub fn refusal(&self) -> Refusal {
        Refusal::retry_after(self.rule.rule().into(), self.rule.window_ms())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub key: String,
    /// SHA-256 of the request body: the same key with another body is refused.
    pub body_hash: [u8; 32],
}

/// Everything checked, atomically, before a production send is stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SendGuards {
    pub idempotency: Option<IdempotencyKey>,
    pub check_blocklist: bool,
    /// Checked in order; the first exceeded one refuses.
    pub limits: Vec<Limit>,
    pub signals: Vec<Signal>,
    pub use_quota: bool,
    /// The app's monthly ceiling of billable messages, checked right after the idempotency key
    /// (before anything is counted or the quota used).
    pub billable_ceiling: Option<BillableCeiling>,
}

/// An app's ceiling of billable messages in one calendar month (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BillableCeiling {
    pub limit: u64,
    /// Months since 1970-01 ([`waotp_core::calendar::month_of`] of the send's time).
    pub month: i64,
}

impl BillableCeiling {
    /// The refusal of one more send when the month already has `billable` billable messages.
    pub fn refusal(&self, billable: u64) -> Option<Refusal> {
        (billable >= self.limit).then(|| Refusal::new(RefusalReason::BillableCeilingReached))
    }
}

impl SendGuards {
    /// The rate limits' and pumping signals' verdict on one more send, given `counts`: a
    /// counter's (previous window, current window) counts before this send, by key and window.
    /// The first limit exceeded refuses; then the first enforced signal that fires; else the
    /// send passes with the monitored signals that fired. Both backends decide through this
    /// (they differ in how and when they count, not in what the counts mean).
    pub fn judge<E>(
        &self,
        now_ms: i64,
        mut counts: impl FnMut(&str, i64) -> std::result::Result<(u64, u64), E>,
    ) -> std::result::Result<std::result::Result<Vec<PumpingRule>, Refusal>, E> {
        for limit in &self.limits {
            if let Some(refusal) = limit.refusal(counts(&limit.key, limit.window_ms)?, now_ms) {
                return Ok(Err(refusal));
            }
        }
        let mut fired = Vec::new();
        for signal in &self.signals {
            let window_ms = signal.rule.window_ms();
            if signal.rule.fires(now_ms, |key| counts(key, window_ms))? {
                if signal.enforce {
                    return Ok(Err(signal.refusal()));
                }
                fired.push(signal.rule.rule());
            }
        }
        Ok(Ok(fired))
    }
}

/// A refused request: why, and for a rate limit, when it may fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub reason: RefusalReason,
    /// When one more request would fit (rate limits); `None`: waiting does not help.
    pub retry_after_ms: Option<i64>,
}

impl Refusal {
    pub fn new(reason: RefusalReason) -> Refusal {
        Refusal { reason, retry_after_ms: None }
    }

    pub fn retry_after(reason: RefusalReason, retry_after_ms: i64) -> Refusal {
        Refusal { reason, retry_after_ms: Some(retry_after_ms) }
    }
}

/// The answer of an earlier send with the same idempotency key and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentReplay {
    pub session_id: Uuid,
    pub msisdn: Msisdn,
    pub try_count: u32,
    pub sealed_code: SealedCode,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Stored; `signals` lists the monitored rules that fired.
    Created {
        try_count: u32,
        signals: Vec<PumpingRule>,
    },
    Replayed(IdempotentReplay),
    Refused(Refusal),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyOutcome {
    Decided(waotp_core::VerifyDecision),
    Refused(Refusal),
}

/// A blocklist entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockEntry {
    /// `None`: every app.
    pub app_id: Option<Uuid>,
    pub entry: String,
    pub is_prefix: bool,
    pub created_at_ms: i64,
}
