use serde_json::json;
use waotp_core::Status;

use waotp_test_support::app::*;

/// A server's configuration with a fixed secret, its store opened but not served yet, and an
/// app in it: for sessions stored before the server starts.
async fn before_a_start(
    dir: &tempfile::TempDir,
    secret: &str,
) -> (waotp_server::config::Config, waotp_core::CodeKey, std::sync::Arc<dyn waotp_store::Store>, waotp_store::AppRecord)
{
    let mut config = waotp_test_support::app::test_config(dir).await;
    config.server_secret = Some(waotp_server::config::Secret::new(secret));
    let key = config.code_key().unwrap();
    let store = config.open_store().await.unwrap();
    let app = waotp_server::apps::create_app(store.as_ref(), &key, "t", Default::default(), None, 0).await.unwrap().app;
    (config, key, store, app)
}

#[tokio::test]
async fn the_inbox_shows_the_rendered_message_newest_first() {
    let app = spawn_app().await;
    // Messages land in the order they are delivered, as on a phone; deliveries run
    // concurrently, so the second send waits for the first to land.
    let first = app.send(json!({ "msisdn": MSISDN, "challenge": "a" })).await;
    app.wait_inbox(MSISDN, 1).await;
    let second = app.send(json!({ "msisdn": MSISDN, "challenge": "b", "otp": "Zz9876" })).await;
    app.send(json!({ "msisdn": "6281234567891" })).await;
    let messages = app.wait_inbox(MSISDN, 2).await;
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["session_id"], second.body["session_id"]);
    assert_eq!(messages[0]["text"], "Zz9876 is your verification code.");
    assert_eq!(messages[1]["text"], format!("{} is your verification code.", first.otp()));
    assert_eq!(messages[0]["msisdn"], MSISDN);
    assert!(messages[0]["created_at"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn inbox_delivery_and_reading_move_the_status() {
    let app = spawn_app().await;
    let sent = app.send(send_body(MSISDN)).await;
    app.wait_inbox(MSISDN, 1).await;
    let s = app.state.store.get_session(app.app_id, sent.session_id()).await.unwrap().unwrap();
    assert!(s.delivered_to_channel);
    // The wait read the inbox: the message counts as read.
    assert_eq!(s.status, Status::Read);
    app.verify(json!({ "msisdn": MSISDN, "otp": sent.otp() })).await;
    let s = app.state.store.get_session(app.app_id, sent.session_id()).await.unwrap().unwrap();
    assert_eq!(s.status, Status::Verified);
}

#[tokio::test]
async fn the_inbox_needs_credentials_and_a_valid_msisdn() {
    let app = spawn_app().await;
    let a = app.inbox_as(MSISDN, &app.app_id.to_string(), "wak_wrong").await;
    assert_eq!(a.status, 401);
    let a = app.inbox("not-a-number").await;
    assert_eq!((a.status, a.message()), (400, "Validation error"));
    let a = app.inbox("").await;
    assert_eq!(a.status, 400);
}

/// An unencoded `+` in a query string reads as a space: said so, not taken silently. `limit`
/// is digits only.
#[tokio::test]
async fn the_inbox_query_is_read_as_written() {
    let app = spawn_app().await;
    let creds = (app.app_id.to_string(), app.api_key.clone());
    let get = |query: String| {
        let creds = creds.clone();
        let app = &app;
        async move { app.get_as(&format!("/v1/inbox?{query}"), Some((&creds.0, &creds.1))).await }
    };
    let a = get(format!("msisdn=+{MSISDN}")).await;
    assert_eq!(a.status, 400);
    assert!(a.body["reason"].as_str().unwrap().contains("%2B"), "{:?}", a.body);
    assert_eq!(get(format!("msisdn=%2B{MSISDN}")).await.status, 200);
    for (limit, status) in [("", 200), ("05", 200), ("500", 200), ("+5", 400), ("0", 400), ("501", 400), (" 5", 400)] {
        let query =
            url::form_urlencoded::Serializer::new(format!("msisdn={MSISDN}&")).append_pair("limit", limit).finish();
        assert_eq!(get(query).await.status, status, "limit={limit:?}");
    }
}

/// A session stored but never handed to the channel (the process died in between) is
/// delivered when the server starts again.
#[tokio::test]
async fn undelivered_sessions_are_delivered_at_the_next_start() {
    use waotp_core::Msisdn;
    use waotp_server::Clock;

    let dir = tempfile::tempdir().unwrap();
    let (config, key, store, app) = before_a_start(&dir, "recovery-test-secret-0123456789").await;
    let msisdn = Msisdn::parse(MSISDN).unwrap();
    let session = stored_session(&key, app.app_id, MSISDN, "777888", None, Clock::system().now_ms());
    let session_id = session.session_id;
    store.create_session(session, Default::default()).await.unwrap();

    assert!(store.inbox(app.app_id, &msisdn, 10).await.unwrap().is_empty());
    drop(store);

    let state = waotp_server::build(&config, Clock::system()).await.unwrap();
    let inbox = eventually("the stored session delivered", std::time::Duration::from_secs(10), || async {
        let inbox = state.store.inbox(app.app_id, &msisdn, 10).await.unwrap();
        if inbox.is_empty() {
            Err("an empty inbox")
        } else {
            Ok(inbox)
        }
    })
    .await;
    assert_eq!(inbox[0].text, "777888 is your verification code.");
    assert_eq!(inbox[0].session_id, session_id);
    let s = state.store.get_session(app.app_id, session_id).await.unwrap().unwrap();
    assert!(s.delivered_to_channel);
    assert_eq!(s.status, Status::Delivered);
}

/// A session whose template no longer resolves when it is delivered after a restart (its
/// language was removed meanwhile) is refused as the send route refuses it, reported as 7
/// Request Error: never sent as another template.
#[tokio::test]
async fn a_template_gone_from_its_language_before_a_restart_is_not_sent_as_another() {
    use waotp_core::{Category, Msisdn, Template};
    use waotp_server::Clock;

    let dir = tempfile::tempdir().unwrap();
    let (config, key, store, app) = before_a_start(&dir, "recovery-test-secret-0123456789").await;
    let mut session = stored_session(&key, app.app_id, MSISDN, "777888", None, Clock::system().now_ms());
    (session.template_name, session.lang_code) = ("otp_reg".into(), "en".into());
    let session_id = session.session_id;
    store.create_session(session, Default::default()).await.unwrap();
    // Only the `id` translation is registered now.
    let template = Template {
        name: "otp_reg".into(),
        language: "id".into(),
        category: Category::Utility,
        body: "Kode {{1}}".into(),
        code_placeholder: 1,
        copy_code_button: false,
    };
    assert!(store.put_template(app.app_id, template).await.unwrap());
    drop(store);

    let state = waotp_server::build(&config, Clock::system()).await.unwrap();
    let s = waotp_test_support::app::eventually(
        "the session's outcome recorded",
        std::time::Duration::from_secs(10),
        || async {
            let s = state.store.get_session(app.app_id, session_id).await.unwrap().unwrap();
            if s.delivered_to_channel {
                Ok(s)
            } else {
                Err(s.status)
            }
        },
    )
    .await;
    assert_eq!(s.status, Status::RequestError);
    assert_eq!(s.error_text.as_deref(), Some("template otp_reg is not registered in language en"));
    assert!(state.store.inbox(app.app_id, &Msisdn::parse(MSISDN).unwrap(), 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn sessions_and_messages_past_the_retention_age_are_pruned() {
    let app = spawn_app_with(|c| c.retention = std::time::Duration::from_secs(30 * 24 * 3600)).await;
    let rx = waotp_test_support::receiver::Receiver::start().await;
    let old = app.send(json!({ "msisdn": MSISDN, "callback_url": format!("{}/cb", rx.base) })).await;
    app.wait_inbox(MSISDN, 1).await;
    rx.wait_statuses(&old.session_id().to_string(), 4).await;
    app.clock.advance(std::time::Duration::from_secs(31 * 24 * 3600));
    let recent = app.send(json!({ "msisdn": "6281234567891" })).await;
    eventually("the old session pruned", std::time::Duration::from_secs(10), || async {
        match app.state.store.get_session(app.app_id, old.session_id()).await.unwrap() {
            Some(s) => Err(s),
            None => Ok(()),
        }
    })
    .await;
    assert!(app.state.store.list_callbacks(app.app_id, old.session_id()).await.unwrap().is_none());
    assert!(app.state.store.get_session(app.app_id, recent.session_id()).await.unwrap().is_some());
    let msisdn = waotp_core::Msisdn::parse(MSISDN).unwrap();
    assert!(app.state.store.inbox(app.app_id, &msisdn, 10).await.unwrap().is_empty());
    assert_eq!(app.wait_inbox("6281234567891", 1).await.len(), 1);
}

/// A code superseded (or used) before its turn came is not sent: only the newest reaches the
/// phone.
#[tokio::test]
async fn a_code_superseded_before_delivery_is_not_sent() {
    use waotp_core::Msisdn;
    use waotp_server::Clock;

    let dir = tempfile::tempdir().unwrap();
    let (config, key, store, app) = before_a_start(&dir, "superseded-test-secret-0123456789").await;
    let msisdn = Msisdn::parse(MSISDN).unwrap();
    let now = Clock::system().now_ms();
    let mut ids = Vec::new();
    for (i, c) in ["111111", "222222"].into_iter().enumerate() {
        let session = stored_session(&key, app.app_id, MSISDN, c, None, now + i as i64);
        ids.push(session.session_id);
        store.create_session(session, Default::default()).await.unwrap();
    }
    drop(store);
    let state = waotp_server::build(&config, Clock::system()).await.unwrap();
    let (first, second) =
        eventually("both stored sessions handed to the channel", std::time::Duration::from_secs(10), || async {
            let first = state.store.get_session(app.app_id, ids[0]).await.unwrap().unwrap();
            let second = state.store.get_session(app.app_id, ids[1]).await.unwrap().unwrap();
            if first.delivered_to_channel && second.delivered_to_channel {
                Ok((first, second))
            } else {
                Err((first, second))
            }
        })
        .await;
    assert_eq!(first.status, Status::Requested, "the superseded code was not sent");
    assert!(first.error_text.unwrap().contains("superseded"));
    assert_eq!(second.status, Status::Delivered);
    let inbox = state.store.inbox(app.app_id, &msisdn, 10).await.unwrap();
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].text, "222222 is your verification code.");
}

/// With room for one message in memory, forty concurrent sends all reach the inbox, each once:
/// the ones that did not fit wait in the database and are brought back.
#[tokio::test]
async fn a_full_delivery_queue_loses_nothing_and_sends_nothing_twice() {
    let app = std::sync::Arc::new(spawn_app_with(|c| c.delivery_queue = 1).await);
    let mut tasks = Vec::new();
    for i in 0..40u32 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let msisdn = format!("62813{:08}", 60_000_000 + i * 37);
            let sent = app.send(json!({ "msisdn": msisdn })).await;
            assert_eq!(sent.status, 201);
            (msisdn, sent.session_id())
        }));
    }
    let mut numbers = Vec::new();
    let mut sessions = Vec::new();
    for t in tasks {
        let (msisdn, session_id) = t.await.unwrap();
        numbers.push(msisdn);
        sessions.push(session_id);
    }
    for m in &numbers {
        assert_eq!(app.wait_inbox(m, 1).await.len(), 1);
    }
    // Every session is handed to its channel: a later delivery of one (brought back from the
    // database while a first was running) records nothing, as its sealed code went in the
    // transaction that stored its message. So the inboxes are final now.
    for &id in &sessions {
        eventually("the session handed to the channel", std::time::Duration::from_secs(10), || async {
            let s = app.state.store.get_session(app.app_id, id).await.unwrap().unwrap();
            if s.delivered_to_channel {
                Ok(())
            } else {
                Err(s)
            }
        })
        .await;
    }
    for m in &numbers {
        assert_eq!(app.inbox(m).await.body["messages"].as_array().unwrap().len(), 1, "{m} got two messages");
    }
}
