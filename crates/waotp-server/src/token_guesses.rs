//! Wrong admin tokens (dashboard logins and admin API bearer tokens), counted per client
//! address on this node, so the token cannot be guessed at speed.
//!
//! After [`FAILURES_ALLOWED`] failures within [`WINDOW_MS`] of an address's first failure, the
//! address is answered 429 with `Retry-After` until that window is over — even when it sends
//! the right token then, so a throttled guess that happens to be right is not told apart. An
//! IPv6 address counts by its /64 (one host is usually given a whole /64); an IPv4-mapped one
//! as its IPv4 address. The table holds at most [`MAX_ADDRESSES`] addresses: when it is full,
//! addresses whose window is over go first, then the one whose window began longest ago, so a
//! flood of addresses cannot grow memory. Each node counts on its own: behind a balancer over
//! N nodes an address may fail up to N × 5 times a minute.
//!
//! Logs: an address's first failure in a window, one line when it is throttled, and one
//! summary of the attempts refused meanwhile once it tries again after the window; and never
//! more than a few lines a second in all (the refusals' own throttle).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use crate::address_key::AddressKey;
use crate::guards::Counts;

/// Wrong tokens an address may send within [`WINDOW_MS`]; the next attempt is answered 429.
pub const FAILURES_ALLOWED: u32 = 5;
/// The window, from an address's first failure.
pub const WINDOW_MS: i64 = 60_000;
/// Addresses tracked at most.
pub const MAX_ADDRESSES: usize = 10_000;

/// Where guesses come from: an address (an IPv6 one by its /64), or unknown (no peer address).
type Source = Option<AddressKey>;

struct Entry {
    /// When the window began (the first failure).
    since_ms: i64,
    failures: u32,
    /// Attempts answered 429 in this window.
    refused: u64,
}

impl Entry {
    fn over(&self, now_ms: i64) -> bool {
        now_ms - self.since_ms >= WINDOW_MS
    }
}

/// Why a token was not accepted.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The token is wrong (counted).
    Wrong,
    /// Too many wrong tokens from this address lately: try again after so many seconds.
    Throttled { retry_after_s: u64 },
}

/// The wrong tokens of this node's recent clients.
#[derive(Default)]
pub struct TokenGuesses {
    table: Mutex<HashMap<Source, Entry>>,
    logs: Counts,
}

impl TokenGuesses {
    /// Judges one attempt from `ip` at `now_ms` at `door` ("dashboard login", "admin API"):
    /// refused while the address is throttled, else `right()` decides (it runs under this
    /// table's lock, so concurrent guesses cannot slip past the count) and a wrong token counts.
    pub fn judge(
        &self,
        ip: Option<IpAddr>,
        now_ms: i64,
        door: &'static str,
        right: impl FnOnce() -> bool,
    ) -> Result<(), Refused> {
        let source = ip.map(AddressKey::of);
        // Written only if a line is logged: nothing is built for a request that logs none.
        let client = Client(ip);
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = table.get_mut(&source) {
            if entry.over(now_ms) {
                if entry.refused > 0 && self.logs.add("admin_token_throttle_summary") {
                    tracing::info!(
                        client = %client,
                        refused = entry.refused,
                        "admin token attempts refused while throttled (the window is over)"
                    );
                }
                table.remove(&source);
            } else if entry.failures >= FAILURES_ALLOWED {
                entry.refused += 1;
                let left_ms = (entry.since_ms + WINDOW_MS - now_ms).max(1);
                return Err(Refused::Throttled { retry_after_s: (left_ms as u64).div_ceil(1000) });
            }
        }
        if right() {
            return Ok(());
        }
        if !table.contains_key(&source) && table.len() >= MAX_ADDRESSES {
            make_room(&mut table, now_ms);
        }
        let entry = table.entry(source).or_insert(Entry { since_ms: now_ms, failures: 0, refused: 0 });
        entry.failures += 1;
        if entry.failures == 1 && self.logs.add("admin_token_refused") {
            tracing::warn!(client = %client, door, "wrong admin token (later failures from this address are counted)");
        } else if entry.failures == FAILURES_ALLOWED && self.logs.add("admin_token_throttled") {
            tracing::warn!(
                client = %client,
                door,
                failures = FAILURES_ALLOWED,
                window_s = WINDOW_MS / 1000,
                "wrong admin tokens: this address is answered 429 until its window is over"
            );
        }
        Err(Refused::Wrong)
    }

