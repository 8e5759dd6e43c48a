//! Status callbacks: the delivery worker, its HTTP client with an SSRF guard, the expiry
//! sweeper that reports status 5, and the routes that show and replay deliveries.

mod guard;
pub mod routes;
pub mod target;
mod worker;

use std::sync::Arc;
use std::time::Duration;

pub use guard::{address_allowed, embedded_v4, GuardedResolver, Lookup, RefusedByPolicy, SystemLookup};
pub use worker::start;

/// How callbacks are delivered.
#[derive(Debug, Clone)]
pub struct CallbackConfig {
    /// Delay before each attempt: the first is attempt 1 (normally 0 s). After the last
    /// attempt fails, the callback is marked failed.
    pub schedule: Vec<Duration>,
    /// Limit for one attempt (connect, send, answer).
    pub timeout: Duration,
    /// Also refuse loopback and private ranges (link-local and metadata addresses are always
    /// refused).
    pub deny_private: bool,
    /// Attempts in flight to one host at once.
    pub per_host: usize,
    /// Attempts in flight in all.
    pub max_in_flight: usize,
    /// How often an idle worker looks for due callbacks.
    pub poll: Duration,
    /// Longest wait a `Retry-After` header can impose.
    pub max_retry_after: Duration,
    /// How callback hosts are resolved (the system's resolver; tests map names themselves).
    pub lookup: Arc<dyn Lookup>,
}

impl Default for CallbackConfig {
    fn default() -> Self {
        CallbackConfig {
            schedule: parse_schedule(DEFAULT_SCHEDULE).expect("valid default"),
            timeout: Duration::from_secs(15),
            deny_private: false,
            per_host: 64,
            max_in_flight: 1024,
            poll: Duration::from_millis(50),
            max_retry_after: Duration::from_secs(3600),
            lookup: Arc::new(SystemLookup),
        }
    }
}

/// 0 s, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: eight attempts over about 28 hours.
pub const DEFAULT_SCHEDULE: &str = "0s,5s,5m,30m,2h,5h,10h,10h";

/// Parses `0s,5s,5m,…` (humantime durations, comma-separated).
pub fn parse_schedule(s: &str) -> Result<Vec<Duration>, String> {
    let schedule = s
        .split(',')
        .map(|part| humantime::parse_duration(part.trim()).map_err(|e| format!("{part:?}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    if schedule.is_empty() || schedule.len() > 50 {
        return Err("the schedule needs 1 to 50 attempts".into());
    }
    Ok(schedule)
}
