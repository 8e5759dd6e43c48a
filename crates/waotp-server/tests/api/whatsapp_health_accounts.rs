//! Issue 38: Meta's management webhooks are the sender's health only when they name the
//! configured WhatsApp Business Account (`whatsapp_waba_id`). Another account's events — of
//! every management field — and, without a WABA id, every account's change nothing (no
//! template, number or account fact, no messaging limit, no alert, nothing on the dashboard)
//! and are counted; our own account's still apply. Facts an older waotp stored of other
//! accounts are not followed either.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use waotp_core::Status;
use waotp_store::{HealthFact, HealthKind};
use waotp_whatsapp::double::GraphDouble;
use waotp_whatsapp::management_events::FIELDS;

use crate::whatsapp_health::{
    alerts, now_s, post_change, send_and_see, template_status, with_double, ADMIN, ALERT_SECRET, WABA,
};
use waotp_test_support::app::*;
use waotp_test_support::receiver::Receiver;

/// Another business's account, subscribed to the same Meta app (or a per-app sender's).
const THEIRS: &str = "999000111222333";
/// The configured sender's number, and another number of its account.
const OUR_NUMBER: &str = "15550783881";
const OTHER_NUMBER: &str = "15550000001";

/// One event of every management field waotp reads, each about what the sender uses: its
/// template paused, degraded and recategorised, the number flagged with a limit of 250, the
/// account disabled, an alert, and a messaging limit of 250 (Meta's per-phone key, as in the
/// issue's reproduction).
fn every_field() -> Vec<(&'static str, Value)> {
    let template = |extra: Value| {
        let mut v = json!({ "message_template_id": 1689556908129835_i64, "message_template_name": "verification_code",
                            "message_template_language": "en" });
        v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        v
    };
    let events = vec![
        ("message_template_status_update", template_status("verification_code", "PAUSED")),
        (
            "message_template_quality_update",
            template(json!({ "previous_quality_score": "GREEN", "new_quality_score": "RED" })),
        ),
        (
            "template_category_update",
            template(json!({ "previous_category": "AUTHENTICATION", "new_category": "MARKETING" })),
        ),
        (
            "phone_number_quality_update",
            json!({ "display_phone_number": OUR_NUMBER, "event": "FLAGGED", "max_daily_conversations_per_business": "TIER_250" }),
        ),
        (
            "account_update",
            json!({ "event": "DISABLED_UPDATE", "ban_info": { "waba_ban_state": "DISABLE", "waba_ban_date": "April 17, 2025" } }),
        ),
        (
            "account_alerts",
            json!({ "entity_type": "BUSINESS", "entity_id": "506914307656634",
                    "alert_info": { "alert_severity": "CRITICAL", "alert_status": "ACTIVE",
                                    "alert_type": "INCREASED_CAPABILITIES_ELIGIBILITY_FAILED" } }),
        ),
        ("business_capability_update", json!({ "max_daily_conversation_per_phone": 250 })),
    ];
    let mut fields: Vec<_> = events.iter().map(|(f, _)| *f).collect();
    fields.sort_unstable();
    let mut all = FIELDS.to_vec();
    all.sort_unstable();
    assert_eq!(fields, all, "one event of every management field");
    events
}

fn counted(app: &TestApp, field: &str, outcome: &str) -> f64 {
    app.metric(&format!("waotp_whatsapp_management_events_total{{field=\"{field}\",outcome=\"{outcome}\"}}"))
}

/// The dashboard's WhatsApp page, logged in.
async fn whatsapp_page(app: &TestApp) -> String {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let login = client.post(format!("{}/dashboard/login", app.base)).form(&[("token", ADMIN)]).send().await.unwrap();
    let cookie = login.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let page = client.get(format!("{}/dashboard/whatsapp", app.base)).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    page.text().await.unwrap()
}

/// Nothing of the sender's health is known: no fact, no event, no limit, the template usable
/// and sent as itself, the dashboard empty.
async fn nothing_changed(app: &TestApp, double: &GraphDouble, msisdn: &str) {
    assert_eq!(app.state.store.health_facts().await.unwrap(), Vec::new());
    assert_eq!(app.state.store.health_events(50).await.unwrap(), Vec::new());
    app.state.sender_health.refresh().await.unwrap();
    let health = &app.state.sender_health;
    assert_eq!(health.learned_limit(), None);
    assert!(health.snapshot().usable("verification_code", "en"));
    assert_eq!(send_and_see(app, double, msisdn).await, "verification_code");
    let page = whatsapp_page(app).await;
    assert!(page.contains("not announced by Meta yet"), "{page}");
    assert!(page.contains("No news of the number or the account yet."), "{page}");
    assert!(page.contains("No management webhook received yet."), "{page}");
}

