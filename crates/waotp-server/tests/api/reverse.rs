//! Reverse verification (issue 20): the user sends the code to the business over WhatsApp;
//! the inbound message (Meta's webhook, or the local inbox's simulation) from the session's
//! number verifies it.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use uuid::Uuid;
use waotp_server::config::Secret;
use waotp_whatsapp::double::{inbound_text_value, GraphDouble};

use waotp_test_support::app::*;
use waotp_test_support::graph::spawn_app_with_double;
use waotp_test_support::receiver::Receiver;

pub(crate) use waotp_test_support::graph::PNID;
const STRANGER: &str = "6289999999999";

/// Starts a reverse verification of `msisdn` (optionally with callbacks to `rx`).
pub(crate) async fn start(app: &TestApp, msisdn: &str, rx: Option<&Receiver>, extra: Value) -> Answer {
    let mut body = json!({ "msisdn": msisdn, "method": "reverse", "challenge": "login" });
    if let Some(rx) = rx {
        body["callback_url"] = json!(format!("{}/cb", rx.base));
    }
    for (k, v) in extra.as_object().into_iter().flatten() {
        body[k] = v.clone();
    }
    let started = app.send(body).await;
    assert_eq!(started.status, 201, "{}", started.body);
    started
}

/// The user's message, through the local inbox's simulation.
async fn inbound(app: &TestApp, from: &str, text: &str) -> Answer {
    let answer = app.post("/v1/inbox/inbound", json!({ "from": from, "text": text })).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer
}

pub(crate) async fn session(app: &TestApp, id: Uuid) -> Value {
    let answer = app.get_as(&format!("/v1/sessions/{id}"), None).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body
}

/// Acceptance 1: start → the user's message from the right number (local inbox) → status 4
/// with its callback; the code is used up; the verify route never verifies it.
#[tokio::test]
async fn the_local_inbox_flow_verifies_once_with_its_callback() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    let started = start(&app, MSISDN, Some(&rx), json!({ "lang_code": "id" })).await;
    let (id, code) = (started.session_id(), started.otp());
    let text = started.body["text"].as_str().unwrap();
    assert_eq!(text, format!("{code} adalah kode verifikasi saya"));
    assert_eq!(code.len(), 10);
    assert_eq!(started.body["business_number"], "15550000000");
    assert_eq!(started.body["method"], "reverse");
    assert_eq!(started.body["try_count"], 1);
    let link = started.body["wa_link"].as_str().unwrap();
    assert_eq!(link, format!("https://wa.me/15550000000?text={code}%20adalah%20kode%20verifikasi%20saya"));
    // Requested is reported; nothing is delivered (no inbox message).
    assert_eq!(rx.wait_statuses(&id.to_string(), 1).await, vec![0]);
    assert!(app.inbox(MSISDN).await.body["messages"].as_array().unwrap().is_empty());
    assert_eq!(session(&app, id).await["method"], "reverse");
    // Its QR code, for desktops.
    let qr = app
        .http
        .get(format!("{}/v1/sessions/{id}/qr.svg", app.base))
        .header("App-ID", app.app_id.to_string())
        .header("API-Key", &app.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(qr.status(), 200);
    assert_eq!(qr.headers()["content-type"], "image/svg+xml");
    let svg = qr.text().await.unwrap();
    assert!(svg.contains("<svg") && svg.contains("<path"), "{svg}");
    // The verify route answers as for no pending code, even with the right code.
    let typed = app.verify(json!({ "msisdn": MSISDN, "otp": code, "challenge": "login" })).await;
    assert_eq!((typed.status, typed.message()), (404, "OTP not found"));
    // The user's message, with the prefilled text.
    let answer = inbound(&app, &format!("+{MSISDN}"), text).await;
    assert_eq!(answer.body["outcome"], "verified");
    assert_eq!(answer.body["session_id"], id.to_string());
    assert_eq!(rx.wait_statuses(&id.to_string(), 2).await, vec![0, 4]);
    let s = session(&app, id).await;
    assert_eq!(
        (s["status"].as_i64(), s["status_name"].as_str(), s["state"].as_str()),
        (Some(4), Some("Verified"), Some("verified"))
    );
    assert!(s["closed_at"].is_string());
    // Single use: the same text again changes nothing.
    assert_eq!(inbound(&app, MSISDN, text).await.body["outcome"], "refused");
    app.callbacks_settled(id).await;
    assert_eq!(rx.received(&id.to_string()).iter().map(|r| r.status()).collect::<Vec<_>>(), vec![0, 4]);
    // A code-entry session reads as such on the same route.
    let plain = app.send(json!({ "msisdn": "6281234567891" })).await;
    assert_eq!(session(&app, plain.session_id()).await["method"], "template");
    assert_eq!(app.get_as(&format!("/v1/sessions/{}/qr.svg", plain.session_id()), None).await.status, 404);
    assert_eq!(app.get_as(&format!("/v1/sessions/{}", Uuid::new_v4()), None).await.status, 404);
}

