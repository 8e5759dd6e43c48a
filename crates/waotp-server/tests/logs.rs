//! A full run with every log line captured at TRACE level (through the filter the binary
//! uses, even asked for the PostgreSQL driver's statements): no API key, access token,
//! secret, code or unmasked msisdn may appear in it.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use waotp_core::Status;
use waotp_server::config::{Secret, WhatsAppConfig};
use waotp_test_support::app::*;
use waotp_test_support::receiver;
use waotp_whatsapp::double::{DoubleConfig, GraphDouble, ScriptedFailure};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Captures what this thread logs under `filter` until the guard is dropped (the tests
    /// that use it run on a current-thread runtime, so every task of their server logs here).
    fn for_this_thread(filter: &str) -> (Captured, tracing::subscriber::DefaultGuard) {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(waotp_server::logging::filter(filter).unwrap())
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        (captured, tracing::subscriber::set_default(subscriber))
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const TOKEN: &str = "EAAGtokenNeverLogged0123456789";
const APP_SECRET: &str = "metaAppSecretNeverLogged";
const VERIFY_TOKEN: &str = "verifyTokenNeverLogged";
const WABA: &str = "102290129340398";
const UNKNOWN_BSUID: &str = "ID.31415926535897932384";
const MOVED_BSUID: &str = "ID.27182818284590452353";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_code_or_msisdn_reaches_the_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_env_filter(waotp_server::logging::filter("trace,tokio_postgres=trace").unwrap())
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();
    let rx = receiver::Receiver::start().await;
    let bsuid = waotp_whatsapp::double::bsuid_of("6281298765435");

    // A local-inbox server: sends, wrong and right verifies, callbacks, refusals, sandbox.
    let inbox = spawn_app().await;
    let code = "Zq9Xw7Kp";
    let msisdn = "6281298765432";
    let sent = inbox.send(json!({ "msisdn": msisdn, "otp": code, "callback_url": format!("{}/cb", rx.base) })).await;
    assert_eq!(sent.status, 201);
    inbox.verify(json!({ "msisdn": msisdn, "otp": "Wr0ngC0de" })).await;
    inbox.wait_inbox(msisdn, 1).await;
    assert_eq!(inbox.verify(json!({ "msisdn": msisdn, "otp": code })).await.status, 200);
    rx.wait_statuses(&sent.session_id().to_string(), 5).await;
    inbox.post("/v2/whatsapp/otp/send/sandbox", json!({ "msisdn": "6282123060014", "otp": "Sb0xC0de" })).await;
    let mut accepted = Vec::new();
    for _ in 0..6 {
        let a = inbox.send(json!({ "msisdn": "6281298765433", "otp": "Rl1mC0de" })).await;
        if a.status == 201 {
            accepted.push(a.session_id());
        }
    }
    let id = inbox.app_id.to_string();
    inbox.post_raw("/v2/whatsapp/otp/send", Some((&id, "wak_wrongKeyNeverLogged")), "{}").await;

    // A WhatsApp server behind the Graph API double: a send, a failure, webhooks good and bad.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let wa = spawn_app_with(|c| {
        let mut w = WhatsAppConfig::new(&base, "106540352242922", TOKEN);
        w.app_secret = Some(Secret::new(APP_SECRET));
        w.verify_token = Some(Secret::new(VERIFY_TOKEN));
        c.whatsapp = Some(w);
    })
    .await;
    let mut config = DoubleConfig::new(TOKEN, "106540352242922", APP_SECRET);
    config.webhook_url = Some(format!("{}/webhooks/whatsapp", wa.base));
    let double = GraphDouble::start(config, listener).unwrap();
    double.fail(ScriptedFailure { code: 131026, to: Some("6281298765434".into()), asynchronous: false }, 1);
    let read = wa.send(json!({ "msisdn": "6281298765435", "otp": "Wa0kC0de" })).await;
    let failed = wa.send(json!({ "msisdn": "6281298765434", "otp": "Wa1fC0de" })).await;
    wa.http
        .post(format!("{}/webhooks/whatsapp", wa.base))
        .header("x-hub-signature-256", "sha256=00")
        .body("{}")
        .send()
        .await
        .unwrap();
    wa.http
        .get(format!("{}/webhooks/whatsapp", wa.base))
        .query(&[("hub.mode", "subscribe"), ("hub.verify_token", "wrong"), ("hub.challenge", "1")])
        .send()
        .await
        .unwrap();
    // The background work has run its course (and logged what it logs): every callback
    // recorded, every accepted send handed to its channel, Meta's three webhooks answered and
    // applied, the failed send recorded.
    eventually("the background work done", Duration::from_secs(20), || async {
        let callbacks = inbox.state.store.list_callbacks(inbox.app_id, sent.session_id()).await.unwrap().unwrap();
        let mut handed = Vec::new();
        for &id in &accepted {
            handed.push(inbox.state.store.get_session(inbox.app_id, id).await.unwrap().unwrap().delivered_to_channel);
        }
        let read = wa.state.store.get_session(wa.app_id, read.session_id()).await.unwrap().unwrap().status;
        let failed = wa.state.store.get_session(wa.app_id, failed.session_id()).await.unwrap().unwrap().status;
        let acknowledged = double.webhooks_acknowledged();
        if callbacks.iter().all(|c| c.state == waotp_store::CallbackState::Delivered)
            && handed.iter().all(|&h| h)
            && (read, failed, acknowledged) == (Status::Read, Status::Failed, 3)
        {
            Ok(())
        } else {
            Err((callbacks, handed, read, failed, acknowledged))
        }
    })
    .await;

    // Users Meta names by business-scoped user id (issue 31): the number read above, learned with
    // its BSUID from the statuses, verifies a reverse session from its BSUID alone (and gets its
    // reaction); an unknown BSUID with a username is refused; a BSUID moves.
    let started = wa.send(json!({ "msisdn": "6281298765435", "method": "reverse" })).await;
    assert_eq!(started.status, 201, "{}", started.body);
    let text = started.body["text"].as_str().unwrap();
    let unknown =
        waotp_whatsapp::double::inbound_text_without_number("106540352242922", UNKNOWN_BSUID, "wamid.U", text);
    assert_eq!(double.send_change(WABA, "messages", unknown).await, 200);
    let learned = waotp_whatsapp::double::inbound_text_without_number("106540352242922", &bsuid, "wamid.L", text);
    assert_eq!(double.send_change(WABA, "messages", learned).await, 200);
    let update = json!({ "user_id_update": [{ "wa_id": "6281298765435", "detail": "updated",
        "user_id": { "previous": bsuid, "current": MOVED_BSUID } }] });
    assert_eq!(double.send_change(WABA, "user_id_update", update).await, 200);
    eventually("the reaction", Duration::from_secs(10), || async {
        double.received().iter().any(|r| r.body["type"] == "reaction").then_some(()).ok_or(())
    })
    .await;

    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(logs.len() > 10_000, "too little was captured to prove anything: {} bytes", logs.len());
    assert!(logs.contains("62812*****432"), "masked msisdns are logged");
    assert!(logs.contains("ID.31415************384"), "masked business-scoped user ids are logged");
    let callback_secret = inbox.callback_secret.clone();
    let forbidden = [
        inbox.api_key.as_str(),
        wa.api_key.as_str(),
        "wak_wrongKeyNeverLogged",
        callback_secret.as_str(),
        TOKEN,
        APP_SECRET,
        VERIFY_TOKEN,
        "integration-test-secret-0123456789",
        code,
        "Wr0ngC0de",
        "Sb0xC0de",
        "Rl1mC0de",
        "Wa0kC0de",
        "Wa1fC0de",
        msisdn,
        "6281298765433",
        "6281298765434",
        "6281298765435",
        &bsuid,
        &bsuid[3..],
        UNKNOWN_BSUID,
        &UNKNOWN_BSUID[3..],
        MOVED_BSUID,
        "testuser",
    ];
    for secret in forbidden {
        if let Some(at) = logs.find(secret) {
            let line = logs[..at].rfind('\n').map_or(0, |i| i + 1);
            let end = logs[at..].find('\n').map_or(logs.len(), |i| at + i);
            panic!("{secret:?} appears in the logs: {}", &logs[line..end]);
        }
    }
}

