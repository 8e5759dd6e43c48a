//! The doctor against the Graph API double: a correct setup is all ok; each broken setup is
//! named, with its fix, as a failure.

use std::time::Duration;

use waotp_whatsapp::doctor::{self, ExpectedTemplate, Outcome, Report, Setup};
use waotp_whatsapp::double::{DoubleConfig, GraphDouble};
use waotp_whatsapp::management::ManagementClient;

const TOKEN: &str = "EAAG-doctor-token";
const PNID: &str = "106540352242922";
const SECRET: &str = "app-secret";
const HOOK: &str = "https://otp.example.com/webhooks/whatsapp";

async fn double() -> GraphDouble {
    let mut config = DoubleConfig::new(TOKEN, PNID, SECRET);
    config.webhook_url = Some(HOOK.into());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    GraphDouble::start(config, listener).unwrap()
}

fn expected(name: &str, language: &str) -> ExpectedTemplate {
    ExpectedTemplate { name: name.into(), language: language.into(), authentication: true, apps: vec!["shop".into()] }
}

fn setup(d: &GraphDouble) -> Setup {
    let (waba, app) = d.meta(|m| (m.waba_id.clone(), m.app_id.clone()));
    Setup {
        phone_number_id: PNID.into(),
        waba_id: Some(waba),
        app_id: Some(app),
        app_secret: Some(SECRET.into()),
        webhook_url: Some(HOOK.into()),
        messages_per_second: 80,
        messaging_limit: Some(2000),
        messaging_limit_from_meta: false,
        // The app's two languages; `en-US` as Meta's webhooks write it.
        templates: vec![expected("verification_code", "en-US"), expected("verification_code", "id")],
    }
}

async fn run(d: &GraphDouble, setup: &Setup) -> Report {
    let client = ManagementClient::new(&d.base(), "v24.0", TOKEN, Duration::from_secs(5)).unwrap();
    doctor::run(&client, setup).await
}

/// The failed check `check` (and subject): its detail contains `detail`, its fix `fix`.
fn assert_failure(r: &Report, check: &str, subject: Option<&str>, detail: &str, fix: &str) {
    assert!(r.send_would_fail(), "{r:#?}");
    let c = r.find(check, subject).unwrap_or_else(|| panic!("no check {check} {subject:?}: {r:#?}"));
    assert_eq!(c.outcome, Outcome::Failure, "{c:#?}");
    assert!(c.detail.contains(detail), "detail of {check}: {:?} lacks {detail:?}", c.detail);
    let f = c.fix.as_deref().unwrap_or_default();
    assert!(f.contains(fix), "fix of {check}: {f:?} lacks {fix:?}");
}

#[tokio::test]
async fn a_correct_setup_is_all_ok() {
    let d = double().await;
    let r = run(&d, &setup(&d)).await;
    assert!(r.checks.iter().all(|c| c.outcome == Outcome::Ok), "{r:#?}");
    assert!(!r.send_would_fail());
    let order: Vec<&str> = r.checks.iter().map(|c| c.check).collect();
    assert_eq!(
        order,
        [
            "token",
            "token.permissions",
            "token.waba",
            "waba",
            "number.in_waba",
            "number.status",
            "number.platform",
            "number.health",
            "number.quality",
            "number.messaging_limit",
            "number.throughput",
            "subscription",
            "app.webhook_fields",
            "template",
            "template",
            "webhook_url",
        ]
    );
    assert!(r.find("template", Some("verification_code (en-US)")).unwrap().detail.contains("APPROVED"));
    // debug_token was asked about the token with the app token (accepted, so "token" is ok),
    // which travels in the Authorization header: never in the URL, which proxies log.
    let debug = d.management_requests().into_iter().find(|q| q.path == "debug_token").unwrap();
    assert_eq!(debug.query["input_token"], TOKEN);
    assert!(!debug.query.contains_key("access_token"), "{:?}", debug.query);
}

#[tokio::test]
async fn a_token_missing_a_permission() {
    let d = double().await;
    d.meta(|m| m.token.scopes.retain(|s| s != "whatsapp_business_messaging"));
    let r = run(&d, &setup(&d)).await;
    assert_failure(&r, "token.permissions", None, "lacks whatsapp_business_messaging", "whatsapp_business_messaging");
}

