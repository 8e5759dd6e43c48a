//! The sandbox: `…/send/sandbox` and `…/verify/sandbox` answer by msisdn with canned scenarios
//! (Verihubs' seed numbers, exactly) and with scenario numbers that simulate WhatsApp's real
//! outcomes end to end. Nothing is ever delivered, no quota is spent, no rate limit counts.
//! Callbacks go through the same outbox, retries and signatures as production ones.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::Value;
use waotp_core::{Blocklisted, Msisdn, RefusalReason, Status};
use waotp_store::{Refusal, SendGuards};

use crate::auth::{AuthedApp, CachedApp};
use crate::body::Fields;
use crate::send::{store_session, SendRequest, SendResponse, Stored};
use crate::{ApiError, AppState};

/// What a sandbox send does for a msisdn.
#[derive(Debug, Clone)]
pub enum SendScenario {
    /// 201 and a stored sandbox session reporting these statuses after 0 Requested; 5 follows
    /// at expiry if it is not verified, as in production.
    Accept(&'static [Status]),
    /// The seed's success: like `Accept`, with the seed's canned `try_count` of 1 every time.
    Seed(&'static [Status]),
    /// A reverse verification (`"method": "reverse"` or not) that the "user" answers about a
    /// second after the start: 201 with its link, callbacks 0 then 4.
    Reverse,
    /// 401, even with valid credentials.
    Unauthorized,
    /// An error answer.
    Refuse(fn() -> ApiError),
}

/// The send scenarios, by msisdn. The seed's numbers (api.md section 5) come first and are
/// exactly as Verihubs documents them; 628212306001x are waotp's WhatsApp outcomes.
pub const SEND_SCENARIOS: &[(&str, SendScenario, &str)] = &[
    ("6282123060001", SendScenario::Seed(&[Status::Sent, Status::Delivered, Status::Read]), "success: 0, 1, 2, 3"),
    (
        "6282123060002",
        SendScenario::Refuse(|| ApiError::validation("sandbox scenario: bad request")),
        "400 Validation error",
    ),
    ("6282123060003", SendScenario::Unauthorized, "401 Authorization failed"),
    (
        "6282123060004",
        SendScenario::Refuse(|| ApiError::Refused(Refusal::new(RefusalReason::QuotaExhausted))),
        "403 Quota insufficient",
    ),
    (
        "6282123060005",
        SendScenario::Refuse(|| ApiError::Refused(Refusal::new(RefusalReason::Blocked(Blocklisted::Number)))),
        "409 blocked msisdn",
    ),
    (
        "6282123060006",
        SendScenario::Refuse(|| ApiError::Refused(Refusal::retry_after(RefusalReason::RateLimitedMsisdn, 60_000))),
        "429 too many requests",
    ),
    ("628001", SendScenario::Seed(&[Status::Sent, Status::Delivered, Status::Read]), "legacy success: 0, 1, 2, 3"),
    ("6282123060010", SendScenario::Accept(&[Status::Failed]), "not on WhatsApp: 0, 6"),
    ("6282123060011", SendScenario::Accept(&[Status::RequestError]), "WhatsApp unreachable: 0, 7"),
    ("6282123060012", SendScenario::Accept(&[Status::TierLimitExceeded]), "tier limit exceeded: 0, 10"),
    (
        "6282123060013",
        SendScenario::Accept(&[Status::Sent, Status::Delivered]),
        "delivered, never read: 0, 1, 2, then 5 at expiry",
    ),
    (
        "6282123060014",
        SendScenario::Accept(&[Status::Sent, Status::Delivered, Status::Read]),
        "read, then verified by a sandbox verify of its code: 0, 1, 2, 3, 4",
    ),
    ("6282123060015", SendScenario::Accept(&[Status::Rejected]), "refused by a rate limit after the 201: 0, 8"),
    ("6282123060016", SendScenario::Accept(&[Status::Blocked]), "blocked after the 201: 0, 9"),
    (
        "6282123060017",
        SendScenario::Reverse,
        "reverse verification, verified by the user's message a second later: 0, 4",
    ),
];

/// What a sandbox verify does for a msisdn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyScenario {
    Verified,
    WrongCode,
    Expired,
    /// Checks the code of the newest sandbox session sent to this number.
    RealCheck,
}

/// The verify scenarios with a canned answer, by msisdn (Verihubs' seed numbers).
pub const VERIFY_SCENARIOS: &[(&str, VerifyScenario)] = &[
    ("6282123060007", VerifyScenario::Verified),
    ("6282123060008", VerifyScenario::WrongCode),
    ("6282123060009", VerifyScenario::Expired),
];

pub fn verify_scenario(msisdn: &str) -> Option<VerifyScenario> {
    verify_numbers().find(|(m, _)| *m == msisdn).map(|(_, s)| s)
}

/// Every number a sandbox verify knows: the canned ones, then the numbers of the scenarios
/// that store a session (their code is checked for real).
pub fn verify_numbers() -> impl Iterator<Item = (&'static str, VerifyScenario)> {
    let real = SEND_SCENARIOS
        .iter()
        .filter(|(m, s, _)| m.starts_with("628212306001") && matches!(s, SendScenario::Accept(_)))
        .map(|(m, _, _)| (*m, VerifyScenario::RealCheck));
    VERIFY_SCENARIOS.iter().copied().chain(real)
}

pub fn send_scenario(msisdn: &str) -> Option<&'static SendScenario> {
    SEND_SCENARIOS.iter().find(|(m, _, _)| *m == msisdn).map(|(_, s, _)| s)
}

