//! The sender's health from Meta's management webhooks (issue 19): every sample payload of
//! whatsapp-operations.md §3 applied once, with its metric and one signed operator alert;
//! automatic failover to a backup template and back, driven by webhooks or by a send Meta
//! refuses with 132015; the messaging limit learned from Meta; the dashboard's WhatsApp page.

use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use waotp_core::Status;
use waotp_server::config::{Secret, WhatsAppConfig};
use waotp_server::metrics::{Format, Readings};
use waotp_store::{AppSettings, HealthKind};
use waotp_whatsapp::double::{GraphDouble, KnownTemplate, ScriptedFailure};

use waotp_test_support::app::*;
use waotp_test_support::graph::{self, spawn_app_with_double, PNID, TOKEN};
use waotp_test_support::receiver::{Received, Receiver};

/// The configured sender's account (`whatsapp_waba_id`, set by [`with_double`]).
pub const WABA: &str = "102290129340398";
pub const ALERT_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub const ADMIN: &str = "health-admin-token-0123456789";

/// waotp wired to a Graph API double that also knows the template `auth_backup`, the double's
/// webhooks wired back to waotp, and the app naming `auth_backup` as its backup. The sender's
/// account is [`WABA`] (management webhooks of no other account are applied).
pub async fn with_double(
    adjust_config: impl FnOnce(&mut waotp_server::Config),
    adjust_waotp: impl FnOnce(&mut WhatsAppConfig),
) -> (TestApp, GraphDouble) {
    let (app, double) = spawn_app_with_double(
        |c| {
            let w = graph::whatsapp(c);
            w.waba_id = Some(WABA.into());
            adjust_waotp(w);
            c.admin_token = Some(Secret::new(ADMIN));
            adjust_config(c);
        },
        |d| {
            d.webhook_gap = Duration::from_millis(5);
            d.templates.push(KnownTemplate {
                name: "auth_backup".into(),
                languages: vec!["en".into()],
                body_parameters: 1,
                authentication: true,
            });
        },
    )
    .await;
    let settings = AppSettings { backup_templates: vec!["auth_backup".into()], ..AppSettings::default() };
    app.state.store.update_app_settings(app.app_id, settings).await.unwrap();
    app.state.invalidate_app(app.app_id);
    (app, double)
}

pub fn now_s() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// One signed change, in Meta's envelope, with the entry time given.
pub async fn post_change(double: &GraphDouble, field: &str, value: Value, time: i64) -> u16 {
    let payload = json!({ "object": "whatsapp_business_account",
        "entry": [{ "id": WABA, "time": time, "changes": [{ "field": field, "value": value }] }] });
    double.post_signed(&payload.to_string()).await
}

pub fn template_status(name: &str, event: &str) -> Value {
    json!({ "event": event, "message_template_id": 1689556908129835_i64, "message_template_name": name,
            "message_template_language": "en", "reason": "NONE", "message_template_category": "AUTHENTICATION" })
}

/// Sends a code and waits until Meta has been asked; the template name Meta saw last.
pub async fn send_and_see(app: &TestApp, double: &GraphDouble, msisdn: &str) -> String {
    let before = double.received().iter().filter(|r| r.answered == 200).count();
    let sent = app.send(json!({ "msisdn": msisdn })).await;
    assert_eq!(sent.status, 201, "{}", sent.body);
    eventually("Meta accepting the message", Duration::from_secs(20), || async {
        let received = double.received();
        let ok: Vec<_> = received.iter().filter(|r| r.answered == 200).collect();
        match ok.get(before) {
            Some(r) => Ok(r.body["template"]["name"].as_str().unwrap().to_owned()),
            None => Err(received.len()),
        }
    })
    .await
}

pub fn scrape(app: &TestApp) -> String {
    let readings = Readings { sender_health: Some(app.state.sender_health.clone()), ..Readings::default() };
    app.state.metrics.render(readings, Format::Prometheus)
}

