use std::time::Duration;

use serde_json::json;

use waotp_test_support::app::*;
use waotp_test_support::receiver::Receiver;

/// Every send scenario: msisdn, status, message (also decoded as a client in `client_types`).
pub(crate) const SEND_TABLE: &[(&str, u16, &str)] = &[
    ("6282123060001", 201, "OTP sent successfully"),
    ("6282123060002", 400, "Validation error"),
    ("6282123060003", 401, "Authorization failed"),
    ("6282123060004", 403, "Quota insufficient"),
    ("6282123060005", 409, "Msisdn invalid: msisdn has been blocked"),
    ("6282123060006", 429, "Too many request in the allowed time frame"),
    ("628001", 201, "OTP sent successfully"),
    ("6281234567890", 400, "Invalid Scenario"),
    ("6282123060007", 400, "Invalid Scenario"),
    ("12345", 400, "Invalid Scenario"),
];

/// Every verify scenario: msisdn, status, message.
pub(crate) const VERIFY_TABLE: &[(&str, u16, &str)] = &[
    ("6282123060007", 200, "OTP has been verified"),
    ("6282123060008", 404, "OTP not found"),
    ("6282123060009", 422, "OTP cannot be verified because Time limit exceeded"),
    ("6282123060001", 400, "Invalid Scenario"),
    ("6281234567890", 400, "Invalid Scenario"),
];

#[tokio::test]
async fn every_send_scenario_on_v1_and_v2_with_and_without_credentials() {
    let app = spawn_app().await;
    let id = app.app_id.to_string();
    for version in ["v1", "v2"] {
        let path = format!("/{version}/whatsapp/otp/send/sandbox");
        for (msisdn, status, message) in SEND_TABLE {
            let body = json!({ "msisdn": msisdn, "challenge": "login" }).to_string();
            let a = app.post_raw(&path, Some((&id, &app.api_key)), body.clone()).await;
            assert_eq!((a.status, a.message()), (*status, *message), "{path} {msisdn}");
            if *status == 429 {
                assert!(a.headers.contains_key("retry-after"));
            }
            if *status == 201 {
                assert_eq!(a.body["msisdn"], *msisdn);
                assert_eq!(a.body["try_count"], 1);
                assert_eq!(a.session_id().get_version_num(), 7);
                assert_eq!(a.otp().len(), 6);
            }
            // Without valid credentials: always 401.
            for creds in [None, Some((id.as_str(), "wak_wrong"))] {
                let a = app.post_raw(&path, creds, body.clone()).await;
                assert_eq!((a.status, a.message()), (401, "Authorization failed"), "{path} {msisdn}");
            }
        }
    }
}

#[tokio::test]
async fn every_verify_scenario_on_v1_and_v2_with_and_without_credentials() {
    let app = spawn_app().await;
    let id = app.app_id.to_string();
    for version in ["v1", "v2"] {
        let path = format!("/{version}/whatsapp/otp/verify/sandbox");
        for (msisdn, status, message) in VERIFY_TABLE {
            let body = json!({ "msisdn": msisdn, "otp": "123456" }).to_string();
            let a = app.post_raw(&path, Some((&id, &app.api_key)), body.clone()).await;
            assert_eq!((a.status, a.message()), (*status, *message), "{path} {msisdn}");
            let a = app.post_raw(&path, None, body).await;
            assert_eq!(a.status, 401, "{path} {msisdn}");
        }
    }
}

#[tokio::test]
async fn sandbox_success_honours_otp_and_otp_length_and_validates() {
    let app = spawn_app().await;
    let path = "/v2/whatsapp/otp/send/sandbox";
    let a = app.post(path, json!({ "msisdn": "6282123060001", "otp": "Ab12" })).await;
    assert_eq!((a.status, a.otp()), (201, "Ab12".to_owned()));
    let a = app.post(path, json!({ "msisdn": "+628001", "otp_length": "9" })).await;
    assert_eq!((a.status, a.otp().len()), (201, 9));
    assert_eq!(a.body["msisdn"], "628001");
    for bad in [
        json!({ "msisdn": "6282123060001", "otp": "1", "otp_length": 4 }),
        json!({ "msisdn": "6282123060001", "otp_length": 2 }),
        json!({ "msisdn": 6282123060001u64 }),
        json!({}),
    ] {
        let a = app.post(path, bad.clone()).await;
        assert_eq!((a.status, a.message()), (400, "Validation error"), "{bad}");
    }
    let id = app.app_id.to_string();
    let a = app.post_raw(path, Some((&id, &app.api_key)), "{nope").await;
    assert_eq!((a.status, a.message()), (400, "Validation error"));
}

