//! What each verification costs, end to end: the Graph double delivers messages and reports
//! their pricing as Meta does; `GET /v1/costs` and `GET /admin/costs` count them by country
//! and category with the verified sessions and, with a price table, the money; the monthly
//! ceiling refuses the next send.

use std::time::Duration;

use serde_json::{json, Value};
use waotp_core::Status;
use waotp_server::config::Secret;
use waotp_server::Config;
use waotp_whatsapp::double::{inbound_text_value, DoubleConfig, DoublePricing, GraphDouble, ScriptedFailure};

use waotp_test_support::app::*;
use waotp_test_support::graph::{spawn_app_with_double, PNID};

pub(crate) const ADMIN: &str = "costs-admin-token-0123456789";

pub(crate) const PRICES: &str = "country,category,price,currency,valid_from
ID,authentication,0.0250,USD,2025-07-01
*,authentication,0.0400,USD,2025-07-01
GB,marketing,0.0500,EUR,2025-07-01
";

/// waotp (with an admin token and `adjust`ed) wired to a Graph API double, and back.
pub(crate) async fn with_double(adjust: impl FnOnce(&mut Config)) -> (TestApp, GraphDouble) {
    with_double_as(adjust, |_| {}).await
}

/// [`with_double`], the double's configuration `adjust_double`ed.
async fn with_double_as(
    adjust: impl FnOnce(&mut Config),
    adjust_double: impl FnOnce(&mut DoubleConfig),
) -> (TestApp, GraphDouble) {
    spawn_app_with_double(
        |c| {
            c.admin_token = Some(Secret::new(ADMIN));
            adjust(c);
        },
        |d| {
            d.webhook_gap = Duration::from_millis(5);
            d.pair_burst = 100;
            adjust_double(d);
        },
    )
    .await
}

/// A price table file in the test's folder.
pub(crate) fn price_table(dir: &std::path::Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("prices.csv");
    std::fs::write(&path, text).unwrap();
    path
}

/// Sends to `msisdn` with the double reporting `pricing`, and waits until its statuses are all
/// in (read: the delivered status and its pricing came before); the send's answer.
pub(crate) async fn send_priced(
    app: &TestApp,
    double: &GraphDouble,
    msisdn: &str,
    pricing: Option<DoublePricing>,
) -> Answer {
    double.set_pricing(pricing);
    let sent = app.send(json!({ "msisdn": msisdn })).await;
    assert_eq!(sent.status, 201, "{}", sent.body);
    eventually("the message read", Duration::from_secs(20), || async {
        let s = app.state.store.get_session(app.app_id, sent.session_id()).await.unwrap().unwrap();
        if s.status == Status::Read {
            Ok(())
        } else {
            Err(s.status)
        }
    })
    .await;
    sent
}

async fn admin_get(app: &TestApp, path: &str) -> (u16, Value) {
    let res = app.http.get(format!("{}{path}", app.base)).bearer_auth(ADMIN).send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

fn row<'a>(report: &'a Value, country: &str, category: &str) -> &'a Value {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["country"] == country && r["category"] == category)
        .unwrap_or_else(|| panic!("no row {country} {category} in {report}"))
}

fn country<'a>(report: &'a Value, code: &str) -> &'a Value {
    report["countries"].as_array().unwrap().iter().find(|r| r["country"] == code).expect("the country")
}