#[tokio::test]
async fn a_start_is_validated_and_guarded_like_a_send() {
    let app = spawn_app().await;
    for bad in [
        json!({ "msisdn": MSISDN, "method": "carrier-pigeon" }),
        json!({ "msisdn": MSISDN, "method": "reverse", "otp": "123456" }),
        json!({ "msisdn": "12", "method": "reverse" }),
        json!({ "msisdn": MSISDN, "method": "reverse", "time_limit": 0 }),
        json!({ "msisdn": MSISDN, "method": "reverse", "callback_url": "ftp://x" }),
    ] {
        let answer = app.send(bad.clone()).await;
        assert_eq!((answer.status, answer.message()), (400, "Validation error"), "{bad}");
    }
    // Idempotency: the same key and body answer the same session, link included.
    let body = json!({ "msisdn": MSISDN, "method": "reverse" }).to_string();
    let first = app.post_idempotent("/v2/whatsapp/otp/send", "k-1", body.clone()).await;
    let again = app.post_idempotent("/v2/whatsapp/otp/send", "k-1", body).await;
    assert_eq!((first.status, again.status), (201, 201));
    assert_eq!(first.body, again.body);
    // The blocklist refuses as for a send.
    app.state
        .store
        .block(waotp_store::BlockEntry { app_id: None, entry: "62899".into(), is_prefix: true, created_at_ms: 0 })
        .await
        .unwrap();
    let blocked = app.send(json!({ "msisdn": "6289912345678", "method": "reverse" })).await;
    assert_eq!(blocked.status, 409, "{}", blocked.body);
    // No template is sent, so none is needed: the app's template registered in English only
    // refuses a Portuguese send but not a Portuguese reverse start; a malformed language is
    // still refused.
    app.add_template("verification_code", "en", "Your code is {{1}}", 1).await;
    let send = app.send(json!({ "msisdn": "6281234567895", "lang_code": "pt_BR" })).await;
    assert_eq!(send.status, 400, "{}", send.body);
    let reverse = app.send(json!({ "msisdn": "6281234567895", "lang_code": "pt_BR", "method": "reverse" })).await;
    assert_eq!(reverse.status, 201, "{}", reverse.body);
    assert_eq!(reverse.body["text"], format!("{} é o meu código de verificação", reverse.otp()));
    let malformed = app.send(json!({ "msisdn": "6281234567895", "lang_code": "p t", "method": "reverse" })).await;
    assert_eq!(malformed.status, 400, "{}", malformed.body);
}

/// Issue 38: the right text from other numbers verifies nothing and is counted apart, never as
/// the owner's wrong try: after five (and more) strangers, the owner with the text verifies.
#[tokio::test]
async fn strangers_never_lock_the_owner_out() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    let started = start(&app, MSISDN, Some(&rx), json!({})).await;
    let (id, text) = (started.session_id(), started.body["text"].as_str().unwrap().to_owned());
    for n in 1..=6 {
        let stranger = format!("62899999999{n:02}");
        assert_eq!(inbound(&app, &stranger, &text).await.body["outcome"], "refused");
    }
    let s = session(&app, id).await;
    assert_eq!(
        (s["state"].as_str(), s["status"].as_i64(), s["wrong_attempts"].as_i64(), s["wrong_senders"].as_i64()),
        (Some("pending"), Some(0), Some(0), Some(6))
    );
    assert_eq!(inbound(&app, MSISDN, &text).await.body["outcome"], "verified");
    assert_eq!(rx.wait_statuses(&id.to_string(), 2).await, vec![0, 4]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/metrics", listener.local_addr().unwrap());
    let router = waotp_server::metrics::router(app.state.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let metrics = app.http.get(url).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.lines().any(|l| l.contains("outcome=\"wrong_sender\"") && l.ends_with(" 6")),
        "the strangers are counted in /metrics"
    );
}

