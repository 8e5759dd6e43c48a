use std::time::Duration;

use serde_json::json;
use waotp_core::SessionState;

use waotp_test_support::app::*;

#[tokio::test]
async fn the_right_code_verifies_once_on_v1_and_v2() {
    let app = spawn_app().await;
    for path in ["/v1/whatsapp/otp/verify", "/v2/whatsapp/otp/verify"] {
        let otp = app.send(send_body(MSISDN)).await.otp();
        let a = app.post(path, json!({ "msisdn": MSISDN, "otp": otp })).await;
        assert_eq!(a.status, 200, "{path}");
        assert_eq!(a.message(), "OTP has been verified");
        // Single use.
        let again = app.post(path, json!({ "msisdn": MSISDN, "otp": otp })).await;
        assert_eq!(again.status, 404);
        assert_eq!(again.message(), "OTP not found");
    }
}

#[tokio::test]
async fn wrong_code_and_nothing_pending_are_404() {
    let app = spawn_app().await;
    let a = app.verify(json!({ "msisdn": MSISDN, "otp": "123456" })).await;
    assert_eq!((a.status, a.message()), (404, "OTP not found"));
    let otp = app.send(send_body(MSISDN)).await.otp();
    let wrong = if otp == "000000" { "111111" } else { "000000" };
    let a = app.verify(json!({ "msisdn": MSISDN, "otp": wrong })).await;
    assert_eq!((a.status, a.message()), (404, "OTP not found"));
    // A wrong try does not use the code up.
    assert_eq!(app.verify(json!({ "msisdn": MSISDN, "otp": otp })).await.status, 200);
}

#[tokio::test]
async fn verify_validates_its_body() {
    let app = spawn_app().await;
    for body in [
        json!({ "otp": "123456" }),
        json!({ "msisdn": MSISDN }),
        json!({ "msisdn": MSISDN, "otp": "" }),
        json!({ "msisdn": "12", "otp": "123456" }),
        json!({ "msisdn": MSISDN, "otp": ["1"] }),
        json!({ "msisdn": MSISDN, "otp": "1".repeat(65) }),
        json!({ "msisdn": MSISDN, "otp": "é".repeat(65) }),
        json!({ "msisdn": MSISDN, "otp": 1.5 }),
        json!({ "msisdn": MSISDN, "otp": "123456", "challenge": "x".repeat(65) }),
    ] {
        let a = app.verify(body.clone()).await;
        assert_eq!((a.status, a.message()), (400, "Validation error"), "{body}");
    }
}

/// A guess of up to 64 characters (not bytes), of any shape, is just a guess.
#[tokio::test]
async fn any_guess_up_to_64_characters_is_a_guess() {
    let app = spawn_app().await;
    app.send(json!({ "msisdn": MSISDN })).await;
    for otp in [json!("é".repeat(64)), json!("\u{1}"), json!(12.0), json!(0)] {
        let a = app.verify(json!({ "msisdn": MSISDN, "otp": otp })).await;
        assert_eq!((a.status, a.message()), (404, "OTP not found"), "{otp}");
    }
}

#[tokio::test]
async fn a_code_verifies_only_under_its_challenge() {
    let app = spawn_app().await;
    let login = app.send(json!({ "msisdn": MSISDN, "challenge": "login" })).await.otp();
    let register = app.send(json!({ "msisdn": MSISDN, "challenge": "register" })).await.otp();
    // Separate challenges do not supersede each other.
    let a = app.send(json!({ "msisdn": MSISDN, "challenge": "other" })).await;
    assert_eq!(a.body["try_count"], 1);
    for (otp, challenge) in [(&login, "register"), (&login, ""), (&register, "login")] {
        if login != register {
            let a = app.verify(json!({ "msisdn": MSISDN, "otp": otp, "challenge": challenge })).await;
            assert_eq!(a.status, 404, "{challenge}");
        }
    }
    let a = app.verify(json!({ "msisdn": MSISDN, "otp": login, "challenge": "login" })).await;
    assert_eq!(a.status, 200);
    let a = app.verify(json!({ "msisdn": MSISDN, "otp": register, "challenge": "register" })).await;
    assert_eq!(a.status, 200);
}

#[tokio::test]
async fn a_new_send_supersedes_the_pending_code_and_counts_tries() {
    let app = spawn_app().await;
    let first = app.send(json!({ "msisdn": MSISDN, "otp": "111111" })).await;
    assert_eq!(first.body["try_count"], 1);
    let second = app.send(json!({ "msisdn": MSISDN, "otp": "222222" })).await;
    assert_eq!(second.body["try_count"], 2);
    let third = app.send(json!({ "msisdn": MSISDN, "otp": "333333" })).await;
    assert_eq!(third.body["try_count"], 3);
    assert_eq!(app.verify(json!({ "msisdn": MSISDN, "otp": "111111" })).await.status, 404);
    assert_eq!(app.verify(json!({ "msisdn": MSISDN, "otp": "222222" })).await.status, 404);
    assert_eq!(app.verify(json!({ "msisdn": MSISDN, "otp": "333333" })).await.status, 200);
    let s = app.state.store.get_session(app.app_id, first.session_id()).await.unwrap().unwrap();
    assert_eq!(s.state, SessionState::Superseded);
    // Nothing pending any more: the next send starts again at 1.
    assert_eq!(app.send(send_body(MSISDN)).await.body["try_count"], 1);
}

