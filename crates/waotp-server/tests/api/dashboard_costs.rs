//! The dashboard's Costs page in a real headless Chromium: messages delivered through the Graph
//! double with Meta's pricing, counted per country and category, with the money of the price
//! table; its window and app filter; bad input answered in the frame; laid out at 1280 and
//! 390 px (no script, the page's own style sheet only).

use serde_json::{json, Value};
use waotp_server::config::Secret;
use waotp_whatsapp::double::DoublePricing;

use crate::costs::{price_table, send_priced, with_double, PRICES};
use crate::dashboard::{check_page, log_in, TOKEN};
use waotp_test_support::browser::Browser;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_costs_page_shows_counts_and_money_per_country() {
    let dir = tempfile::tempdir().unwrap();
    let table = price_table(dir.path(), PRICES);
    let (app, double) = with_double(|c| {
        c.whatsapp_price_table = Some(table);
        c.admin_token = Some(Secret::new(TOKEN));
    })
    .await;
    let auth = || Some(DoublePricing::new("authentication", "regular"));
    let first = send_priced(&app, &double, "6281234567801", auth()).await;
    send_priced(&app, &double, "6281234567802", auth()).await;
    send_priced(&app, &double, "447400123456", Some(DoublePricing::new("marketing", "regular"))).await;
    send_priced(&app, &double, "447400123457", Some(DoublePricing::new("service", "free_customer_service"))).await;
    let verified = app.verify(json!({ "msisdn": "6281234567801", "otp": first.otp() })).await;
    assert_eq!(verified.status, 200);

    let base = format!("{}/dashboard", app.base);
    let b = Browser::start(1280, 900).await;
    log_in(&b, &base).await;
    b.goto(&format!("{base}/costs")).await;
    let table = |id: &'static str| {
        let b = &b;
        async move {
            let script = format!(
                "return [...document.querySelectorAll('#{id} tbody tr')].map(r => [...r.cells].map(c => c.textContent))"
            );
            b.execute(&script, json!([])).await
        }
    };
    let countries = table("costs-countries").await;
    let line = |v: &Value, first: &str| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect::<Vec<_>>())
            .find(|r| r[0] == first)
            .unwrap_or_else(|| panic!("no row {first} in {v}"))
    };
    // Country, verified, billable, free, billable / verified, cost, cost / verified.
    assert_eq!(line(&countries, "ID"), ["ID", "1", "2", "0", "2.00", "0.05 USD", "0.05 USD"]);
    assert_eq!(line(&countries, "GB"), ["GB", "0", "1", "1", "—", "0.05 EUR", "—"]);
    assert_eq!(line(&countries, "All"), ["All", "1", "3", "1", "3.00", "0.05 EUR0.05 USD", "0.05 EUR0.05 USD"]);
    let rows = table("costs-rows").await;
    assert_eq!(line(&rows, "ID"), ["ID", "authentication", "2", "0", "0", "0.05 USD"]);
    check_page(&b, "costs", 1280).await;
    b.resize(390, 844).await;
    check_page(&b, "costs", 390).await;
    b.resize(1280, 900).await;

    // Another app's window is empty; a window before today too.
    let (other, _) = app.other_app().await;
    b.goto(&format!("{base}/costs?app={other}")).await;
    assert!(b.text("main").await.contains("No priced messages in these days."));
    b.goto(&format!("{base}/costs?from=2020-01-01&days=31")).await;
    assert!(b.text("main").await.contains("No priced messages in these days."));
    // Bad input: the reason, in the frame.
    b.goto(&format!("{base}/costs?from=2025-07-32")).await;
    let text = b.text("main").await;
    assert!(text.contains("from must be a date YYYY-MM-DD"), "{text}");
    b.quit().await;
}
