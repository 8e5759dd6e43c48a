//! Reverse verification when Meta leaves the sender's number out (issue 31): a user who adopted
//! a WhatsApp username is named by a business-scoped user id (BSUID) alone. The number behind a
//! BSUID is learned from the status webhooks of a message sent to the number (they name both);
//! an unknown BSUID verifies nothing, counts nothing against the session, and the session says
//! why; a changed BSUID (`user_id_update`) moves the mapping.

use std::time::Duration;

use serde_json::json;
use waotp_store::UserKey;
use waotp_whatsapp::double::{bsuid_of, inbound_text_without_number, GraphDouble};

use crate::reverse::{session, start, with_double, PNID};
use waotp_test_support::app::*;
use waotp_test_support::receiver::Receiver;

/// The double's status webhooks carry this entry id (its WABA).
const WABA: &str = "102290129340398";

/// `/metrics` of `app`, as a scraper reads it.
async fn metrics(app: &TestApp) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/metrics", listener.local_addr().unwrap());
    let router = waotp_server::metrics::router(app.state.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    app.http.get(url).send().await.unwrap().text().await.unwrap()
}

/// Sends a code to `msisdn` and waits for its `read` status: the status webhooks named the
/// number with its BSUID.
async fn send_and_read(app: &TestApp, msisdn: &str) {
    let rx = Receiver::start().await;
    let sent = app.send(json!({ "msisdn": msisdn, "callback_url": format!("{}/cb", rx.base) })).await;
    assert_eq!(sent.status, 201, "{}", sent.body);
    assert_eq!(rx.wait_statuses(&sent.session_id().to_string(), 4).await, vec![0, 1, 2, 3]);
}

async fn from_bsuid(double: &GraphDouble, user_id: &str, message_id: &str, text: &str) {
    let value = inbound_text_without_number(PNID, user_id, message_id, text);
    assert_eq!(double.send_change(WABA, "messages", value).await, 200);
}

/// Acceptance 1: a status webhook carrying number and BSUID teaches the map; a later inbound
/// code from that BSUID alone verifies the session (callback 4), and the ✅ goes to the number.
#[tokio::test]
async fn a_bsuid_learned_from_a_status_verifies_a_reverse_session() {
    let (app, double) = with_double().await;
    send_and_read(&app, MSISDN).await;
    let learned = app.state.store.user_number(UserKey::new(WABA, &bsuid_of(MSISDN))).await.unwrap();
    assert_eq!(learned.as_deref(), Some(MSISDN));
    let rx = Receiver::start().await;
    let started = start(&app, MSISDN, Some(&rx), json!({})).await;
    let id = started.session_id();
    from_bsuid(&double, &bsuid_of(MSISDN), "wamid.BSUID", started.body["text"].as_str().unwrap()).await;
    assert_eq!(rx.wait_statuses(&id.to_string(), 2).await, vec![0, 4]);
    let reaction = eventually("the reaction", Duration::from_secs(10), || async {
        double.received().into_iter().find(|r| r.body["type"] == "reaction").ok_or(())
    })
    .await;
    assert_eq!(reaction.to, MSISDN);
    assert_eq!(reaction.body["reaction"]["message_id"], "wamid.BSUID");
}

/// Acceptance 1: an inbound code from an unknown BSUID alone verifies nothing, counts no wrong
/// try, and the session view says why; it is counted in /metrics, and the webhook without a
/// phone number is answered 200 and counted.
#[tokio::test]
async fn an_unknown_bsuid_verifies_nothing_and_the_session_says_why() {
    let (app, double) = with_double().await;
    let rx = Receiver::start().await;
    let started = start(&app, MSISDN, Some(&rx), json!({})).await;
    let (id, text) = (started.session_id(), started.body["text"].as_str().unwrap().to_owned());
    from_bsuid(&double, "ZZ.00000000000000000001", "wamid.U1", &text).await;
    // the same webhook again (Meta retries): counted once
    from_bsuid(&double, "ZZ.00000000000000000001", "wamid.U1", &text).await;
    let s = session(&app, id).await;
    assert_eq!(
        (s["status"].as_i64(), s["state"].as_str(), s["wrong_attempts"].as_i64(), s["wrong_senders"].as_i64()),
        (Some(0), Some("pending"), Some(0), Some(0))
    );
    assert_eq!(s["number_not_shared"], 1, "{s}");
    let m = metrics(&app).await;
    assert!(m.lines().any(|l| l.contains("outcome=\"number_not_shared\"") && l.ends_with(" 1")), "{m}");
    assert!(m.lines().any(|l| l.contains("outcome=\"no_phone_number\"") && l.ends_with(" 2")), "{m}");
    // the owner's number still verifies: nothing was counted against it
    let value = waotp_whatsapp::double::inbound_text_value("15550100199", PNID, MSISDN, "wamid.OWNER", &text);
    assert_eq!(double.send_change(WABA, "messages", value).await, 200);
    assert_eq!(rx.wait_statuses(&id.to_string(), 2).await, vec![0, 4]);
}