#[tokio::test]
async fn priced_status_webhooks_fill_the_report_by_country_and_category_with_money() {
    let dir = tempfile::tempdir().unwrap();
    let table = price_table(dir.path(), PRICES);
    let (app, double) = with_double(|c| c.whatsapp_price_table = Some(table)).await;
    let (id1, id2, gb, us) = ("6281234567801", "6281234567802", "447400123456", "12015550123");
    // Every category Meta names, billable or free, to numbers of three countries.
    let cases = [
        (id1, "authentication", "regular"),
        (id1, "authentication", "regular"),
        (id2, "authentication_international", "regular"),
        (gb, "marketing", "regular"),
        (gb, "marketing_lite", "regular"),
        (us, "authentication", "regular"),
        (us, "utility", "free_customer_service"),
        (us, "service", "free_customer_service"),
        (us, "referral_conversion", "free_entry_point"),
    ];
    let mut answers = Vec::new();
    for (msisdn, category, pricing_type) in cases {
        answers.push(send_priced(&app, &double, msisdn, Some(DoublePricing::new(category, pricing_type))).await);
    }
    // One without pricing (an older webhook version): no cost, no error.
    send_priced(&app, &double, id2, None).await;
    // Verified: the second ID session and the GB one.
    for (i, msisdn) in [(1, id1), (4, gb)] {
        let verified = app.verify(json!({ "msisdn": msisdn, "otp": answers[i].otp() })).await;
        assert_eq!(verified.status, 200, "{}", verified.body);
    }
    // A sandbox send is never billable.
    assert_eq!(app.post("/v2/whatsapp/otp/send/sandbox", json!({ "msisdn": "6282123060001" })).await.status, 201);

    let today = waotp_core::calendar::format_date(app.clock.now_ms().div_euclid(86_400_000));
    let report = app.get_as(&format!("/v1/costs?from={today}&days=1"), None).await;
    assert_eq!(report.status, 200, "{}", report.body);
    let r = &report.body;
    assert_eq!((r["from"].as_str(), r["priced"].as_bool()), (Some(today.as_str()), Some(true)));
    let auth_id = row(r, "ID", "authentication");
    assert_eq!((auth_id["billable_messages"].as_u64(), auth_id["free_messages"].as_u64()), (Some(2), Some(0)));
    assert_eq!(auth_id["cost"], json!([{ "currency": "USD", "amount": "0.05" }]));
    // No ID row for authentication_international: unpriced, not guessed.
    assert_eq!(row(r, "ID", "authentication_international")["unpriced_messages"], 1);
    assert_eq!(row(r, "GB", "marketing")["cost"], json!([{ "currency": "EUR", "amount": "0.05" }]));
    assert_eq!(row(r, "US", "authentication")["cost"], json!([{ "currency": "USD", "amount": "0.04" }]), "any country");
    for free in ["utility", "service", "referral_conversion"] {
        let free_row = row(r, "US", free);
        assert_eq!((free_row["billable_messages"].as_u64(), free_row["free_messages"].as_u64()), (Some(0), Some(1)));
    }
    let id = country(r, "ID");
    assert_eq!((id["verified_sessions"].as_u64(), id["billable_messages"].as_u64()), (Some(1), Some(3)));
    assert_eq!(id["billable_per_verified"], 3.0);
    assert_eq!(id["cost_per_verified"], json!([{ "currency": "USD", "amount": "0.05" }]));
    let total = &r["total"];
    assert_eq!((total["billable_messages"].as_u64(), total["free_messages"].as_u64()), (Some(6), Some(3)));
    assert_eq!((total["verified_sessions"].as_u64(), total["unpriced_messages"].as_u64()), (Some(2), Some(2)));
    assert_eq!(
        total["cost"],
        json!([{ "currency": "EUR", "amount": "0.05" }, { "currency": "USD", "amount": "0.09" }])
    );
    assert_eq!(r["this_month"]["billable_messages"], 6);
    // Each billable message counted once in the metrics, by category and country.
    let metric = |category: &str, country: &str| {
        app.metric(&format!("waotp_whatsapp_billable_messages_total{{category=\"{category}\",country=\"{country}\"}}"))
    };
    assert_eq!(
        (metric("authentication", "ID"), metric("marketing_lite", "GB"), metric("utility", "US")),
        (2.0, 1.0, 0.0)
    );

    // The operator's report: every app, or one; another app's is empty.
    let (status, all) = admin_get(&app, &format!("/admin/costs?from={today}&days=1")).await;
    assert_eq!((status, &all["total"]["billable_messages"]), (200, &json!(6)));
    let (other, _) = app.other_app().await;
    let (status, one) = admin_get(&app, &format!("/admin/costs?app_id={other}")).await;
    assert_eq!((status, &one["total"]["billable_messages"], &one["app_id"]), (200, &json!(0), &json!(other)));
    // Empty values are absent; any real date with any days from 1 to 366 is a window, however
    // long ago (what the document says is exactly what is taken).
    let (status, empty) = admin_get(&app, "/admin/costs?from=&days=&app_id=").await;
    assert_eq!((status, &empty["total"]["billable_messages"]), (200, &json!(6)), "{empty}");
    for path in
        ["/v1/costs?from=2025-07-01", "/v1/costs?from=1970-01-01&days=366", "/v1/costs?from=9999-12-31&days=366"]
    {
        let answer = app.get_as(path, None).await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.body);
    }
    let july = app.get_as("/v1/costs?from=2025-07-01&days=31", None).await.body;
    assert_eq!((july["from"].as_str(), july["to"].as_str()), (Some("2025-07-01"), Some("2025-07-31")));
    // Bad input is a 400 that says what.
    for path in [
        "/admin/costs?from=2025-02-30",
        "/admin/costs?app_id=nope",
        "/admin/costs?days=0",
        "/admin/costs?days=367",
        "/admin/costs?from=2025-07-01&to=2025-07-31",
    ] {
        let (status, body) = admin_get(&app, path).await;
        assert_eq!((status, body["error_code"].as_str()), (400, Some("validation_error")), "{path}: {body}");
    }
    let bad = app.get_as("/v1/costs?from=31-07-2025", None).await;
    assert_eq!((bad.status, bad.body["error_code"].as_str()), (400, Some("validation_error")));
    assert!(bad.body["reason"].as_str().unwrap().contains("from must be a date"), "{}", bad.body);
    assert_eq!(app.get_as("/v1/costs", Some((&other.to_string(), "wrong-key"))).await.status, 401);
}

