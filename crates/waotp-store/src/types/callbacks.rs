//! The callbacks outbox's records: a claimed callback, an attempt, what follows it, and a
//! callback with its delivery log.

use uuid::Uuid;
use waotp_core::Status;

/// A callback claimed for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackJob {
    pub id: i64,
    pub session_id: Uuid,
    pub app_id: Uuid,
    pub status: Status,
    pub url: String,
    /// The Standard Webhooks `webhook-id`: the same on every attempt, for deduplication.
    pub webhook_id: String,
    /// Attempts made before this one.
    pub attempts: u32,
    pub challenge: String,
    /// When the status happened.
    pub happened_at_ms: i64,
    /// The lease this claim holds; settling the attempt needs it.
    pub lease_until_ms: i64,
}

/// One delivery attempt, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub at_ms: i64,
    pub http_status: Option<u16>,
    pub error: Option<String>,
    pub latency_ms: i64,
}

/// What happens to a callback after an attempt (or a decision not to attempt now).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackNext {
    /// Received (a 2xx).
    Delivered,
    /// Failed; try again at this time.
    RetryAt(i64),
    /// Failed for the last time: marked failed, the session's next status may go.
    GiveUp,
    /// Not attempted (its host is busy): release it until then, no attempt counted.
    DeferTo(i64),
}

/// `next_attempt_at` of a callback held behind an earlier pending one of its session: never
/// due, so the claim query never scans it; it is released when its predecessor is settled.
/// (PostgreSQL's `waotp_held()` is the same number.)
pub(crate) const HELD: i64 = i64::MAX / 4;

impl CallbackNext {
    /// The state the callback is left in, and when it is next due if it stays pending.
    pub fn outcome(&self) -> (CallbackState, Option<i64>) {
        match self {
            CallbackNext::Delivered => (CallbackState::Delivered, None),
            CallbackNext::GiveUp => (CallbackState::Failed, None),
            CallbackNext::RetryAt(at) | CallbackNext::DeferTo(at) => (CallbackState::Pending, Some(*at)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackState {
    Pending,
    Delivered,
    Failed,
}

impl CallbackState {
    /// As stored: 0 pending, 1 delivered, 2 failed (both backends).
    pub fn code(self) -> i64 {
        match self {
            CallbackState::Pending => 0,
            CallbackState::Delivered => 1,
            CallbackState::Failed => 2,
        }
    }

    pub fn from_code(code: i64) -> crate::Result<Self> {
        match code {
            0 => Ok(CallbackState::Pending),
            1 => Ok(CallbackState::Delivered),
            2 => Ok(CallbackState::Failed),
            other => Err(crate::StoreError::Corrupt(format!("callback state {other}"))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CallbackState::Pending => "pending",
            CallbackState::Delivered => "delivered",
            CallbackState::Failed => "failed",
        }
    }
}

/// A callback with its delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackRecord {
    pub status: Status,
    pub url: String,
    pub webhook_id: String,
    pub state: CallbackState,
    pub attempts: u32,
    pub next_attempt_at_ms: i64,
    pub happened_at_ms: i64,
    pub log: Vec<AttemptRecord>,
}

impl CallbackRecord {
    /// When it is next due: pending and not held behind an earlier status of its session.
    pub fn due_at_ms(&self) -> Option<i64> {
        (self.state == CallbackState::Pending && self.next_attempt_at_ms < HELD).then_some(self.next_attempt_at_ms)
    }

    /// Its state as logs show it: `pending`, `delivered`, `failed`, or `waiting` while it is
    /// held behind an earlier pending status of its session (pending, but not due).
    pub fn shown_state(&self) -> &'static str {
        match self.state {
            CallbackState::Pending if self.due_at_ms().is_none() => "waiting",
            state => state.as_str(),
        }
    }
}