/// Acceptance 1: `user_id_update` moves the mapping: the old BSUID no longer verifies, the new
/// one does.
#[tokio::test]
async fn user_id_update_moves_the_mapping() {
    let (app, double) = with_double().await;
    send_and_read(&app, MSISDN).await;
    let (old, new) = (bsuid_of(MSISDN), "ZZ.99999999999999999999".to_owned());
    let update = json!({ "messaging_product": "whatsapp",
        "metadata": { "display_phone_number": "15550100199", "phone_number_id": PNID },
        "contacts": [{ "profile": { "name": "Test User" }, "wa_id": MSISDN }],
        "user_id_update": [{ "wa_id": MSISDN, "detail": "User id for Test User has been updated.",
            "user_id": { "previous": old, "current": new }, "timestamp": "1750030073" }] });
    assert_eq!(double.send_change(WABA, "user_id_update", update).await, 200);
    let rx = Receiver::start().await;
    let started = start(&app, MSISDN, Some(&rx), json!({})).await;
    let (id, text) = (started.session_id(), started.body["text"].as_str().unwrap().to_owned());
    from_bsuid(&double, &old, "wamid.OLD", &text).await;
    let s = session(&app, id).await;
    assert_eq!((s["status"].as_i64(), s["number_not_shared"].as_i64()), (Some(0), Some(1)), "{s}");
    from_bsuid(&double, &new, "wamid.NEW", &text).await;
    assert_eq!(rx.wait_statuses(&id.to_string(), 2).await, vec![0, 4]);
    let m = metrics(&app).await;
    assert!(m.lines().any(|l| l.contains("outcome=\"user_id_changed\"") && l.ends_with(" 1")), "{m}");
    // not a management change of an unknown field besides
    assert!(
        !m.lines().any(|l| l.starts_with("waotp_whatsapp_management_events") && l.contains("field=\"other\"")),
        "{m}"
    );
}

/// A BSUID changed without a number (Meta's August 2026 `user_changed_user_id`: the user changed
/// number and does not share the new one): neither the previous nor the new BSUID verifies the
/// number the previous stood for, which the user may no longer hold.
#[tokio::test]
async fn a_bsuid_changed_without_a_number_does_not_inherit_the_old_one() {
    let (app, double) = with_double().await;
    send_and_read(&app, MSISDN).await;
    let (old, new) = (bsuid_of(MSISDN), "ZZ.88888888888888888888".to_owned());
    let change = json!({ "messaging_product": "whatsapp",
        "metadata": { "display_phone_number": "15550100199", "phone_number_id": PNID },
        "messages": [{ "id": "wamid.SYS", "timestamp": "1750030073", "type": "system",
            "system": { "body": "User changed", "type": "user_changed_user_id",
                "previous_user_id": old, "user_id": new } }] });
    assert_eq!(double.send_change(WABA, "messages", change).await, 200);
    let started = start(&app, MSISDN, None, json!({})).await;
    let (id, text) = (started.session_id(), started.body["text"].as_str().unwrap().to_owned());
    from_bsuid(&double, &new, "wamid.NEW", &text).await;
    from_bsuid(&double, &old, "wamid.OLD", &text).await;
    let s = session(&app, id).await;
    assert_eq!((s["status"].as_i64(), s["number_not_shared"].as_i64()), (Some(0), Some(2)), "{s}");
}

/// A status with no phone number at all (a message sent to a BSUID whose number Meta does not
/// share; Meta's own example) is answered 200 and counted; the local inbox can simulate a
/// sender whose number is not shared.
#[tokio::test]
async fn statuses_without_a_phone_number_are_accepted_and_counted() {
    let (app, double) = with_double().await;
    let value = json!({ "messaging_product": "whatsapp",
        "metadata": { "display_phone_number": "15550100199", "phone_number_id": PNID },
        "contacts": [{ "profile": { "name": "Pablo M.", "username": "@pablomorales" }, "user_id": "US.13491208655302741918" }],
        "statuses": [{ "id": "wamid.NOT-OURS", "status": "delivered", "timestamp": "1750030073",
            "recipient_user_id": "US.13491208655302741918",
            "pricing": { "billable": true, "pricing_model": "PMP", "type": "regular", "category": "marketing" } }] });
    assert_eq!(double.send_change(WABA, "messages", value).await, 200);
    let m = metrics(&app).await;
    assert!(m.lines().any(|l| l.contains("outcome=\"no_phone_number\"") && l.ends_with(" 1")), "{m}");
}

/// The local inbox simulates a sender whose number is not shared; the dashboard's session page
/// says so.
#[tokio::test]
async fn the_local_inbox_simulates_a_sender_whose_number_is_not_shared() {
    const ADMIN: &str = "dashboard-admin-token-0123456789";
    let app = spawn_app_with(|c| c.admin_token = Some(waotp_server::config::Secret::new(ADMIN))).await;
    let started = start(&app, MSISDN, None, json!({})).await;
    let text = started.body["text"].as_str().unwrap();
    let answer = app.post("/v1/inbox/inbound", json!({ "from_user_id": "ZZ.1", "text": text })).await;
    assert_eq!((answer.status, answer.body["outcome"].as_str()), (200, Some("refused")), "{}", answer.body);
    assert_eq!(session(&app, started.session_id()).await["number_not_shared"], 1);
    let spaced = app.post("/v1/inbox/inbound", json!({ "from_user_id": "ZZ. 1", "text": text })).await;
    assert_eq!((spaced.status, spaced.body["error_code"].as_str()), (400, Some("validation_error")), "{}", spaced.body);
    let neither = app.post("/v1/inbox/inbound", json!({ "text": text })).await;
    assert_eq!(
        (neither.status, neither.body["error_code"].as_str()),
        (400, Some("validation_error")),
        "{}",
        neither.body
    );
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let login = http.post(format!("{}/dashboard/login", app.base)).form(&[("token", ADMIN)]).send().await.unwrap();
    let cookie = login.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let url = format!("{}/dashboard/sessions/{}", app.base, started.session_id());
    let page = http.get(url).header("cookie", &cookie).send().await.unwrap().text().await.unwrap();
    let shown = page.split("id=\"number-not-shared\"").nth(1).unwrap_or_else(|| panic!("{page}"));
    assert!(
        shown.starts_with(">sender&#39;s number not shared: 1 message(s)")
            || shown.starts_with(">sender's number not shared: 1 message(s)"),
        "{shown}"
    );
}