/// Acceptance 3, by webhook: paused → the backup goes out; approved again → the primary.
#[tokio::test]
async fn a_paused_template_fails_over_to_the_backup_and_back() {
    let (app, double) = with_double(|_| {}, |_| {}).await;
    assert_eq!(send_and_see(&app, &double, "6281234567801").await, "verification_code");
    let t = now_s();
    assert_eq!(
        post_change(&double, "message_template_status_update", template_status("verification_code", "PAUSED"), t).await,
        200
    );
    assert_eq!(send_and_see(&app, &double, "6281234567802").await, "auth_backup");
    assert_eq!(send_and_see(&app, &double, "6281234567803").await, "auth_backup");
    assert_eq!(app.metric("waotp_whatsapp_template_switches_total{direction=\"to_backup\"}"), 1.0, "counted once");
    let metrics = scrape(&app);
    assert_eq!(
        metric_value(
            &metrics,
            "waotp_whatsapp_template_usable{name=\"verification_code\",language=\"en\",status=\"PAUSED\"}"
        ),
        0.0
    );
    assert!(metrics
        .contains("waotp_whatsapp_template_usable{name=\"verification_code\",language=\"en\",status=\"PAUSED\"} 0"));
    assert_eq!(
        post_change(&double, "message_template_status_update", template_status("verification_code", "APPROVED"), t + 1)
            .await,
        200
    );
    assert_eq!(send_and_see(&app, &double, "6281234567804").await, "verification_code");
    assert_eq!(app.metric("waotp_whatsapp_template_switches_total{direction=\"to_primary\"}"), 1.0);
    // A message whose every template is unusable goes to Meta as the primary and reports 7.
    assert_eq!(
        post_change(&double, "message_template_status_update", template_status("verification_code", "DISABLED"), t + 2)
            .await,
        200
    );
    assert_eq!(
        post_change(&double, "message_template_status_update", template_status("auth_backup", "PAUSED"), t + 2).await,
        200
    );
    double.fail(ScriptedFailure { code: 132016, to: None, asynchronous: false }, 1);
    let sent = app.send(json!({ "msisdn": "6281234567805" })).await;
    let s = eventually("the send failing", Duration::from_secs(20), || async {
        let s = app.state.store.get_session(app.app_id, sent.session_id()).await.unwrap().unwrap();
        if s.status == Status::RequestError {
            Ok(s)
        } else {
            Err(s.status)
        }
    })
    .await;
    assert_eq!(s.error_code, Some(132016));
}

/// Acceptance 3, by a send Meta refuses with 132015: the same message goes out at once with
/// the backup (the user still gets a code), later sends use the backup, and a webhook
/// approving the primary brings sends back to it.
#[tokio::test]
async fn a_send_answered_132015_is_sent_again_with_the_backup_at_once() {
    let (app, double) = with_double(|_| {}, |_| {}).await;
    double.fail(ScriptedFailure { code: 132015, to: None, asynchronous: false }, 1);
    let sent = app.send(json!({ "msisdn": "6281234567811" })).await;
    let s = eventually("the code sent", Duration::from_secs(20), || async {
        let s = app.state.store.get_session(app.app_id, sent.session_id()).await.unwrap().unwrap();
        if s.provider_id.is_some() {
            Ok(s)
        } else {
            Err(s.status)
        }
    })
    .await;
    assert_ne!(s.status, Status::RequestError);
    let names: Vec<_> = double.received().iter().map(|r| (r.body["template"]["name"].clone(), r.error_code)).collect();
    assert_eq!(names, vec![(json!("verification_code"), Some(132015)), (json!("auth_backup"), None)]);
    let facts = app.state.store.health_facts().await.unwrap();
    let paused = facts.iter().find(|f| f.subject == "verification_code/en").expect("recorded");
    assert_eq!((paused.value.as_str(), paused.source.as_str()), ("PAUSED", "send"));
    assert_eq!(send_and_see(&app, &double, "6281234567812").await, "auth_backup");
    // Meta approves it again at once: its event's time is in whole seconds, by a clock a second
    // behind ours, so it predates the refusal's stamp; it is still the newer word.
    let later = paused.at_ms / 1000 - 1;
    assert_eq!(
        post_change(&double, "message_template_status_update", template_status("verification_code", "APPROVED"), later)
            .await,
        200
    );
    assert_eq!(send_and_see(&app, &double, "6281234567813").await, "verification_code");
}