#[tokio::test]
async fn an_expired_token() {
    let d = double().await;
    let an_hour_ago =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64 - 3600;
    d.meta(|m| m.token.expires_at = an_hour_ago);
    let r = run(&d, &setup(&d)).await;
    assert_failure(&r, "token", None, "expired", "generate a new permanent token");
    // Every later call would fail with 190: the doctor stops and says so.
    assert_eq!(r.checks.last().unwrap().check, "stopped");
    // Without the app id, the first call's 190 names the token all the same.
    let mut no_app = setup(&d);
    no_app.app_id = None;
    let r = run(&d, &no_app).await;
    assert_eq!(r.find("token", None).unwrap().outcome, Outcome::Warning, "debug_token skipped: {r:#?}");
    let failed = r.checks.iter().find(|c| c.outcome == Outcome::Failure).expect("a failure");
    assert!(failed.detail.contains("invalid or has expired"), "{failed:#?}");
    assert!(failed.fix.as_deref().unwrap().contains("new permanent system-user token"), "{failed:#?}");
}

#[tokio::test]
async fn the_app_not_subscribed() {
    let d = double().await;
    d.meta(|m| m.subscribed_apps.clear());
    let r = run(&d, &setup(&d)).await;
    assert_failure(&r, "subscription", None, "is not subscribed", "/subscribed_apps");
    // The fix, as printed (a POST with the token and no body), works.
    let fix = r.find("subscription", None).unwrap().fix.clone().unwrap();
    let url = fix.split_whitespace().last().unwrap();
    let answer = reqwest::Client::new().post(url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(answer.json::<serde_json::Value>().await.unwrap(), serde_json::json!({ "success": true }));
    assert!(!run(&d, &setup(&d)).await.send_would_fail());
}

#[tokio::test]
async fn the_number_not_connected() {
    let d = double().await;
    d.meta(|m| m.number.status = "PENDING".into());
    let r = run(&d, &setup(&d)).await;
    assert_failure(&r, "number.status", None, "is PENDING, not CONNECTED", "register the number");
}

#[tokio::test]
async fn a_template_pending() {
    let d = double().await;
    d.set_template_status("verification_code", "id", "PENDING");
    let r = run(&d, &setup(&d)).await;
    assert_failure(&r, "template", Some("verification_code (id)"), "status PENDING", "wait for Meta's review");
    assert_eq!(r.find("template", Some("verification_code (en-US)")).unwrap().outcome, Outcome::Ok);
}

#[tokio::test]
async fn a_template_in_only_one_of_the_apps_two_languages() {
    let d = double().await;
    d.meta(|m| m.remove_template("verification_code", "id"));
    let r = run(&d, &setup(&d)).await;
    assert_failure(
        &r,
        "template",
        Some("verification_code (id)"),
        "but not in id",
        "waotp whatsapp template create --name verification_code --lang id",
    );
}

#[tokio::test]
async fn a_template_paused() {
    let d = double().await;
    d.set_template_status("verification_code", "en_US", "PAUSED");
    let r = run(&d, &setup(&d)).await;
    assert_failure(&r, "template", Some("verification_code (en-US)"), "status PAUSED", "132015");
    // Handed back for waotp to record as the sender's health.
    assert!(r.template_statuses.contains(&("verification_code".into(), "en_US".into(), "PAUSED".into())), "{r:#?}");
    assert!(r.template_statuses.contains(&("verification_code".into(), "id".into(), "APPROVED".into())), "{r:#?}");
}

#[tokio::test]
async fn missing_ids_are_named_not_failed() {
    let d = double().await;
    let mut s = setup(&d);
    s.waba_id = None;
    s.app_id = None;
    let r = run(&d, &s).await;
    assert!(!r.send_would_fail(), "{r:#?}");
    for check in ["token", "waba", "subscription", "app.webhook_fields", "template"] {
        let c = r.find(check, None).unwrap_or_else(|| panic!("{check}: {r:#?}"));
        assert_eq!(c.outcome, Outcome::Warning, "{c:#?}");
        assert!(c.fix.as_deref().unwrap().contains("WAOTP_WHATSAPP_"), "{c:#?}");
    }
    assert_eq!(r.find("number.status", None).unwrap().outcome, Outcome::Ok);
}

#[tokio::test]
async fn sends_of_a_template_meta_holds_unapproved_are_refused_with_metas_code() {
    let d = double().await;
    let client = waotp_whatsapp::GraphClient::new(&d.base(), "v24.0", Duration::from_secs(5)).unwrap();
    let message = |lang: &str| waotp_whatsapp::TemplateMessage {
        to: "6281234567890".into(),
        template: "verification_code".into(),
        language: lang.into(),
        body_parameters: vec!["482913".into()],
        button_parameter: Some("482913".into()),
    };
    assert!(client.send(PNID, TOKEN, &message("id")).await.is_ok());
    for (status, code) in [("PAUSED", 132015), ("DISABLED", 132016), ("PENDING", 132001)] {
        d.set_template_status("verification_code", "id", status);
        match client.send(PNID, TOKEN, &message("id")).await {
            Err(waotp_whatsapp::SendFailure::Graph { error, .. }) => assert_eq!(error.code, code, "{status}"),
            other => panic!("{status}: {other:?}"),
        }
    }
    d.set_template_status("verification_code", "id", "APPROVED");
    assert!(client.send(PNID, TOKEN, &message("id")).await.is_ok());
}

#[tokio::test]
async fn a_token_without_the_waba_and_a_wrong_app_secret() {
    let d = double().await;
    d.meta(|m| m.token.granular_scopes = vec![("whatsapp_business_management".into(), vec!["999".into()])]);
    let r = run(&d, &setup(&d)).await;
    assert_failure(&r, "token.waba", None, "does not include WhatsApp account", "Assign assets");
    let mut wrong = setup(&d);
    wrong.app_secret = Some("not-the-secret".into());
    let r = run(&d, &wrong).await;
    assert_failure(&r, "token", None, "debug_token", "whatsapp_app_secret");
    // The system token itself works: the later checks still ran.
    assert_eq!(r.find("number.status", None).unwrap().outcome, Outcome::Ok, "{r:#?}");
}

#[tokio::test]
async fn a_number_of_another_account_and_a_utility_template() {
    let d = double().await;
    d.meta(|m| {
        m.number.in_waba = false;
        m.add_template("order_code", "id", "APPROVED", "UTILITY");
    });
    let mut s = setup(&d);
    s.templates.push(ExpectedTemplate { authentication: false, ..expected("order_code", "id") });
    s.templates.push(expected("order_code", "id"));
    let r = run(&d, &s).await;
    assert_failure(&r, "number.in_waba", None, "is not in WhatsApp account", "whatsapp_phone_number_id");
    // Registered as utility: a warning; sent as authentication: a failure.
    let lines: Vec<_> = r.checks.iter().filter(|c| c.subject.as_deref() == Some("order_code (id)")).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].outcome, Outcome::Warning, "{:#?}", lines[0]);
    assert_eq!(lines[1].outcome, Outcome::Failure, "{:#?}", lines[1]);
    assert!(lines[1].detail.contains("category UTILITY"), "{:#?}", lines[1]);
}

