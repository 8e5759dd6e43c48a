//! The lifecycle statuses a session reports through callbacks (api.md section 7).

/// A session's lifecycle status, numbered as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Status {
    Requested = 0,
    Sent = 1,
    Delivered = 2,
    Read = 3,
    Verified = 4,
    Unverified = 5,
    Failed = 6,
    RequestError = 7,
    Rejected = 8,
    Blocked = 9,
    TierLimitExceeded = 10,
}

impl Status {
    pub const ALL: [Status; 11] = [
        Status::Requested,
        Status::Sent,
        Status::Delivered,
        Status::Read,
        Status::Verified,
        Status::Unverified,
        Status::Failed,
        Status::RequestError,
        Status::Rejected,
        Status::Blocked,
        Status::TierLimitExceeded,
    ];

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: i64) -> Option<Status> {
        Status::ALL.into_iter().find(|s| i64::from(s.code()) == code)
    }

    /// The contract's name for the status.
    pub fn name(self) -> &'static str {
        match self {
            Status::Requested => "Requested",
            Status::Sent => "Sent",
            Status::Delivered => "Delivered",
            Status::Read => "Read",
            Status::Verified => "Verified",
            Status::Unverified => "Unverified",
            Status::Failed => "Failed",
            Status::RequestError => "Request Error",
            Status::Rejected => "Rejected",
            Status::Blocked => "Blocked",
            Status::TierLimitExceeded => "Tier Limit Exceeded",
        }
    }

    /// Position in the lifecycle. A session only ever moves to a higher rank: delivery
    /// progress (0–3), then a delivery failure (6–10), then the verification outcome (4, 5).
    pub fn rank(self) -> u8 {
        match self {
            Status::Requested => 0,
            Status::Sent => 1,
            Status::Delivered => 2,
            Status::Read => 3,
            Status::Failed | Status::RequestError | Status::Rejected | Status::Blocked | Status::TierLimitExceeded => 4,
            Status::Verified | Status::Unverified => 5,
        }
    }

    /// Every status's [`Status::rank`], indexed by its code: how a statement that must apply
    /// the order inside the database (PostgreSQL's `waotp_advance`) gets it without a copy.
    pub fn ranks() -> [i32; 11] {
        Status::ALL.map(|s| i32::from(s.rank()))
    }

    /// Whether a session at `self` may report `next` (never backwards, never twice).
    pub fn can_move_to(self, next: Status) -> bool {
        next.rank() > self.rank()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for s in Status::ALL {
            assert_eq!(Status::from_code(i64::from(s.code())), Some(s));
        }
        assert_eq!(Status::from_code(11), None);
        assert_eq!(Status::TierLimitExceeded.code(), 10);
    }

    /// The lifecycle's order, spelled out: delivery progress, then a delivery failure (any of
    /// them alike), then the outcome.
    #[test]
    fn ranks() {
        assert_eq!(Status::ranks(), [0, 1, 2, 3, 5, 5, 4, 4, 4, 4, 4]);
        for s in Status::ALL {
            assert_eq!(Status::ranks()[usize::from(s.code())], i32::from(s.rank()));
        }
    }

    #[test]
    fn never_backwards_never_twice() {
        assert!(Status::Requested.can_move_to(Status::Sent));
        assert!(Status::Sent.can_move_to(Status::Read));
        assert!(!Status::Read.can_move_to(Status::Delivered));
        assert!(!Status::Read.can_move_to(Status::Read));
        assert!(Status::Read.can_move_to(Status::Verified));
        assert!(Status::Sent.can_move_to(Status::Failed));
        assert!(Status::Failed.can_move_to(Status::Unverified));
        assert!(!Status::Verified.can_move_to(Status::Unverified));
        assert!(!Status::Verified.can_move_to(Status::Read));
    }
}
