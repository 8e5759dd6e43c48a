//! The fixed-window counters behind sliding-window rate limits and pumping signals, held in the
//! writer thread's memory.
//!
//! One server writes a SQLite file, and every send and verify is a job on its writer thread,
//! so the counters need no table: a job reads and bumps them while it runs, atomically with its
//! own checks and writes. A bump stays in a journal until its group commits, and is given back
//! when its job's savepoint is rolled back or the group fails to commit: a count exists exactly
//! when the write it guarded does. They are not durable: a restart forgets them, so a limit is
//! more lenient for at most one window after it (each limit's own window; the longest, the
//! conversion rule's, is an hour).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

use waotp_core::policy::window_start;

use crate::{Limit, Refusal, SignalRule};

/// The most keys kept. A key costs 40 bytes (its hash and two windows, inline), about 80 with
/// the map's slack, so this bounds the counters at about 80 MB however many distinct numbers a
/// flood sends to. At the
/// bound a key not seen yet is not counted (its limits start from zero, as after a restart)
/// until pruning makes room; the keys already counted, an app's and an address's among them,
/// keep counting.
const MAX_KEYS: usize = 1_000_000;

/// One fixed window of a key, in 16 bytes; a count of 0 is an empty slot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Window {
    start: i64,
    count: u32,
    /// The window's length (a longer one is cut to 49 days, far beyond any configured).
    length_ms: u32,
}

impl Window {
    fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Once past, the window can count towards no sliding window any more.
    fn expires_at(&self) -> i64 {
        self.start + 2 * i64::from(self.length_ms)
    }
}

/// A key's live windows: the current and the previous one of its window length (a third
/// appears only when the length was changed, and then replaces the one that expires first).
type Windows = [Window; 2];

#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// By a keyed 64-bit hash of the key (the key's text is not kept: a msisdn and an app id
    /// make a key of 40+ bytes; the hash's key is random per process, so keys that collide
    /// cannot be chosen from outside).
    keys: HashMap<u64, Windows>,
    hasher: RandomState,
    /// Bumps not yet committed, oldest first: (key hash, window start).
    journal: Vec<(u64, i64)>,
    /// Keys not counted because [`MAX_KEYS`] were kept (for the log).
    pub(crate) dropped: u64,
}

impl Counters {
    fn hash(&self, key: &str) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The previous and current fixed-window counts of a key.
    pub(crate) fn counts(&self, key: &str, window_ms: i64, now_ms: i64) -> (u64, u64) {
        let current = window_start(now_ms, window_ms);
        let (mut previous, mut now) = (0, 0);
        for w in self.keys.get(&self.hash(key)).into_iter().flatten().filter(|w| !w.is_empty()) {
            if w.start == current {
                now = u64::from(w.count);
            } else if w.start == current - window_ms {
                previous = u64::from(w.count);
            }
        }
        (previous, now)
    }

    /// Counts one event (given back if its transaction does not commit).
    pub(crate) fn bump(&mut self, key: &str, window_ms: i64, now_ms: i64) {
        let hash = self.hash(key);
        if self.keys.len() >= MAX_KEYS && !self.keys.contains_key(&hash) {
            self.dropped += 1;
            return;
        }
        let start = window_start(now_ms, window_ms);
        let windows = self.keys.entry(hash).or_default();
        for w in windows.iter_mut() {
            if !w.is_empty() && w.expires_at() <= now_ms && w.start != start {
                *w = Window::default();
            }
        }
        if let Some(w) = windows.iter_mut().find(|w| !w.is_empty() && w.start == start) {
            w.count = w.count.saturating_add(1);
        } else {
            let length_ms = u32::try_from(window_ms).unwrap_or(u32::MAX);
            // A free slot, else the window that expires first.
            let slot = match windows.iter().position(Window::is_empty) {
                Some(i) => i,
                None => usize::from(windows[1].expires_at() < windows[0].expires_at()),
            };
            windows[slot] = Window { start, count: 1, length_ms };
        }
        self.journal.push((hash, start));
    }

    /// `Some(refusal)` if one more event would exceed the limit.
    pub(crate) fn check_limit(&self, limit: &Limit, now_ms: i64) -> Option<Refusal> {
        limit.refusal(self.counts(&limit.key, limit.window_ms, now_ms), now_ms)
    }

