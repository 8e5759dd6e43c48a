use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use waotp_core::RuleMode;
use waotp_store::{AppSettings, BlockEntry};

use waotp_test_support::app::*;

async fn set(app: &TestApp, change: impl FnOnce(&mut AppSettings)) {
    let mut settings = app.state.store.get_app(app.app_id).await.unwrap().unwrap().settings;
    change(&mut settings);
    waotp_server::apps::validate_settings(&settings).unwrap();
    assert!(app.state.store.update_app_settings(app.app_id, settings).await.unwrap());
    app.state.invalidate_app(app.app_id);
}

async fn quota(app: &TestApp) -> Value {
    let answer = app.get_as("/v1/quota", None).await;
    assert_eq!(answer.status, 200);
    answer.body["quota"].clone()
}

fn nth(i: u32) -> String {
    // Spread over many ranges so no pumping rule or per-number limit is involved.
    format!("6281{}{:07}", 2 + i % 7, i * 37)
}

/// For a thousand requests at once from this one address (a connection each): more than
/// `http_max_connections_per_address`, which is not what these tests are about.
fn no_cap_per_address(c: &mut waotp_server::Config) {
    c.http.max_connections_per_address = 0;
}

#[tokio::test]
async fn a_quota_of_100_under_1000_concurrent_sends_accepts_exactly_100() {
    let app = Arc::new(spawn_app_with(no_cap_per_address).await);
    assert_eq!(quota(&app).await, Value::Null);
    assert!(app.state.store.set_quota(app.app_id, Some(100)).await.unwrap());
    assert_eq!(quota(&app).await, json!(100));
    let mut tasks = Vec::new();
    for i in 0..1000u32 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move { app.send(json!({ "msisdn": nth(i) })).await }));
    }
    let (mut created, mut refused) = (0, 0);
    for t in tasks {
        let a = t.await.unwrap();
        match a.status {
            201 => created += 1,
            403 => {
                assert_eq!(a.message(), "Quota insufficient");
                assert_eq!(a.body["error_code"], "quota_exhausted");
                refused += 1;
            }
            other => panic!("unexpected {other}: {:?}", a.body),
        }
    }
    assert_eq!((created, refused), (100, 900));
    assert_eq!(quota(&app).await, json!(0));
    assert_eq!(app.state.refusals.snapshot().get("quota_exhausted"), Some(&900));
    // Topped up: sends go through again.
    assert_eq!(app.state.store.add_quota(app.app_id, 2).await.unwrap(), Some(2));
    assert_eq!(app.send(json!({ "msisdn": nth(5000) })).await.status, 201);
    assert_eq!(quota(&app).await, json!(1));
}

#[tokio::test]
async fn blocked_numbers_prefixes_and_countries_are_409_with_their_code() {
    let app = spawn_app().await;
    let (other, other_key) = app.other_app().await;
    let store = &app.state.store;
    let block =
        |app_id, entry: &str, is_prefix| BlockEntry { app_id, entry: entry.into(), is_prefix, created_at_ms: 0 };
    store.block(block(None, "6281234567890", false)).await.unwrap();
    store.block(block(Some(app.app_id), "62813", true)).await.unwrap();
    let refused = |a: &Answer, code: &str| {
        assert_eq!(a.status, 409, "{:?}", a.body);
        assert_eq!(a.message(), "Msisdn invalid: msisdn has been blocked");
        assert_eq!(a.body["error_code"], code);
    };
    refused(&app.send(json!({ "msisdn": "6281234567890" })).await, "blocked_number");
    refused(&app.send(json!({ "msisdn": "+6281398765432" })).await, "blocked_prefix");
    assert_eq!(app.send(json!({ "msisdn": "6281234567891" })).await.status, 201);
    // The global entry holds for the other app too; the per-app prefix does not.
    let other_id = other.to_string();
    let as_other = |m: &str| {
        app.post_raw("/v2/whatsapp/otp/send", Some((&other_id, &other_key)), json!({ "msisdn": m }).to_string())
    };
    assert_eq!(as_other("6281234567890").await.status, 409);
    assert_eq!(as_other("6281398765432").await.status, 201);
    // Allowed countries.
    set(&app, |s| s.allowed_countries = vec!["62".into(), "65".into()]).await;
    refused(&app.send(json!({ "msisdn": "4915123456789" })).await, "country_not_allowed");
    assert_eq!(app.send(json!({ "msisdn": "6591234567" })).await.status, 201);
    // Unblocked: fine again.
    assert!(store.unblock(None, "6281234567890", false).await.unwrap());
    assert_eq!(app.send(json!({ "msisdn": "6281234567890" })).await.status, 201);
    // Counted by reason (the server's counts, both apps together).
    let counts = app.state.refusals.snapshot();
    assert_eq!((counts["blocked_number"], counts["blocked_prefix"], counts["country_not_allowed"]), (2, 1, 1));
}

