//! The one API error type and its stable wire format: `{"message": …, "error_code": …}`, plus a
//! `reason` where it helps. `message` texts are the contract's, exactly. No answer carries a key
//! named `code`: public Verihubs clients decode `code` as an integer, and a string there makes
//! their whole answer fail to decode (spec, "What waotp adds").

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use waotp_core::RefusalKind;
use waotp_store::Refusal;

/// Why the server cannot start: a setting that cannot work, a file or socket it needs, the
/// database, or an HTTP client it builds. `Display` says what failed; the cause is its
/// `source()` (the binary prints the chain).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting that cannot work, and what to do about it.
    #[error("{0}")]
    Config(String),
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}")]
    Store {
        what: String,
        #[source]
        source: waotp_store::StoreError,
    },
    #[error("{what}")]
    HttpClient {
        what: &'static str,
        #[source]
        source: reqwest::Error,
    },
}

impl StartError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> StartError {
        let what = what.into();
        move |source| StartError::Io { what, source }
    }

    pub(crate) fn store(what: impl Into<String>) -> impl FnOnce(waotp_store::StoreError) -> StartError {
        let what = what.into();
        move |source| StartError::Store { what, source }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("validation error: {0}")]
    Validation(String),
    #[error("authorization failed")]
    Unauthorized,
    #[error("otp not found")]
    OtpNotFound,
    #[error("otp expired")]
    OtpExpired,
    #[error("too many wrong tries")]
    TooManyAttempts,
    /// A guard refused the request (blocklist, countries, rate limits, pumping rules, quota,
    /// idempotency): the answer follows the reason's kind.
    #[error("refused ({})", .0.reason.code())]
    Refused(Refusal),
    #[error("invalid sandbox scenario")]
    InvalidScenario,
    #[error("the admin API is disabled")]
    AdminDisabled,
    /// Too many wrong admin tokens from this client address lately (see `token_guesses`).
    #[error("too many wrong admin tokens from this address")]
    TooManyFailures { retry_after_s: u64 },
    #[error("no such app")]
    AppNotFound,
    #[error("not found: {0}")]
    NotFound(&'static str),
    #[error("no such session or callback")]
    SessionNotFound,
    #[error("no such route")]
    RouteNotFound,
    /// The database cannot be reached or cannot write now; nothing was written. Answered
    /// 503 with `Retry-After: 1`.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A reverse start's business number cannot be read from the Graph API (and
    /// `whatsapp_display_number` is not set): answered 503 with `Retry-After`, the time until
    /// waotp asks the Graph API again (failed reads are remembered, backing off).
    #[error("the business number cannot be read from the Graph API")]
    BusinessNumberUnavailable { retry_after_s: u64 },
    /// A failure the client cannot act on: logged with its whole chain of causes, answered
    /// with a generic body.
    #[error("internal error: {}", Causes(.0.as_ref()))]
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

/// An error with each of its sources, `outer: inner: innermost` (what `{:#}` gives an
/// `anyhow::Error`), for the log line of an internal error.
pub struct Causes<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Causes<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

impl ApiError {
    pub fn validation(reason: impl Into<String>) -> Self {
        ApiError::Validation(reason.into())
    }

    /// The machine-readable `error_code` of the answer.
    pub fn code(&self) -> &'static str {
        self.parts().2
    }

    pub(crate) fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::Validation(_) => (StatusCode::BAD_REQUEST, "Validation error", "validation_error"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "Authorization failed", "unauthorized"),
            ApiError::OtpNotFound => (StatusCode::NOT_FOUND, "OTP not found", "otp_not_found"),
            ApiError::OtpExpired => {
                (StatusCode::UNPROCESSABLE_ENTITY, "OTP cannot be verified because Time limit exceeded", "otp_expired")
            }
            ApiError::TooManyAttempts => {
                (StatusCode::TOO_MANY_REQUESTS, "Too many request in the allowed time frame", "too_many_attempts")
            }
            ApiError::Refused(refusal) => {
                let code = refusal.reason.code();
                match refusal.reason.kind() {
                    RefusalKind::Blocked => (StatusCode::CONFLICT, "Msisdn invalid: msisdn has been blocked", code),
                    RefusalKind::RateLimited => {
                        (StatusCode::TOO_MANY_REQUESTS, "Too many request in the allowed time frame", code)
                    }
                    RefusalKind::Quota => (StatusCode::FORBIDDEN, "Quota insufficient", code),
                    RefusalKind::Ceiling => {
                        (StatusCode::FORBIDDEN, "Monthly ceiling of billable messages reached", code)
                    }
                    RefusalKind::Conflict => (
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "Idempotency-Key was already used with a different request body",
                        code,
                    ),
                }
            }
            ApiError::InvalidScenario => (StatusCode::BAD_REQUEST, "Invalid Scenario", "invalid_scenario"),
            ApiError::AdminDisabled => (
                StatusCode::FORBIDDEN,
                "Admin API is disabled: configure admin_token (WAOTP_ADMIN_TOKEN)",
                "admin_disabled",
            ),
            ApiError::TooManyFailures { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "Too many failed authentications from this address: try again later",
                "too_many_failures",
            ),
            ApiError::AppNotFound => (StatusCode::NOT_FOUND, "App not found", "app_not_found"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "Not found", "not_found"),
            ApiError::SessionNotFound => (StatusCode::NOT_FOUND, "Session not found", "session_not_found"),
            ApiError::RouteNotFound => (StatusCode::NOT_FOUND, "Not found", "route_not_found"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "Service unavailable", "store_unavailable"),
            ApiError::BusinessNumberUnavailable { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "Service unavailable", "business_number_unavailable")
            }
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "Internal server error", "internal_error"),
        }
    }
}

