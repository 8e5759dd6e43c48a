use std::time::{Duration, Instant};

use serde_json::json;
use waotp_core::Status;
use waotp_server::config::{Secret, WhatsAppConfig};
use waotp_store::{CallbackState, SessionRecord};
use waotp_whatsapp::double::{DoubleConfig, GraphDouble, ScriptedFailure, WebhookBehaviour};

use waotp_test_support::app::*;
use waotp_test_support::graph::{self, spawn_app_with_double, APP_SECRET, PNID, TOKEN};
use waotp_test_support::receiver::{Received, Receiver};

/// waotp wired to a Graph API double, and the double's webhooks wired back to waotp.
async fn with_double(adjust: impl FnOnce(&mut DoubleConfig)) -> (TestApp, GraphDouble) {
    with_double_and(|_| {}, adjust).await
}

async fn with_double_and(
    adjust_waotp: impl FnOnce(&mut WhatsAppConfig),
    adjust: impl FnOnce(&mut DoubleConfig),
) -> (TestApp, GraphDouble) {
    spawn_app_with_double(
        |c| {
            let w = graph::whatsapp(c);
            w.verify_token = Some(Secret::new("my-verify-token"));
            adjust_waotp(w);
        },
        |d| {
            d.webhook_gap = Duration::from_millis(5);
            adjust(d);
        },
    )
    .await
}

async fn wait_session(app: &TestApp, sent: &Answer, done: impl Fn(&SessionRecord) -> bool) -> SessionRecord {
    eventually("the session getting there", Duration::from_secs(20), || async {
        let s = app.state.store.get_session(app.app_id, sent.session_id()).await.unwrap().unwrap();
        if done(&s) {
            Ok(s)
        } else {
            Err(s)
        }
    })
    .await
}

