//! What a Graph API error code means for an OTP: retry (and how), or a final status.
//! Branch on `code` only, as Meta advises (not on HTTP status, subcode or title). The codes and
//! what Meta says of each: whatsapp-cloud-api.md section 3.

use std::time::Duration;

use waotp_core::Status;

/// How to handle an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Try again after about this long (growing with each attempt); if retries run out,
    /// report `exhausted`.
    Retry { after: Duration, exhausted: Status },
    /// Stop now and report this status: Failed, Request Error, Rejected or Tier Limit.
    Final(Status),
}

impl ErrorClass {
    /// The status this error ends in when it is not (or no longer) retried.
    pub fn final_status(self) -> Status {
        match self {
            ErrorClass::Final(status) | ErrorClass::Retry { exhausted: status, .. } => status,
        }
    }
}

const FAILED: Status = Status::Failed;
const REQUEST_ERROR: Status = Status::RequestError;
const REJECTED: Status = Status::Rejected;
const TIER_LIMIT: Status = Status::TierLimitExceeded;

/// The class of a Graph error code at retry `attempt` (0 for the first failure).
pub fn classify(code: i64, attempt: u32) -> ErrorClass {
    let exp = |base_ms: u64, factor: u64| {
        Duration::from_millis(base_ms.saturating_mul(factor.saturating_pow(attempt)).min(120_000))
    };
    match code {
        // Throughput: short backoff (the sender's pacing should prevent it).
        130429 => ErrorClass::Retry { after: exp(500, 2), exhausted: REJECTED },
        // Pair rate for this recipient only: Meta suggests 4^x seconds.
        131056 => ErrorClass::Retry { after: exp(1000, 4), exhausted: REJECTED },
        // App or WABA API rate limits.
        4 | 80007 => ErrorClass::Retry { after: exp(2000, 2), exhausted: REJECTED },
        // Unknown error, service unavailable, overloaded.
        131000 | 131016 | 2 | 133004 => ErrorClass::Retry { after: exp(1000, 2), exhausted: REQUEST_ERROR },
        // Maintenance (e.g. a throughput upgrade): about a minute.
        131057 => ErrorClass::Retry { after: Duration::from_secs(60), exhausted: REQUEST_ERROR },
        // Not a WhatsApp number, ToS not accepted, old client.
        131026 => ErrorClass::Final(FAILED),
        // Spam rate limit, per-user engagement limits: refused by a rate limit.
        131048 | 131049 => ErrorClass::Final(REJECTED),
        // Messaging limit cut or exhausted.
        131064 => ErrorClass::Final(TIER_LIMIT),
        // Tokens, permissions, parameters, templates, policy, account, billing, registration…
        _ => ErrorClass::Final(REQUEST_ERROR),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table() {
        for code in [130429, 131056, 4, 80007] {
            assert!(matches!(classify(code, 0), ErrorClass::Retry { exhausted: REJECTED, .. }), "{code}");
        }
        for code in [131000, 131016, 2, 131057] {
            assert!(matches!(classify(code, 0), ErrorClass::Retry { exhausted: REQUEST_ERROR, .. }), "{code}");
        }
        assert_eq!(classify(131026, 0), ErrorClass::Final(FAILED));
        for code in [0, 190, 3, 10, 200, 100, 131008, 131009, 132000, 132001, 368, 131031, 130497, 131042, 131045] {
            assert_eq!(classify(code, 0), ErrorClass::Final(REQUEST_ERROR), "{code}");
        }
        assert_eq!(classify(131048, 0), ErrorClass::Final(REJECTED));
        assert_eq!(classify(131064, 0), ErrorClass::Final(TIER_LIMIT));
        // Pair-rate backoff grows 4^x.
        let ErrorClass::Retry { after: a0, .. } = classify(131056, 0) else { panic!() };
        let ErrorClass::Retry { after: a2, .. } = classify(131056, 2) else { panic!() };
        assert_eq!((a0.as_secs(), a2.as_secs()), (1, 16));
    }
}
