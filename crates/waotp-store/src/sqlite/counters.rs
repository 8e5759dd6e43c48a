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

use waotp_core::policy::window_start;

use crate::{Limit, Refusal, SignalRule};

/// One fixed window of a key.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: i64,
    count: u64,
    /// Once past, the window can count towards no sliding window any more.
    expires_at: i64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Each key's windows still alive (one or two, rarely more after a window length changed).
    keys: HashMap<Box<str>, Vec<Window>>,
    /// Bumps not yet committed, oldest first.
    journal: Vec<(Box<str>, i64)>,
}

impl Counters {
    /// The previous and current fixed-window counts of a key.
    pub(crate) fn counts(&self, key: &str, window_ms: i64, now_ms: i64) -> (u64, u64) {
        let current = window_start(now_ms, window_ms);
        let (mut previous, mut now) = (0, 0);
        for w in self.keys.get(key).into_iter().flatten() {
            if w.start == current {
                now = w.count;
            } else if w.start == current - window_ms {
                previous = w.count;
            }
        }
        (previous, now)
    }

    /// Counts one event (given back if its transaction does not commit).
    pub(crate) fn bump(&mut self, key: &str, window_ms: i64, now_ms: i64) {
        let start = window_start(now_ms, window_ms);
        let windows = match self.keys.get_mut(key) {
            Some(windows) => windows,
            None => self.keys.entry(key.into()).or_default(),
        };
        windows.retain(|w| w.expires_at > now_ms || w.start == start);
        match windows.iter_mut().find(|w| w.start == start) {
            Some(w) => w.count += 1,
            None => windows.push(Window { start, count: 1, expires_at: start + 2 * window_ms }),
        }
        self.journal.push((key.into(), start));
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
            let Some((key, start)) = self.journal.pop() else { break };
            let Some(windows) = self.keys.get_mut(&key) else { continue };
            if let Some(i) = windows.iter().position(|w| w.start == start) {
                windows[i].count -= 1;
                if windows[i].count == 0 {
                    windows.swap_remove(i);
                }
            }
            if windows.is_empty() {
                self.keys.remove(&key);
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
            windows.retain(|w| w.expires_at > now_ms);
            !windows.is_empty()
        });
        if self.keys.capacity() > 4 * self.keys.len().max(1024) {
            self.keys.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(!c.keys.contains_key("other"));

        c.prune(1999);
        assert_eq!(c.counts("k", 1000, 1500), (2, 0), "still alive until its expiry");
        c.prune(2000);
        assert!(c.keys.is_empty());
    }
}