/// Issue 38: a message that merely contains the code (an "order number" an attacker asked the
/// victim to send from the victim's own number) verifies nothing and counts nothing; the
/// prefilled text, in other case and spacing or with look-alike letters, verifies.
#[tokio::test]
async fn only_the_prefilled_text_verifies_not_the_code_inside_other_words() {
    let app = spawn_app().await;
    let started = start(&app, MSISDN, None, json!({})).await;
    let (id, code) = (started.session_id(), started.otp());
    for text in [
        code.clone(),
        format!("my order number is {code}"),
        format!("{code} is my verification code, what is this?"),
        format!("Hi, {code} is my verification code"),
    ] {
        assert_eq!(inbound(&app, MSISDN, &text).await.body["outcome"], "ignored", "{text:?}");
    }
    let s = session(&app, id).await;
    assert_eq!(
        (s["status"].as_i64(), s["wrong_attempts"].as_i64(), s["wrong_senders"].as_i64()),
        (Some(0), Some(0), Some(0))
    );
    // lower case, doubled spaces and a Cyrillic "е" for the Latin one: still the text
    let variant = format!("  {}  is my v\u{0435}rification   code", code.to_lowercase());
    assert_eq!(inbound(&app, MSISDN, &variant).await.body["outcome"], "verified");
}

/// Acceptance 3: an expired session reports 5 at expiry and ignores a late message.
#[tokio::test]
async fn an_expired_reverse_session_reports_5_and_ignores_a_late_message() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    let started = start(&app, MSISDN, Some(&rx), json!({ "time_limit": 1 })).await;
    let id = started.session_id();
    assert_eq!(rx.wait_statuses(&id.to_string(), 2).await, vec![0, 5]);
    let late = inbound(&app, MSISDN, started.body["text"].as_str().unwrap()).await;
    assert_eq!(late.body["outcome"], "refused");
    assert_eq!(session(&app, id).await["status"], 5);
    app.callbacks_settled(id).await;
    assert_eq!(rx.received(&id.to_string()).iter().map(|r| r.status()).collect::<Vec<_>>(), vec![0, 5]);
}

/// Brazil's ninth digit: the session's number has it, Meta's `from` (an older account) not.
#[tokio::test]
async fn a_brazilian_sender_without_the_ninth_digit_is_the_same_number() {
    let app = spawn_app().await;
    let started = start(&app, "5511987654321", None, json!({})).await;
    let answer = inbound(&app, "551187654321", started.body["text"].as_str().unwrap()).await;
    assert_eq!(answer.body["outcome"], "verified");
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The SQLite database's logical size (pages in use, the WAL's committed ones included) and
/// its rows, every table together.
fn database_figures(app: &TestApp) -> (i64, i64) {
    let path = app.database_url.trim_start_matches("sqlite://");
    let c = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let bytes: i64 = c
        .query_row("SELECT page_count * page_size FROM pragma_page_count, pragma_page_size", [], |r| r.get(0))
        .unwrap();
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let rows = tables
        .iter()
        .map(|t| c.query_row(&format!("SELECT count(*) FROM \"{t}\""), [], |r| r.get::<_, i64>(0)).unwrap())
        .sum();
    (bytes, rows)
}