/// Another account's event of every field: 200, counted as `other_account`, nothing of ours
/// changed, no alert; then our own account's events of every field apply (the first alert is
/// ours: alerts go out in order, so a foreign one would have come before it).
#[tokio::test]
async fn another_accounts_events_of_every_field_change_nothing_of_ours() {
    let rx = Receiver::start().await;
    let url = format!("{}/alerts", rx.base);
    let (app, double) = with_double(
        |c| {
            c.alert = Some(waotp_server::sender_health::alerts::AlertConfig {
                url: url.clone(),
                secret: waotp_server::config::Secret::new(ALERT_SECRET),
            })
        },
        |_| {},
    )
    .await;
    for (field, value) in every_field() {
        assert_eq!(double.send_change(THEIRS, field, value).await, 200, "{field}");
        assert_eq!(counted(&app, field, "other_account"), 1.0, "{field} counted as another account's");
        assert_eq!(counted(&app, field, "applied"), 0.0, "{field}");
    }
    nothing_changed(&app, &double, "6281234567851").await;

    // Our own account's: applied, alerted.
    let t = now_s();
    let violation = json!({ "event": "ACCOUNT_VIOLATION", "violation_info": { "violation_type": "ADULT" } });
    assert_eq!(post_change(&double, "account_update", violation, t).await, 200);
    let first = alerts(&rx, 1).await;
    assert_eq!((first[0]["kind"].as_str(), first[0]["subject"].as_str()), (Some("account_violation"), Some(WABA)));
    for (i, (field, value)) in every_field().into_iter().enumerate() {
        assert_eq!(post_change(&double, field, value, t + 1 + i as i64).await, 200, "{field}");
    }
    for (field, _) in every_field() {
        let ours = if field == "account_update" { 2.0 } else { 1.0 };
        assert_eq!(counted(&app, field, "applied"), ours, "{field} applied");
    }
    let health = &app.state.sender_health;
    assert!(!health.snapshot().usable("verification_code", "en"));
    assert_eq!(health.learned_limit(), Some(Some(250)));
    let facts = app.state.store.health_facts().await.unwrap();
    let of = |kind, subject: &str, aspect: &str| {
        facts.iter().find(|f| f.kind == kind && f.subject == subject && f.aspect == aspect).map(|f| f.value.as_str())
    };
    assert_eq!(of(HealthKind::Template, "verification_code/en", "quality"), Some("RED"));
    assert_eq!(of(HealthKind::Template, "verification_code/en", "category"), Some("MARKETING"));
    assert_eq!(of(HealthKind::Number, OUR_NUMBER, "quality_rating"), Some("RED"));
    assert_eq!(of(HealthKind::Account, WABA, "ban_state"), Some("DISABLE"));
    assert_eq!(of(HealthKind::Account, WABA, "messaging_limit"), Some("250"));
    assert!(!facts.iter().any(|f| f.subject == THEIRS), "{facts:?}");
}

/// Without `whatsapp_waba_id` waotp knows no account: every management event — even one
/// naming the sender's real account — is counted as `unknown_account` and ignored, and the
/// dashboard says why.
#[tokio::test]
async fn without_a_waba_id_no_management_event_is_applied() {
    let (app, double) = with_double(|_| {}, |w| w.waba_id = None).await;
    let t = now_s();
    for (i, (field, value)) in every_field().into_iter().enumerate() {
        assert_eq!(post_change(&double, field, value, t + i as i64).await, 200, "{field}");
        assert_eq!(counted(&app, field, "unknown_account"), 1.0, "{field} counted");
        assert_eq!(counted(&app, field, "applied"), 0.0, "{field}");
    }
    nothing_changed(&app, &double, "6281234567861").await;
    let page = whatsapp_page(&app).await;
    assert!(page.contains("id=\"health-unfollowed\""), "{page}");
    assert!(page.contains("<code>whatsapp_waba_id</code> is not set"), "{page}");
}

