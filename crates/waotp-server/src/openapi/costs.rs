//! The cost report's routes and schemas (`GET /v1/costs`, `GET /admin/costs`; see
//! `crate::costs`), beside the rest of the document.

use serde_json::{json, Value};

use super::{CostDate, CostDays, CostsAnswer, ErrorBody, TOO_MANY_FAILURES, UNAVAILABLE};

#[utoipa::path(get, path = "/v1/costs", tag = "Extensions", security(("AppId" = [], "ApiKey" = [])),
    params(
        ("from" = Option<CostDate>, Query, description = "First day (UTC) of the window; empty or absent: the first day of the current month"),
        ("days" = Option<CostDays>, Query, description = "Days in the window, from `from` on; empty or absent: up to today (at least 1, at most 366)"),
    ),
    responses(
        (status = 200, description = "The app's messages Meta priced in the window, by country and category, its verified sessions by country, and with the server's price table the money; `this_month`: its billable messages this calendar month and its ceiling", body = CostsAnswer),
        (status = 400, description = "Validation error: a `from` that is not a date, `days` out of 1 to 366, an `app_id` (the admin API's) or a `to` (give `days`)", body = ErrorBody),
        (status = 401, description = "Authorization failed", body = ErrorBody),
        (status = 503, description = UNAVAILABLE, body = ErrorBody, headers(("Retry-After" = u64))),
    ))]
#[allow(dead_code)]
pub(super) fn costs_v1() {}

#[utoipa::path(get, path = "/admin/costs", tag = "Admin", security(("admin" = [])),
    params(
        ("from" = Option<CostDate>, Query, description = "First day (UTC); empty or absent: the first day of the current month"),
        ("days" = Option<CostDays>, Query, description = "Days in the window; empty or absent: up to today (at least 1, at most 366)"),
        ("app_id" = Option<String>, Query, description = "One app's report (with its `this_month`); empty or absent: every app's"),
    ),
    responses(
        (status = 200, description = "The cost report of every app, or of one", body = CostsAnswer),
        (status = 400, description = "Validation error (a `from` that is not a date, `days` out of 1 to 366, a malformed app id, a `to`)", body = ErrorBody),
        (status = 401, description = "Authorization failed", body = ErrorBody),
        (status = 404, description = "No such app", body = ErrorBody),
        (status = 429, description = TOO_MANY_FAILURES, body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until this address may try again"))),
        (status = 503, description = UNAVAILABLE, body = ErrorBody, headers(("Retry-After" = u64))),
    ))]
#[allow(dead_code)]
pub(super) fn admin_costs() {}

/// `YYYY-MM-DD`, a real date from 1970 on, or empty.
pub(super) fn cost_date() -> Value {
    json!({
        "type": "string",
        "pattern": format!("^(?:{})?$", crate::pattern::date()),
        "description": "A date (UTC), `YYYY-MM-DD`, a real one of the years 1970 to 9999; empty: absent.",
        "examples": ["2025-07-01"],
    })
}

/// 1 to 366, or empty.
pub(super) fn cost_days() -> Value {
    let max = crate::costs::report::MAX_DAYS as u64;
    json!({
        "type": "string",
        "pattern": format!("^(?:0*(?:{}))?$", crate::pattern::decimal_range(1, max)),
        "description": format!("A number of days, 1 to {max}; empty: absent."),
        "examples": ["31"],
    })
}

/// Money per currency: amounts exact, as decimal strings.
fn money() -> Value {
    json!({
        "type": "array",
        "description": "The money by currency (of the price table's rows), amounts exact.",
        "items": {
            "type": "object",
            "required": ["currency", "amount"],
            "properties": {
                "currency": {"type": "string", "description": "ISO 4217, as the price table names it."},
                "amount": {"type": "string", "pattern": "^[0-9]+\\.[0-9]{2,6}$", "examples": ["12.3450"]},
            },
        },
    })
}

fn counts(extra: &[(&str, Value)]) -> Value {
    let mut properties = json!({
        "verified_sessions": {"type": "integer", "minimum": 0, "description": "Production sessions created in the window and verified."},
        "billable_messages": {"type": "integer", "minimum": 0, "description": "Messages Meta charges for."},
        "free_messages": {"type": "integer", "minimum": 0, "description": "Messages Meta priced as free (a customer service window, a free entry point)."},
        "unpriced_messages": {"type": "integer", "minimum": 0, "description": "Billable messages the price table has no price for (all of them without a table): left out of the money."},
        "billable_per_verified": {"type": ["number", "null"], "description": "Billable messages per verified session, to 2 decimals; `null` without a verified session."},
        "cost": money(),
        "cost_per_verified": {"anyOf": [money(), {"type": "null"}], "description": "The money per verified session (to the millionth); `null` without one."},
    });
    for (name, schema) in extra {
        properties[*name] = schema.clone();
    }
    json!({
        "type": "object",
        "required": ["verified_sessions", "billable_messages", "free_messages", "unpriced_messages", "billable_per_verified", "cost", "cost_per_verified"],
        "properties": properties,
    })
}

pub(super) fn costs_answer() -> Value {
    let country = json!({"type": ["string", "null"], "description": "ISO 3166-1 alpha-2 of the recipients' numbers; `null` for numbers without a country (+800 …)."});
    json!({
        "type": "object",
        "required": ["app_id", "from", "to", "priced", "rows", "countries", "total"],
        "properties": {
            "app_id": {"type": ["string", "null"], "format": "uuid", "description": "The app reported on; `null`: every app."},
            "from": {"type": "string", "description": "First day (UTC)."},
            "to": {"type": "string", "description": "Last day (UTC), included."},
            "priced": {"type": "boolean", "description": "Whether the server has a price table (whatsapp_price_table)."},
            "rows": {
                "type": "array",
                "description": "Messages by country and category (Meta's category in lower case, `-` written `_`: `authentication-international` and `authentication_international` are one row).",
                "items": {
                    "type": "object",
                    "required": ["country", "category", "billable_messages", "free_messages", "unpriced_messages", "cost"],
                    "properties": {
                        "country": country,
                        "category": {"type": "string", "examples": ["authentication"]},
                        "billable_messages": {"type": "integer", "minimum": 0},
                        "free_messages": {"type": "integer", "minimum": 0},
                        "unpriced_messages": {"type": "integer", "minimum": 0},
                        "cost": money(),
                    },
                },
            },
            "countries": {"type": "array", "description": "By country.", "items": counts(&[("country", country.clone())])},
            "total": counts(&[]),
            "this_month": {
                "type": "object",
                "description": "A single app's report only: its billable messages this calendar month (UTC) and its ceiling.",
                "required": ["month", "billable_messages", "billable_ceiling"],
                "properties": {
                    "month": {"type": "string", "examples": ["2025-07"]},
                    "billable_messages": {"type": "integer", "minimum": 0},
                    "billable_ceiling": {"type": ["integer", "null"], "description": "`null`: no ceiling."},
                },
            },
        },
    })
}