#[tokio::test]
async fn the_monthly_ceiling_refuses_the_next_send_and_counts_the_refusal() {
    let (app, double) = with_double(|_| {}).await;
    let set = app
        .http
        .patch(format!("{}/admin/apps/{}", app.base, app.app_id))
        .bearer_auth(ADMIN)
        .json(&json!({ "billable_ceiling": 2 }))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status().as_u16(), 200);
    assert_eq!(set.json::<Value>().await.unwrap()["billable_ceiling"], 2);
    app.state.store.set_quota(app.app_id, Some(10)).await.unwrap();
    // A free message does not count; two billable ones reach the ceiling.
    let free = DoublePricing::new("utility", "free_customer_service");
    send_priced(&app, &double, "6281234567801", Some(free)).await;
    for msisdn in ["6281234567802", "6281234567803"] {
        send_priced(&app, &double, msisdn, Some(DoublePricing::new("authentication", "regular"))).await;
    }
    let sends_to_meta = double.received().len();
    let refused = app.send(json!({ "msisdn": "6281234567804" })).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(refused.body["error_code"], "billable_ceiling_reached");
    assert_eq!(app.get_as("/v1/quota", None).await.body["quota"], 7, "the refused send used no quota");
    assert_eq!(app.metric("waotp_refusals_total{reason=\"billable_ceiling_reached\"}"), 1.0);
    app.state.daily_refusals.flush(app.state.store.as_ref()).await.unwrap();
    let today = app.clock.now_ms().div_euclid(86_400_000);
    let counted = app.state.store.refusals(today).await.unwrap();
    assert!(
        counted.iter().any(|r| r.reason.code() == "billable_ceiling_reached" && r.count == 1 && r.app_id == app.app_id),
        "{counted:?}"
    );
    let month = app.get_as("/v1/costs", None).await.body["this_month"].clone();
    assert_eq!((month["billable_messages"].as_u64(), month["billable_ceiling"].as_u64()), (Some(2), Some(2)));
    // The sandbox (never billable) and a reverse start (nothing billable is sent) go on.
    assert_eq!(app.post("/v2/whatsapp/otp/send/sandbox", json!({ "msisdn": "6282123060001" })).await.status, 201);
    let reverse = app.send(json!({ "msisdn": "6281234567805", "method": "reverse" })).await;
    assert_eq!(reverse.status, 201, "{}", reverse.body);
    assert_eq!(double.received().len(), sends_to_meta, "nothing more went to Meta");
    // Lifting the ceiling lets sends through again.
    let lift = app
        .http
        .patch(format!("{}/admin/apps/{}", app.base, app.app_id))
        .bearer_auth(ADMIN)
        .json(&json!({ "billable_ceiling": null }))
        .send()
        .await
        .unwrap();
    assert_eq!(lift.json::<Value>().await.unwrap()["billable_ceiling"], Value::Null);
    assert_eq!(app.send(json!({ "msisdn": "6281234567806" })).await.status, 201);
}

#[tokio::test]
async fn a_malformed_price_table_refuses_the_start_naming_the_line() {
    let header = "country,category,price,currency,valid_from\n";
    let cases = [
        (format!("{header}ID,authentication,0,05,USD,2025-07-01\n"), "line 2:"),
        // A price over 999999.999999: sums of prices must stay far from their integers' bounds.
        (
            format!("{header}ID,authentication,0.03,USD,2025-07-01\nID,marketing,1000000,IDR,2025-07-01\n"),
            "line 3: price",
        ),
    ];
    for (text, line) in cases {
        let dir = tempfile::tempdir().unwrap();
        let table = price_table(dir.path(), &text);
        let mut config = test_config(&dir).await;
        config.whatsapp_price_table = Some(table.clone());
        let e = waotp_server::build(&config, waotp_server::Clock::system()).await.err().expect("refused");
        let shown = e.to_string();
        assert!(shown.contains(&table.display().to_string()) && shown.contains(line), "{shown}");
    }
}