#[tokio::test]
async fn a_send_goes_through_meta_and_reports_1_2_3() {
    let (app, double) = with_double(|_| {}).await;
    let rx = Receiver::start().await;
    let sent =
        app.send(json!({ "msisdn": MSISDN, "callback_url": format!("{}/cb", rx.base), "lang_code": "id" })).await;
    assert_eq!(sent.status, 201);
    assert_eq!(rx.wait_statuses(&sent.session_id().to_string(), 4).await, vec![0, 1, 2, 3]);
    // What Meta received: an authentication template with the code twice.
    let req = &double.received()[0];
    assert_eq!(req.answered, 200);
    let t = &req.body["template"];
    assert_eq!((req.body["to"].as_str(), t["name"].as_str()), (Some(MSISDN), Some("verification_code")));
    assert_eq!(t["language"]["code"], "id");
    assert_eq!(t["components"][0]["parameters"][0]["text"], sent.otp().as_str());
    assert_eq!(t["components"][1]["sub_type"], "url");
    assert_eq!(t["components"][1]["parameters"][0]["text"], sent.otp().as_str());
    let s = app.state.store.get_session(app.app_id, sent.session_id()).await.unwrap().unwrap();
    assert!(s.provider_id.unwrap().starts_with("wamid."));
    // Nothing lands in the local inbox.
    assert!(app.inbox(MSISDN).await.body["messages"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn templates_with_more_placeholders_carry_content_in_order() {
    let (app, double) = with_double(|c| {
        c.templates.push(waotp_whatsapp::double::KnownTemplate {
            name: "otp_reg".into(),
            languages: vec!["id".into()],
            body_parameters: 3,
            authentication: false,
        })
    })
    .await;
    app.add_template("otp_reg", "id", "Halo {{1}}, kode {{2}} untuk {{3}}", 2).await;
    let sent = app
        .send(json!({ "msisdn": MSISDN, "template_name": "otp_reg", "lang_code": "id", "content": ["Ana", "login"] }))
        .await;
    wait_session(&app, &sent, |s| s.status == Status::Read).await;
    let params: Vec<String> = double.received()[0].body["template"]["components"][0]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(params, vec!["Ana".to_owned(), sent.otp(), "login".to_owned()]);
}

#[tokio::test]
async fn every_final_error_code_maps_to_its_status_with_metas_error_kept() {
    let (app, double) = with_double(|_| {}).await;
    let cases = [
        (131026, false, Status::Failed),
        (131026, true, Status::Failed),
        (190, false, Status::RequestError),
        (0, false, Status::RequestError),
        (100, false, Status::RequestError),
        (131008, false, Status::RequestError),
        (132000, false, Status::RequestError),
        (132001, false, Status::RequestError),
        (368, false, Status::RequestError),
        (131031, false, Status::RequestError),
        (131042, false, Status::RequestError),
        (131048, false, Status::Rejected),
        (131049, true, Status::Rejected),
        (131064, true, Status::TierLimitExceeded),
        (131064, false, Status::TierLimitExceeded),
    ];
    for (i, (code, asynchronous, expected)) in cases.into_iter().enumerate() {
        let msisdn = format!("62812{:08}", 30_000_000 + i);
        double.fail(ScriptedFailure { code, to: Some(msisdn.clone()), asynchronous }, 1);
        let sent = app.send(json!({ "msisdn": msisdn })).await;
        let s = wait_session(&app, &sent, |s| s.status == expected).await;
        assert_eq!(s.error_code, Some(code), "{code}");
        assert!(!s.error_text.unwrap_or_default().is_empty());
    }
}

#[tokio::test]
async fn retryable_errors_are_retried_until_they_succeed() {
    let (app, double) = with_double(|_| {}).await;
    for (i, code) in [130429, 131056, 131000, 131016, 2, 4, 80007].into_iter().enumerate() {
        let msisdn = format!("62813{:08}", 40_000_000 + i);
        double.fail(ScriptedFailure { code, to: Some(msisdn.clone()), asynchronous: false }, 1);
        let sent = app.send(json!({ "msisdn": msisdn.clone() })).await;
        let s = wait_session(&app, &sent, |s| s.status == Status::Read).await;
        assert_eq!(s.error_code, None, "{code}");
        let tries: Vec<u16> = double.received().iter().filter(|r| r.to == msisdn).map(|r| r.answered).collect();
        assert_eq!(tries.len(), 2, "{code}: {tries:?}");
        assert_eq!(tries[1], 200);
    }
}

/// The dispatcher looks again before each retry: a code replaced while its retry waits is
/// not sent again (the newer code goes out once), and a number blocked meanwhile is reported 9.
#[tokio::test]
async fn a_retry_waits_behind_a_fresh_look_at_the_session() {
    let (app, double) = with_double(|_| {}).await;
    let tries = |to: &str| -> Vec<(u16, String)> {
        double
            .received()
            .iter()
            .filter(|r| r.to == to)
            .map(|r| {
                let code = r.body["template"]["components"][0]["parameters"][0]["text"].as_str().unwrap_or("");
                (r.answered, code.to_owned())
            })
            .collect()
    };
    let first_try_refused = |to: &'static str| {
        let tries = &tries;
        eventually("the first try refused", Duration::from_secs(10), move || async move {
            let seen = tries(to);
            if seen.is_empty() {
                Err(seen)
            } else {
                Ok(())
            }
        })
    };
    // Code 4 (an API rate limit) is retried after 2 s: time enough to act in between.
    const REPLACED: &str = "6281370000001";
    const BLOCKED: &str = "6281370000002";
    for to in [REPLACED, BLOCKED] {
        double.fail(ScriptedFailure { code: 4, to: Some(to.into()), asynchronous: false }, 1);
    }
    let first = app.send(json!({ "msisdn": REPLACED })).await;
    let to_block = app.send(json!({ "msisdn": BLOCKED })).await;
    first_try_refused(REPLACED).await;
    first_try_refused(BLOCKED).await;
    let second = app.send(json!({ "msisdn": REPLACED })).await;
    let now = app.state.clock.now_ms();
    app.state
        .store
        .block(waotp_store::BlockEntry { app_id: None, entry: BLOCKED.into(), is_prefix: false, created_at_ms: now })
        .await
        .unwrap();

    let s = wait_session(&app, &first, |s| s.delivered_to_channel).await;
    assert_eq!((s.status, s.provider_id), (Status::Requested, None));
    assert_eq!(s.error_text.as_deref(), Some("superseded by a newer code before it was sent"));
    wait_session(&app, &second, |s| s.status == Status::Read).await;
    assert_eq!(tries(REPLACED), vec![(400, first.otp()), (200, second.otp())]);

    let s = wait_session(&app, &to_block, |s| s.status == Status::Blocked).await;
    assert_eq!(s.error_text.as_deref(), Some("blocked_number: blocked before a retry"));
    assert_eq!(tries(BLOCKED).len(), 1);
}

#[tokio::test]
async fn retries_never_go_past_the_codes_expiry() {
    let (app, double) = with_double(|_| {}).await;
    for (i, (code, expected)) in
        [(130429, Status::Rejected), (131056, Status::Rejected), (131057, Status::RequestError)].into_iter().enumerate()
    {
        let msisdn = format!("62815{:08}", 50_000_000 + i);
        double.fail(ScriptedFailure { code, to: Some(msisdn.clone()), asynchronous: false }, 100);
        let started = Instant::now();
        let sent = app.send(json!({ "msisdn": msisdn, "time_limit": 3 })).await;
        let s = wait_session(&app, &sent, |s| s.status == expected).await;
        assert_eq!(s.error_code, Some(code));
        assert!(s.error_text.unwrap().contains("gave up"));
        assert!(started.elapsed() < Duration::from_secs(5), "{code}: {:?}", started.elapsed());
    }
}

#[tokio::test]
async fn an_unknown_template_is_a_request_error_with_the_reason() {
    let (app, _double) = with_double(|_| {}).await;
    let sent = app.send(json!({ "msisdn": MSISDN, "template_name": "not_approved_yet" })).await;
    let s = wait_session(&app, &sent, |s| s.status == Status::RequestError).await;
    assert_eq!(s.error_code, Some(132001));
    assert!(s.error_text.unwrap().contains("not_approved_yet"));
}

#[tokio::test]
async fn a_badly_signed_webhook_is_401_and_changes_nothing() {
    let (app, _double) = with_double(|c| c.webhooks.only_sent = true).await;
    let sent = app.send(send_body(MSISDN)).await;
    let s = wait_session(&app, &sent, |s| s.status == Status::Sent).await;
    let wamid = s.provider_id.unwrap();
    let payload = json!({ "object": "whatsapp_business_account", "entry": [{ "id": "1", "changes": [{
        "field": "messages", "value": { "statuses": [{ "id": wamid, "status": "read", "timestamp": "1" }] } }] }] })
    .to_string();
    let post = |signature: String| {
        app.http
            .post(format!("{}/webhooks/whatsapp", app.base))
            .header("x-hub-signature-256", signature)
            .body(payload.clone())
            .send()
    };
    let forged = waotp_whatsapp::webhook::sign(b"not-the-secret", payload.as_bytes());
    assert_eq!(post(forged).await.unwrap().status().as_u16(), 401);
    assert_eq!(post(String::new()).await.unwrap().status().as_u16(), 401);
    // (A refused webhook is answered after it was judged, so nothing can be under way now.)
    let s = app.state.store.get_session(app.app_id, sent.session_id()).await.unwrap().unwrap();
    assert_eq!(s.status, Status::Sent);
    // The same payload, signed right: applied (read with no delivered reports both).
    let good = waotp_whatsapp::webhook::sign(APP_SECRET.as_bytes(), payload.as_bytes());
    assert_eq!(post(good).await.unwrap().status().as_u16(), 200);
    wait_session(&app, &sent, |s| s.status == Status::Read).await;
}

/// The webhook endpoint is open to anyone until the signature is checked: a request without
/// one is refused before its body is read, and a signed body is read up to 256 KiB only.
#[tokio::test]
async fn webhook_bodies_are_bounded_and_unsigned_ones_refused_unread() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (app, _double) = with_double(|_| {}).await;
    // Announces 1,000 bytes and sends one: the answer cannot wait for the rest.
    let mut stream = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://")).await.unwrap();
    stream
        .write_all(b"POST /webhooks/whatsapp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
        .await
        .unwrap();
    let mut head = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut head))
        .await
        .expect("no answer while the body is incomplete: the body was waited for")
        .unwrap();
    assert!(head[..n].starts_with(b"HTTP/1.1 401"), "{}", String::from_utf8_lossy(&head[..n]));
    // Signed, padded to just under and just over the limit.
    let post = |size: usize| {
        let mut payload = r#"{"object":"whatsapp_business_account","entry":[]}"#.to_owned();
        payload.push_str(&" ".repeat(size - payload.len()));
        let signature = waotp_whatsapp::webhook::sign(APP_SECRET.as_bytes(), payload.as_bytes());
        app.http
            .post(format!("{}/webhooks/whatsapp", app.base))
            .header("x-hub-signature-256", signature)
            .body(payload)
            .send()
    };
    assert_eq!(post(256 * 1024).await.unwrap().status().as_u16(), 200);
    let over = post(256 * 1024 + 1).await.unwrap();
    assert_eq!(over.status().as_u16(), 413);
    let body: serde_json::Value = over.json().await.unwrap();
    assert_eq!(body["error_code"], "request_rejected", "{body}");
    let metrics = app.state.metrics.text();
    for line in [
        "waotp_whatsapp_webhooks_refused_total{reason=\"unsigned\"} 1",
        "waotp_whatsapp_webhooks_refused_total{reason=\"too_large\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in {metrics}");
    }
}