fn assert_limited(a: &Answer, code: &str) -> u64 {
    assert_eq!(a.status, 429, "{:?}", a.body);
    assert_eq!(a.message(), "Too many request in the allowed time frame");
    assert_eq!(a.body["error_code"], code);
    let retry: u64 = a.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry >= 1);
    retry
}

#[tokio::test]
async fn the_per_msisdn_send_limit_refuses_then_lifts() {
    let app = spawn_app().await;
    for _ in 0..5 {
        assert_eq!(app.send(send_body(MSISDN)).await.status, 201);
    }
    let retry = assert_limited(&app.send(send_body(MSISDN)).await, "rate_limited_msisdn");
    // Sliding window: the 5 sends weigh in until 1/5 into the next 600 s window.
    assert!(retry <= 720, "{retry}");
    // Another number is not affected.
    assert_eq!(app.send(send_body("6281234567891")).await.status, 201);
    app.clock.advance(Duration::from_secs(retry));
    assert_eq!(app.send(send_body(MSISDN)).await.status, 201);
    // Configurable per app.
    set(&app, |s| {
        s.msisdn_send_limit = 1;
        s.msisdn_send_window = 30;
    })
    .await;
    assert_eq!(app.send(send_body("6281234567892")).await.status, 201);
    let retry = assert_limited(&app.send(send_body("6281234567892")).await, "rate_limited_msisdn");
    assert!(retry <= 60);
    app.clock.advance(Duration::from_secs(61));
    assert_eq!(app.send(send_body("6281234567892")).await.status, 201);
}

#[tokio::test]
async fn the_per_app_and_per_ip_limits_refuse_then_lift() {
    let app = spawn_app().await;
    set(&app, |s| s.rps_limit = Some(3)).await;
    let mut statuses = Vec::new();
    for i in 0..4 {
        statuses.push(app.send(send_body(&nth(i))).await);
    }
    assert!(statuses[..3].iter().all(|a| a.status == 201));
    assert_limited(&statuses[3], "rate_limited_app");
    app.clock.advance(Duration::from_secs(2));
    assert_eq!(app.send(send_body(&nth(10))).await.status, 201);

    set(&app, |s| {
        s.rps_limit = None;
        s.ip_send_limit = Some(2);
    })
    .await;
    app.clock.advance(Duration::from_secs(120));
    assert_eq!(app.send(send_body(&nth(20))).await.status, 201);
    assert_eq!(app.send(send_body(&nth(21))).await.status, 201);
    assert_limited(&app.send(send_body(&nth(22))).await, "rate_limited_ip");
    app.clock.advance(Duration::from_secs(121));
    assert_eq!(app.send(send_body(&nth(23))).await.status, 201);
}

#[tokio::test]
async fn verifies_per_msisdn_are_limited_above_the_wrong_try_cap() {
    let app = spawn_app().await;
    // Three sends, each with up to 5 tries: without the limit that is 15 guesses.
    for _ in 0..3 {
        app.send(json!({ "msisdn": MSISDN, "otp": "424242" })).await;
        for _ in 0..4 {
            let a = app.verify(json!({ "msisdn": MSISDN, "otp": "000000" })).await;
            if a.status == 429 {
                assert_eq!(a.body["error_code"], "rate_limited_msisdn");
            }
        }
    }
    let a = app.verify(json!({ "msisdn": MSISDN, "otp": "424242" })).await;
    assert_limited(&a, "rate_limited_msisdn");
    app.clock.advance(Duration::from_secs(1200));
    app.send(json!({ "msisdn": MSISDN, "otp": "525252" })).await;
    assert_eq!(app.verify(json!({ "msisdn": MSISDN, "otp": "525252" })).await.status, 200);
}

