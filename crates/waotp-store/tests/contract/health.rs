//! The sender's health (`SenderHealthStore`): events deduplicated, facts kept in time order,
//! changes reported once; and an app's backup templates kept with its settings.

use waotp_store::{
    template_subject, FactChange, HealthApplied, HealthEvent, HealthFact, HealthKind, HEALTH_EVENTS_MAX,
};

use super::*;

fn status(name: &str, value: &str, at_ms: i64) -> HealthFact {
    HealthFact {
        kind: HealthKind::Template,
        subject: template_subject(name, "en_US"),
        aspect: "status".into(),
        value: value.into(),
        reason: Some("NONE".into()),
        at_ms,
        source: "webhook".into(),
    }
}

fn event(n: u8, at_ms: i64) -> HealthEvent {
    HealthEvent {
        hash: [n; 32],
        field: "message_template_status_update".into(),
        summary: format!("event {n}"),
        at_ms,
        received_at_ms: at_ms + 1,
    }
}

fn changed(applied: HealthApplied) -> Vec<(String, Option<String>)> {
    match applied {
        HealthApplied::Applied(changes) => {
            changes.into_iter().map(|FactChange { fact, previous }| (fact.value, previous)).collect()
        }
        HealthApplied::Duplicate => panic!("unexpected duplicate"),
    }
}

#[tokio::test]
async fn health_events_are_deduplicated_and_facts_kept_in_time_order() {
    let (_d, store) = fresh_store().await;
    // A first fact: a change from nothing.
    let first = store.apply_health(Some(event(1, 1_000)), vec![status("auth_a", "PAUSED", 1_000)], 5).await.unwrap();
    assert_eq!(changed(first), vec![("PAUSED".to_owned(), None)]);
    // The same event again (Meta retries): nothing changes, nothing is reported.
    let again = store.apply_health(Some(event(1, 1_000)), vec![status("auth_a", "APPROVED", 1_000)], 6).await;
    assert_eq!(again.unwrap(), HealthApplied::Duplicate);
    assert_eq!(store.health_facts().await.unwrap()[0].value, "PAUSED");
    // An older event arriving late does not overwrite the newer state.
    let late = store.apply_health(Some(event(2, 500)), vec![status("auth_a", "APPROVED", 500)], 7).await.unwrap();
    assert_eq!(changed(late), vec![]);
    // A newer one does, and says what it replaced; the same value again is no change.
    let newer = store.apply_health(Some(event(3, 2_000)), vec![status("auth_a", "APPROVED", 2_000)], 8).await.unwrap();
    assert_eq!(changed(newer), vec![("APPROVED".to_owned(), Some("PAUSED".to_owned()))]);
    let same = store.apply_health(Some(event(4, 3_000)), vec![status("auth_a", "APPROVED", 3_000)], 9).await.unwrap();
    assert_eq!(changed(same), vec![]);
    // Without an event (a send's error, the doctor): applied, never deduplicated.
    let sent = store.record_template_status("auth_b", "en_US", "PAUSED", "send", 3_500).await.unwrap();
    assert_eq!(changed(sent), vec![("PAUSED".to_owned(), None)]);

    let facts = store.health_facts().await.unwrap();
    let got: Vec<_> = facts.iter().map(|f| (f.subject.as_str(), f.value.as_str(), f.source.as_str())).collect();
    assert_eq!(got, vec![("auth_a/en_US", "APPROVED", "webhook"), ("auth_b/en_US", "PAUSED", "send")]);
    assert_eq!(facts[0].at_ms, 3_000);
    let events = store.health_events(10).await.unwrap();
    assert_eq!(events.iter().map(|e| e.hash[0]).collect::<Vec<_>>(), vec![4, 3, 2, 1], "newest first");
    assert_eq!(events[3], event(1, 1_000));
}

