//! `GET /healthz`: the process answers. `GET /readyz`: the database is reachable with every
//! migration applied and every background worker is running — what a load balancer asks
//! before sending traffic. No credentials; both are cheap.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::AppState;

pub async fn live() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let not_ready =
        |reason: String| (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "not ready", "reason": reason })));
    if let Some((name, _)) = state.workers.iter().find(|(_, handle)| handle.is_finished()) {
        return not_ready(format!("the {name} has stopped"));
    }
    match state.store.ready().await {
        Ok(()) => (StatusCode::OK, Json(json!({ "status": "ready", "channel": state.channel_name }))),
        Err(e) => not_ready(e.to_string()),
    }
}