/// The reproduction: following Meta's limit, another account's
/// `business_capability_update` with `max_daily_conversation_per_phone: 250`, then 251
/// distinct recipients: the 251st is sent as the others (no status 10). Our own account's
/// limit is then followed.
#[tokio::test]
async fn another_accounts_limit_does_not_hold_back_the_251st_recipient() {
    let (app, double) = with_double(|_| {}, |_| {}).await;
    let app = Arc::new(app);
    let limit = json!({ "max_daily_conversation_per_phone": 250 });
    assert_eq!(double.send_change(THEIRS, "business_capability_update", limit.clone()).await, 200);
    assert_eq!(app.state.sender_health.learned_limit(), None);
    let recipient = |i: u32| format!("6281{}{:07}", 2 + i % 7, i * 37);
    // 64 sends in flight, as a client's pool would have: with the double's webhooks (from the
    // same address, here) well within http_max_connections_per_address.
    let in_flight = Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = Vec::new();
    for i in 0..250 {
        let (app, in_flight) = (app.clone(), in_flight.clone());
        tasks.push(tokio::spawn(async move {
            let _slot = in_flight.acquire_owned().await.unwrap();
            app.send(json!({ "msisdn": recipient(i) })).await
        }));
    }
    for t in tasks {
        let sent = t.await.unwrap();
        assert_eq!(sent.status, 201, "{}", sent.body);
    }
    let accepted = || double.received().iter().filter(|r| r.answered == 200).count();
    eventually("Meta accepting 250 messages", Duration::from_secs(60), || async {
        if accepted() >= 250 {
            Ok(())
        } else {
            Err(accepted())
        }
    })
    .await;
    let settled = |id| {
        let app = app.clone();
        async move {
            let s = app.state.store.get_session(app.app_id, id).await.unwrap().unwrap();
            if s.provider_id.is_some() || s.status == Status::TierLimitExceeded {
                Ok(s)
            } else {
                Err(s.status)
            }
        }
    };
    let last = app.send(json!({ "msisdn": recipient(250) })).await;
    let s = eventually("the 251st settled", Duration::from_secs(20), || settled(last.session_id())).await;
    assert_ne!(s.status, Status::TierLimitExceeded, "{:?}", s.error_text);
    assert!(s.provider_id.is_some());
    assert_eq!(accepted(), 251);

    // Our own account's limit is followed (recipients are counted from the moment a limit is
    // in force): with 1, a 252nd recipient is sent, a 253rd held back.
    let ours = json!({ "max_daily_conversations_per_business": 1 });
    assert_eq!(post_change(&double, "business_capability_update", ours, now_s()).await, 200);
    assert_eq!(app.state.sender_health.learned_limit(), Some(Some(1)));
    assert_eq!(send_and_see(&app, &double, &recipient(251)).await, "verification_code");
    let held = app.send(json!({ "msisdn": recipient(252) })).await;
    let s = eventually("the 253rd settled", Duration::from_secs(20), || settled(held.session_id())).await;
    assert_eq!(s.status, Status::TierLimitExceeded);
}

/// Facts an older waotp stored of another account (its limit, its violation) are not the
/// sender's; with `whatsapp_display_number` set, another number of our account sets the
/// sender's limit only by the portfolio's limit (`max_daily_conversations_per_business`),
/// not by its own `current_limit`.
#[tokio::test]
async fn old_facts_of_other_accounts_and_other_numbers_own_limits_are_not_followed() {
    let (app, double) = with_double(|c| c.whatsapp_display_number = Some(OUR_NUMBER.into()), |_| {}).await;
    let t = now_s();
    let fact = |aspect: &str, value: &str| HealthFact {
        kind: HealthKind::Account,
        subject: THEIRS.into(),
        aspect: aspect.into(),
        value: value.into(),
        reason: None,
        at_ms: t * 1000,
        source: "webhook".into(),
    };
    let old = vec![fact("messaging_limit", "250"), fact("violation", "ADULT")];
    app.state.store.apply_health(None, old, t * 1000).await.unwrap();
    app.state.sender_health.refresh().await.unwrap();
    assert_eq!(app.state.sender_health.learned_limit(), None);
    assert!(!app.state.sender_health.snapshot().facts.iter().any(|f| f.subject == THEIRS));
    let page = whatsapp_page(&app).await;
    assert!(!page.contains(THEIRS) && page.contains("not announced by Meta yet"), "{page}");

    let number = |number: &str, key: &str, limit: &str| json!({ "display_phone_number": number, "event": "UPGRADE", key: limit });
    let limit = || app.state.sender_health.learned_limit();
    assert_eq!(
        post_change(&double, "phone_number_quality_update", number(OTHER_NUMBER, "current_limit", "TIER_250"), t + 1)
            .await,
        200
    );
    let facts = app.state.store.health_facts().await.unwrap();
    assert!(facts.iter().any(|f| f.subject == OTHER_NUMBER && f.aspect == "messaging_limit"), "kept: {facts:?}");
    assert_eq!(limit(), None, "another number's own limit");
    let portfolio = number(OTHER_NUMBER, "max_daily_conversations_per_business", "TIER_2K");
    assert_eq!(post_change(&double, "phone_number_quality_update", portfolio, t + 2).await, 200);
    assert_eq!(limit(), Some(Some(2000)), "the portfolio's limit, told on another number");
    assert_eq!(
        post_change(&double, "phone_number_quality_update", number(OUR_NUMBER, "current_limit", "TIER_10K"), t + 3)
            .await,
        200
    );
    assert_eq!(limit(), Some(Some(10_000)), "our number's own limit");
}
