//! Why a request was refused: one name per guard, from the rule that refused (in the store or
//! the HTTP layer) to the answer's status and `error_code`, the metrics' `reason` label and the
//! dashboard's daily counts. Each layer matches on the enum; only the edges write its code.

use crate::delivery::Blocklisted;
use crate::policy::PumpingRule;

/// A refusal's reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RefusalReason {
    /// The number, or one of its prefixes, is on the blocklist.
    Blocked(Blocklisted),
    /// The app does not accept numbers of this country.
    CountryNotAllowed,
    /// The app's sends per second.
    RateLimitedApp,
    /// The app's sends per client address and minute.
    RateLimitedIp,
    /// Sends, or verifies, per number and window.
    RateLimitedMsisdn,
    /// An enforced pumping rule fired.
    Pumping(PumpingRule),
    QuotaExhausted,
    /// The idempotency key was used with another body.
    IdempotencyMismatch,
    /// The app's billable messages this calendar month (UTC) reached its ceiling.
    BillableCeilingReached,
}

/// How a client should take a refusal: what the HTTP answer says (its status comes from this).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// The number may not receive codes (409).
    Blocked,
    /// Too many requests; try again later (429 with `Retry-After`).
    RateLimited,
    /// The app has no production sends left (403).
    Quota,
    /// The request conflicts with an earlier one of the same idempotency key (422).
    Conflict,
    /// The app's monthly ceiling of billable messages is reached (403).
    Ceiling,
}

impl RefusalReason {
    pub const ALL: [RefusalReason; 11] = [
        RefusalReason::Blocked(Blocklisted::Number),
        RefusalReason::Blocked(Blocklisted::Prefix),
        RefusalReason::CountryNotAllowed,
        RefusalReason::RateLimitedApp,
        RefusalReason::RateLimitedIp,
        RefusalReason::RateLimitedMsisdn,
        RefusalReason::Pumping(PumpingRule::SequentialNumbers),
        RefusalReason::Pumping(PumpingRule::LowConversionPrefix),
        RefusalReason::QuotaExhausted,
        RefusalReason::IdempotencyMismatch,
        RefusalReason::BillableCeilingReached,
    ];

    /// The machine-readable name: the answer's `error_code`, the metrics' label and the
    /// stored daily counts' key.
    pub fn code(self) -> &'static str {
        match self {
            RefusalReason::Blocked(blocked) => blocked.code(),
            RefusalReason::CountryNotAllowed => "country_not_allowed",
            RefusalReason::RateLimitedApp => "rate_limited_app",
            RefusalReason::RateLimitedIp => "rate_limited_ip",
            RefusalReason::RateLimitedMsisdn => "rate_limited_msisdn",
            RefusalReason::Pumping(rule) => rule.code(),
            RefusalReason::QuotaExhausted => "quota_exhausted",
            RefusalReason::IdempotencyMismatch => "idempotency_mismatch",
            RefusalReason::BillableCeilingReached => "billable_ceiling_reached",
        }
    }

    pub fn kind(self) -> RefusalKind {
        match self {
            RefusalReason::Blocked(_) | RefusalReason::CountryNotAllowed => RefusalKind::Blocked,
            RefusalReason::RateLimitedApp
            | RefusalReason::RateLimitedIp
            | RefusalReason::RateLimitedMsisdn
            | RefusalReason::Pumping(_) => RefusalKind::RateLimited,
            RefusalReason::QuotaExhausted => RefusalKind::Quota,
            RefusalReason::IdempotencyMismatch => RefusalKind::Conflict,
            RefusalReason::BillableCeilingReached => RefusalKind::Ceiling,
        }
    }

    /// The reason of a code (as stored in the daily counts).
    pub fn from_code(code: &str) -> Option<RefusalReason> {
        RefusalReason::ALL.into_iter().find(|r| r.code() == code)
    }
}

impl From<Blocklisted> for RefusalReason {
    fn from(blocked: Blocklisted) -> Self {
        RefusalReason::Blocked(blocked)
    }
}

impl From<PumpingRule> for RefusalReason {
    fn from(rule: PumpingRule) -> Self {
        RefusalReason::Pumping(rule)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_its_own_code_and_reads_back_from_it() {
        let mut codes: Vec<_> = RefusalReason::ALL.iter().map(|r| r.code()).collect();
        for reason in RefusalReason::ALL {
            assert_eq!(RefusalReason::from_code(reason.code()), Some(reason));
        }
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), RefusalReason::ALL.len());
        assert_eq!(RefusalReason::from_code("no_such_reason"), None);
    }
}