#[tokio::test]
async fn an_expired_code_is_422() {
    let app = spawn_app().await;
    let otp = app.send(json!({ "msisdn": MSISDN, "time_limit": 60 })).await.otp();
    app.clock.advance(Duration::from_secs(61));
    let a = app.verify(json!({ "msisdn": MSISDN, "otp": otp })).await;
    assert_eq!(a.status, 422);
    assert_eq!(a.message(), "OTP cannot be verified because Time limit exceeded");
    // An expired code is not pending: a new send starts at try 1 again.
    assert_eq!(app.send(send_body(MSISDN)).await.body["try_count"], 1);
}

#[tokio::test]
async fn the_default_time_limit_is_the_apps() {
    let app = spawn_app().await;
    let otp = app.send(send_body(MSISDN)).await.otp();
    app.clock.advance(Duration::from_secs(299));
    let otp2 = app.send(json!({ "msisdn": "6281234567891" })).await.otp();
    assert_eq!(app.verify(json!({ "msisdn": MSISDN, "otp": otp })).await.status, 200);
    app.clock.advance(Duration::from_secs(2));
    assert_eq!(app.verify(json!({ "msisdn": "6281234567891", "otp": otp2 })).await.status, 200);
}

#[tokio::test]
async fn five_wrong_tries_lock_the_code() {
    let app = spawn_app().await;
    let sent = app.send(json!({ "msisdn": MSISDN, "otp": "424242" })).await;
    for _ in 0..5 {
        let a = app.verify(json!({ "msisdn": MSISDN, "otp": "000000" })).await;
        assert_eq!(a.status, 404);
    }
    // Locked: even the right code is refused now.
    let a = app.verify(json!({ "msisdn": MSISDN, "otp": "424242" })).await;
    assert_eq!(a.status, 429);
    assert_eq!(a.message(), "Too many request in the allowed time frame");
    assert!(a.headers.contains_key("retry-after"));
    let s = app.state.store.get_session(app.app_id, sent.session_id()).await.unwrap().unwrap();
    assert_eq!((s.state, s.wrong_attempts), (SessionState::Locked, 5));
    // A fresh send gives a fresh code with fresh tries.
    app.send(json!({ "msisdn": MSISDN, "otp": "515151" })).await;
    assert_eq!(app.verify(json!({ "msisdn": MSISDN, "otp": "515151" })).await.status, 200);
}

#[tokio::test]
async fn concurrent_wrong_tries_count_atomically() {
    let app = std::sync::Arc::new(spawn_app().await);
    let sent = app.send(json!({ "msisdn": MSISDN, "otp": "424242" })).await;
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move { app.verify(json!({ "msisdn": MSISDN, "otp": "000000" })).await.status }));
    }
    let mut not_found = 0;
    let mut locked = 0;
    for t in tasks {
        match t.await.unwrap() {
            404 => not_found += 1,
            429 => locked += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((not_found, locked), (5, 195));
    let s = app.state.store.get_session(app.app_id, sent.session_id()).await.unwrap().unwrap();
    assert_eq!(s.wrong_attempts, 5);
}

#[tokio::test]
async fn apps_are_isolated() {
    let app = spawn_app().await;
    let (other_id, other_key) = app.other_app().await;
    let other = other_id.to_string();
    let otp = app.send(send_body(MSISDN)).await.otp();
    // The other app cannot verify it…
    let body = json!({ "msisdn": MSISDN, "otp": otp }).to_string();
    let a = app.post_raw("/v2/whatsapp/otp/verify", Some((&other, &other_key)), body.clone()).await;
    assert_eq!(a.status, 404);
    // …nor see it in its inbox…
    app.wait_inbox(MSISDN, 1).await;
    let a = app.inbox_as(MSISDN, &other, &other_key).await;
    assert_eq!(a.body["messages"].as_array().unwrap().len(), 0);
    // …nor does its own send to the same number count as a retry.
    let a = app
        .post_raw("/v2/whatsapp/otp/send", Some((&other, &other_key)), json!({ "msisdn": MSISDN }).to_string())
        .await;
    assert_eq!(a.body["try_count"], 1);
    // …and its key does not open the first app.
    let mine = app.app_id.to_string();
    let a = app.post_raw("/v2/whatsapp/otp/verify", Some((&mine, &other_key)), body.clone()).await;
    assert_eq!(a.status, 401);
    // The owner still can.
    assert_eq!(app.verify(json!({ "msisdn": MSISDN, "otp": otp })).await.status, 200);
}