impl From<waotp_store::StoreError> for ApiError {
    fn from(e: waotp_store::StoreError) -> Self {
        if e.is_retryable() {
            ApiError::Unavailable(e.to_string())
        } else {
            ApiError::Internal(Box::new(e))
        }
    }
}

/// Unavailable answers, counted with the refusals' throttle so an outage logs a few lines a
/// second, not one per request (the store logs each failed commit itself). Process-wide:
/// answers have no state to keep it in.
static UNAVAILABLE: crate::guards::Counts = crate::guards::Counts::new();

fn log_unavailable(cause: &str) {
    if UNAVAILABLE.add("store_unavailable") {
        tracing::warn!(%cause, "request refused: the database is unavailable");
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message, code) = self.parts();
        let body = match &self {
            ApiError::Validation(reason) => {
                json!({ "message": message, "error_code": code, "reason": reason })
            }
            ApiError::Internal(cause) => {
                // Logged once here, with its causes; the client gets a generic body.
                tracing::error!(cause = %Causes(cause.as_ref()), "request failed");
                json!({ "message": message, "error_code": code })
            }
            ApiError::Unavailable(cause) => {
                log_unavailable(cause);
                json!({ "message": message, "error_code": code })
            }
            _ => json!({ "message": message, "error_code": code }),
        };
        let retry_after = match &self {
            ApiError::Refused(Refusal { retry_after_ms: Some(ms), .. }) => {
                Some(((*ms).max(0) as u64).div_ceil(1000).max(1))
            }
            ApiError::TooManyFailures { retry_after_s } | ApiError::BusinessNumberUnavailable { retry_after_s } => {
                Some((*retry_after_s).max(1))
            }
            // A locked code stays locked; the hint is when a fresh send may be tried.
            ApiError::TooManyAttempts => Some(60),
            // Load balancers and client retry loops come back soon; the database often does.
            ApiError::Unavailable(_) => Some(1),
            _ => None,
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(secs) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::RouteNotFound
}

/// Turns any error answer that is not already JSON (axum's own rejections: an undecodable
/// path, a bad query string, a wrong method) into the API's JSON error shape, so clients
/// always get `{"message", "error_code"}`; a 400 keeps the contract's `Validation error`.
pub(crate) async fn json_errors(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    // (HTML answers are the dashboard's own error pages.)
    if status.as_u16() < 400 || is_json {
        return response;
    }
    if !matches!(
        status,
        StatusCode::BAD_REQUEST
            | StatusCode::METHOD_NOT_ALLOWED
            | StatusCode::UNSUPPORTED_MEDIA_TYPE
            | StatusCode::PAYLOAD_TOO_LARGE
    ) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text =
        axum::body::to_bytes(body, 4096).await.map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let body = if status == StatusCode::BAD_REQUEST {
        json!({ "message": "Validation error", "error_code": "validation_error", "reason": text })
    } else {
        json!({ "message": status.canonical_reason().unwrap_or("Error"), "error_code": "request_rejected", "reason": text })
    };
    let mut out = (status, Json(body)).into_response();
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

#[cfg(test)]
mod causes_tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot list the blocklist")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn an_internal_error_keeps_its_chain_for_the_log() {
        let e = ApiError::Internal(Box::new(Outer(std::io::Error::other("no such table: blocklist"))));
        assert_eq!(e.to_string(), "internal error: cannot list the blocklist: no such table: blocklist");
    }

    #[test]
    fn store_failures_worth_a_retry_are_503_the_rest_500() {
        use waotp_store::StoreError;
        for (e, status) in [
            (StoreError::Unavailable("x".into()), StatusCode::SERVICE_UNAVAILABLE),
            (StoreError::Conflict("x".into()), StatusCode::SERVICE_UNAVAILABLE),
            (StoreError::Backend("x".into()), StatusCode::INTERNAL_SERVER_ERROR),
            (StoreError::Corrupt("x".into()), StatusCode::INTERNAL_SERVER_ERROR),
        ] {
            assert_eq!(ApiError::from(e.clone()).parts().0, status, "{e}");
        }
    }
}