/// Acceptance 3: 10,000 messages from random numbers, each with a word shaped like a code,
/// add no row, leave the database's size within 16 KiB and log at most 2 KiB (this test runs on a current-thread runtime, so
/// every task of its server logs to the capture).
#[tokio::test]
async fn a_flood_of_inbound_messages_from_random_numbers_writes_nothing_and_logs_little() {
    let app = spawn_app().await;
    let started = start(&app, MSISDN, None, json!({ "time_limit": 3600 })).await;
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        // What an operator runs with (info), and reverse verification's own lines at debug;
        // the per-request debug lines of the HTTP layer are not this feature's.
        .with_env_filter(waotp_server::logging::filter("info,waotp_server::reverse=debug").unwrap())
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    let sqlite = !app.database_url.starts_with("postgres");
    let before = sqlite.then(|| database_figures(&app));
    let id = app.app_id.to_string();
    let alphabet = waotp_core::reverse::ALPHABET;
    for n in 0..10_000u64 {
        let from = format!("628{:010}", n * 7919 % 10_000_000_000);
        let seed = Uuid::new_v4().as_u128();
        let code: String = (0..10).map(|i| char::from(alphabet[((seed >> (5 * i)) & 31) as usize])).collect();
        let body = json!({ "from": from, "text": format!("{code} is my verification code") }).to_string();
        let answer = app.post_raw("/v1/inbox/inbound", Some((&id, &app.api_key)), body).await;
        assert_eq!((answer.status, answer.body["outcome"].as_str()), (200, Some("ignored")), "{n}");
    }
    drop(guard);
    let logged = captured.0.lock().unwrap().len();
    // One line a minute at most, whatever the flood's rate (the test takes well under two).
    assert!(logged <= 2 * 1024, "10,000 ignored messages logged {logged} bytes");
    if let Some((bytes_before, rows_before)) = before {
        let (bytes, rows) = database_figures(&app);
        assert_eq!(rows, rows_before, "10,000 ignored messages added rows");
        assert!(
            bytes - bytes_before <= 16 * 1024,
            "10,000 ignored messages grew the database by {} bytes",
            bytes - bytes_before
        );
    }
    // The pending session is untouched.
    let s = session(&app, started.session_id()).await;
    assert_eq!((s["status"].as_i64(), s["wrong_attempts"].as_i64()), (Some(0), Some(0)));
}

/// waotp wired to a Graph API double, and the double's webhooks wired back to waotp.
pub(crate) async fn with_double() -> (TestApp, GraphDouble) {
    spawn_app_with_double(|_| {}, |d| d.display_phone_number = "+1 555-010-0199".into()).await
}

/// The Graph API cannot say the business number (and `whatsapp_display_number` is unset): a
/// reverse start answers 503 `business_number_unavailable` with `Retry-After` (not
/// `store_unavailable`), and the next start answers the same at once, without
/// asking the Graph API again while the backoff lasts; after it, the number is read again.
#[tokio::test]
async fn a_business_number_the_graph_api_cannot_give_is_its_own_503_and_backs_off() {
    let (app, double) = with_double().await;
    let lookups = || double.management_requests().iter().filter(|r| r.method == "GET" && r.path == PNID).count();
    let before = lookups();
    double.meta(|m| m.token.valid = false);
    let body = json!({ "msisdn": MSISDN, "method": "reverse" });
    let first = app.send(body.clone()).await;
    assert_eq!((first.status, first.body["error_code"].as_str()), (503, Some("business_number_unavailable")));
    assert_eq!(first.headers["retry-after"], "5");
    assert_eq!(lookups(), before + 1);
    let second = app.send(json!({ "msisdn": "6281234567891", "method": "reverse" })).await;
    assert_eq!((second.status, second.body["error_code"].as_str()), (503, Some("business_number_unavailable")));
    let retry: u64 = second.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=5).contains(&retry), "{retry}");
    assert_eq!(lookups(), before + 1, "the second start did not wait for another lookup");
    // The backoff over and the Graph API answering again: read once more, and remembered.
    double.meta(|m| m.token.valid = true);
    app.clock.advance(Duration::from_secs(6));
    let started = start(&app, MSISDN, None, json!({})).await;
    assert_eq!(started.body["business_number"], "15550100199");
    start(&app, "6281234567891", None, json!({})).await;
    assert_eq!(lookups(), before + 2);
}

