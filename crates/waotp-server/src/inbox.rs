//! `GET /v1/inbox?msisdn=…`: the local inbox channel's messages for one number, newest first.
//! Reading marks the sessions read (status 3), as a phone would report.

use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use waotp_core::Msisdn;

use crate::auth::AuthedApp;
use crate::clock::rfc3339;
use crate::{ApiError, AppState};

/// Messages answered without `limit`, and the `limit`s allowed.
pub const DEFAULT_LIMIT: usize = 50;
pub const LIMIT: std::ops::RangeInclusive<usize> = 1..=500;

#[derive(Deserialize)]
pub struct InboxQuery {
    msisdn: Option<String>,
    limit: Option<String>,
}

#[derive(Serialize)]
pub struct InboxEntry {
    session_id: Uuid,
    msisdn: String,
    text: String,
    created_at: String,
}

#[derive(Serialize)]
pub struct InboxResponse {
    messages: Vec<InboxEntry>,
}

pub async fn inbox(
    State(state): State<AppState>,
    AuthedApp(app): AuthedApp,
    query: Result<Query<InboxQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<InboxResponse>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::validation(e.body_text()))?;
    let raw = q.msisdn.filter(|m| !m.is_empty()).ok_or_else(|| ApiError::validation("msisdn is required"))?;
    if raw.starts_with(' ') {
        // An unencoded `+` in a query string reads as a space.
        return Err(ApiError::validation("msisdn: write a leading + as %2B in a query string, or leave it out"));
    }
    let msisdn = Msisdn::parse(&raw).map_err(|e| ApiError::validation(format!("msisdn: {e}")))?;
    let limit = match q.limit.as_deref() {
        None | Some("") => DEFAULT_LIMIT,
        Some(l) => crate::body::digits(l)
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| LIMIT.contains(n))
            .ok_or_else(|| ApiError::validation("limit must be a whole number from 1 to 500"))?,
    };
    let app_id = app.record.app_id;
    let messages = state.store.inbox(app_id, &msisdn, limit).await?;
    let ids = messages.iter().map(|m| m.session_id).collect();
    state.store.mark_read(app_id, ids, state.clock.now_ms()).await?;
    Ok(Json(InboxResponse {
        messages: messages
            .into_iter()
            .map(|m| InboxEntry {
                session_id: m.session_id,
                msisdn: m.msisdn.as_str().to_owned(),
                text: m.text,
                created_at: rfc3339(m.created_at_ms),
            })
            .collect(),
    }))
}
