//! The dashboard, driven in a real headless Chromium: log in, create an app, send and verify
//! from the try-it form, watch the session's timeline fill in, replay a failed callback, see
//! the funnel and its refusals; every page checked at 1280 and 390 px wide (no sideways
//! scrolling, every field labelled, no request but the page itself) and screenshotted into
//! `$CARGO_TARGET_TMPDIR/dashboard-screenshots/`.

use std::path::PathBuf;

use serde_json::{json, Value};
use waotp_server::config::Secret;

use waotp_test_support::app::{spawn_app, spawn_app_with, TestApp};
use waotp_test_support::browser::Browser;
use waotp_test_support::receiver::Receiver;

pub(crate) const TOKEN: &str = "dashboard-admin-token-0123456789";
const MSISDN: &str = "6281234567890";

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn spawn_dashboard() -> TestApp {
    spawn_app_with(|c| c.admin_token = Some(Secret::new(TOKEN))).await
}

/// Checks what every page must hold at the current width, and screenshots the whole page.
pub(crate) async fn check_page(b: &Browser, name: &str, width: u32) {
    let facts = b
        .execute(
            "const unlabelled = [...document.querySelectorAll('input, select, textarea')]
                .filter(e => e.type !== 'hidden' && e.type !== 'submit')
                .filter(e => e.labels.length === 0 && !e.getAttribute('aria-label'))
                .map(e => e.id || e.name);
             const unnamedButtons = [...document.querySelectorAll('button')]
                .filter(b => !(b.textContent.trim() || b.getAttribute('aria-label'))).length;
             return {
               inner: window.innerWidth,
               scroll: document.documentElement.scrollWidth,
               height: document.documentElement.scrollHeight,
               unlabelled,
               unnamedButtons,
               resources: performance.getEntriesByType('resource').map(r => r.name),
               scripts: document.scripts.length,
               forms: document.forms.length,
               background: getComputedStyle(document.body).backgroundColor,
             };",
            json!([]),
        )
        .await;
    assert_eq!(facts["inner"], json!(width), "{name}: the viewport is {width} px wide");
    assert!(facts["scroll"].as_i64() <= facts["inner"].as_i64(), "{name} at {width} px scrolls sideways: {facts}");
    assert_eq!(facts["unlabelled"], json!([]), "{name} at {width} px has fields without labels");
    assert_eq!(facts["unnamedButtons"], json!(0), "{name}: a button without a name");
    assert_eq!(facts["resources"], json!([]), "{name}: the page fetched more than itself");
    assert_eq!(facts["scripts"], json!(0), "{name}: no script");
    // The style sheet applies under the page's Content-Security-Policy (allowed by its hash).
    assert_eq!(facts["background"], json!("rgb(245, 246, 248)"), "{name}: the style sheet is not applied");
    // The whole page in one picture: the window as tall as the page, then back.
    let height = facts["height"].as_u64().unwrap_or(900).clamp(600, 6000) as u32;
    let normal = if width < 600 { 844 } else { 900 };
    b.resize(width, height).await;
    b.screenshot(&screenshots().join(format!("{name}-{width}.png"))).await;
    b.resize(width, normal).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_end_to_end_in_chromium() {
    let app = spawn_dashboard().await;
    let rx = Receiver::start().await;
    rx.set_down(true);
    let base = format!("{}/dashboard", app.base);
    let b = Browser::start(1280, 900).await;

    // Log in: a page that needs it sends us to the login form; a wrong token is refused.
    b.goto(&format!("{base}/funnel")).await;
    assert!(b.url().await.ends_with("/dashboard/login"), "{}", b.url().await);
    check_page(&b, "login", 1280).await;
    b.fill("#token", "not-the-token").await;
    b.click_through("form button[type=submit]").await;
    assert!(b.text("main").await.contains("not the admin token"));
    b.fill("#token", TOKEN).await;
    b.click_through("form button[type=submit]").await;
    assert!(b.url().await.ends_with("/dashboard/sessions"), "{} {}", b.url().await, b.text("body").await);

    // Manage: create an app; its key is shown once, and it works.
    b.goto(&format!("{base}/manage")).await;
    b.fill("#new-name", "Browser shop").await;
    b.fill("#new-quota", "100").await;
    b.click_through("form[action='/dashboard/manage/apps'] button").await;
    let app_id = b.text("#app-id").await;
    let api_key = b.text("#api-key").await;
    assert!(b.text("main").await.contains("will not be shown again"));
    check_page(&b, "app-created", 1280).await;
    let res = app
        .http
        .post(format!("{}/v1/whatsapp/otp/send/sandbox", app.base))
        .header("App-ID", &app_id)
        .header("API-Key", &api_key)
        .json(&json!({ "msisdn": "6282123060001" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201, "the new app's key works");

    // Manage: block a prefix, so a send there is refused (and counted in the funnel).
    b.goto(&format!("{base}/manage")).await;
    b.fill("#block-entry", "6289999*").await;
    b.click_through("form[action='/dashboard/manage/blocklist'] button").await;
    assert!(b.text("#blocklist").await.contains("6289999*"));

    // Try it: a production send with a callback URL whose receiver is down.
    b.goto(&format!("{base}/try")).await;
    b.choose("#send-app", &app_id).await;
    b.choose("#send-mode", "production").await;
    b.fill("#send-msisdn", MSISDN).await;
    b.fill("#send-callback", &format!("{}/cb", rx.base)).await;
    b.click_through("form[action='/dashboard/try/send'] button").await;
    assert!(b.exists("#answer[data-status='201']").await, "{}", b.text("main").await);
    let answer: Value = serde_json::from_str(&b.text("#answer pre").await).unwrap();
    let session_id = answer["session_id"].as_str().unwrap().to_owned();
    let otp = answer["otp"].as_str().unwrap().to_owned();

    // Its session appears, and its timeline fills in as the inbox channel delivers it.
    b.click_through("#answer-session").await;
    let session_url = format!("{base}/sessions/{session_id}");
    assert_eq!(b.url().await, session_url);
    b.wait_for(&session_url, "li.done[data-step='delivered']").await;
    assert!(b.exists("li.done[data-step='requested']").await);
    assert!(b.exists("li.done[data-step='sent']").await);
    assert!(b.exists("li.todo[data-step='outcome']").await);

    // Verify from the try-it form; the timeline ends in 4 Verified.
    b.goto(&format!("{base}/try")).await;
    b.choose("#verify-app", &app_id).await;
    b.choose("#verify-mode", "production").await;
    b.fill("#verify-msisdn", MSISDN).await;
    b.fill("#verify-otp", &otp).await;
    b.click_through("form[action='/dashboard/try/verify'] button").await;
    assert!(b.exists("#answer[data-status='200']").await, "{}", b.text("main").await);
    assert!(b.text("#answer pre").await.contains("OTP has been verified"));
    check_page(&b, "try", 1280).await;
    b.goto(&session_url).await;
    assert!(b.text("li[data-step='outcome']").await.contains("4 Verified"));
    assert!(b.exists("li.done[data-step='outcome']").await);

    // A refused send (blocked prefix) from the try-it form: a 409 with the contract's body.
    b.goto(&format!("{base}/try")).await;
    b.choose("#send-app", &app_id).await;
    b.choose("#send-mode", "production").await;
    b.fill("#send-msisdn", "6289999000111").await;
    b.click_through("form[action='/dashboard/try/send'] button").await;
    assert!(b.exists("#answer[data-status='409']").await, "{}", b.text("main").await);

    // Sessions: search by msisdn finds it.
    b.goto(&format!("{base}/sessions?msisdn=%2B{MSISDN}")).await;
    assert!(b.exists(&format!("tr[data-session='{session_id}']")).await);
    assert!(b.text("#sessions").await.contains("Browser shop"));
    check_page(&b, "sessions", 1280).await;

    // Callbacks: every attempt failed, so its callbacks are listed; replay one once the
    // receiver is back, and it arrives.
    let failed_row = format!("#failed-callbacks tr[data-session='{session_id}']");
    b.wait_for(&format!("{base}/callbacks"), &failed_row).await;
    check_page(&b, "callbacks", 1280).await;
    assert!(rx.received(&session_id).is_empty());
    rx.set_down(false);
    b.click_through(&format!("{failed_row} form button")).await;
    assert!(b.text("main").await.contains("Callback replay queued"), "{}", b.text("main").await);
    let statuses = rx.wait_statuses(&session_id, 1).await;
    assert_eq!(statuses.len(), 1);
    // The session page shows that callback delivered.
    b.wait_for(&session_url, &format!("div[data-callback='{}'] [data-state='delivered']", statuses[0])).await;
    check_page(&b, "session", 1280).await;

    // Inbox: the message the channel delivered.
    b.goto(&format!("{base}/inbox")).await;
    let inbox = b.text("#inbox").await;
    assert!(inbox.contains(MSISDN) && inbox.contains("Browser shop"), "{inbox}");
    check_page(&b, "inbox", 1280).await;

    // Funnel: the app's session went all the way; the blocked send is a refusal.
    b.goto(&format!("{base}/funnel?app={app_id}")).await;
    let row = b.text("#funnel-apps tbody tr").await;
    assert!(row.starts_with("Browser shop"), "{row}");
    let counts: Vec<&str> = row.split_whitespace().skip(2).take(5).collect();
    // No read receipt came (the dashboard's inbox page does not mark messages read), but a
    // verified code was received: it counts as read.
    assert_eq!(counts, ["1", "1", "1", "1", "1"], "requested, sent, delivered, read, verified: {row}");
    assert!(b.text("#refusals").await.contains("blocked_prefix"));
    assert!(b.exists("svg#funnel-chart").await && b.exists("svg#days-chart").await);
    check_page(&b, "funnel", 1280).await;
    b.goto(&format!("{base}/manage")).await;
    assert!(b.text("#apps").await.contains("Browser shop"));
    check_page(&b, "manage", 1280).await;
    b.goto(&format!("{base}/whatsapp")).await;
    assert!(b.text("#health-apps").await.contains("Browser shop"));
    check_page(&b, "whatsapp", 1280).await;

    // Every page at a phone's width.
    b.resize(390, 844).await;
    for (name, path) in [
        ("sessions", "/sessions".to_owned()),
        ("session", format!("/sessions/{session_id}")),
        ("funnel", "/funnel".to_owned()),
        ("inbox", "/inbox".to_owned()),
        ("callbacks", "/callbacks".to_owned()),
        ("manage", "/manage".to_owned()),
        ("whatsapp", "/whatsapp".to_owned()),
        ("try", "/try".to_owned()),
    ] {
        b.goto(&format!("{base}{path}")).await;
        check_page(&b, name, 390).await;
    }

    // Log out: the pages need a login again.
    b.click_through("header form button").await;
    b.goto(&format!("{base}/sessions")).await;
    assert!(b.url().await.ends_with("/dashboard/login"));
    b.quit().await;
}

/// The forms make their changes, and refuse bad input with a 400 page that says why, changing
/// nothing.
#[tokio::test]
async fn dashboard_forms_change_things_and_refuse_bad_input() {
    let app = spawn_dashboard().await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let login = client.post(format!("{}/dashboard/login", app.base)).form(&[("token", TOKEN)]).send().await.unwrap();
    assert_eq!(login.status().as_u16(), 303);
    let set_cookie = login.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    assert!(!set_cookie.contains("Secure"), "plain http: {set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    // Logged in over https (as the browser's Origin says, through a TLS proxy: the browser
    // vouches that the form is the page's own), the cookie is Secure.
    let host = app.base.trim_start_matches("http://");
    let https = client
        .post(format!("{}/dashboard/login", app.base))
        .header("origin", format!("https://{host}"))
        .header("sec-fetch-site", "same-origin")
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert!(https.headers()["set-cookie"].to_str().unwrap().contains("; Secure"));
    let post = |path: &str, form: Vec<(&str, String)>| {
        client.post(format!("{}/dashboard{path}", app.base)).header("cookie", cookie.clone()).form(&form).send()
    };
    let apps_before = app.state.store.list_apps().await.unwrap().len();
    let r = post("/manage/apps", vec![("name", "  ".into())]).await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().await.unwrap().contains("app name must be 1 to 200 characters"));
    let r = post("/manage/apps", vec![("name", "x".into()), ("quota", "-3".into())]).await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(app.state.store.list_apps().await.unwrap().len(), apps_before, "nothing half-made");
    let r = post("/manage/blocklist", vec![("entry", "12ab".into())]).await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(app.state.store.blocklist().await.unwrap().is_empty());
    let r = post("/manage/quota", vec![("app", app.app_id.to_string()), ("quota", "lots".into())]).await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = post("/callbacks/replay", vec![("app_id", "x".into())]).await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    // Try it: a garbled mode is refused, never taken for a production send.
    let r = post(
        "/try/send",
        vec![("app", app.app_id.to_string()), ("mode", "prod".into()), ("msisdn", "6281234567890".into())],
    )
    .await
    .unwrap();
    assert_eq!(r.headers()["cache-control"], "no-store");
    let page = r.text().await.unwrap();
    assert!(page.contains("data-status=\"400\"") && page.contains("mode must be sandbox or production"), "{page}");
    let query = waotp_store::SessionQuery { app_id: Some(app.app_id), limit: 10, ..Default::default() };
    assert!(app.state.store.search_sessions(query).await.unwrap().is_empty(), "nothing stored");
    let r = client
        .get(format!("{}/dashboard/sessions?session_id=nope", app.base))
        .header("cookie", cookie.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().await.unwrap().contains("session id must be a UUID"));
    // The same forms make their changes when the input is good.
    let app_field = ("app", app.app_id.to_string());
    let r = post("/manage/quota", vec![app_field.clone(), ("quota", "42".into())]).await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(app.state.store.get_app(app.app_id).await.unwrap().unwrap().quota, Some(42));
    let r = post(
        "/manage/templates",
        vec![
            app_field.clone(),
            ("name", "login_code".into()),
            ("language", "id".into()),
            ("category", "utility".into()),
            ("body", "Kode Anda {{1}}".into()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let templates = app.state.store.list_templates(app.app_id).await.unwrap();
    assert_eq!((templates[0].name.as_str(), templates[0].body.as_str()), ("login_code", "Kode Anda {{1}}"));
    let r = post(
        "/manage/templates/delete",
        vec![app_field.clone(), ("name", "login_code".into()), ("language", "id".into())],
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert!(app.state.store.list_templates(app.app_id).await.unwrap().is_empty());
    let r = post("/manage/blocklist", vec![("entry", "+62811*".into()), app_field.clone()]).await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(app.state.store.blocklist().await.unwrap()[0].app_id, Some(app.app_id));
    let r = post("/manage/blocklist/delete", vec![("entry", "62811*".into()), app_field.clone()]).await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert!(app.state.store.blocklist().await.unwrap().is_empty());
    let r = post(&format!("/manage/apps/{}/api-key", app.app_id), vec![]).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let page = r.text().await.unwrap();
    let old_key = app.send(waotp_test_support::app::send_body("6282123060001")).await;
    assert_eq!(old_key.status, 401, "the old key stopped working");
    assert!(page.contains("wak_"), "the new key is shown once");

    // A cross-site post is refused even with the cookie.
    let r = client
        .post(format!("{}/dashboard/manage/apps", app.base))
        .header("cookie", cookie.clone())
        .header("origin", "http://evil.example")
        .form(&[("name", "evil")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(app.state.store.list_apps().await.unwrap().len(), apps_before);
    // A forged cookie is not a login.
    let r = client
        .get(format!("{}/dashboard/sessions", app.base))
        .header("cookie", "waotp_dashboard=99999999999999.00")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
}

/// Without an admin token the dashboard is off, and says how to turn it on.
#[tokio::test]
async fn dashboard_is_off_without_an_admin_token() {
    let app = spawn_app().await;
    let r = reqwest::get(format!("{}/dashboard/login", app.base)).await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert!(r.text().await.unwrap().contains("WAOTP_ADMIN_TOKEN"));
}

/// Logs `b` in to the dashboard at `base`.
pub(crate) async fn log_in(b: &Browser, base: &str) {
    b.goto(&format!("{base}/login")).await;
    b.fill("#token", TOKEN).await;
    b.click_through("form button[type=submit]").await;
    assert!(b.url().await.ends_with("/dashboard/sessions"), "{}", b.url().await);
}

/// One app's sessions of one day, by how far they got (each stage a subset of the one before).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Day {
    requested: usize,
    sent: usize,
    delivered: usize,
    read: usize,
    verified: usize,
}

/// Stores a day's sessions the way the WhatsApp channel would move them, `days_ago` days back,
/// through `store`: a handle of its own on `app`'s database. (On PostgreSQL a session stored
/// through the server's own handle is the server's to deliver, and its dispatcher could take
/// one before the seeded outcome is recorded; a live other node's sessions are left alone.)
async fn seed_day(
    app: &TestApp,
    store: &std::sync::Arc<dyn waotp_store::Store>,
    app_id: uuid::Uuid,
    days_ago: i64,
    d: Day,
    serial: &mut u64,
) {
    use waotp_core::{Guess, Msisdn, OtpCode, Status};
    use waotp_store::{DeliveryOutcome, ProviderReport, SendGuards, VerifyAttempt, DAY_MS};
    let today = app.clock.now_ms().div_euclid(DAY_MS);
    for i in 0..d.requested {
        *serial += 1;
        let msisdn = format!("62812{:08}", *serial);
        let t0 = (today - days_ago) * DAY_MS + 3_600_000 + i as i64 * 60_000;
        let mut new = waotp_test_support::app::stored_session(&app.state.key, app_id, &msisdn, "246810", None, t0);
        // Not yet expired: the server's expiry sweep must not close it while it is seeded.
        new.expires_at_ms = app.clock.now_ms() + DAY_MS;
        let session_id = new.session_id;
        store.create_session(new, SendGuards::default()).await.unwrap();
        let wamid = format!("wamid.seed{serial}");
        if i < d.sent {
            let sent = DeliveryOutcome::Sent { provider_id: wamid.clone() };
            store.record_delivery(session_id, sent, t0 + 1_000).await.unwrap();
        } else {
            let failed = DeliveryOutcome::Failed {
                status: Status::Failed,
                error_code: Some(131026),
                error_text: "Message undeliverable".into(),
            };
            store.record_delivery(session_id, failed, t0 + 1_000).await.unwrap();
        }
        if i < d.delivered {
            assert_eq!(
                store.report_provider_status(&wamid, vec![Status::Delivered], None, None, t0 + 2_000).await.unwrap(),
                ProviderReport::Applied
            );
        }
        if i < d.read {
            assert_eq!(
                store.report_provider_status(&wamid, vec![Status::Read], None, None, t0 + 3_000).await.unwrap(),
                ProviderReport::Applied
            );
        }
        if i < d.verified {
            let attempt = VerifyAttempt {
                app_id,
                sandbox: false,
                msisdn: Msisdn::parse(&msisdn).unwrap(),
                challenge: String::new(),
                guess: Guess::new(OtpCode::from_guess("246810"), app.state.key.clone()),
                now_ms: t0 + 4_000,
                limit: None,
                on_verified: Vec::new(),
            };
            store.verify(attempt).await.unwrap();
        }
    }
}

/// A week of two apps' traffic: the funnel page's per-day and per-app tables say exactly what
/// was stored, with the refusals by reason. Its screenshot is the book's (docs/src/guide/dashboard-funnel.png).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_funnel_counts_each_day_and_app() {
    let app = spawn_dashboard().await;
    let now = app.clock.now_ms();
    let create = |name: &'static str| {
        waotp_server::apps::create_app(app.state.store.as_ref(), &app.state.key, name, Default::default(), None, now)
    };
    let shop = create("Shop").await.unwrap().app;
    let bank = create("Bank").await.unwrap().app;
    let shop_day = |k: usize| {
        let requested = 30 + 7 * ((k * 3) % 5);
        let sent = requested - 1 - k % 3;
        let delivered = sent - 2 - k % 2;
        let read = delivered * 3 / 4;
        Day { requested, sent, delivered, read, verified: read * 5 / 6 }
    };
    let bank_day = |k: usize| {
        let requested = 12 + (k * 5) % 7;
        let sent = requested - k % 2;
        let delivered = sent - 1;
        let read = delivered / 2;
        Day { requested, sent, delivered, read, verified: read }
    };
    let mut serial = 0;
    // The seeder beats as often as the server expects of a live node (node_timeout 1s): with the
    // default 10s it beat every 2s, and the server took its sessions over whenever its last beat
    // was more than 1s old (seen under load: a seeded delivery replaced by the server's own).
    let mut seeder = waotp_server::Config::new(app.database_url.clone());
    seeder.node_timeout = std::time::Duration::from_secs(1);
    let seeder = seeder.open_store().await.unwrap();
    for k in 0..7 {
        seed_day(&app, &seeder, shop.app_id, k as i64, shop_day(k), &mut serial).await;
        seed_day(&app, &seeder, bank.app_id, k as i64, bank_day(k), &mut serial).await;
    }
    let today = now.div_euclid(waotp_store::DAY_MS);
    let refusal = |app_id, days_ago: i64, reason: &str, count| waotp_store::RefusalCount {
        app_id,
        day: today - days_ago,
        reason: waotp_core::RefusalReason::from_code(reason).unwrap(),
        count,
    };
    app.state
        .store
        .add_refusals(vec![
            refusal(shop.app_id, 1, "rate_limited_msisdn", 14),
            refusal(shop.app_id, 2, "rate_limited_msisdn", 3),
            refusal(shop.app_id, 3, "blocked_prefix", 6),
            refusal(bank.app_id, 0, "country_not_allowed", 5),
            refusal(bank.app_id, 9, "quota_exhausted", 50),
        ])
        .await
        .unwrap();

    let base = format!("{}/dashboard", app.base);
    let b = Browser::start(1280, 900).await;
    log_in(&b, &base).await;
    b.goto(&format!("{base}/funnel?days=7")).await;
    let rows = b.execute(
        "return [...document.querySelectorAll('#funnel-days tbody tr')].map(r => [...r.cells].map(c => c.textContent))",
        json!([]),
    );
    let rows = rows.await;
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 7, "one row a day, newest first: {rows:?}");
    for (k, row) in rows.iter().enumerate() {
        let (s, bk) = (shop_day(k), bank_day(k));
        let want: Vec<String> = [
            s.requested + bk.requested,
            s.sent + bk.sent,
            s.delivered + bk.delivered,
            s.read + bk.read,
            s.verified + bk.verified,
        ]
        .iter()
        .map(usize::to_string)
        .collect();
        let got: Vec<String> = row.as_array().unwrap()[1..6].iter().map(|v| v.as_str().unwrap().to_owned()).collect();
        assert_eq!(got, want, "day {k} ago: {row}");
    }
    let per_app = b.text("#funnel-apps").await;
    let total = |f: &dyn Fn(usize) -> Day, pick: fn(Day) -> usize| (0..7).map(|k| pick(f(k))).sum::<usize>();
    let shop_line = format!(
        "Shop {} {} {} {} {}",
        total(&shop_day, |d| d.requested),
        total(&shop_day, |d| d.sent),
        total(&shop_day, |d| d.delivered),
        total(&shop_day, |d| d.read),
        total(&shop_day, |d| d.verified)
    );
    assert!(per_app.contains(&shop_line), "{shop_line} in {per_app}");
    let refusals = b.text("#refusals").await;
    assert!(refusals.contains("rate_limited_msisdn Shop 17"), "{refusals}");
    assert!(refusals.contains("country_not_allowed Bank 5"), "{refusals}");
    assert!(!refusals.contains("quota_exhausted"), "older than the 7 days shown: {refusals}");
    // One app only.
    b.goto(&format!("{base}/funnel?days=7&app={}", bank.app_id)).await;
    let per_app = b.text("#funnel-apps").await;
    assert!(per_app.contains("Bank") && !per_app.contains("Shop"), "{per_app}");
    b.goto(&format!("{base}/funnel?days=7")).await;
    check_page(&b, "funnel-week", 1280).await;
    b.resize(390, 844).await;
    check_page(&b, "funnel-week", 390).await;
    b.quit().await;
}