#[tokio::test]
async fn the_sandbox_never_delivers_and_stays_apart_from_production() {
    let app = spawn_app().await;
    let a = app.post("/v2/whatsapp/otp/send/sandbox", json!({ "msisdn": "6282123060014", "otp": "4321" })).await;
    assert_eq!(a.status, 201);
    // Final from the 201 on: a sandbox session is stored without a sealed code, so nothing is
    // left for a channel, and a channel delivers only sessions that still hold theirs.
    assert!(app.state.store.get_session(app.app_id, a.session_id()).await.unwrap().unwrap().delivered_to_channel);
    assert!(app.state.store.undelivered(0, 10).await.unwrap().is_empty());
    let inbox = app.inbox("6282123060014").await;
    assert_eq!(inbox.body["messages"].as_array().unwrap().len(), 0);
    // A production verify does not see the sandbox code, and a production send to the same
    // number does not supersede it.
    assert_eq!(app.verify(json!({ "msisdn": "6282123060014", "otp": "4321" })).await.status, 404);
    let p = app.send(json!({ "msisdn": "6282123060014", "otp": "9999" })).await;
    assert_eq!((p.status, p.body["try_count"].as_i64()), (201, Some(1)));
    let v = app.post("/v2/whatsapp/otp/verify/sandbox", json!({ "msisdn": "6282123060014", "otp": "4321" })).await;
    assert_eq!(v.status, 200);
}

async fn callbacks_of(app: &TestApp, rx: &Receiver, msisdn: &str, n: usize) -> (String, Vec<i64>, String) {
    let a = app
        .post(
            "/v2/whatsapp/otp/send/sandbox",
            json!({ "msisdn": msisdn, "time_limit": 60, "callback_url": format!("{}/cb?from=sandbox", rx.base) }),
        )
        .await;
    assert_eq!(a.status, 201, "{msisdn}");
    let sid = a.session_id().to_string();
    let got = rx.wait_statuses(&sid, n).await;
    (sid, got, a.otp())
}

#[tokio::test]
async fn seed_success_numbers_report_0_1_2_3_signed_like_production() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    let secret = app.callback_secret.clone();
    for msisdn in ["6282123060001", "628001"] {
        let (sid, got, _) = callbacks_of(&app, &rx, msisdn, 4).await;
        assert_eq!(got, vec![0, 1, 2, 3], "{msisdn}");
        for r in rx.received(&sid) {
            assert_eq!(r.query()["from"], "sandbox");
            let expected = waotp_core::callback::sign(
                &secret,
                &r.headers["webhook-id"],
                r.headers["webhook-timestamp"].parse().unwrap(),
                r.target.as_bytes(),
            )
            .unwrap();
            assert_eq!(r.headers["webhook-signature"], expected);
        }
    }
}

#[tokio::test]
async fn outcome_numbers_report_what_whatsapp_would() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    for (msisdn, expected) in [
        ("6282123060010", vec![0, 6]),
        ("6282123060011", vec![0, 7]),
        ("6282123060012", vec![0, 10]),
        ("6282123060015", vec![0, 8]),
        ("6282123060016", vec![0, 9]),
    ] {
        let (sid, got, _) = callbacks_of(&app, &rx, msisdn, expected.len()).await;
        assert_eq!(got, expected, "{msisdn}");
        // The scripted statuses are queued with the send, in its transaction; once the store
        // shows them all delivered, nothing more is due before the expiry.
        eventually("the scripted callbacks all delivered", Duration::from_secs(10), || async {
            let list = app.state.store.list_callbacks(app.app_id, sid.parse().unwrap()).await.unwrap().unwrap();
            let statuses: Vec<i64> = list.iter().map(|c| i64::from(c.status.code())).collect();
            if statuses == expected && list.iter().all(|c| c.state == waotp_store::CallbackState::Delivered) {
                Ok(())
            } else {
                Err(list)
            }
        })
        .await;
        assert_eq!(rx.received(&sid).len(), expected.len(), "{msisdn}: nothing more before expiry");
    }
}

#[tokio::test]
async fn delivered_but_never_read_reports_5_when_the_time_limit_passes() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    let (sid, got, _) = callbacks_of(&app, &rx, "6282123060013", 3).await;
    assert_eq!(got, vec![0, 1, 2]);
    app.callbacks_settled(sid.parse().unwrap()).await;
    app.clock.advance(Duration::from_secs(61));
    assert_eq!(rx.wait_statuses(&sid, 4).await, vec![0, 1, 2, 5]);
}

#[tokio::test]
async fn read_then_verified_reports_4_on_a_sandbox_verify_of_its_own_code() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    let (sid, got, otp) = callbacks_of(&app, &rx, "6282123060014", 4).await;
    assert_eq!(got, vec![0, 1, 2, 3]);
    let wrong = app.post("/v1/whatsapp/otp/verify/sandbox", json!({ "msisdn": "6282123060014", "otp": "000" })).await;
    assert_eq!(wrong.status, 404);
    let ok = app.post("/v1/whatsapp/otp/verify/sandbox", json!({ "msisdn": "6282123060014", "otp": otp })).await;
    assert_eq!((ok.status, ok.message()), (200, "OTP has been verified"));
    assert_eq!(rx.wait_statuses(&sid, 5).await, vec![0, 1, 2, 3, 4]);
    // Used up, like a production code.
    let again = app.post("/v1/whatsapp/otp/verify/sandbox", json!({ "msisdn": "6282123060014", "otp": otp })).await;
    assert_eq!(again.status, 404);
}