/// Acceptance 2 (and 3's replay): a signed inbound webhook verifies; the double receives one
/// reaction for it and no template; the same webhook again changes nothing.
#[tokio::test]
async fn a_signed_inbound_webhook_verifies_and_gets_one_reaction() {
    let (app, double) = with_double().await;
    let rx = Receiver::start().await;
    let started = start(&app, MSISDN, Some(&rx), json!({})).await;
    let second = start(&app, "6281234567891", None, json!({})).await;
    // The business number, read once from the Graph API.
    assert_eq!(started.body["business_number"], "15550100199");
    assert_eq!(second.body["business_number"], "15550100199");
    assert_eq!(double.phone_number_lookups(), 1);
    let id = started.session_id();
    let text = started.body["text"].as_str().unwrap();
    // The same message from a stranger, twice (a replay): one wrong sender, no wrong try.
    let stranger = inbound_text_value("15550100199", PNID, STRANGER, "wamid.STRANGER", text);
    assert_eq!(double.send_change("WABA", "messages", stranger.clone()).await, 200);
    assert_eq!(double.send_change("WABA", "messages", stranger).await, 200);
    let s = session(&app, id).await;
    assert_eq!((s["wrong_attempts"].as_i64(), s["wrong_senders"].as_i64()), (Some(0), Some(1)));
    // The user's own message, twice.
    let value = inbound_text_value("15550100199", PNID, MSISDN, "wamid.USER", text);
    assert_eq!(double.send_change("WABA", "messages", value.clone()).await, 200);
    assert_eq!(rx.wait_statuses(&id.to_string(), 2).await, vec![0, 4]);
    assert_eq!(double.send_change("WABA", "messages", value).await, 200);
    let reactions = eventually("the reaction", Duration::from_secs(10), || async {
        let got = double.received();
        if got.is_empty() {
            Err(got.len())
        } else {
            Ok(got)
        }
    })
    .await;
    app.callbacks_settled(id).await;
    let got = double.received();
    assert_eq!(got.len(), 1, "{:?}", got.iter().map(|r| &r.body).collect::<Vec<_>>());
    let r = &reactions[0];
    assert_eq!((r.answered, r.to.as_str()), (200, MSISDN));
    assert_eq!(
        r.body,
        json!({ "messaging_product": "whatsapp", "recipient_type": "individual", "to": MSISDN, "type": "reaction",
                "reaction": { "message_id": "wamid.USER", "emoji": "\u{2705}" } })
    );
    assert!(got.iter().all(|r| r.body["type"] != "template"));
    assert_eq!(rx.received(&id.to_string()).iter().map(|r| r.status()).collect::<Vec<_>>(), vec![0, 4]);
    // The local inbox's simulation is refused when WhatsApp is configured.
    let simulated = app.post("/v1/inbox/inbound", json!({ "from": MSISDN, "text": text })).await;
    assert_eq!(simulated.status, 400);
}

/// The sandbox's reverse scenario verifies itself about a second after the start.
#[tokio::test]
async fn the_sandbox_reverse_scenario_verifies_itself_with_its_callbacks() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    let started = app
        .post(
            "/v2/whatsapp/otp/send/sandbox",
            json!({ "msisdn": "6282123060017", "method": "reverse", "callback_url": format!("{}/cb", rx.base) }),
        )
        .await;
    assert_eq!(started.status, 201, "{}", started.body);
    assert!(started.body["wa_link"].as_str().unwrap().starts_with("https://wa.me/15550000000?text="));
    let id = started.session_id();
    assert_eq!(rx.wait_statuses(&id.to_string(), 2).await, vec![0, 4]);
    let s = session(&app, id).await;
    assert_eq!((s["status"].as_i64(), s["method"].as_str()), (Some(4), Some("sandbox")));
    // A client's ordinary sandbox send (its own otp, no method) to the number: the otp is
    // ignored, not refused (schemathesis found the refusal: a schema-valid request).
    let ordinary = app
        .post("/v2/whatsapp/otp/send/sandbox", json!({ "msisdn": "6282123060017", "otp": "123456", "challenge": "c" }))
        .await;
    assert_eq!(ordinary.status, 201, "{}", ordinary.body);
    assert_ne!(ordinary.body["otp"], "123456");
    assert!(ordinary.body["wa_link"].is_string());
    // A malformed otp is still a validation error.
    let malformed =
        app.post("/v2/whatsapp/otp/send/sandbox", json!({ "msisdn": "6282123060017", "otp": [1, 2] })).await;
    assert_eq!(malformed.status, 400, "{}", malformed.body);
}