#[tokio::test]
async fn a_thousand_concurrent_wrong_verifies_count_at_most_five() {
    let app = Arc::new(spawn_app_with(no_cap_per_address).await);
    set(&app, |s| s.msisdn_verify_limit = 100_000).await;
    let sent = app.send(json!({ "msisdn": MSISDN, "otp": "424242" })).await;
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move { app.verify(json!({ "msisdn": MSISDN, "otp": "000000" })).await }));
    }
    let (mut wrong, mut locked) = (0, 0);
    for t in tasks {
        let a = t.await.unwrap();
        match (a.status, a.body["error_code"].as_str()) {
            (404, _) => wrong += 1,
            (429, Some("too_many_attempts")) => locked += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((wrong, locked), (5, 995));
    let s = app.state.store.get_session(app.app_id, sent.session_id()).await.unwrap().unwrap();
    assert_eq!(s.wrong_attempts, 5);
}

#[tokio::test]
async fn idempotent_sends_replay_and_mismatches_are_422() {
    let app = Arc::new(spawn_app().await);
    let post = |key: &'static str, body: String| {
        let app = app.clone();
        async move {
            let a = app.post_idempotent("/v2/whatsapp/otp/send", key, body).await;
            (a.status, a.body)
        }
    };
    let body = json!({ "msisdn": MSISDN, "challenge": "login" }).to_string();
    let first = post("order-1", body.clone()).await;
    assert_eq!(first.0, 201);
    // Concurrent and later repeats: the same answer, no second session or message.
    let mut tasks = Vec::new();
    for _ in 0..20 {
        tasks.push(tokio::spawn(post("order-1", body.clone())));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), first);
    }
    app.wait_inbox(MSISDN, 1).await;
    // The one session's message is final once the store shows it handed to its channel (a
    // second delivery of it records nothing), and the repeats made no session of their own.
    let sid: uuid::Uuid = first.1["session_id"].as_str().unwrap().parse().unwrap();
    assert!(app.state.store.get_session(app.app_id, sid).await.unwrap().unwrap().delivered_to_channel);
    assert_eq!(app.inbox(MSISDN).await.body["messages"].as_array().unwrap().len(), 1);
    // Same key, another body.
    let (status, answer) = post("order-1", json!({ "msisdn": MSISDN, "challenge": "other" }).to_string()).await;
    assert_eq!(status, 422);
    assert_eq!(answer["error_code"], "idempotency_mismatch");
    // Another key: a new session, superseding the first.
    let second = post("order-2", body.clone()).await;
    assert_eq!(second.1["try_count"], 2);
    assert_ne!(second.1["session_id"], first.1["session_id"]);
    // After 24 hours the key is forgotten.
    app.clock.advance(Duration::from_secs(24 * 3600 + 1));
    let later = post("order-1", body.clone()).await;
    assert_eq!(later.0, 201);
    assert_ne!(later.1["session_id"], first.1["session_id"]);
    // A malformed key is a 400.
    assert_eq!(app.post_idempotent("/v2/whatsapp/otp/send", "has space", body).await.status, 400);
}

#[tokio::test]
async fn sequential_number_bursts_are_monitored_or_refused() {
    let app = spawn_app().await;
    set(&app, |s| s.conversion_mode = RuleMode::Off).await;
    // Monitor (the default): all go through, the signal is counted.
    for i in 0..12 {
        assert_eq!(app.send(send_body(&format!("62812345678{i:02}"))).await.status, 201);
    }
    assert!(app.state.signals.snapshot()["sequential_numbers"] >= 1);
    // Enforce: the burst into the next block is cut at the threshold.
    set(&app, |s| s.sequential_mode = RuleMode::Enforce).await;
    let mut statuses = Vec::new();
    for i in 0..12 {
        statuses.push(app.send(send_body(&format!("62812345679{i:02}"))).await);
    }
    assert!(statuses[..10].iter().all(|a| a.status == 201));
    assert_limited(&statuses[10], "sequential_numbers");
    assert_eq!(app.state.refusals.snapshot()["sequential_numbers"], 2);
}

#[tokio::test]
async fn ranges_that_never_verify_are_monitored_or_refused() {
    let app = spawn_app().await;
    set(&app, |s| s.sequential_mode = RuleMode::Off).await;
    let number = |range: &str, i: u32| format!("{range}{:07}", i * 1000 + 7);
    // A range that converts is never flagged.
    for i in 0..25 {
        let a = app.send(send_body(&number("628131", i))).await;
        assert_eq!(a.status, 201);
        if i % 3 == 0 {
            let v = app.verify(json!({ "msisdn": number("628131", i), "otp": a.otp() })).await;
            assert_eq!(v.status, 200);
        }
    }
    assert!(!app.state.signals.snapshot().contains_key("low_conversion_prefix"));
    // One that never converts: monitored…
    for i in 0..22 {
        assert_eq!(app.send(send_body(&number("628132", i))).await.status, 201);
    }
    assert!(app.state.signals.snapshot()["low_conversion_prefix"] >= 1);
    // …or refused.
    set(&app, |s| s.conversion_mode = RuleMode::Enforce).await;
    assert_limited(&app.send(send_body(&number("628132", 50))).await, "low_conversion_prefix");
    assert_eq!(app.send(send_body(&number("628133", 0))).await.status, 201);
}

