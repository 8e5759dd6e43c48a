//! The last look before a message goes out, as a pure function of the facts a store loads:
//! whether its code may still be sent, and to that number.

use crate::SessionState;

/// Why a number is blocked: an entry for the number itself, or for one of its prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Blocklisted {
    Number,
    Prefix,
}

impl Blocklisted {
    /// The refusal code (the send route's, the metrics' and the stored error text's).
    pub fn code(self) -> &'static str {
        match self {
            Blocklisted::Number => "blocked_number",
            Blocklisted::Prefix => "blocked_prefix",
        }
    }

    /// From which kinds of blocklist entry match a number (in its app's scope or every app's):
    /// an entry for the number itself is named before one for a prefix.
    pub fn from_matches(number: bool, prefix: bool) -> Option<Blocklisted> {
        match (number, prefix) {
            (true, _) => Some(Blocklisted::Number),
            (false, true) => Some(Blocklisted::Prefix),
            (false, false) => None,
        }
    }
}

/// Why a code is no longer sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stale {
    /// The session is gone (pruned, or another app's id).
    Gone,
    Superseded,
    Verified,
    Locked,
    Expired,
}

impl Stale {
    /// The reason kept with the session (its `error_text`, shown on the dashboard).
    pub fn reason(self) -> &'static str {
        match self {
            Stale::Gone => "the session is gone",
            Stale::Superseded => "superseded by a newer code before it was sent",
            Stale::Verified => "verified before it was sent",
            Stale::Locked => "locked before it was sent",
            Stale::Expired => "expired before it was sent",
        }
    }
}

/// What a store loads for the check, right before a channel sends (in the delivery's own
/// transaction where the channel records its delivery itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryFacts {
    /// The session's state and expiry (unix ms); `None`: no such session of that app.
    pub session: Option<(SessionState, i64)>,
    /// Whether the number is blocked now.
    pub blocked: Option<Blocklisted>,
}

/// What to do with a message about to be delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryCheck {
    Send,
    /// The number was blocked meanwhile: reported as 9 Blocked.
    Blocked(Blocklisted),
    /// The code can no longer be used: not sent, the status does not change.
    Stale(Stale),
}

impl DeliveryCheck {
    /// The check at `now_ms`: a session that is gone first, then a blocked number, then a
    /// code that can no longer be used.
    pub fn decide(facts: DeliveryFacts, now_ms: i64) -> DeliveryCheck {
        let Some((state, expires_at_ms)) = facts.session else { return DeliveryCheck::Stale(Stale::Gone) };
        if let Some(blocked) = facts.blocked {
            return DeliveryCheck::Blocked(blocked);
        }
        match state {
            SessionState::Superseded => DeliveryCheck::Stale(Stale::Superseded),
            SessionState::Verified => DeliveryCheck::Stale(Stale::Verified),
            SessionState::Locked => DeliveryCheck::Stale(Stale::Locked),
            SessionState::Pending if now_ms >= expires_at_ms => DeliveryCheck::Stale(Stale::Expired),
            SessionState::Pending => DeliveryCheck::Send,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SessionState::*;

    /// Every outcome of the check, at `now` = 100.
    #[test]
    fn checks() {
        use DeliveryCheck::{Blocked, Send};
        let facts = |session, blocked| DeliveryFacts { session, blocked };
        let number = Some(Blocklisted::Number);
        #[rustfmt::skip]
        let table: &[(DeliveryFacts, DeliveryCheck)] = &[
            (facts(Some((Pending, 200)), None),     Send),
            (facts(Some((Pending, 101)), None),     Send),
            // expiry at the instant itself
            (facts(Some((Pending, 100)), None),     DeliveryCheck::Stale(Stale::Expired)),
            (facts(Some((Superseded, 200)), None),  DeliveryCheck::Stale(Stale::Superseded)),
            (facts(Some((Verified, 200)), None),    DeliveryCheck::Stale(Stale::Verified)),
            (facts(Some((Locked, 200)), None),      DeliveryCheck::Stale(Stale::Locked)),
            // a blocked number is reported before a stale code
            (facts(Some((Pending, 200)), number),   Blocked(Blocklisted::Number)),
            (facts(Some((Locked, 50)), Some(Blocklisted::Prefix)), Blocked(Blocklisted::Prefix)),
            // a session that is gone is not reported at all
            (facts(None, number),                   DeliveryCheck::Stale(Stale::Gone)),
            (facts(None, None),                     DeliveryCheck::Stale(Stale::Gone)),
        ];
        for (i, (f, want)) in table.iter().enumerate() {
            assert_eq!(DeliveryCheck::decide(*f, 100), *want, "row {i}: {f:?}");
        }
    }

    #[test]
    fn a_number_entry_is_named_before_a_prefix() {
        assert_eq!(Blocklisted::from_matches(true, true), Some(Blocklisted::Number));
        assert_eq!(Blocklisted::from_matches(true, false), Some(Blocklisted::Number));
        assert_eq!(Blocklisted::from_matches(false, true), Some(Blocklisted::Prefix));
        assert_eq!(Blocklisted::from_matches(false, false), None);
        assert_eq!((Blocklisted::Number.code(), Blocklisted::Prefix.code()), ("blocked_number", "blocked_prefix"));
    }
}
