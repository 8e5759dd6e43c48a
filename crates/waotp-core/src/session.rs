//! A session's verification state and the verify decision, as pure functions of stored facts.

use crate::Status;

/// Wrong tries on one code before it is locked (api.md section 6).
pub const MAX_WRONG_ATTEMPTS: u32 = 5;

/// Where a session's code stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// The newest code for its (app, msisdn, challenge); may still be expired by time.
    Pending,
    /// Verified: the code is used up.
    Verified,
    /// A newer send for the same key replaced it.
    Superseded,
    /// Too many wrong tries.
    Locked,
}

impl SessionState {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::Pending => "pending",
            SessionState::Verified => "verified",
            SessionState::Superseded => "superseded",
            SessionState::Locked => "locked",
        }
    }

    pub fn parse(s: &str) -> Option<SessionState> {
        Some(match s {
            "pending" => SessionState::Pending,
            "verified" => SessionState::Verified,
            "superseded" => SessionState::Superseded,
            "locked" => SessionState::Locked,
            _ => return None,
        })
    }

    pub fn code(self) -> i64 {
        match self {
            SessionState::Pending => 0,
            SessionState::Verified => 1,
            SessionState::Superseded => 2,
            SessionState::Locked => 3,
        }
    }

    pub fn from_code(c: i64) -> Option<SessionState> {
        Some(match c {
            0 => SessionState::Pending,
            1 => SessionState::Verified,
            2 => SessionState::Superseded,
            3 => SessionState::Locked,
            _ => return None,
        })
    }
}

/// What a verify attempt does to the newest session of its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyDecision {
    /// 200: the code matched in time; the session becomes Verified.
    Verified,
    /// 404: a wrong code; `attempts` is the new count of wrong tries and `lock` says whether
    /// this try locks the session.
    WrongCode { attempts: u32, lock: bool },
    /// 404: nothing pending (already used or superseded).
    NotFound,
    /// 422: the code's time limit passed.
    Expired,
    /// 429: locked after too many wrong tries.
    Locked,
}

/// The facts a verify is decided on: the newest session of its (app, msisdn, challenge), as
/// stored (loaded by the store inside the verify's transaction, with its row locked where the
/// backend locks rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyFacts {
    pub state: SessionState,
    /// Its lifecycle status (a sweeper may have reported 5 Unverified already).
    pub status: Status,
    pub expires_at_ms: i64,
    /// Wrong tries so far.
    pub wrong_attempts: u32,
}

/// What a decision writes to its session (see [`VerifyDecision::write`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyWrite {
    pub state: SessionState,
    /// The new count of wrong tries; `None`: unchanged.
    pub wrong_attempts: Option<u32>,
    /// The status the session reports (with its callback), if any.
    pub report: Option<Status>,
}

impl VerifyDecision {
    /// Decides a verify attempt on the newest session of its key (`None`: there is none).
    /// `matches` is only called when the answer depends on it, so a used, locked or expired
    /// code is never compared.
    pub fn decide(newest: Option<VerifyFacts>, now_ms: i64, matches: impl FnOnce() -> bool) -> VerifyDecision {
        let Some(s) = newest else { return VerifyDecision::NotFound };
        if s.status == Status::Unverified {
            // The sweeper reported its expiry already (its clock ran a little ahead of this
            // request's): the answer must agree with the callback.
            return VerifyDecision::Expired;
        }
        match s.state {
            SessionState::Verified | SessionState::Superseded => return VerifyDecision::NotFound,
            SessionState::Locked => return VerifyDecision::Locked,
            SessionState::Pending => {}
        }
        if s.wrong_attempts >= MAX_WRONG_ATTEMPTS {
            return VerifyDecision::Locked;
        }
        if now_ms >= s.expires_at_ms {
            return VerifyDecision::Expired;
        }
        if matches() {
            VerifyDecision::Verified
        } else {
            let attempts = s.wrong_attempts + 1;
            VerifyDecision::WrongCode { attempts, lock: attempts >= MAX_WRONG_ATTEMPTS }
        }
    }