/// The dashboard: Try it starts a reverse verification and shows its link and QR code; the
/// funnel counts reverse verifications apart (requested → verified) and the sends that needed
/// no template.
#[tokio::test]
async fn the_dashboard_starts_reverse_verifications_and_counts_them_apart() {
    const ADMIN: &str = "dashboard-admin-token-0123456789";
    let app = spawn_app_with(|c| c.admin_token = Some(Secret::new(ADMIN))).await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let login = http.post(format!("{}/dashboard/login", app.base)).form(&[("token", ADMIN)]).send().await.unwrap();
    assert_eq!(login.status().as_u16(), 303);
    let cookie = login.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let app_id = app.app_id.to_string();
    let tried = http
        .post(format!("{}/dashboard/try/send", app.base))
        .header("cookie", &cookie)
        .form(&[("app", app_id.as_str()), ("mode", "production"), ("msisdn", MSISDN), ("method", "reverse")])
        .send()
        .await
        .unwrap();
    assert_eq!(tried.status().as_u16(), 200);
    let page = tried.text().await.unwrap();
    assert!(page.contains("id=\"answer-wa-link\" href=\"https://wa.me/15550000000?text="), "{page}");
    assert!(page.contains("id=\"answer-qr\"><svg"), "{page}");
    // One reverse verification verified, one template send.
    let text = page.split("%20is%20my").next().unwrap().rsplit("text=").next().unwrap().to_owned();
    assert_eq!(inbound(&app, MSISDN, &format!("{text} is my verification code")).await.body["outcome"], "verified");
    assert_eq!(app.send(json!({ "msisdn": "6281234567891" })).await.status, 201);
    let funnel = http.get(format!("{}/dashboard/funnel", app.base)).header("cookie", &cookie).send().await.unwrap();
    let page = funnel.text().await.unwrap();
    let no_template = page.split("id=\"funnel-no-template\"").nth(1).unwrap().split("</p>").next().unwrap();
    assert!(no_template.contains("<strong>1</strong> of 2 (50.0%)"), "{no_template}");
    let reverse = page.split("id=\"funnel-reverse\"").nth(1).unwrap().split("</table>").next().unwrap();
    assert!(
        reverse.contains("<td class=\"num\">1</td><td class=\"num\">1</td><td class=\"num\">100.0%</td>"),
        "{reverse}"
    );
}

/// An app's own prefilled texts (by language, the base language's for a regional one, waotp's
/// default otherwise) are what the user sends, and verify; its optional text reply follows the
/// free reaction, from the app's number (the double sees both, and no template).
#[tokio::test]
async fn an_app_s_own_texts_and_its_optional_reply() {
    let (app, double) = with_double().await;
    let mut settings = app.state.store.get_app(app.app_id).await.unwrap().unwrap().settings;
    settings.reverse_texts =
        vec![("en".into(), "Acme login: {code}".into()), ("pt".into(), "Meu código Acme é {code}".into())];
    settings.reverse_reply = Some("Thanks, your number is verified.".into());
    app.state.store.update_app_settings(app.app_id, settings).await.unwrap();
    app.state.invalidate_app(app.app_id);

    let en = start(&app, MSISDN, None, json!({})).await;
    assert_eq!(en.body["text"], format!("Acme login: {}", en.otp()));
    assert!(en.body["wa_link"].as_str().unwrap().ends_with(&format!("?text=Acme%20login%3A%20{}", en.otp())));
    let pt = start(&app, "6281234567892", None, json!({ "lang_code": "pt_BR" })).await;
    assert_eq!(pt.body["text"], format!("Meu código Acme é {}", pt.otp()));
    let id = start(&app, "6281234567893", None, json!({ "lang_code": "id" })).await;
    assert_eq!(id.body["text"], format!("{} adalah kode verifikasi saya", id.otp()));

    // The user sends the app's text: verified, ✅, then the reply.
    let text = en.body["text"].as_str().unwrap();
    let value = inbound_text_value("15550100199", PNID, MSISDN, "wamid.ACME", text);
    assert_eq!(double.send_change("WABA", "messages", value).await, 200);
    let got = eventually("the reaction and the reply", Duration::from_secs(10), || async {
        let got = double.received();
        if got.len() >= 2 {
            Ok(got)
        } else {
            Err(got.len())
        }
    })
    .await;
    assert_eq!(session(&app, en.session_id()).await["status"], 4);
    let kinds: Vec<_> = got.iter().map(|r| r.body["type"].as_str().unwrap().to_owned()).collect();
    assert_eq!(kinds, ["reaction", "text"]);
    assert_eq!(
        got[1].body,
        json!({ "messaging_product": "whatsapp", "recipient_type": "individual", "to": MSISDN, "type": "text",
                "text": { "preview_url": false, "body": "Thanks, your number is verified." } })
    );
    // A refused message (a stranger's) gets neither.
    let value = inbound_text_value("15550100199", PNID, STRANGER, "wamid.X", pt.body["text"].as_str().unwrap());
    assert_eq!(double.send_change("WABA", "messages", value).await, 200);
    assert_eq!(session(&app, pt.session_id()).await["wrong_senders"], 1);
    assert_eq!(double.received().len(), 2);
}