#[tokio::test]
async fn a_webhook_replaces_a_send_s_fact_within_the_clock_grace() {
    let (_d, store) = fresh_store().await;
    // A send answered 132015 at 10.700 s by this node's clock (ms) …
    let sent = store.record_template_status("auth_a", "en_US", "PAUSED", "send", 10_700).await.unwrap();
    assert_eq!(changed(sent), vec![("PAUSED".to_owned(), None)]);
    // … and Meta approves it again in the same second: its event's time is whole seconds (10 s),
    // before the send's stamp, yet the approval is the newer word.
    let approved = store.apply_health(Some(event(1, 10_000)), vec![status("auth_a", "APPROVED", 10_000)], 11_000);
    assert_eq!(changed(approved.await.unwrap()), vec![("APPROVED".to_owned(), Some("PAUSED".to_owned()))]);
    // A send's fact (node clock) after a webhook's replaces it as before.
    let again = store.record_template_status("auth_a", "en_US", "PAUSED", "send", 12_000).await.unwrap();
    assert_eq!(changed(again), vec![("PAUSED".to_owned(), Some("APPROVED".to_owned()))]);
    // Between webhooks there is no grace: Meta's own older event stays older.
    store.apply_health(Some(event(2, 20_000)), vec![status("auth_a", "PAUSED", 20_000)], 21_000).await.unwrap();
    let late = store.apply_health(Some(event(3, 19_000)), vec![status("auth_a", "APPROVED", 19_000)], 22_000);
    assert_eq!(changed(late.await.unwrap()), vec![]);
    // And a webhook far older than a send's fact (beyond the grace) does not replace it.
    store.record_template_status("auth_b", "en_US", "PAUSED", "send", 200_000).await.unwrap();
    let stale = store.apply_health(Some(event(4, 100_000)), vec![status("auth_b", "APPROVED", 100_000)], 201_000);
    assert_eq!(changed(stale.await.unwrap()), vec![]);
}

#[tokio::test]
async fn health_events_are_bounded() {
    let (_d, store) = fresh_store().await;
    for n in 0..HEALTH_EVENTS_MAX + 5 {
        let mut e = event(0, n);
        e.hash[..8].copy_from_slice(&n.to_be_bytes());
        store.apply_health(Some(e), vec![], n).await.unwrap();
    }
    let events = store.health_events(usize::MAX >> 1).await.unwrap();
    assert_eq!(events.len() as i64, HEALTH_EVENTS_MAX);
    assert_eq!(events[0].at_ms, HEALTH_EVENTS_MAX + 4);
}

/// Two nodes given the same event at once: one applies it, the other sees a duplicate.
#[tokio::test]
async fn the_same_event_at_once_is_applied_once() {
    let (_d, store) = fresh_store().await;
    let tries = (0..8).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            store.apply_health(Some(event(9, 10)), vec![status("auth_a", "PAUSED", 10)], 10).await.unwrap()
        })
    });
    let mut applied = 0;
    for t in tries {
        if matches!(t.await.unwrap(), HealthApplied::Applied(c) if c.len() == 1) {
            applied += 1;
        }
    }
    assert_eq!(applied, 1);
}

#[tokio::test]
async fn backup_templates_are_kept_with_the_settings() {
    let (_d, store) = fresh_store().await;
    let a = app("a");
    store.create_app(a.clone()).await.unwrap();
    assert!(store.get_app(a.app_id).await.unwrap().unwrap().settings.backup_templates.is_empty());
    let s = AppSettings { backup_templates: vec!["auth_b".into(), "auth_c".into()], ..AppSettings::default() };
    assert!(store.update_app_settings(a.app_id, s.clone()).await.unwrap());
    assert_eq!(store.get_app(a.app_id).await.unwrap().unwrap().settings.backup_templates, ["auth_b", "auth_c"]);
    let mut b = app("b");
    b.settings.backup_templates = vec!["x".into()];
    store.create_app(b.clone()).await.unwrap();
    assert_eq!(store.get_app(b.app_id).await.unwrap(), Some(b));
}

#[tokio::test]
async fn reverse_texts_and_reply_are_kept_with_the_settings() {
    let (_d, store) = fresh_store().await;
    let mut a = app("a");
    a.settings.reverse_texts =
        vec![("en".into(), "Verify me at Acme: {code}".into()), ("pt_BR".into(), "Meu código = {code}".into())];
    a.settings.reverse_reply = Some("Thanks!\nYou are verified.".into());
    store.create_app(a.clone()).await.unwrap();
    let got = store.get_app(a.app_id).await.unwrap().unwrap();
    assert_eq!(got, a, "an '=' in a text and a line break in the reply survive");
    assert_eq!(got.settings.reverse_text("pt_BR"), Some("Meu código = {code}"));
    assert_eq!(got.settings.reverse_text("en_US"), Some("Verify me at Acme: {code}"), "the base language's");
    assert_eq!(got.settings.reverse_text("id"), None);
    let cleared = AppSettings { reverse_texts: Vec::new(), reverse_reply: None, ..got.settings.clone() };
    assert!(store.update_app_settings(a.app_id, cleared.clone()).await.unwrap());
    assert_eq!(store.get_app(a.app_id).await.unwrap().unwrap().settings, cleared);
    let set = AppSettings { reverse_texts: vec![("id".into(), "{code} kode saya".into())], ..cleared };
    assert!(store.update_app_settings(a.app_id, set.clone()).await.unwrap());
    assert_eq!(store.get_app(a.app_id).await.unwrap().unwrap().settings, set);
}