/// The messaging limit Meta announces replaces the static one: with Meta's limit at 1, a
/// second recipient is refused locally with 10; an explicit override wins over Meta's.
#[tokio::test]
async fn the_messaging_limit_learned_from_meta_is_enforced_unless_overridden() {
    let (app, double) = with_double(|_| {}, |_| {}).await;
    let t = now_s();
    assert_eq!(
        post_change(&double, "business_capability_update", json!({ "max_daily_conversations_per_business": 1 }), t)
            .await,
        200
    );
    assert_eq!(send_and_see(&app, &double, "6281234567821").await, "verification_code");
    let refused = app.send(json!({ "msisdn": "6281234567822" })).await;
    let s = eventually("the tier refusal", Duration::from_secs(20), || async {
        let s = app.state.store.get_session(app.app_id, refused.session_id()).await.unwrap().unwrap();
        if s.status == Status::TierLimitExceeded {
            Ok(s)
        } else {
            Err(s.status)
        }
    })
    .await;
    assert!(s.error_text.unwrap().contains("messaging limit of 1 "));
    assert_eq!(metric_value(&scrape(&app), "waotp_whatsapp_messaging_limit"), 1.0);

    let (app, double) = with_double(|_| {}, |w| w.messaging_limit = Some(5)).await;
    assert_eq!(
        post_change(&double, "business_capability_update", json!({ "max_daily_conversations_per_business": 1 }), t)
            .await,
        200
    );
    assert_eq!(send_and_see(&app, &double, "6281234567821").await, "verification_code");
    assert_eq!(send_and_see(&app, &double, "6281234567822").await, "verification_code");
}

/// A backup registered with a shape of its own (`waotp template add`) is rendered with it: its
/// body parameters in order, the code at its place, no copy-code button.
#[tokio::test]
async fn a_backup_goes_out_in_its_own_registered_shape() {
    let (app, double) = with_double(|_| {}, |_| {}).await;
    let mut settings = app.state.store.get_app(app.app_id).await.unwrap().unwrap().settings;
    settings.backup_templates = vec!["otp_utility".into(), "auth_backup".into()];
    app.state.store.update_app_settings(app.app_id, settings).await.unwrap();
    app.add_template("otp_utility", "en", "Your code for {{2}} is {{1}}.", 1).await;
    let paused = template_status("verification_code", "PAUSED");
    assert_eq!(post_change(&double, "message_template_status_update", paused, now_s()).await, 200);
    let sent = app.send(json!({ "msisdn": "6281234567831", "content": ["Acme"] })).await;
    assert_eq!(sent.status, 201, "{}", sent.body);
    let r =
        eventually("Meta asked", Duration::from_secs(20), || async { double.received().into_iter().next().ok_or(()) })
            .await;
    // The double does not know otp_utility: it answers 132001, and the next backup goes out.
    let t = &r.body["template"];
    assert_eq!(t["name"], "otp_utility");
    assert_eq!(t["components"][0]["parameters"][0]["text"], sent.otp().as_str());
    assert_eq!(t["components"][0]["parameters"][1]["text"], "Acme");
    assert_eq!(t["components"].as_array().unwrap().len(), 1, "no button");
    assert_eq!(r.error_code, Some(132001));
    let second = eventually("the next backup", Duration::from_secs(20), || async {
        double.received().get(1).cloned().ok_or(())
    })
    .await;
    assert_eq!((second.body["template"]["name"].as_str(), second.answered), (Some("auth_backup"), 200));
}