/// Many wrong admin tokens (dashboard logins and bearer tokens) from one address log a few
/// lines, not one per guess, and never the guesses. A current-thread runtime: every task of the
/// server runs on this thread, under this test's own subscriber.
#[tokio::test]
async fn wrong_admin_tokens_log_a_bounded_number_of_lines() {
    const ADMIN: &str = "the-admin-token-0123456789";
    let (captured, _scope) = Captured::for_this_thread("debug");
    let app = spawn_app_with(|c| c.admin_token = Some(Secret::new(ADMIN))).await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    for n in 0..100 {
        let guess = format!("wrongAdminGuess{n:03}");
        let status = if n % 2 == 0 {
            client.get(format!("{}/admin/apps", app.base)).bearer_auth(&guess).send().await.unwrap().status()
        } else {
            let form = [("token", guess.as_str())];
            client.post(format!("{}/dashboard/login", app.base)).form(&form).send().await.unwrap().status()
        };
        assert_eq!(status.as_u16(), if n < 5 { 401 } else { 429 }, "attempt {n}");
    }
    // The window passes: the next attempt logs a summary of what was refused meanwhile.
    app.clock.advance(Duration::from_secs(60));
    let ok = client.get(format!("{}/admin/apps", app.base)).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(ok.status().as_u16(), 200);

    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    let lines: Vec<&str> = logs.lines().filter(|l| l.contains("admin token")).collect();
    assert_eq!(lines.len(), 3, "the first failure, the throttling and a summary: {lines:#?}");
    assert!(lines[0].contains("wrong admin token") && lines[0].contains("127.0.0.1"), "{}", lines[0]);
    assert!(lines[1].contains("answered 429"), "{}", lines[1]);
    assert!(lines[2].contains("refused=95"), "{}", lines[2]);
    assert!(!logs.contains("wrongAdminGuess") && !logs.contains(ADMIN), "no guess or token is logged");
}

