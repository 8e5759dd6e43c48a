//! `POST /v1|v2/whatsapp/otp/verify`: check a guess against the newest code of
//! (app, msisdn, challenge), atomically, in the store.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};
use waotp_core::{Guess, Msisdn, OtpCode, VerifyDecision};
use waotp_store::{VerifyAttempt, VerifyOutcome};

use crate::auth::{AuthedApp, CachedApp};
use crate::body::Fields;
use crate::send::MAX_CHALLENGE_CHARS;
use crate::{guards, ApiError, AppState};

/// Longest `otp` a verify reads (a longer one is a 400; any shorter one is a guess).
pub const MAX_GUESS_CHARS: usize = 64;

pub async fn verify(
    State(state): State<AppState>,
    AuthedApp(app): AuthedApp,
    body: Fields,
) -> Result<Json<Value>, ApiError> {
    production(&state, &app, &body).await
}

/// A production verify, as the route and the dashboard's try-it form make it.
pub(crate) async fn production(state: &AppState, app: &CachedApp, body: &Fields) -> Result<Json<Value>, ApiError> {
    let msisdn =
        Msisdn::parse(body.required_str("msisdn")?).map_err(|e| ApiError::validation(format!("msisdn: {e}")))?;
    check(state, app, msisdn, body, false).await
}

/// The guess (`otp`) and the `challenge` of a verify body, as read before the store is asked.
pub fn read_guess(body: &Fields) -> Result<(String, String), ApiError> {
    let guess = body.opt_code("otp")?.ok_or_else(|| ApiError::validation("otp is required"))?;
    if guess.chars().count() > MAX_GUESS_CHARS {
        return Err(ApiError::validation("otp must be at most 64 characters"));
    }
    let challenge = body.opt_str("challenge", MAX_CHALLENGE_CHARS)?.unwrap_or("").to_owned();
    Ok((guess, challenge))
}

/// Checks the guess in `body` against the newest session of (app, msisdn, challenge) among
/// production or sandbox sessions.
pub async fn check(
    state: &AppState,
    app: &CachedApp,
    msisdn: Msisdn,
    body: &Fields,
    sandbox: bool,
) -> Result<Json<Value>, ApiError> {
    let (guess, challenge) = read_guess(body)?;
    let outcome = state
        .store
        .verify(VerifyAttempt {
            app_id: app.record.app_id,
            sandbox,

            msisdn: msisdn.clone(),
            challenge,
            guess: Guess::new(OtpCode::from_guess(&guess), state.key.clone()),
            now_ms: state.clock.now_ms(),
            limit: (!sandbox).then(|| guards::verify_limit(&app.record, &msisdn)),
            on_verified: if sandbox { Vec::new() } else { guards::on_verified(&app.record, &msisdn) },
        })
        .await?;
    if !sandbox {
        let label = match &outcome {
            VerifyOutcome::Decided(VerifyDecision::Verified) => "verified",
            VerifyOutcome::Decided(VerifyDecision::WrongCode { .. }) => "wrong_code",
            VerifyOutcome::Decided(VerifyDecision::NotFound) => "not_found",
            VerifyOutcome::Decided(VerifyDecision::Expired) => "expired",
            VerifyOutcome::Decided(VerifyDecision::Locked) => "locked",
            VerifyOutcome::Refused(_) => "refused",
        };
        state.metrics.verify(app.record.app_id, label);
    }
    let decision = match outcome {
        VerifyOutcome::Decided(decision) => decision,
        VerifyOutcome::Refused(refusal) => return Err(state.refused(app, &msisdn, refusal, sandbox)),
    };
    match decision {
        VerifyDecision::Verified => Ok(Json(json!({
            "message": "OTP has been verified",
            "msisdn": msisdn.as_str(),
        }))),
        VerifyDecision::WrongCode { lock, .. } => {
            if lock {
                tracing::info!(msisdn = %msisdn, "code locked after too many wrong tries");
            }
            Err(ApiError::OtpNotFound)
        }
        VerifyDecision::NotFound => Err(ApiError::OtpNotFound),
        VerifyDecision::Expired => Err(ApiError::OtpExpired),
        VerifyDecision::Locked => Err(ApiError::TooManyAttempts),
    }
}
