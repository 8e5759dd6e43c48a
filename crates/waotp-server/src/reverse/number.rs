//! The business numbers a reverse start names, as read from the Graph API: remembered by
//! phone-number id once read (they do not change while a number is registered; a restart reads
//! them again), and a failed read remembered too, for a backoff, so that while the Graph API
//! cannot answer a start is answered at once instead of waiting for it again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clock::Clock;

/// How long the first failed read is remembered; each failure after it doubles this, up to
/// [`MAX_BACKOFF`]. A read that succeeds forgets the failures.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(5);
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

enum Entry {
    Known(String),
    /// `failures` reads in a row failed; none is tried again before `until_ms`.
    Failing {
        failures: u32,
        until_ms: i64,
    },
}

/// What is known of a number without asking the Graph API.
#[derive(Debug, PartialEq, Eq)]
pub enum Cached {
    Known(String),
    /// A read failed lately: do not try again for this long.
    BackingOff(Duration),
    /// Read it.
    Unknown,
}

/// The numbers read, and the reads that failed lately, by phone-number id.
pub struct Numbers {
    clock: Clock,
    entries: Mutex<HashMap<String, Entry>>,
    /// One per phone-number id, held while its number is read, so that starts arriving
    /// meanwhile wait for that one read and its outcome instead of each asking the Graph API (a
    /// read is rare: once per number per process, or once per backoff while the Graph API fails).
    reading: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Numbers {
    pub fn new(clock: Clock) -> Numbers {
        Numbers { clock, entries: Mutex::default(), reading: Mutex::default() }
    }

    /// The lock to hold while reading the number of `phone_number_id`.
    pub fn reading(&self, phone_number_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.reading.lock().expect("numbers").entry(phone_number_id.to_owned()).or_default().clone()
    }

    pub fn cached(&self, phone_number_id: &str) -> Cached {
        match self.entries.lock().expect("numbers").get(phone_number_id) {
            None => Cached::Unknown,
            Some(Entry::Known(number)) => Cached::Known(number.clone()),
            Some(Entry::Failing { until_ms, .. }) => {
                let left = until_ms.saturating_sub(self.clock.now_ms());
                if left > 0 {
                    Cached::BackingOff(Duration::from_millis(left as u64))
                } else {
                    Cached::Unknown
                }
            }
        }
    }

    pub fn read(&self, phone_number_id: &str, number: String) {
        self.entries.lock().expect("numbers").insert(phone_number_id.to_owned(), Entry::Known(number));
    }

    /// A read failed: how long until the next may be tried.
    pub fn failed(&self, phone_number_id: &str) -> Duration {
        let mut entries = self.entries.lock().expect("numbers");
        let failures = match entries.get(phone_number_id) {
            Some(Entry::Failing { failures, .. }) => failures.saturating_add(1),
            _ => 1,
        };
        let backoff = FIRST_BACKOFF.saturating_mul(2u32.saturating_pow(failures - 1)).min(MAX_BACKOFF);
        let until_ms = self.clock.now_ms().saturating_add(backoff.as_millis() as i64);
        entries.insert(phone_number_id.to_owned(), Entry::Failing { failures, until_ms });
        backoff
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_read_backs_off_doubling_to_five_minutes_until_one_succeeds() {
        let clock = Clock::system();
        let numbers = Numbers::new(clock.clone());
        assert_eq!(numbers.cached("A"), Cached::Unknown);
        let mut expected = Vec::new();
        let mut got = Vec::new();
        for failure in 0..9 {
            let backoff = numbers.failed("A");
            got.push(backoff.as_secs());
            expected.push((5u64 << failure).min(300));
            let Cached::BackingOff(left) = numbers.cached("A") else { panic!("backing off") };
            assert!(left <= backoff && left > backoff - Duration::from_secs(2), "{left:?} of {backoff:?}");
            assert_eq!(numbers.cached("B"), Cached::Unknown, "per phone-number id");
            clock.advance(backoff - Duration::from_millis(500));
            assert!(matches!(numbers.cached("A"), Cached::BackingOff(_)), "not before the backoff is over");
            clock.advance(Duration::from_secs(1));
            assert_eq!(numbers.cached("A"), Cached::Unknown, "then read again");
        }
        assert_eq!(got, expected);
        assert_eq!(got[..7], [5, 10, 20, 40, 80, 160, 300]);
        // A success forgets the failures: the next failure starts over at 5 s.
        numbers.read("A", "15550100199".into());
        assert_eq!(numbers.cached("A"), Cached::Known("15550100199".into()));
        assert_eq!(numbers.failed("A"), FIRST_BACKOFF);
    }
}
