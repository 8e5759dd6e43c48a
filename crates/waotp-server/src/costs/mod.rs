//! What each verification costs (issue 31): Meta's pricing of each delivered message, recorded
//! from the status webhooks; `GET /v1/costs` (an app's own) and `GET /admin/costs` (every
//! app's, or one's): billable messages by country and category, verified sessions by country,
//! billable messages per verified session and, with the operator's price table
//! ([`prices`]), the money; the dashboard's Costs page shows the same report.

pub mod prices;
pub mod report;

use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;
use waotp_core::calendar::{day_of, format_month, month_first_day, month_of, parse_date, DAY_MS};

pub use prices::PriceTable;
pub use report::{Report, Window};

use crate::admin::Admin;
use crate::auth::AuthedApp;
use crate::{ApiError, AppState};

/// A report's query: `from` and `to` (dates, UTC, both included), and for operators `app_id`.
#[derive(Debug, Default, Deserialize)]
pub struct CostQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    pub app_id: Option<String>,
}

/// The window of `from` and `to` (`YYYY-MM-DD`, UTC, both included): by default from the first
/// day of `to`'s month to today. Refused: a malformed date, `from` after `to`, more than
/// [`report::MAX_DAYS`] days.
pub fn window(app_id: Option<Uuid>, from: Option<&str>, to: Option<&str>, now_ms: i64) -> Result<Window, ApiError> {
    let date = |name: &str, v: &str| {
        parse_date(v.trim())
            .ok_or_else(|| ApiError::validation(format!("{name} must be a date YYYY-MM-DD (UTC), not {v:?}")))
    };
    let last_day = to.map(|v| date("to", v)).transpose()?.unwrap_or_else(|| day_of(now_ms));
    let first_day =
        from.map(|v| date("from", v)).transpose()?.unwrap_or_else(|| month_first_day(month_of(last_day * DAY_MS)));
    if first_day > last_day {
        return Err(ApiError::validation("from must be on or before to"));
    }
    if last_day - first_day + 1 > report::MAX_DAYS {
        return Err(ApiError::validation(format!("a report spans at most {} days", report::MAX_DAYS)));
    }
    Ok(Window { app_id, first_day, last_day })
}

/// The report of a window, from the store and the price table.
pub async fn build(state: &AppState, window: Window) -> Result<Report, ApiError> {
    let counts = state.store.message_counts(window.store()).await?;
    let verified = state.store.verified_by_country(window.store()).await?;
    Ok(Report::build(window, &counts, &verified, state.prices.as_deref()))
}

/// An app's billable messages this month and its ceiling.
async fn this_month(state: &AppState, app_id: Uuid) -> Result<Value, ApiError> {
    let month = month_of(state.clock.now_ms());
    let ceiling = state.store.get_app(app_id).await?.and_then(|a| a.settings.billable_ceiling);
    Ok(json!({
        "month": format_month(month),
        "billable_messages": state.store.billable_in_month(app_id, month).await?,
        "billable_ceiling": ceiling,
    }))
}

type Q = Result<Query<CostQuery>, axum::extract::rejection::QueryRejection>;

fn query(q: Q) -> Result<CostQuery, ApiError> {
    q.map(|Query(q)| q).map_err(|e| ApiError::validation(e.body_text()))
}

/// `GET /v1/costs?from=&to=`: the app's own report, with its month so far and its ceiling.
pub async fn app_costs(
    State(state): State<AppState>,
    AuthedApp(app): AuthedApp,
    q: Q,
) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    if q.app_id.is_some() {
        return Err(ApiError::validation("app_id is for the admin API: this report is the app's own"));
    }
    let app_id = app.record.app_id;
    let window = window(Some(app_id), q.from.as_deref(), q.to.as_deref(), state.clock.now_ms())?;
    let mut v = build(&state, window).await?.json();
    v["this_month"] = this_month(&state, app_id).await?;
    Ok(Json(v))
}

/// `GET /admin/costs?from=&to=&app_id=`: every app's report, or one's.
pub async fn admin_costs(State(state): State<AppState>, _: Admin, q: Q) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    let app_id = q
        .app_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| Uuid::parse_str(s).map_err(|_| ApiError::validation("app_id must be a UUID")))
        .transpose()?;
    if let Some(id) = app_id {
        state.store.get_app(id).await?.ok_or(ApiError::AppNotFound)?;
    }
    let window = window(app_id, q.from.as_deref(), q.to.as_deref(), state.clock.now_ms())?;
    let mut v = build(&state, window).await?.json();
    if let Some(id) = app_id {
        v["this_month"] = this_month(&state, id).await?;
    }
    Ok(Json(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_defaults_to_this_month_and_refuses_bad_input() {
        let now = parse_date("2025-07-15").unwrap() * 86_400_000 + 3_600_000;
        let w = window(None, None, None, now).unwrap();
        assert_eq!((w.first_day, w.last_day), (parse_date("2025-07-01").unwrap(), parse_date("2025-07-15").unwrap()));
        let w = window(None, Some("2025-06-02"), Some("2025-06-30"), now).unwrap();
        assert_eq!(w.store().to_ms - w.store().from_ms, 29 * 86_400_000);
        let w = window(None, None, Some("2025-03-10"), now).unwrap();
        assert_eq!(w.first_day, parse_date("2025-03-01").unwrap());
        for (from, to, why) in [
            (Some("2025-7-1"), None, "from must be a date"),
            (None, Some("yesterday"), "to must be a date"),
            (Some("2025-07-10"), Some("2025-07-09"), "from must be on or before to"),
            (Some("2024-01-01"), Some("2025-07-01"), "at most 366 days"),
        ] {
            let e = window(None, from, to, now).unwrap_err();
            assert!(e.to_string().contains(why), "{e}");
            assert_eq!(e.code(), "validation_error");
        }
    }
}