    /// Counts a send for a pumping rule.
    pub(crate) fn count_signal(&mut self, rule: &SignalRule, now_ms: i64) {
        match rule {
            SignalRule::Sequential { key, window_ms, .. } => self.bump(key, *window_ms, now_ms),
            SignalRule::Conversion { sent_key, window_ms, .. } => self.bump(sent_key, *window_ms, now_ms),
        }
    }

    /// Where the journal stands: [`Counters::undo_to`] gives back every bump made since.
    pub(crate) fn mark(&self) -> usize {
        self.journal.len()
    }

    /// Gives back the bumps made since `mark`, newest first.
    pub(crate) fn undo_to(&mut self, mark: usize) {
        while self.journal.len() > mark {
            let Some((hash, start)) = self.journal.pop() else { break };
            let Some(windows) = self.keys.get_mut(&hash) else { continue };
            if let Some(w) = windows.iter_mut().find(|w| !w.is_empty() && w.start == start) {
                w.count -= 1;
            }
            if windows.iter().all(Window::is_empty) {
                self.keys.remove(&hash);
            }
        }
    }

    /// The group committed: its bumps stay.
    pub(crate) fn committed(&mut self) {
        self.journal.clear();
    }

    /// Forgets windows that count towards nothing any more.
    pub(crate) fn prune(&mut self, now_ms: i64) {
        self.keys.retain(|_, windows| {
            for w in windows.iter_mut() {
                if !w.is_empty() && w.expires_at() <= now_ms {
                    *w = Window::default();
                }
            }
            windows.iter().any(|w| !w.is_empty())
        });
        if self.keys.capacity() > 4 * self.keys.len().max(1024) {
            self.keys.shrink_to_fit();
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_costs_40_bytes() {
        assert_eq!(std::mem::size_of::<(u64, Windows)>(), 40);
    }

    #[test]
    fn counts_windows_and_gives_back() {
        let mut c = Counters::default();
        c.bump("k", 1000, 500);
        c.bump("k", 1000, 900);
        c.committed();
        assert_eq!(c.counts("k", 1000, 950), (0, 2));
        assert_eq!(c.counts("k", 1000, 1500), (2, 0), "the next window sees it as previous");
        assert_eq!(c.counts("k", 1000, 2500), (0, 0), "two windows on: nothing");

        let mark = c.mark();
        c.bump("k", 1000, 1200);
        c.bump("other", 1000, 1200);
        assert_eq!(c.counts("k", 1000, 1200), (2, 1));
        c.undo_to(mark);
        assert_eq!(c.counts("k", 1000, 1200), (2, 0), "a rolled-back bump is given back");
        assert_eq!(c.counts("other", 1000, 1200), (0, 0));
        assert_eq!(c.len(), 1, "a key whose only bump was given back is gone");

        c.prune(1999);
        assert_eq!(c.counts("k", 1000, 1500), (2, 0), "still alive until its expiry");
        c.prune(2000);
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn a_changed_window_length_replaces_the_window_that_expires_first() {
        let mut c = Counters::default();
        c.bump("k", 1000, 500); // [0, 1000), expires 2000
        c.bump("k", 1000, 1500); // [1000, 2000), expires 3000
        c.bump("k", 1500, 1600); // [1500, 3000): replaces the first
        c.committed();
        assert_eq!(c.counts("k", 1000, 1600), (0, 1));
        assert_eq!(c.counts("k", 1500, 1600), (0, 1));
    }

    #[test]
    fn at_the_bound_new_keys_are_not_counted_and_known_ones_are() {
        let mut c = Counters::default();
        for n in 0..MAX_KEYS {
            c.bump(&n.to_string(), 60_000, 0);
        }
        c.committed();
        c.bump("one more", 60_000, 0);
        assert_eq!((c.counts("one more", 60_000, 0), c.dropped), ((0, 0), 1));
        c.bump("7", 60_000, 0);
        assert_eq!(c.counts("7", 60_000, 0), (0, 2));
        c.prune(120_000);
        c.bump("one more", 60_000, 120_000);
        assert_eq!(c.counts("one more", 60_000, 120_000), (0, 1), "room again once pruned");
    }
}