/// The health is the database's: another node (or this one restarted) on the same database
/// sees what one node applied, within its refresh.
#[tokio::test]
async fn another_node_on_the_same_database_sees_the_health() {
    let (app, double) = with_double(|_| {}, |_| {}).await;
    let paused = template_status("verification_code", "PAUSED");
    assert_eq!(post_change(&double, "message_template_status_update", paused, now_s()).await, 200);
    let limit = json!({ "max_daily_conversations_per_business": "TIER_10K" });
    assert_eq!(post_change(&double, "business_capability_update", limit, now_s()).await, 200);
    let mut config = waotp_server::Config::new(app.database_url.clone());
    config.database_wait = Duration::from_secs(30);
    // Every node is configured alike: the same account is followed.
    let mut whatsapp = WhatsAppConfig::new("http://127.0.0.1:9", PNID, TOKEN);
    whatsapp.waba_id = Some(WABA.into());
    config.whatsapp = Some(whatsapp);
    let other = spawn_app_on(tempfile::tempdir().unwrap(), config, |_| {}).await;
    eventually("the other node seeing the pause and the limit", Duration::from_secs(10), || async {
        let health = &other.state.sender_health;
        let seen = (health.snapshot().usable("verification_code", "en"), health.learned_limit());
        if seen == (false, Some(Some(10_000))) {
            Ok(())
        } else {
            Err(seen)
        }
    })
    .await;
}

/// An independent Standard Webhooks check (as tests/api/callbacks.rs does).
pub fn signed(r: &Received) -> bool {
    let key = base64::engine::general_purpose::STANDARD.decode(ALERT_SECRET.trim_start_matches("whsec_")).unwrap();
    let (id, ts) = (&r.headers["webhook-id"], &r.headers["webhook-timestamp"]);
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.{}", r.body).as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    r.headers["webhook-signature"].split(' ').any(|sig| sig.strip_prefix("v1,") == Some(expected.as_str()))
}

pub async fn alerts(rx: &Receiver, n: usize) -> Vec<Value> {
    eventually(&format!("{n} alerts"), Duration::from_secs(20), || async {
        let log = rx.log();
        if log.len() >= n {
            Ok(log)
        } else {
            Err(log.len())
        }
    })
    .await
    .iter()
    .map(|r| {
        assert!(signed(r), "a signed alert: {r:?}");
        serde_json::from_str(&r.body).unwrap()
    })
    .collect()
}