/// The settings are checked where they are set: a text must hold {code} once, be one line (no
/// Unicode line break, no bidi control) and short enough for a link; the reply is bounded; `null` and `{}` clear them.
#[tokio::test]
async fn reverse_settings_are_validated_by_the_admin_api() {
    const ADMIN: &str = "reverse-admin-token-0123456789";
    let app = spawn_app_with(|c| c.admin_token = Some(Secret::new(ADMIN))).await;
    let http = reqwest::Client::new();
    let patch = |body: Value| {
        http.patch(format!("{}/admin/apps/{}", app.base, app.app_id)).bearer_auth(ADMIN).json(&body).send()
    };
    for (body, why) in [
        (json!({ "reverse_texts": { "en": "no code here" } }), "{code}"),
        (json!({ "reverse_texts": { "en": "{code} and {code}" } }), "{code}"),
        (json!({ "reverse_texts": { "en": "line\n{code}" } }), "control"),
        // Unicode's other line breaks and the bidi controls, which no earlier rule caught.
        (json!({ "reverse_texts": { "en": "Kode {code}\u{2028}lagi" } }), "U+2028 refused"),
        (json!({ "reverse_texts": { "en": "Kode {code} \u{202E}kiffa" } }), "U+202E refused"),
        (json!({ "reverse_reply": "Thanks\u{2066}!" }), "U+2066 refused"),
        (json!({ "reverse_texts": { "en": format!("{{code}} {}", "x".repeat(200)) } }), "200"),
        (json!({ "reverse_texts": { "e n": "{code}" } }), "language"),
        (json!({ "reverse_texts": { "en": format!("{} {{code}}", "\u{1F600}".repeat(190)) } }), "percent-encoded"),
        (json!({ "reverse_reply": "" }), "reverse reply"),
        (json!({ "reverse_reply": "x".repeat(1025) }), "reverse reply"),
    ] {
        let answer = patch(body.clone()).await.unwrap();
        assert_eq!(answer.status().as_u16(), 400, "{body}");
        let text = answer.text().await.unwrap();
        assert!(text.contains(why), "{body}: {text}");
    }
    let set =
        patch(json!({ "reverse_texts": { "id": "Kode {code}" }, "reverse_reply": "Terima kasih" })).await.unwrap();
    assert_eq!(set.status().as_u16(), 200);
    let shown: Value = set.json().await.unwrap();
    assert_eq!(
        (shown["reverse_texts"].clone(), shown["reverse_reply"].clone()),
        (json!({ "id": "Kode {code}" }), json!("Terima kasih"))
    );
    let started = start(&app, MSISDN, None, json!({ "lang_code": "id" })).await;
    assert_eq!(started.body["text"], format!("Kode {}", started.otp()));
    let cleared: Value =
        patch(json!({ "reverse_texts": {}, "reverse_reply": null })).await.unwrap().json().await.unwrap();
    assert_eq!((cleared["reverse_texts"].clone(), cleared["reverse_reply"].clone()), (json!({}), Value::Null));
}