/// The statuses a session's callback receiver got once nothing more can come: the double's
/// `webhooks` status webhooks all acknowledged, the send's answer recorded, and every callback
/// queued for the session delivered.
async fn settled_callbacks(
    app: &TestApp,
    double: &GraphDouble,
    rx: &Receiver,
    sent: &Answer,
    webhooks: usize,
) -> Vec<i64> {
    eventually("webhooks, the send's answer and callbacks settled", Duration::from_secs(20), || async {
        // Acknowledgements first: an acknowledged webhook's statuses are stored (and their
        // callbacks queued) before its answer, so the reads after it see them. Read the other
        // way round, a webhook acknowledged between the reads looked settled without them.
        let acknowledged = double.webhooks_acknowledged();
        let session = app.state.store.get_session(app.app_id, sent.session_id()).await.unwrap().unwrap();
        let callbacks = app.state.store.list_callbacks(app.app_id, sent.session_id()).await.unwrap().unwrap();
        if acknowledged >= webhooks
            && session.provider_id.is_some()
            && callbacks.iter().all(|c| c.state == CallbackState::Delivered)
        {
            Ok(rx.received(&sent.session_id().to_string()).iter().map(Received::status).collect())
        } else {
            Err((acknowledged, session, callbacks))
        }
    })
    .await
}