/// A sample: field, value, the fact it sets (subject, aspect, value), the alert's kind.
type Sample = (&'static str, &'static str, (&'static str, &'static str, &'static str), &'static str);

/// Acceptance 4: each sample of whatsapp-operations.md §3, verbatim, is accepted, changes the
/// health as documented, moves its metric and produces one signed alert; sent again, it
/// changes nothing and alerts no more.
#[tokio::test]
async fn every_management_sample_is_applied_once_with_one_signed_alert() {
    let rx = Receiver::start().await;
    let url = format!("{}/alerts", rx.base);
    let (app, double) = with_double(
        |c| {
            c.alert = Some(waotp_server::sender_health::alerts::AlertConfig {
                url: url.clone(),
                secret: Secret::new(ALERT_SECRET),
            })
        },
        |_| {},
    )
    .await;
    // (field, value, the fact it sets: subject, aspect, value; the alert's kind)
    let samples: Vec<Sample> = vec![
        (
            "message_template_status_update",
            r#"{ "event": "REJECTED", "message_template_id": 1689556908129835, "message_template_name": "abandoned_cart",
  "message_template_language": "en", "reason": "INVALID_FORMAT", "message_template_category": "MARKETING",
  "rejection_info": { "reason": "Your template has parameters placed next to each other (like {{1}}{{2}}) without text or punctuation between them.",
                      "recommendation": "Separate parameters with descriptive text and ensure each parameter is clearly contextualized." } }"#,
            ("abandoned_cart/en", "status", "REJECTED"),
            "template_unusable",
        ),
        (
            "message_template_quality_update",
            r#"{ "previous_quality_score": "GREEN", "new_quality_score": "YELLOW", "message_template_id": 806312974732579,
  "message_template_name": "welcome_template", "message_template_language": "en-US" }"#,
            ("welcome_template/en_US", "quality", "YELLOW"),
            "template_quality_dropped",
        ),
        (
            "template_category_update",
            r#"{ "message_template_id": 278077987957091, "message_template_name": "welcome_template", "message_template_language": "en-US",
  "new_category": "UTILITY", "correct_category": "MARKETING", "category_update_timestamp": 1746169200 }"#,
            ("welcome_template/en_US", "category", "UTILITY"),
            "template_category_changed",
        ),
        (
            "template_category_update",
            r#"{ "message_template_id": 278077987957091, "message_template_name": "welcome_template", "message_template_language": "en-US",
  "previous_category": "UTILITY", "new_category": "MARKETING" }"#,
            ("welcome_template/en_US", "category", "MARKETING"),
            "template_category_changed",
        ),
        (
            "phone_number_quality_update",
            r#"{ "display_phone_number": "15550783881", "event": "THROUGHPUT_UPGRADE", "current_limit": "TIER_UNLIMITED" }"#,
            ("15550783881", "messaging_limit", "unlimited"),
            "messaging_limit_set",
        ),
        (
            "business_capability_update",
            r#"{ "max_daily_conversations_per_business": 2000, "max_phone_numbers_per_waba": 25 }"#,
            (WABA, "messaging_limit", "2000"),
            "messaging_limit_set",
        ),
        (
            "account_update",
            r#"{ "event": "ACCOUNT_VIOLATION", "violation_info": { "violation_type": "ADULT" } }"#,
            (WABA, "violation", "ADULT"),
            "account_violation",
        ),
        (
            "account_update",
            r#"{ "event": "DISABLED_UPDATE", "ban_info": { "waba_ban_state": "REINSTATE", "waba_ban_date": "April 17, 2025" } }"#,
            (WABA, "ban_state", "REINSTATE"),
            "account_reinstated",
        ),
        (
            "account_update",
            r#"{ "event": "ACCOUNT_DELETED" }"#,
            (WABA, "deleted", "ACCOUNT_DELETED"),
            "account_deleted",
        ),
        (
            "account_alerts",
            r#"{ "entity_type": "BUSINESS", "entity_id": "506914307656634",
  "alert_info": { "alert_severity": "WARNING", "alert_status": "ACTIVE",
                  "alert_type": "INCREASED_CAPABILITIES_ELIGIBILITY_DEFERRED",
                  "alert_description": "Limits cannot be increased for your business <BUSINESS_PORTFOLIO_NAME>. …" } }"#,
            ("506914307656634", "alert INCREASED_CAPABILITIES_ELIGIBILITY_DEFERRED", "ACTIVE"),
            "account_alert",
        ),
    ];
    let t = now_s();
    for (i, (field, value, (subject, aspect, expected), kind)) in samples.iter().enumerate() {
        let value: Value = serde_json::from_str(value).unwrap();
        let series = format!("waotp_whatsapp_management_events_total{{field=\"{field}\",outcome=\"applied\"}}");
        let before = app.metric(&series);
        assert_eq!(post_change(&double, field, value, t + i as i64).await, 200, "{field}");
        assert_eq!(app.metric(&series), before + 1.0, "{field} counted");
        let facts = app.state.store.health_facts().await.unwrap();
        let fact = facts
            .iter()
            .find(|f| f.subject == *subject && f.aspect == *aspect)
            .unwrap_or_else(|| panic!("{field}: {facts:?}"));
        assert_eq!(fact.value, *expected, "{field}");
        let got = alerts(&rx, i + 1).await;
        let alert = &got[i];
        assert_eq!(
            (alert["kind"].as_str(), alert["subject"].as_str(), alert["new"].as_str()),
            (Some(*kind), Some(*subject), Some(*expected)),
            "{alert}"
        );
        assert!(alert["at"].as_str().unwrap().ends_with('Z'));
    }
    // The gauges: a rejected template is unusable; the newest messaging limit is 2000.
    let metrics = scrape(&app);
    assert!(
        metrics
            .contains("waotp_whatsapp_template_usable{name=\"abandoned_cart\",language=\"en\",status=\"REJECTED\"} 0"),
        "{metrics}"
    );
    assert_eq!(metric_value(&metrics, "waotp_whatsapp_messaging_limit"), 2000.0);
    // Every sample again (Meta retries): 200, counted as duplicates (each exactly once),
    // nothing changes.
    let facts_before = app.state.store.health_facts().await.unwrap();
    for (i, (field, value, _, _)) in samples.iter().enumerate() {
        let value: Value = serde_json::from_str(value).unwrap();
        assert_eq!(post_change(&double, field, value, t + i as i64).await, 200);
    }
    for (field, ..) in &samples {
        let series = format!("waotp_whatsapp_management_events_total{{field=\"{field}\",outcome=\"duplicate\"}}");
        let sent = samples.iter().filter(|s| s.0 == *field).count() as f64;
        assert_eq!(app.metric(&series), sent, "{field}");
    }
    assert_eq!(app.state.store.health_facts().await.unwrap(), facts_before, "a replay changes nothing");
    // Unknown fields are acknowledged and ignored.
    assert_eq!(double.send_change(WABA, "message_echoes", json!({ "anything": 1 })).await, 200);
    assert_eq!(app.metric("waotp_whatsapp_management_events_total{field=\"other\",outcome=\"ignored\"}"), 1.0);
    // One more change, flagging the number: its alert is the next one (alerts go out in order,
    // so a replay's alert would have come before it).
    let flagged = json!({ "display_phone_number": "15550783881", "event": "FLAGGED" });
    assert_eq!(post_change(&double, "phone_number_quality_update", flagged, t + 100).await, 200);
    let all = alerts(&rx, samples.len() + 1).await;
    assert_eq!(all.len(), samples.len() + 1, "no alert for a replay");
    assert_eq!(all.last().unwrap()["kind"], "number_quality_dropped");
    assert_eq!(metric_value(&scrape(&app), "waotp_whatsapp_number_quality{phone=\"15550783881\"}"), 1.0);
    let snapshot = app.state.sender_health.snapshot();
    assert!(snapshot.facts.iter().any(|f| f.kind == HealthKind::Number && f.value == "RED"));

    // The dashboard's WhatsApp page shows the health and the events.
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let login = client.post(format!("{}/dashboard/login", app.base)).form(&[("token", ADMIN)]).send().await.unwrap();
    let cookie = login.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let page = client.get(format!("{}/dashboard/whatsapp", app.base)).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.unwrap();
    for text in [
        "abandoned_cart/en",
        "REJECTED",
        "welcome_template/en_US",
        "2000 unique recipients per 24 h",
        "auth_backup",
        "number 15550783881 FLAGGED",
        "href=\"/dashboard/whatsapp\"",
    ] {
        assert!(html.contains(text), "the page shows {text}");
    }
    let anonymous = client.get(format!("{}/dashboard/whatsapp", app.base)).send().await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 303, "login first");
}

