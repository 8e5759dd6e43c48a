//! The one API error type and its stable wire format: `{"message": …, "code": …}`, plus a
//! `reason` where it helps. `message` texts are the contract's, exactly.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

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
    #[error("quota exhausted")]
    QuotaExhausted,
    #[error("msisdn blocked ({0})")]
    Blocked(&'static str),
    #[error("rate limited ({code})")]
    RateLimited { code: &'static str, retry_after_s: u64 },
    #[error("idempotency key used with another body")]
    IdempotencyMismatch,
    #[error("invalid sandbox scenario")]
    InvalidScenario,
    #[error("the admin API is disabled")]
    AdminDisabled,
    #[error("no such app")]
    AppNotFound,
    #[error("not found: {0}")]
    NotFound(&'static str),
    #[error("no such session or callback")]
    SessionNotFound,
    #[error("no such route")]
    RouteNotFound,
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn validation(reason: impl Into<String>) -> Self {
        ApiError::Validation(reason.into())
    }

    /// The machine-readable `code` of the answer.
    pub fn code(&self) -> &'static str {
        self.parts().2
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
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
            ApiError::QuotaExhausted => (StatusCode::FORBIDDEN, "Quota insufficient", "quota_exhausted"),
            ApiError::Blocked(code) => (StatusCode::CONFLICT, "Msisdn invalid: msisdn has been blocked", code),
            ApiError::RateLimited { code, .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "Too many request in the allowed time frame", code)
            }
            ApiError::IdempotencyMismatch => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "Idempotency-Key was already used with a different request body",
                "idempotency_mismatch",
            ),
            ApiError::InvalidScenario => (StatusCode::BAD_REQUEST, "Invalid Scenario", "invalid_scenario"),
            ApiError::AdminDisabled => (
                StatusCode::FORBIDDEN,
                "Admin API is disabled: configure admin_token (WAOTP_ADMIN_TOKEN)",
                "admin_disabled",
            ),
            ApiError::AppNotFound => (StatusCode::NOT_FOUND, "App not found", "app_not_found"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "Not found", "not_found"),
            ApiError::SessionNotFound => (StatusCode::NOT_FOUND, "Session not found", "session_not_found"),
            ApiError::RouteNotFound => (StatusCode::NOT_FOUND, "Not found", "route_not_found"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "Internal server error", "internal_error"),
        }
    }
}

impl From<waotp_store::StoreError> for ApiError {
    fn from(e: waotp_store::StoreError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message, code) = self.parts();
        let body = match &self {
            ApiError::Validation(reason) => {
                json!({ "message": message, "code": code, "reason": reason })
            }
            ApiError::Internal(cause) => {
                // Logged once here, with its cause; the client gets a generic body.
                tracing::error!(%cause, "request failed");
                json!({ "message": message, "code": code })
            }
            _ => json!({ "message": message, "code": code }),
        };
        let retry_after = match &self {
            ApiError::RateLimited { retry_after_s, .. } => Some((*retry_after_s).max(1)),
            // A locked code stays locked; the hint is when a fresh send may be tried.
            ApiError::TooManyAttempts => Some(60),
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