#[tokio::test]
async fn sandbox_traffic_leaves_every_counter_untouched() {
    let app = spawn_app().await;
    app.state.store.set_quota(app.app_id, Some(3)).await.unwrap();
    set(&app, |s| {
        s.msisdn_send_limit = 2;
        s.rps_limit = Some(2);
        s.sequential_mode = RuleMode::Enforce;
        s.conversion_mode = RuleMode::Enforce;
    })
    .await;
    for _ in 0..30 {
        let a = app.post("/v2/whatsapp/otp/send/sandbox", json!({ "msisdn": "6282123060014", "otp": "1111" })).await;
        assert_eq!(a.status, 201);
        let v = app.post("/v2/whatsapp/otp/verify/sandbox", json!({ "msisdn": "6282123060014", "otp": "9" })).await;
        assert_eq!(v.status, 404);
        for m in ["6282123060001", "628001", "6282123060013"] {
            assert_eq!(app.post("/v1/whatsapp/otp/send/sandbox", json!({ "msisdn": m })).await.status, 201);
        }
        // Canned refusals are not counted as refusals either.
        assert_eq!(app.post("/v2/whatsapp/otp/send/sandbox", json!({ "msisdn": "6282123060004" })).await.status, 403);
    }
    assert_eq!(quota(&app).await, json!(3));
    assert!(app.state.refusals.snapshot().is_empty());
    assert!(app.state.signals.snapshot().is_empty());
    // Every production limit still has its whole allowance: this second's 2 sends (rps 2), 2
    // sends to the number the sandbox used 30 times, no pumping rule tripped…
    assert_eq!(app.send(send_body("6282123060014")).await.status, 201);
    assert_eq!(app.send(send_body("6282123060014")).await.status, 201);
    app.clock.advance(Duration::from_secs(2));
    assert_limited(&app.send(send_body("6282123060014")).await, "rate_limited_msisdn");

    assert_eq!(quota(&app).await, json!(1));
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_ip_limit_uses_x_forwarded_for() {
    let app = spawn_app_with(|c| c.trust_forwarded_for = true).await;
    set(&app, |s| s.ip_send_limit = Some(1)).await;
    let send = |ip: &'static str, i: u32| {
        app.http
            .post(format!("{}/v2/whatsapp/otp/send", app.base))
            .header("App-ID", app.app_id.to_string())
            .header("API-Key", &app.api_key)
            .header("X-Forwarded-For", format!("198.51.100.77, {ip}"))
            .body(json!({ "msisdn": nth(i) }).to_string())
            .send()
    };
    assert_eq!(send("203.0.113.1", 1).await.unwrap().status().as_u16(), 201);
    assert_eq!(send("203.0.113.2", 2).await.unwrap().status().as_u16(), 201);
    let refused = send("203.0.113.1", 3).await.unwrap();
    assert_eq!(refused.status().as_u16(), 429);
    assert_eq!(refused.json::<Value>().await.unwrap()["error_code"], "rate_limited_ip");
    // A last entry that is no address stands for the peer: an earlier entry, which the client
    // may have written itself, never counts, so rotating it gets nothing past the limit.
    assert_eq!(send("unknown", 4).await.unwrap().status().as_u16(), 201);
    let forged = app
        .http
        .post(format!("{}/v2/whatsapp/otp/send", app.base))
        .header("App-ID", app.app_id.to_string())
        .header("API-Key", &app.api_key)
        .header("X-Forwarded-For", "203.0.113.9, unknown")
        .body(json!({ "msisdn": nth(5) }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 429, "counted as the peer, whose one send is spent");
}

/// A number blocked after its send was accepted (here: while the server was down, so the
/// stored session is delivered at the next start) is not sent to: status 9 instead.
#[tokio::test]
async fn a_number_blocked_after_the_201_reports_9_and_gets_nothing() {
    use waotp_core::{Msisdn, Status};
    use waotp_server::config::Secret;
    use waotp_server::Clock;

    let rx = waotp_test_support::receiver::Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = waotp_test_support::app::test_config(&dir).await;
    config.server_secret = Some(Secret::new("blocked-later-secret-0123456789"));
    config.callbacks.poll = Duration::from_millis(10);
    let key = config.code_key().unwrap();
    let store = config.open_store().await.unwrap();
    let app = waotp_server::apps::create_app(store.as_ref(), &key, "t", Default::default(), None, 0).await.unwrap().app;
    let msisdn = Msisdn::parse(MSISDN).unwrap();
    let now = Clock::system().now_ms();
    let session = stored_session(&key, app.app_id, MSISDN, "777888", Some(format!("{}/cb", rx.base)), now);
    let session_id = session.session_id;
    store.create_session(session, Default::default()).await.unwrap();
    store.block(BlockEntry { app_id: None, entry: "62812".into(), is_prefix: true, created_at_ms: now }).await.unwrap();
    drop(store);

    let state = waotp_server::build(&config, Clock::system()).await.unwrap();
    assert_eq!(rx.wait_statuses(&session_id.to_string(), 2).await, vec![0, 9]);
    let s = state.store.get_session(app.app_id, session_id).await.unwrap().unwrap();
    assert_eq!(s.status, Status::Blocked);
    assert!(s.error_text.unwrap().contains("blocked_prefix"));
    assert!(state.store.inbox(app.app_id, &msisdn, 10).await.unwrap().is_empty());
}