/// How many WhatsApp events this app's process kept for a message id not recorded yet.
fn kept_events(app: &TestApp) -> u64 {
    app.metric("waotp_whatsapp_events_total{outcome=\"kept\"}") as u64
}

#[tokio::test]
async fn duplicated_and_reordered_webhooks_report_each_status_once_in_order() {
    // (behaviour, status webhooks the double sends)
    for (behaviour, webhooks) in [
        (WebhookBehaviour { duplicate: true, reorder: true, ..Default::default() }, 6),
        (WebhookBehaviour { skip_delivered: true, ..Default::default() }, 2),
    ] {
        let (app, double) = with_double(|c| c.webhooks = behaviour.clone()).await;
        let rx = Receiver::start().await;
        let sent = app.send(json!({ "msisdn": MSISDN, "callback_url": format!("{}/cb", rx.base) })).await;
        assert_eq!(settled_callbacks(&app, &double, &rx, &sent, webhooks).await, vec![0, 1, 2, 3], "{behaviour:?}");
    }
}

/// Meta's `delivered` and `read` (or `failed`) can reach waotp before the send's own answer
/// does, and so before waotp knows the message id: they are kept and applied when the answer
/// is recorded, each status reported once and in order.
#[tokio::test]
async fn status_webhooks_that_beat_the_send_answer_are_kept_and_applied_in_order() {
    let before_answer = WebhookBehaviour { before_answer: true, ..Default::default() };
    // (behaviour, an asynchronous failure, status webhooks the double sends, callbacks)
    for (behaviour, failure, webhooks, expected) in [
        (before_answer.clone(), None, 3, vec![0, 1, 2, 3]),
        (WebhookBehaviour { duplicate: true, reorder: true, ..before_answer.clone() }, None, 6, vec![0, 1, 2, 3]),
        (before_answer, Some(131026), 2, vec![0, 1, 6]),
    ] {
        let (app, double) = with_double(|c| c.webhooks = behaviour.clone()).await;
        if let Some(code) = failure {
            double.fail(ScriptedFailure { code, to: Some(MSISDN.into()), asynchronous: true }, 1);
        }
        let rx = Receiver::start().await;
        let sent = app.send(json!({ "msisdn": MSISDN, "callback_url": format!("{}/cb", rx.base) })).await;
        assert_eq!(settled_callbacks(&app, &double, &rx, &sent, webhooks).await, expected, "{behaviour:?}");
        // Every event came before the wamid was known, and was kept for it.
        assert_eq!(kept_events(&app), webhooks as u64, "{behaviour:?}");
        let s = app.state.store.get_session(app.app_id, sent.session_id()).await.unwrap().unwrap();
        if let Some(code) = failure {
            assert_eq!((s.status, s.error_code), (Status::Failed, Some(code)));
        } else {
            assert_eq!(s.status, Status::Read);
        }
    }
}