    /// Addresses tracked now (for tests).
    pub fn tracked(&self) -> usize {
        self.table.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// A client address as logged.
struct Client(Option<IpAddr>);

impl std::fmt::Display for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(ip) => ip.fmt(f),
            None => f.write_str("unknown"),
        }
    }
}

/// Frees one place at least: every address whose window is over, else the oldest window.
fn make_room(table: &mut HashMap<Source, Entry>, now_ms: i64) {
    table.retain(|_, e| !e.over(now_ms));
    if table.len() >= MAX_ADDRESSES {
        if let Some(oldest) = table.iter().min_by_key(|(_, e)| e.since_ms).map(|(k, _)| *k) {
            table.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn five_failures_a_minute_then_429_until_the_window_passes() {
        let g = TokenGuesses::default();
        for _ in 0..FAILURES_ALLOWED {
            assert_eq!(g.judge(ip("192.0.2.1"), 1_000, "test", || false), Err(Refused::Wrong));
        }
        assert_eq!(g.judge(ip("192.0.2.1"), 1_000, "test", || true), Err(Refused::Throttled { retry_after_s: 60 }));
        assert_eq!(g.judge(ip("192.0.2.1"), 60_500, "test", || true), Err(Refused::Throttled { retry_after_s: 1 }));
        assert_eq!(g.judge(ip("192.0.2.2"), 1_000, "test", || true), Ok(()), "another address");
        assert_eq!(g.judge(ip("192.0.2.1"), 61_000, "test", || true), Ok(()), "the window passed");
        assert_eq!(g.judge(ip("192.0.2.1"), 61_000, "test", || false), Err(Refused::Wrong), "counting afresh");
    }

    #[test]
    fn ipv6_counts_by_its_64_and_mapped_ipv4_as_ipv4() {
        let g = TokenGuesses::default();
        for n in 0..FAILURES_ALLOWED {
            let _ = g.judge(ip(&format!("2001:db8:1:2::{n}")), 0, "test", || false);
        }
        assert!(matches!(g.judge(ip("2001:db8:1:2::ffff"), 0, "test", || true), Err(Refused::Throttled { .. })));
        assert_eq!(g.judge(ip("2001:db8:1:3::1"), 0, "test", || true), Ok(()));
        for _ in 0..FAILURES_ALLOWED {
            let _ = g.judge(ip("::ffff:198.51.100.7"), 0, "test", || false);
        }
        assert!(matches!(g.judge(ip("198.51.100.7"), 0, "test", || true), Err(Refused::Throttled { .. })));
    }

    #[test]
    fn the_table_is_bounded() {
        let g = TokenGuesses::default();
        for n in 0..(MAX_ADDRESSES as u32 + 500) {
            let _ = g.judge(Some(IpAddr::V4(n.into())), i64::from(n), "test", || false);
        }
        assert_eq!(g.tracked(), MAX_ADDRESSES);
        // The newest are kept, the oldest went.
        for _ in 1..FAILURES_ALLOWED {
            let _ = g.judge(Some(IpAddr::V4((MAX_ADDRESSES as u32 + 499).into())), 20_000, "test", || false);
        }
        let newest = Some(IpAddr::V4((MAX_ADDRESSES as u32 + 499).into()));
        assert!(matches!(g.judge(newest, 20_000, "test", || true), Err(Refused::Throttled { .. })));
    }
}
