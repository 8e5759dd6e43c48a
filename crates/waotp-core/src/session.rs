//! A session's verification state and the verify decision, as pure functions of stored facts.

/// Wrong tries on one code before it is locked (contract section 6).
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

impl VerifyDecision {
    /// Decides a verify attempt. `matches` is only called when the answer depends on it, so
    /// a used, locked or expired code is never compared.
    pub fn decide(
        state: SessionState,
        expires_at_ms: i64,
        now_ms: i64,
        wrong_attempts: u32,
        matches: impl FnOnce() -> bool,
    ) -> VerifyDecision {
        match state {
            SessionState::Verified | SessionState::Superseded => return VerifyDecision::NotFound,
            SessionState::Locked => return VerifyDecision::Locked,
            SessionState::Pending => {}
        }
        if wrong_attempts >= MAX_WRONG_ATTEMPTS {
            return VerifyDecision::Locked;
        }
        if now_ms >= expires_at_ms {
            return VerifyDecision::Expired;
        }
        if matches() {
            VerifyDecision::Verified
        } else {
            let attempts = wrong_attempts + 1;
            VerifyDecision::WrongCode { attempts, lock: attempts >= MAX_WRONG_ATTEMPTS }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SessionState::*;

    #[test]
    fn decisions() {
        let d = |state, exp, attempts, ok| VerifyDecision::decide(state, exp, 100, attempts, || ok);
        assert_eq!(d(Pending, 200, 0, true), VerifyDecision::Verified);
        assert_eq!(d(Pending, 200, 0, false), VerifyDecision::WrongCode { attempts: 1, lock: false });
        assert_eq!(d(Pending, 200, 4, false), VerifyDecision::WrongCode { attempts: 5, lock: true });
        assert_eq!(d(Pending, 100, 0, true), VerifyDecision::Expired);
        assert_eq!(d(Verified, 200, 0, true), VerifyDecision::NotFound);
        assert_eq!(d(Superseded, 200, 0, true), VerifyDecision::NotFound);
        assert_eq!(d(Locked, 200, 5, true), VerifyDecision::Locked);
        assert_eq!(d(Pending, 200, 5, true), VerifyDecision::Locked);
    }

    #[test]
    fn used_or_locked_codes_are_never_compared() {
        for state in [Verified, Superseded, Locked] {
            VerifyDecision::decide(state, 200, 100, 0, || panic!("compared"));
        }
        VerifyDecision::decide(Pending, 50, 100, 0, || panic!("compared"));
    }

    #[test]
    fn states_round_trip() {
        for s in [Pending, Verified, Superseded, Locked] {
            assert_eq!(SessionState::parse(s.as_str()), Some(s));
            assert_eq!(SessionState::from_code(s.code()), Some(s));
        }
    }
}