#[tokio::test]
async fn a_limit_above_metas_and_a_blocked_number() {
    let d = double().await;
    d.meta(|m| {
        m.number.messaging_limit = "TIER_250".into();
        m.number.can_send_message = "BLOCKED".into();
    });
    let r = run(&d, &setup(&d)).await;
    let limit = r.find("number.messaging_limit", None).unwrap();
    assert_eq!(limit.outcome, Outcome::Warning);
    assert!(limit.fix.as_deref().unwrap().contains("whatsapp_messaging_limit = \"250\""), "{limit:#?}");
    assert_failure(&r, "number.health", None, "BLOCKED", "WhatsApp Manager");
}

#[tokio::test]
async fn an_unreachable_api_stops_the_run_without_showing_secrets() {
    let d = double().await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let client = ManagementClient::new(&format!("http://{closed}"), "v24.0", TOKEN, Duration::from_secs(5)).unwrap();
    let r = doctor::run(&client, &setup(&d)).await;
    assert!(r.send_would_fail(), "{r:#?}");
    assert_eq!(r.checks.last().unwrap().check, "stopped");
    let text = serde_json::to_string(&r.to_json()).unwrap();
    assert!(text.contains("cannot reach the Graph API"), "{text}");
    assert!(!text.contains(TOKEN) && !text.contains(SECRET), "secrets in the report: {text}");
}

/// A Graph API that refuses every call with an error quoting what it was given (the token, the
/// app token, the URL), as some of Meta's messages do ("Malformed access token …").
async fn echoing_graph() -> String {
    use axum::http::{HeaderMap, StatusCode, Uri};
    let echo = |uri: Uri, headers: HeaderMap| async move {
        let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let said = format!("Malformed access token {auth} for {uri}");
        let body = serde_json::json!({ "error": { "message": said, "type": "OAuthException", "code": 100,
            "error_data": { "details": said } } });
        (StatusCode::BAD_REQUEST, axum::Json(body))
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, axum::Router::new().fallback(echo)).await });
    base
}

#[tokio::test]
async fn metas_error_texts_never_carry_the_token_or_the_app_secret_into_the_report() {
    let d = double().await;
    let base = echoing_graph().await;
    let client = ManagementClient::new(&base, "v24.0", TOKEN, Duration::from_secs(5)).unwrap();
    let r = doctor::run(&client, &setup(&d)).await;
    let text = serde_json::to_string(&r.to_json()).unwrap();
    assert!(text.contains("Malformed access token"), "Meta's text is kept: {text}");
    assert!(text.contains("<access token>") || text.contains("<app secret>"), "{text}");
    assert!(!text.contains(TOKEN) && !text.contains(SECRET), "secrets in the report: {text}");
}