/// An alert URL that fails gets the alert again, with backoff, under the same webhook-id; the
/// webhook itself was answered at once.
#[tokio::test]
async fn an_alert_is_retried_when_the_alert_url_fails() {
    let rx = Receiver::start().await;
    rx.fail_first(2);
    let url = format!("{}/alerts", rx.base);
    let (_app, double) = with_double(
        |c| {
            c.alert = Some(waotp_server::sender_health::alerts::AlertConfig {
                url: url.clone(),
                secret: Secret::new(ALERT_SECRET),
            })
        },
        |_| {},
    )
    .await;
    let paused = template_status("verification_code", "PAUSED");
    assert_eq!(post_change(&double, "message_template_status_update", paused, now_s()).await, 200);
    let log = eventually("the alert delivered on its third try", Duration::from_secs(20), || async {
        let log = rx.log();
        if log.iter().any(|r| r.answered == 200) {
            Ok(log)
        } else {
            Err(log.len())
        }
    })
    .await;
    assert_eq!(log.iter().map(|r| r.answered).collect::<Vec<_>>(), vec![500, 500, 200]);
    assert!(log.iter().all(|r| r.headers["webhook-id"] == log[0].headers["webhook-id"] && signed(r)));
    let alert: Value = serde_json::from_str(&log[2].body).unwrap();
    assert_eq!((alert["kind"].as_str(), alert["new"].as_str()), (Some("template_unusable"), Some("PAUSED")));
}