#[tokio::test]
async fn the_handshake_echoes_the_challenge_only_for_the_right_token() {
    let (app, _double) = with_double(|_| {}).await;
    let get = |token: &str| {
        app.http
            .get(format!("{}/webhooks/whatsapp", app.base))
            .query(&[("hub.mode", "subscribe"), ("hub.verify_token", token), ("hub.challenge", "1158201444")])
            .send()
    };
    let ok = get("my-verify-token").await.unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    assert_eq!(ok.text().await.unwrap(), "1158201444");
    assert_eq!(get("wrong").await.unwrap().status().as_u16(), 403);
}

#[tokio::test]
async fn didnt_request_this_code_is_recorded_as_a_fraud_signal() {
    let (app, _double) = with_double(|_| {}).await;
    let sent = app.send(send_body(MSISDN)).await;
    let wamid = wait_session(&app, &sent, |s| s.provider_id.is_some()).await.provider_id.unwrap();
    let payload = json!({ "object": "whatsapp_business_account", "entry": [{ "id": "1", "changes": [{
        "field": "messages", "value": { "messages": [{ "from": MSISDN, "id": "wamid.reply", "type": "button",
            "button": { "payload": "DID_NOT_REQUEST_CODE", "text": "I didn't request a code" },
            "context": { "from": "15550000000", "id": wamid } }] } }] }] })
    .to_string();
    let res = app
        .http
        .post(format!("{}/webhooks/whatsapp", app.base))
        .header("x-hub-signature-256", waotp_whatsapp::webhook::sign(APP_SECRET.as_bytes(), payload.as_bytes()))
        .body(payload)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    wait_session(&app, &sent, |s| s.not_requested).await;
}