    /// What the decision changes in its session; `None`: nothing.
    pub fn write(self) -> Option<VerifyWrite> {
        match self {
            VerifyDecision::Verified => Some(VerifyWrite {
                state: SessionState::Verified,
                wrong_attempts: None,
                report: Some(Status::Verified),
            }),
            VerifyDecision::WrongCode { attempts, lock } => Some(VerifyWrite {
                state: if lock { SessionState::Locked } else { SessionState::Pending },
                wrong_attempts: Some(attempts),
                report: None,
            }),
            VerifyDecision::NotFound | VerifyDecision::Expired | VerifyDecision::Locked => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SessionState::*;

    fn facts(state: SessionState, status: Status, expires_at_ms: i64, wrong_attempts: u32) -> Option<VerifyFacts> {
        Some(VerifyFacts { state, status, expires_at_ms, wrong_attempts })
    }

    /// Every outcome of the verify decision, at `now` = 100.
    #[test]
    fn decisions() {
        use Status::{Delivered, Requested, Sent, Unverified};
        use VerifyDecision as D;
        let wrong = |attempts, lock| D::WrongCode { attempts, lock };
        #[rustfmt::skip]
        let table: &[(Option<VerifyFacts>, bool, VerifyDecision)] = &[
            // no session of the key
            (None,                                  true,  D::NotFound),
            // pending, in time: the code decides
            (facts(Pending, Sent, 200, 0),          true,  D::Verified),
            (facts(Pending, Requested, 200, 0),     true,  D::Verified),
            (facts(Pending, Sent, 200, 0),          false, wrong(1, false)),
            (facts(Pending, Delivered, 200, 3),     false, wrong(4, false)),
            // the last wrong try locks
            (facts(Pending, Sent, 200, 4),          false, wrong(5, true)),
            (facts(Pending, Sent, 200, 4),          true,  D::Verified),
            // at the cap: locked even with the right code
            (facts(Pending, Sent, 200, 5),          true,  D::Locked),
            (facts(Locked, Sent, 200, 5),           true,  D::Locked),
            // expiry: at the instant of expiry, and after
            (facts(Pending, Sent, 100, 0),          true,  D::Expired),
            (facts(Pending, Sent, 50, 0),           false, D::Expired),
            // the sweeper reported 5 already, even if the clock here says it is in time
            (facts(Pending, Unverified, 200, 0),    true,  D::Expired),
            (facts(Locked, Unverified, 200, 5),     true,  D::Expired),
            // used up, or replaced by a newer code
            (facts(Verified, Status::Verified, 200, 0), true, D::NotFound),
            (facts(Superseded, Sent, 200, 0),       true,  D::NotFound),
        ];
        for (i, (newest, ok, want)) in table.iter().enumerate() {
            assert_eq!(VerifyDecision::decide(*newest, 100, || *ok), *want, "row {i}: {newest:?}, matches {ok}");
        }
    }

    #[test]
    fn writes() {
        let verified = VerifyDecision::Verified.write().unwrap();
        assert_eq!(
            (verified.state, verified.wrong_attempts, verified.report),
            (Verified, None, Some(Status::Verified))
        );
        let wrong = VerifyDecision::WrongCode { attempts: 2, lock: false }.write().unwrap();
        assert_eq!((wrong.state, wrong.wrong_attempts, wrong.report), (Pending, Some(2), None));
        let locks = VerifyDecision::WrongCode { attempts: 5, lock: true }.write().unwrap();
        assert_eq!((locks.state, locks.wrong_attempts, locks.report), (Locked, Some(5), None));
        for d in [VerifyDecision::NotFound, VerifyDecision::Expired, VerifyDecision::Locked] {
            assert_eq!(d.write(), None, "{d:?}");
        }
    }

    #[test]
    fn used_or_locked_codes_are_never_compared() {
        for state in [Verified, Superseded, Locked] {
            VerifyDecision::decide(facts(state, Status::Sent, 200, 0), 100, || panic!("compared"));
        }
        VerifyDecision::decide(facts(Pending, Status::Sent, 50, 0), 100, || panic!("compared"));
        VerifyDecision::decide(facts(Pending, Status::Unverified, 200, 0), 100, || panic!("compared"));
        VerifyDecision::decide(facts(Pending, Status::Sent, 200, 5), 100, || panic!("compared"));
        VerifyDecision::decide(None, 100, || panic!("compared"));
    }

    #[test]
    fn states_round_trip() {
        for s in [Pending, Verified, Superseded, Locked] {
            assert_eq!(SessionState::parse(s.as_str()), Some(s));
            assert_eq!(SessionState::from_code(s.code()), Some(s));
        }
    }
}