/// Only the configured account's template and number events are the sender's health; a
/// status Meta has not documented leaves the template as usable as it was; an entry without a
/// time is still one event per minute of receipt, and the same news a minute later is news.
#[tokio::test]
async fn other_accounts_unknown_statuses_and_entries_without_a_time() {
    let (app, double) = with_double(|_| {}, |_| {}).await;
    let paused = template_status("verification_code", "PAUSED");
    // Another WABA (a per-app sender's) pauses a template of the same name: not ours.
    assert_eq!(double.send_change("999000111222333", "message_template_status_update", paused.clone()).await, 200);
    let series =
        "waotp_whatsapp_management_events_total{field=\"message_template_status_update\",outcome=\"other_account\"}";
    assert_eq!(app.metric(series), 1.0);
    assert_eq!(send_and_see(&app, &double, "6281234567841").await, "verification_code");
    // A status event Meta has not documented: kept as news, the template still sent.
    let news = template_status("verification_code", "SOMETHING_NEW");
    assert_eq!(post_change(&double, "message_template_status_update", news, now_s()).await, 200);
    assert_eq!(send_and_see(&app, &double, "6281234567842").await, "verification_code");
    let facts = app.state.store.health_facts().await.unwrap();
    assert!(facts.iter().any(|f| f.aspect == "other_event" && f.value == "SOMETHING_NEW"), "{facts:?}");
    assert!(!facts.iter().any(|f| f.aspect == "status"), "{facts:?}");
    // Without an entry time: paused, approved, paused again a minute later (news, not a retry).
    let untimed = |event: &str| {
        json!({ "object": "whatsapp_business_account", "entry": [{ "id": WABA,
            "changes": [{ "field": "message_template_status_update",
                          "value": template_status("verification_code", event) }] }] })
        .to_string()
    };
    assert_eq!(double.post_signed(&untimed("PAUSED")).await, 200);
    assert_eq!(send_and_see(&app, &double, "6281234567843").await, "auth_backup");
    assert_eq!(double.post_signed(&untimed("PAUSED")).await, 200, "Meta's retry");
    let duplicate =
        "waotp_whatsapp_management_events_total{field=\"message_template_status_update\",outcome=\"duplicate\"}";
    assert_eq!(app.metric(duplicate), 1.0);
    app.clock.advance(Duration::from_secs(61));
    assert_eq!(double.post_signed(&untimed("APPROVED")).await, 200);
    assert_eq!(send_and_see(&app, &double, "6281234567844").await, "verification_code");
    app.clock.advance(Duration::from_secs(61));
    assert_eq!(double.post_signed(&untimed("PAUSED")).await, 200);
    assert_eq!(app.metric(duplicate), 1.0, "the same news later is not a retry");
    assert_eq!(send_and_see(&app, &double, "6281234567845").await, "auth_backup");
}
