use serde_json::json;
use waotp_core::Status;

use crate::helpers::*;

#[tokio::test]
async fn the_inbox_shows_the_rendered_message_newest_first() {
    let app = spawn_app().await;
    let first = app
        .send(json!({ "msisdn": MSISDN, "challenge": "a" }))
        .await;
    let second = app
        .send(json!({ "msisdn": MSISDN, "challenge": "b", "otp": "Zz9876" }))
        .await;
    app.send(json!({ "msisdn": "6281234567891" })).await;
    let messages = app.wait_inbox(MSISDN, 2).await;
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["session_id"], second.body["session_id"]);
    assert_eq!(messages[0]["text"], "Zz9876 is your verification code.");
    assert_eq!(
        messages[1]["text"],
        format!("{} is your verification code.", first.otp())
    );
    assert_eq!(messages[0]["msisdn"], MSISDN);
    assert!(messages[0]["created_at"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn inbox_delivery_and_reading_move_the_status() {
    let app = spawn_app().await;
    let sent = app.send(send_body(MSISDN)).await;
    app.wait_inbox(MSISDN, 1).await;
    let s = app
        .state
        .store
        .get_session(app.app_id, sent.session_id())
        .await
        .unwrap()
        .unwrap();
    assert!(s.delivered_to_channel);
    // The wait read the inbox: the message counts as read.
    assert_eq!(s.status, Status::Read);
    app.verify(json!({ "msisdn": MSISDN, "otp": sent.otp() }))
        .await;
    let s = app
        .state
        .store
        .get_session(app.app_id, sent.session_id())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.status, Status::Verified);
}

#[tokio::test]
async fn the_inbox_needs_credentials_and_a_valid_msisdn() {
    let app = spawn_app().await;
    let a = app
        .inbox_as(MSISDN, &app.app_id.to_string(), "wak_wrong")
        .await;
    assert_eq!(a.status, 401);
    let a = app.inbox("not-a-number").await;
    assert_eq!((a.status, a.message()), (400, "Validation error"));
    let a = app.inbox("").await;
    assert_eq!(a.status, 400);
}