/// The double enforces Meta's 80 messages/s; 2,000 queued sends go out without one 130429.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pacing_keeps_2000_queued_sends_under_the_throughput_limit() {
    let (app, double) = with_double(|c| c.webhook_url = None).await;
    let app = std::sync::Arc::new(app);
    // 64 requests in flight (wrk's load), not 2,000 at once: each send then waits for a pooled
    // connection a short while, not behind 2,000 others on a loaded machine.
    let in_flight = std::sync::Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = Vec::new();
    for i in 0..2000u32 {
        let (app, in_flight) = (app.clone(), in_flight.clone());
        tasks.push(tokio::spawn(async move {
            let _slot = in_flight.acquire_owned().await.unwrap();
            app.send(json!({ "msisdn": format!("6281{}{:07}", 2 + i % 7, i * 37) })).await.status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 201);
    }
    let received = eventually("2000 messages at the double", Duration::from_secs(60), || async {
        let received = double.received();
        let throttled = received.iter().filter(|r| r.error_code == Some(130429)).count();
        assert_eq!(throttled, 0, "the double answered 130429");
        if received.len() >= 2000 {
            Ok(received)
        } else {
            Err(format!("only {} sent", received.len()))
        }
    })
    .await;
    assert!(received.iter().all(|r| r.answered == 200));
    let span = received.last().unwrap().at - received.first().unwrap().at;
    assert!(span >= Duration::from_secs(23), "sent faster than 80/s: {span:?}");
}

/// With a messaging limit of 2 unique recipients per 24 h, a third recipient is refused locally
/// with status 10 before Meta is asked; known recipients still get their codes.
#[tokio::test]
async fn the_messaging_limit_is_enforced_locally() {
    let (app, double) = with_double_and(|w| w.messaging_limit = Some(2), |_| {}).await;
    let rx = Receiver::start().await;
    let cb = format!("{}/cb", rx.base);
    for m in ["6281234567801", "6281234567802"] {
        let sent = app.send(json!({ "msisdn": m, "callback_url": cb })).await;
        wait_session(&app, &sent, |s| s.status == Status::Read).await;
    }
    let third = app.send(json!({ "msisdn": "6281234567803", "callback_url": cb })).await;
    assert_eq!(rx.wait_statuses(&third.session_id().to_string(), 2).await, vec![0, 10]);
    let s = wait_session(&app, &third, |s| s.status == Status::TierLimitExceeded).await;
    assert!(s.error_text.unwrap().contains("messaging limit"));
    assert!(double.received().iter().all(|r| r.to != "6281234567803"), "Meta was asked");
    let again = app.send(json!({ "msisdn": "6281234567801" })).await;
    wait_session(&app, &again, |s| s.status == Status::Read).await;
}

/// Messages that expire while waiting for the sender's throughput give their place back:
/// later messages still go out.
#[tokio::test]
async fn expiring_in_the_queue_does_not_leak_throughput() {
    let (app, double) = with_double_and(|w| w.messages_per_second = 1, |c| c.webhook_url = None).await;
    let first = app.send(json!({ "msisdn": "6281234567811" })).await;
    let mut expiring = Vec::new();
    for m in ["6281234567812", "6281234567813", "6281234567814"] {
        expiring.push(app.send(json!({ "msisdn": m, "time_limit": 1 })).await);
    }
    wait_session(&app, &first, |s| s.status == Status::Sent).await;
    for e in &expiring {
        // Settled by the channel (sent, or given up at its expiry).
        wait_session(&app, e, |s| s.delivered_to_channel).await;
    }
    let later = app.send(json!({ "msisdn": "6281234567815" })).await;
    wait_session(&app, &later, |s| s.status == Status::Sent).await;
    assert!(double.received().iter().any(|r| r.to == "6281234567815"));
}

/// An app's own WhatsApp token is kept sealed under the server secret: sends from its number
/// open it, the database never holds it as given, a token an older waotp stored as given is
/// sealed at the next start, and one sealed under another secret fails its sends clearly.
#[tokio::test]
async fn an_apps_own_access_token_is_sealed_in_the_database() {
    // The server's own token is refused by Meta: a send goes through only with the app's.
    let (app, _double) = with_double_and(|w| w.access_token = Secret::new("not-the-token"), |_| {}).await;
    let store = app.state.store.as_ref();
    let stored_token =
        || async { store.get_app(app.app_id).await.unwrap().unwrap().sender.expect("a sender").access_token };
    waotp_server::apps::set_sender(store, &app.state.key, app.app_id, Some((PNID.into(), TOKEN.into()))).await.unwrap();
    app.state.invalidate_app(app.app_id);
    let sealed = stored_token().await;
    assert!(sealed.starts_with("sealed:v1:") && !sealed.contains(TOKEN), "{sealed}");
    let sent = app.send(send_body(MSISDN)).await;
    let s = wait_session(&app, &sent, |s| s.status != Status::Requested).await;
    assert!(s.provider_id.is_some(), "sent with the app's token: {s:?}");

    // As an older waotp stored it: still used, and sealed when a node starts.
    let given = waotp_store::WhatsAppSender { phone_number_id: PNID.into(), access_token: TOKEN.into() };
    store.set_sender(app.app_id, Some(given)).await.unwrap();
    app.state.invalidate_app(app.app_id);
    let sent = app.send(send_body("6281234567891")).await;
    assert!(wait_session(&app, &sent, |s| s.status != Status::Requested).await.provider_id.is_some());
    let mut config = waotp_server::Config::new(app.database_url.clone());
    config.database_wait = Duration::from_secs(30);
    let _restarted = spawn_app_on(tempfile::tempdir().unwrap(), config, |_| {}).await;
    let resealed = stored_token().await;
    assert!(resealed.starts_with("sealed:v1:") && !resealed.contains(TOKEN), "{resealed}");
    app.state.invalidate_app(app.app_id);
    let sent = app.send(send_body("6281234567892")).await;
    assert!(wait_session(&app, &sent, |s| s.status != Status::Requested).await.provider_id.is_some());

    // Sealed under another server secret: the send fails as a request error, naming why.
    let other = waotp_core::CodeKey::from_secret(b"another-server-secret-0123456789");
    waotp_server::apps::set_sender(store, &other, app.app_id, Some((PNID.into(), TOKEN.into()))).await.unwrap();
    app.state.invalidate_app(app.app_id);
    let sent = app.send(send_body("6281234567893")).await;
    let s = wait_session(&app, &sent, |s| s.status != Status::Requested).await;
    assert_eq!(s.status, Status::RequestError, "{s:?}");
    assert!(s.error_text.unwrap_or_default().contains("server secret"));
}