/// A code proves the number only to the business it was sent to: the same code sent to another
/// number (another business on the same Meta app) verifies nothing and is no wrong try; the
/// local inbox's simulation, with another app's credentials, neither.
#[tokio::test]
async fn a_code_sent_to_another_business_or_by_another_app_verifies_nothing() {
    let (app, double) = with_double().await;
    let started = start(&app, MSISDN, None, json!({})).await;
    let text = started.body["text"].as_str().unwrap();
    let elsewhere = inbound_text_value("15550100777", "999000111222", MSISDN, "wamid.ELSEWHERE", text);
    assert_eq!(double.send_change("WABA", "messages", elsewhere).await, 200);
    let s = session(&app, started.session_id()).await;
    assert_eq!((s["status"].as_i64(), s["wrong_attempts"].as_i64()), (Some(0), Some(0)));
    assert!(double.received().is_empty(), "no reaction from a number the user did not write to");
    // To the server's number: verified.
    let here = inbound_text_value("15550100199", PNID, MSISDN, "wamid.HERE", text);
    assert_eq!(double.send_change("WABA", "messages", here).await, 200);
    assert_eq!(session(&app, started.session_id()).await["status"], 4);

    let local = spawn_app().await;
    let started = start(&local, MSISDN, None, json!({})).await;
    let (other_id, other_key) = local.other_app().await;
    let body = json!({ "from": MSISDN, "text": started.body["text"] }).to_string();
    let other_id = other_id.to_string();
    let by_other = local.post_raw("/v1/inbox/inbound", Some((&other_id, &other_key)), body).await;
    assert_eq!((by_other.status, by_other.body["outcome"].as_str()), (200, Some("ignored")));
    assert_eq!(session(&local, started.session_id()).await["status"], 0);
    assert_eq!(inbound(&local, MSISDN, started.body["text"].as_str().unwrap()).await.body["outcome"], "verified");
}

/// A session keeps the text its key was made of: after the app changes its reverse text, the
/// session's QR code and an idempotent replay of its start still show the text it began with,
/// and that text verifies it (review of issue 38: a link rebuilt from the new text named nothing).
#[tokio::test]
async fn a_pending_session_keeps_its_text_when_the_app_changes_its_own() {
    let app = spawn_app().await;
    let set_text = |text: &'static str| {
        let app = &app;
        async move {
            let mut settings = app.state.store.get_app(app.app_id).await.unwrap().unwrap().settings;
            settings.reverse_texts = vec![("en".into(), text.into())];
            app.state.store.update_app_settings(app.app_id, settings).await.unwrap();
            app.state.invalidate_app(app.app_id);
        }
    };
    set_text("Acme login: {code}").await;
    let body = json!({ "msisdn": MSISDN, "method": "reverse", "challenge": "login" }).to_string();
    let started = app.post_idempotent("/v2/whatsapp/otp/send", "keep-text-1", body.clone()).await;
    assert_eq!(started.status, 201, "{}", started.body);
    let (id, text) = (started.session_id(), started.body["text"].as_str().unwrap().to_owned());
    assert_eq!(text, format!("Acme login: {}", started.otp()));

    set_text("Another text {code}").await;
    let replayed = app.post_idempotent("/v2/whatsapp/otp/send", "keep-text-1", body).await;
    assert_eq!((replayed.session_id(), replayed.body["text"].as_str()), (id, Some(text.as_str())));
    assert_eq!(replayed.body["wa_link"], started.body["wa_link"]);
    let creds = (app.app_id.to_string(), app.api_key.clone());
    let qr = app
        .http
        .get(format!("{}/v1/sessions/{id}/qr.svg", app.base))
        .header("App-ID", &creds.0)
        .header("API-Key", &creds.1)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let expected = waotp_server::reverse::qr_of(started.body["wa_link"].as_str().unwrap()).unwrap();
    assert!(qr == expected, "the QR code shows another link than the session's");
    assert_eq!(inbound(&app, MSISDN, &text).await.body["outcome"], "verified");
}
