//! The arithmetic of waotp's guards: sliding-window rate estimates and the pumping signals'
//! number shapes. Pure functions; the store keeps the counts.

use serde::{Deserialize, Serialize};

/// How a guard rule acts when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleMode {
    Off,
    /// Logged and counted; the request goes through.
    Monitor,
    /// The request is refused.
    Enforce,
}

impl RuleMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleMode::Off => "off",
            RuleMode::Monitor => "monitor",
            RuleMode::Enforce => "enforce",
        }
    }

    pub fn parse(s: &str) -> Option<RuleMode> {
        match s.to_ascii_lowercase().as_str() {
            "off" => Some(RuleMode::Off),
            "monitor" => Some(RuleMode::Monitor),
            "enforce" => Some(RuleMode::Enforce),
            _ => None,
        }
    }
}

/// Start of the fixed window containing `now_ms`.
pub fn window_start(now_ms: i64, window_ms: i64) -> i64 {
    now_ms - now_ms.rem_euclid(window_ms)
}

/// The sliding-window estimate of events in the last `window_ms`: the current fixed window's
/// count plus the previous window's, weighted by how much of it the sliding window still
/// covers. Smooth at window edges, two counters per key.
pub fn sliding_estimate(previous: u64, current: u64, now_ms: i64, window_ms: i64) -> f64 {
    let into_current = (now_ms - window_start(now_ms, window_ms)) as f64 / window_ms as f64;
    previous as f64 * (1.0 - into_current) + current as f64
}

/// Milliseconds until one more event fits under `limit`, given the counts (0 if it fits now).
pub fn wait_for_room(previous: u64, current: u64, limit: u64, now_ms: i64, window_ms: i64) -> i64 {
    if sliding_estimate(previous, current, now_ms, window_ms) + 1.0 <= limit as f64 {
        return 0;
    }
    let end_of_current = window_start(now_ms, window_ms) + window_ms;
    if current + 1 > limit {
        // Only the next window can help; then `current` becomes the weighted previous one.
        let needed = 1.0 - (limit as f64 - 1.0) / current as f64;
        return end_of_current - now_ms + (needed.clamp(0.0, 1.0) * window_ms as f64).ceil() as i64;
    }
    // Room appears as the previous window's weight decays.
    let weight_allowed = (limit as f64 - 1.0 - current as f64) / previous as f64;
    let at = window_start(now_ms, window_ms) + ((1.0 - weight_allowed) * window_ms as f64).ceil() as i64;
    (at - now_ms).max(1)
}

/// The pumping rules by name: what a signal that fired reports, and an enforced one's refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PumpingRule {
    /// Bursts into one block of consecutive numbers ([`Pumping::Sequential`]).
    SequentialNumbers,
    /// A range that receives codes but rarely verifies ([`Pumping::Conversion`]).
    LowConversionPrefix,
}

impl PumpingRule {
    /// The rule's name in logs, metrics and refusals.
    pub fn code(self) -> &'static str {
        match self {
            PumpingRule::SequentialNumbers => "sequential_numbers",
            PumpingRule::LowConversionPrefix => "low_conversion_prefix",
        }
    }
}

/// A pumping signal's rule: the number shapes of SMS/WhatsApp pumping, judged on the sliding
/// estimates ([`sliding_estimate`]) of the counters the store keeps for them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pumping {
    /// More than `threshold` sends into one block of 100 numbers ([`number_block`]).
    Sequential { threshold: u64 },
    /// A range ([`conversion_prefix`]) with at least `min_sends` sends but fewer than
    /// `min_rate` of them verified.
    Conversion { min_sends: u64, min_rate: f64 },
}

impl Pumping {
    /// Whether the rule fires for one more send, given the estimates of its range's sends so
    /// far and of its verified codes (which a sequential rule does not look at).
    pub fn fires(self, sent: f64, verified: f64) -> bool {
        match self {
            Pumping::Sequential { threshold } => sent + 1.0 > threshold as f64,
            Pumping::Conversion { min_sends, min_rate } => sent >= min_sends as f64 && verified < sent * min_rate,
        }
    }
}

/// The block of 100 consecutive numbers a msisdn belongs to (all digits but the last two):
/// bursts into one block are the shape of sequential-number pumping.
pub fn number_block(msisdn: &str) -> &str {
    &msisdn[..msisdn.len().saturating_sub(2)]
}

/// The range used for conversion tracking: country code and the next digits, 6 in all
/// (e.g. `628123`), a typical operator range.
pub fn conversion_prefix(msisdn: &str) -> &str {
    &msisdn[..msisdn.len().min(6)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliding_window() {
        // 10 s windows; at 25 s we are half into [20, 30).
        assert_eq!(window_start(25_000, 10_000), 20_000);
        assert_eq!(sliding_estimate(4, 1, 25_000, 10_000), 3.0);
        assert_eq!(sliding_estimate(4, 1, 20_000, 10_000), 5.0);
        assert_eq!(sliding_estimate(0, 3, 29_999, 10_000), 3.0);
    }

    #[test]
    fn waits() {
        // Limit 5: with 4 before and 1 now at 25 s, estimate 3: room now.
        assert_eq!(wait_for_room(4, 1, 5, 25_000, 10_000), 0);
        // 8 before, 0 now, at 21 s: estimate 7.2; room when 8 * (1 - f) <= 4, f >= 0.5: at 25 s.
        assert_eq!(wait_for_room(8, 0, 5, 21_000, 10_000), 4_000);
        // 5 in the current window: wait past its end, until 5 * (1 - f) <= 4: f >= 0.2.
        assert_eq!(wait_for_room(0, 5, 5, 21_000, 10_000), 9_000 + 2_000);
        let w = wait_for_room(3, 5, 5, 22_000, 10_000);
        assert!(w > 8_000, "{w}");
    }

    /// Each pumping rule at, below and above its thresholds.
    #[test]
    fn pumping_rules() {
        let seq = Pumping::Sequential { threshold: 10 };
        let conv = Pumping::Conversion { min_sends: 20, min_rate: 0.25 };
        #[rustfmt::skip]
        let table: &[(Pumping, f64, f64, bool)] = &[
            // sequential: one more send past the threshold fires; verified codes do not matter
            (seq,  8.9,  0.0,   false),
            (seq,  9.0,  0.0,   false),
            (seq,  9.5,  0.0,   true),
            (seq,  10.0, 100.0, true),
            // conversion: too few sends never fires
            (conv, 19.9, 0.0,   false),
            // enough sends: fires below the rate, not at or above it
            (conv, 20.0, 4.9,   true),
            (conv, 20.0, 5.0,   false),
            (conv, 40.0, 9.0,   true),
            (conv, 40.0, 20.0,  false),
        ];
        for (rule, sent, verified, want) in table {
            assert_eq!(rule.fires(*sent, *verified), *want, "{rule:?} with {sent} sent, {verified} verified");
        }
    }

    #[test]
    fn shapes() {
        assert_eq!(number_block("6281234567890"), "62812345678");
        assert_eq!(conversion_prefix("6281234567890"), "628123");
        assert_eq!(RuleMode::parse("Enforce"), Some(RuleMode::Enforce));
    }
}