/// Sets the app's reverse reply (`None`: none) through the admin API.
async fn set_reverse_reply(app: &TestApp, reply: Option<&str>) {
    let set = app
        .http
        .patch(format!("{}/admin/apps/{}", app.base, app.app_id))
        .bearer_auth(ADMIN)
        .json(&json!({ "reverse_reply": reply }))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status().as_u16(), 200);
}

/// The app's text reply to a verified reverse session is a service message Meta bills beyond
/// the number's free allowance: its delivered status's pricing is recorded with the session
/// (the report, the month's count); with a reply set, a reverse start is under the monthly
/// ceiling like a send; without one it is not (it sends nothing billable).
#[tokio::test]
async fn a_reverse_replys_pricing_is_recorded_and_brings_reverse_starts_under_the_ceiling() {
    let (app, double) = with_double(|_| {}).await;
    set_reverse_reply(&app, Some("Thanks, you are verified.")).await;
    double.set_service_pricing(Some(DoublePricing::new("service", "regular")));
    let msisdn = "6281234567801";
    let started = app.send(json!({ "msisdn": msisdn, "method": "reverse" })).await;
    assert_eq!(started.status, 201, "{}", started.body);
    let text = started.body["text"].as_str().unwrap();
    let value = inbound_text_value("15550000000", PNID, msisdn, "wamid.USER1", text);
    assert_eq!(double.send_change("WABA", "messages", value).await, 200);
    let report = eventually("the reply's pricing recorded", Duration::from_secs(20), || async {
        let report = app.get_as("/v1/costs", None).await.body;
        if report["total"]["billable_messages"] == 1 {
            Ok(report)
        } else {
            Err(report)
        }
    })
    .await;
    let service = row(&report, "ID", "service");
    assert_eq!((service["billable_messages"].as_u64(), service["free_messages"].as_u64()), (Some(1), Some(0)));
    assert_eq!(country(&report, "ID")["verified_sessions"], 1);
    assert_eq!(report["this_month"]["billable_messages"], 1);
    assert_eq!(
        app.metric("waotp_whatsapp_billable_messages_total{category=\"service\",country=\"ID\"}"),
        1.0,
        "counted once"
    );
    // The ceiling reached: with a reply, a reverse start is refused as a send is…
    let set = app
        .http
        .patch(format!("{}/admin/apps/{}", app.base, app.app_id))
        .bearer_auth(ADMIN)
        .json(&json!({ "billable_ceiling": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status().as_u16(), 200);
    let refused = app.send(json!({ "msisdn": "6281234567802", "method": "reverse" })).await;
    assert_eq!((refused.status, refused.body["error_code"].as_str()), (403, Some("billable_ceiling_reached")));
    // …without one it sends nothing billable, and goes on.
    set_reverse_reply(&app, None).await;
    let started = app.send(json!({ "msisdn": "6281234567802", "method": "reverse" })).await;
    assert_eq!(started.status, 201, "{}", started.body);
}

/// Meta bills a delivered message: the pricing a `sent` status carries is not recorded, neither
/// for a message that stays `sent` nor for one that then fails (`sent`, then `failed`).
#[tokio::test]
async fn the_pricing_of_a_message_never_delivered_is_not_recorded() {
    let (app, double) = with_double_as(|_| {}, |d| d.webhooks.only_sent = true).await;
    double.set_pricing(Some(DoublePricing::new("authentication", "regular")));
    let stays_sent = app.send(json!({ "msisdn": "6281234567801" })).await;
    assert_eq!(stays_sent.status, 201, "{}", stays_sent.body);
    double.fail(ScriptedFailure { code: 131026, to: Some("6281234567802".into()), asynchronous: true }, 1);
    let fails = app.send(json!({ "msisdn": "6281234567802" })).await;
    assert_eq!(fails.status, 201, "{}", fails.body);
    // Three status webhooks, each with the pricing: sent; sent, then failed.
    eventually("every status webhook in", Duration::from_secs(20), || async {
        let statuses = (
            app.state.store.get_session(app.app_id, stays_sent.session_id()).await.unwrap().unwrap().status,
            app.state.store.get_session(app.app_id, fails.session_id()).await.unwrap().unwrap().status,
        );
        if double.webhooks_acknowledged() >= 3 && statuses == (Status::Sent, Status::Failed) {
            Ok(())
        } else {
            Err((double.webhooks_acknowledged(), statuses))
        }
    })
    .await;
    let report = app.get_as("/v1/costs", None).await.body;
    assert_eq!((report["rows"].clone(), report["total"]["billable_messages"].clone()), (json!([]), json!(0)));
    assert_eq!(report["this_month"]["billable_messages"], 0);
    assert_eq!(app.metric("waotp_whatsapp_billable_messages_total{category=\"authentication\",country=\"ID\"}"), 0.0);
}