/// The scenario msisdn of a body: digits, a leading `+` dropped.
fn scenario_msisdn(body: &Fields) -> Result<String, ApiError> {
    let raw = body.required_str("msisdn")?;
    Ok(raw.strip_prefix('+').unwrap_or(raw).to_owned())
}

pub async fn send(
    State(state): State<AppState>,
    AuthedApp(app): AuthedApp,
    body: Fields,
) -> Result<(StatusCode, Json<SendResponse>), ApiError> {
    accept(&state, &app, &body).await
}

/// A sandbox send, as the route and the dashboard's try-it form make it.
pub(crate) async fn accept(
    state: &AppState,
    app: &CachedApp,
    body: &Fields,
) -> Result<(StatusCode, Json<SendResponse>), ApiError> {
    let msisdn = scenario_msisdn(body)?;
    let scenario = send_scenario(&msisdn).ok_or(ApiError::InvalidScenario)?;
    match scenario {
        SendScenario::Unauthorized => Err(ApiError::Unauthorized),
        SendScenario::Refuse(error) => Err(error()),
        SendScenario::Reverse => crate::reverse::sandbox(state, app, Msisdn::from_trusted(msisdn), body).await,
        SendScenario::Accept(statuses) | SendScenario::Seed(statuses) => {
            let req = SendRequest::parse_for(Msisdn::from_trusted(msisdn), body, app, state.deny_private_callbacks)?;
            let (Stored::New(mut response, _) | Stored::Replayed(mut response)) =
                store_session(state, app, req, true, statuses.to_vec(), SendGuards::default()).await?;
            if matches!(scenario, SendScenario::Seed(_)) {
                response.try_count = 1;
            }
            Ok((StatusCode::CREATED, Json(response)))
        }
    }
}

pub async fn verify(
    State(state): State<AppState>,
    AuthedApp(app): AuthedApp,
    body: Fields,
) -> Result<Json<Value>, ApiError> {
    check(&state, &app, &body).await
}

/// A sandbox verify, as the route and the dashboard's try-it form make it.
pub(crate) async fn check(state: &AppState, app: &CachedApp, body: &Fields) -> Result<Json<Value>, ApiError> {
    let msisdn = scenario_msisdn(body)?;
    match verify_scenario(&msisdn).ok_or(ApiError::InvalidScenario)? {
        VerifyScenario::Verified => Ok(Json(serde_json::json!({
            "message": "OTP has been verified",
            "msisdn": msisdn,
        }))),
        VerifyScenario::WrongCode => Err(ApiError::OtpNotFound),
        VerifyScenario::Expired => Err(ApiError::OtpExpired),
        VerifyScenario::RealCheck => crate::verify::check(state, app, Msisdn::from_trusted(msisdn), body, true).await,
    }
}
