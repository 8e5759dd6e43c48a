//! What each verification costs, for a window: billable messages by country and category,
//! verified sessions by country, billable messages per verified session, and with the price
//! table the money (the report of `GET /admin/costs`, as a page).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use maud::{html, Markup};
use serde::Deserialize;
use waotp_core::calendar::format_date;

use super::auth::Operator;
use super::layout::{page, OnPage, PageResult};
use super::sessions::app_select;
use super::{app_field, given, AppNames};
use crate::costs::report::{CountryLine, Tally};
use crate::costs::{self, Report};
use crate::AppState;

/// The report's window as the admin API takes it (`from`, `days`), and the app.
#[derive(Deserialize, Default)]
pub struct CostsQuery {
    from: Option<String>,
    days: Option<String>,
    app: Option<String>,
}

/// A country as shown: its code, or `—` for numbers without one.
fn country(c: &Option<String>) -> &str {
    c.as_deref().unwrap_or("—")
}

/// Money per currency, one line each; `—` for none.
fn money(m: &std::collections::BTreeMap<String, costs::prices::Micros>) -> Markup {
    html! {
        @if m.is_empty() { "—" }
        @for (i, (currency, micros)) in m.iter().enumerate() {
            @if i > 0 { br; }
            (costs::prices::format_micros(*micros)) " " (currency)
        }
    }
}

fn country_cells(line: &CountryLine) -> Markup {
    let per = line.tally.per_verified(line.verified).unwrap_or_default();
    html! {
        td.num { (line.verified) }
        td.num { (line.tally.billable) }
        td.num { (line.tally.free) }
        td.num { (line.billable_per_verified().map_or("—".to_owned(), |r| format!("{r:.2}"))) }
        td.num { (money(&line.tally.money)) }
        td.num { (money(&per)) }
    }
}

fn row_cells(t: &Tally) -> Markup {
    html! {
        td.num { (t.billable) }
        td.num { (t.free) }
        td.num { (t.unpriced) }
        td.num { (money(&t.money)) }
    }
}

pub async fn show(_: Operator, State(state): State<AppState>, q: super::Q<CostsQuery>) -> PageResult {
    let Query(q) = q.unwrap_or_default();
    let app = app_field(&q.app).on("costs")?;
    let window = costs::window(app, given(&q.from), given(&q.days), state.clock.now_ms()).on("costs")?;
    let apps = AppNames::new(&state.store.list_apps().await.on("costs")?);
    let report: Report = costs::build(&state, window).await.on("costs")?;
    let (from, to) = (format_date(window.first_day), format_date(window.last_day));
    let days = window.last_day - window.first_day + 1;
    let body = html! {
        h1 { "Costs" }
        form.card method="get" action="/dashboard/costs" {
            div.fields {
                div.field { label for="from" { "From" } input #from name="from" type="date" value=(from); }
                div.field {
                    label for="days" { "Days" }
                    input #days name="days" type="number" min="1" max=(costs::report::MAX_DAYS) value=(days);
                }
                div.field { label for="app" { "App" } (app_select("app", "app", &apps, app, Some("All apps"))) }
                div.field { button type="submit" { "Show" } }
            }
        }
        p { "Messages whose delivery Meta priced from " (from) " to " (to) " (UTC, both days included), and \
             production sessions created in those days and verified. Billable messages are those Meta \
             charges for; free ones were delivered within a customer service window or a free entry point." }
        @if !report.priced {
            p.flash.ok #costs-unpriced { "No price table is configured (whatsapp_price_table): counts only, no money." }
        } @else if report.total.tally.unpriced > 0 {
            p.flash.error #costs-unpriced { (report.total.tally.unpriced) " billable messages have no price in the \
                price table: they are left out of the money." }
        }
        h2 { "Per country" }
        div.scroll { table #costs-countries {
            thead { tr {
                th { "Country" } th.num { "Verified" } th.num { "Billable" } th.num { "Free" }
                th.num { "Billable / verified" } th.num { "Cost" } th.num { "Cost / verified" }
            } }
            tbody {
                @for (c, line) in &report.countries { tr { td { (country(c)) } (country_cells(line)) } }
                tr.total { td { strong { "All" } } (country_cells(&report.total)) }
            }
        } }
        h2 { "Per country and category" }
        div.scroll { table #costs-rows {
            thead { tr {
                th { "Country" } th { "Category" } th.num { "Billable" } th.num { "Free" } th.num { "Unpriced" }
                th.num { "Cost" }
            } }
            tbody { @for ((c, category), t) in &report.rows { tr {
                td { (country(c)) } td { code { (category) } } (row_cells(t))
            } } }
        } }
        @if report.rows.is_empty() { p { "No priced messages in these days." } }
    };
    Ok(page(StatusCode::OK, "costs", "Costs", None, body))
}
