//! `GET /v1/sessions/{session_id}/callbacks`: a session's callbacks and every attempt.
//! `POST /v1/sessions/{session_id}/callbacks/{status}/replay`: send one again.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use uuid::Uuid;
use waotp_core::Status;

use crate::auth::AuthedApp;
use crate::{ApiError, AppState};

fn session_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::validation("session_id must be a UUID"))
}

type PathResult<T> = Result<Path<T>, axum::extract::rejection::PathRejection>;

fn path<T>(p: PathResult<T>) -> Result<T, ApiError> {
    p.map(|Path(v)| v).map_err(|e| ApiError::validation(e.body_text()))
}

pub async fn list(
    State(state): State<AppState>,
    AuthedApp(app): AuthedApp,
    raw: PathResult<String>,
) -> Result<Json<Value>, ApiError> {
    let id = session_id(&path(raw)?)?;
    let callbacks = state.store.list_callbacks(app.record.app_id, id).await?.ok_or(ApiError::SessionNotFound)?;
    let callbacks = crate::admin::callbacks_json(&callbacks, crate::admin::LogReader::App);
    Ok(Json(json!({ "session_id": id, "callbacks": callbacks })))
}

pub async fn replay(
    State(state): State<AppState>,
    AuthedApp(app): AuthedApp,
    params: PathResult<(String, String)>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (raw, status) = path(params)?;
    let id = session_id(&raw)?;
    // Written as the status number, nothing else (no sign, no leading zero).
    let status = crate::body::digits(&status)
        .filter(|_| status == "0" || !status.starts_with('0'))
        .and_then(|n| Status::from_code(i64::try_from(n).ok()?))
        .ok_or_else(|| ApiError::validation("status must be a callback status from 0 to 10"))?;
    if !state.store.replay_callback(app.record.app_id, id, status, state.clock.now_ms()).await? {
        return Err(ApiError::SessionNotFound);
    }
    Ok((StatusCode::ACCEPTED, Json(json!({ "message": "Callback queued", "session_id": id, "status": status.code() }))))
}