/// Every line a request logs is in its span: the request id (a sane one kept from the client,
/// otherwise made up) and the matched route, never the raw path; the response's status and
/// latency close it at DEBUG.
#[tokio::test]
async fn a_requests_lines_carry_its_id_and_route() {
    let (captured, _scope) = Captured::for_this_thread("debug");
    let app = spawn_app().await;
    let (id, mut made) = (app.app_id.to_string(), String::new());
    for request_id in ["trace-me.1", "bad id"] {
        let creds = Some((id.as_str(), app.api_key.as_str()));
        let body = json!({ "msisdn": "6281298765436" }).to_string();
        let answer = app.post_with("/v2/whatsapp/otp/send", creds, &[("x-request-id", request_id)], body).await;
        assert_eq!(answer.status, 201);
        made = answer.headers["x-request-id"].to_str().unwrap().to_owned();
    }
    let session = uuid::Uuid::new_v4();
    let path = format!("{}/v1/sessions/{session}/callbacks", app.base);
    app.http.get(path).header("x-request-id", "trace-me.2").send().await.unwrap();

    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    let of = |id: &str| logs.lines().filter(|l| l.contains(&format!("request_id={id} "))).collect::<Vec<_>>();
    for id in ["trace-me.1", made.as_str()] {
        let lines = of(id);
        let route = "route=/v2/whatsapp/otp/send}";
        assert!(lines.iter().any(|l| l.contains("otp stored") && l.contains(route)), "{id}: {lines:#?}\n{logs}");
        assert!(lines.iter().any(|l| l.contains("finished processing request") && l.contains("status=201")));
    }
    assert!(!logs.contains("bad id"));
    let lines = of("trace-me.2");
    assert!(lines.iter().any(|l| l.contains("route=/v1/sessions/{session_id}/callbacks}")), "{lines:#?}");
    assert!(!logs.contains(&session.to_string()), "the raw path is not logged");
    assert!(!logs.contains("6281298765436"), "the msisdn is masked");
}
