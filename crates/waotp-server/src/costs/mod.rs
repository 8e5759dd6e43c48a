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
use waotp_core::calendar::{day_of, format_month, month_first_day, month_of, parse_date};

pub use prices::PriceTable;
pub use report::{Report, Window};

use crate::admin::Admin;
use crate::auth::AuthedApp;
use crate::{ApiError, AppState};

/// A report's query: `from` (a date, UTC), `days` (1 to [`report::MAX_DAYS`]) and, for
/// operators, `app_id`. An empty value is absent.
#[derive(Debug, Default, Deserialize)]
pub struct CostQuery {
    pub from: Option<String>,
    pub days: Option<String>,
    pub app_id: Option<String>,
    /// The window's last day, as it was given before `days`: refused, saying what to give.
    pub to: Option<String>,
}

/// A query value: `None` when absent or empty.
fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

impl CostQuery {
    /// The window of an app's report (`None`: every app's) the query names, as of `now_ms`.
    pub fn window(&self, app_id: Option<Uuid>, now_ms: i64) -> Result<Window, ApiError> {
        if given(&self.to).is_some() {
            return Err(ApiError::validation(format!(
                "to is not a parameter: give from (the first day) and days (1 to {})",
                report::MAX_DAYS
            )));
        }
        window(app_id, given(&self.from), given(&self.days), now_ms)
    }
}

/// The window of `days` whole UTC days from `from` (`YYYY-MM-DD`). By default `from` is the
/// first day of the current month, and `days` reach today (at least 1, at most
/// [`report::MAX_DAYS`]). Each rule is one parameter's (the document's schemas say them all):
/// a real date of the years 1970 to 9999, and a whole number of days from 1 to 366.
pub fn window(app_id: Option<Uuid>, from: Option<&str>, days: Option<&str>, now_ms: i64) -> Result<Window, ApiError> {
    let today = day_of(now_ms);
    let first_day = match from {
        Some(v) => parse_date(v)
            .ok_or_else(|| ApiError::validation(format!("from must be a date YYYY-MM-DD (UTC), not {v:?}")))?,
        None => month_first_day(month_of(now_ms)),
    };
    let days = match days {
        Some(v) => parse_days(v).ok_or_else(|| {
            ApiError::validation(format!("days must be a whole number from 1 to {}, not {v:?}", report::MAX_DAYS))
        })?,
        None => (today - first_day + 1).clamp(1, report::MAX_DAYS),
    };
    Ok(Window { app_id, first_day, last_day: first_day + days - 1 })
}

/// Decimal digits (leading zeros allowed) of a number from 1 to [`report::MAX_DAYS`].
fn parse_days(v: &str) -> Option<i64> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = v.trim_start_matches('0');
    if digits.len() > 3 {
        return None;
    }
    let days: i64 = digits.parse().ok()?;
    (1..=report::MAX_DAYS).contains(&days).then_some(days)
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

/// `GET /v1/costs?from=&days=`: the app's own report, with its month so far and its ceiling.
pub async fn app_costs(
    State(state): State<AppState>,
    AuthedApp(app): AuthedApp,
    q: Q,
) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    if given(&q.app_id).is_some() {
        return Err(ApiError::validation("app_id is for the admin API: this report is the app's own"));
    }
    let app_id = app.record.app_id;
    let window = q.window(Some(app_id), state.clock.now_ms())?;
    let mut v = build(&state, window).await?.json();
    v["this_month"] = this_month(&state, app_id).await?;
    Ok(Json(v))
}

/// `GET /admin/costs?from=&days=&app_id=`: every app's report, or one's.
pub async fn admin_costs(State(state): State<AppState>, _: Admin, q: Q) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    let app_id = given(&q.app_id)
        .map(|s| Uuid::parse_str(s.trim()).map_err(|_| ApiError::validation("app_id must be a UUID")))
        .transpose()?;
    if let Some(id) = app_id {
        state.store.get_app(id).await?.ok_or(ApiError::AppNotFound)?;
    }
    let window = q.window(app_id, state.clock.now_ms())?;
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
        let day = |d| parse_date(d).unwrap();
        let now = day("2025-07-15") * 86_400_000 + 3_600_000;
        let w = window(None, None, None, now).unwrap();
        assert_eq!((w.first_day, w.last_day), (day("2025-07-01"), day("2025-07-15")));
        let w = window(None, Some("2025-06-02"), Some("29"), now).unwrap();
        assert_eq!(w.store().to_ms - w.store().from_ms, 29 * 86_400_000);
        assert_eq!(w.last_day, day("2025-06-30"));
        // Without days: up to today, at least one day, at most 366.
        assert_eq!(window(None, Some("2025-03-10"), None, now).unwrap().last_day, day("2025-07-15"));
        assert_eq!(window(None, Some("2025-08-01"), None, now).unwrap().last_day, day("2025-08-01"));
        assert_eq!(window(None, Some("2024-01-01"), None, now).unwrap().last_day, day("2024-12-31"));
        // Any real date and any days from 1 to 366 is a window (leading zeros allowed).
        assert_eq!(window(None, Some("9999-12-31"), Some("366"), now).unwrap().last_day, day("9999-12-31") + 365);
        assert_eq!(window(None, Some("1970-01-01"), Some("001"), now).unwrap().last_day, 0);
        for (from, days, why) in [
            (Some("2025-7-1"), None, "from must be a date"),
            (Some("2025-02-29"), None, "from must be a date"),
            (Some(" 2025-07-01"), None, "from must be a date"),
            (Some("1969-12-31"), None, "from must be a date"),
            (None, Some("0"), "days must be a whole number from 1 to 366"),
            (None, Some("367"), "days must be"),
            (None, Some("+5"), "days must be"),
            (None, Some("1.5"), "days must be"),
            (None, Some("0000000000000000000000001000"), "days must be"),
        ] {
            let e = window(None, from, days, now).unwrap_err();
            assert!(e.to_string().contains(why), "{e}");
            assert_eq!(e.code(), "validation_error");
        }
    }

    #[test]
    fn empty_values_are_absent_and_to_is_refused() {
        let now = parse_date("2025-07-15").unwrap() * 86_400_000;
        let empty =
            CostQuery { from: Some(String::new()), days: Some(String::new()), app_id: None, to: Some(String::new()) };
        assert_eq!(empty.window(None, now).unwrap(), window(None, None, None, now).unwrap());
        let old = CostQuery { to: Some("2025-07-31".into()), ..CostQuery::default() };
        assert!(old.window(None, now).unwrap_err().to_string().contains("give from (the first day) and days"));
    }
}
