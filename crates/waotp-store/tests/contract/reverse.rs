//! Reverse verification (issue 20): a session marked reverse is found by the key of its
//! prefilled text, decided on by an inbound message from its number, never by the verify
//! route; a message seen before changes nothing; strangers are counted apart (issue 38).

use super::*;
use waotp_core::reverse::{InboundDecision, OtherSenders, MAX_WRONG_SENDERS};
use waotp_store::{InboundAttempt, InboundOutcome, InboundScope, WhatsAppSender};

/// The prefilled text of a reverse session with `code`.
fn text_of(code: &str) -> String {
    waotp_core::reverse::prefilled_text(None, "en", &OtpCode::from_guess(code))
}

/// A reverse session of `M` with `code`, created at `now`, valid 1 s.
pub(super) fn reverse_session(app_id: Uuid, code: &str, now: i64) -> NewSession {
    NewSession { reverse_key: Some(key().reverse_lookup(&text_of(code))), ..session(app_id, M, code, now) }
}

pub(super) fn inbound(code: &str, from: &str, message_id: &str, now: i64) -> InboundAttempt {
    InboundAttempt {
        reverse_key: key().reverse_lookup(&text_of(code)),
        from: Some(from.into()),
        sender_ids: Vec::new(),
        message_id: message_id.into(),
        now_ms: now,
        scope: InboundScope::Any,
    }
}

pub(super) async fn decided(store: &Arc<dyn Store>, a: InboundAttempt) -> InboundDecision {
    match store.verify_inbound(a).await.unwrap() {
        InboundOutcome::Decided { decision, .. } => decision,
        other => panic!("not decided: {other:?}"),
    }
}

const VERIFIED: InboundDecision = InboundDecision::Owner(VerifyDecision::Verified);

#[tokio::test]
async fn a_reverse_session_is_verified_by_its_sender_only_once() {
    let (_d, store) = fresh_store().await;
    let a = app("a");
    store.create_app(a.clone()).await.unwrap();
    let s = reverse_session(a.app_id, "ABCDEFGHJK", 100);
    create(&store, s.clone()).await;
    assert_eq!(store.reverse_other_senders(s.session_id).await.unwrap(), Some(OtherSenders::default()));
    // its code, sealed, for its link: to its own app only
    let parts = store.reverse_link_parts(a.app_id, s.session_id).await.unwrap().unwrap();
    assert_eq!(key().unseal(&s.session_id, &parts.sealed_code).unwrap().as_str(), "ABCDEFGHJK");
    assert_eq!(parts.custom_text, None, "waotp's default text");
    assert_eq!(store.reverse_link_parts(Uuid::new_v4(), s.session_id).await.unwrap(), None);
    // nothing to deliver: the user sends the message
    assert!(store.undelivered(0, 10).await.unwrap().is_empty());
    // the verify route never verifies it, even with the right code
    assert_eq!(decide(&store, attempt(a.app_id, M, "ABCDEFGHJK", 150)).await, VerifyDecision::NotFound);
    // an unknown code: no session, nothing written
    assert_eq!(
        store.verify_inbound(inbound("ZZZZZZZZZZ", M, "wamid.0", 150)).await.unwrap(),
        InboundOutcome::NoSession
    );
    // the right sender
    match store.verify_inbound(inbound("ABCDEFGHJK", M, "wamid.1", 200)).await.unwrap() {
        InboundOutcome::Decided { app_id, session_id, msisdn, decision, sender_number } => {
            assert_eq!((app_id, session_id, msisdn.as_str(), decision), (a.app_id, s.session_id, M, VERIFIED));
            assert_eq!(sender_number.as_ref().map(Msisdn::as_str), Some(M));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(status_of(&store, a.app_id, s.session_id).await, Status::Verified);
    assert_eq!(callback_statuses(&store, a.app_id, s.session_id).await, vec![Status::Requested, Status::Verified]);
    // the same message again, and a new one: nothing changes
    assert_eq!(store.verify_inbound(inbound("ABCDEFGHJK", M, "wamid.1", 250)).await.unwrap(), InboundOutcome::Replayed);
    assert_eq!(
        decided(&store, inbound("ABCDEFGHJK", M, "wamid.2", 250)).await,
        InboundDecision::Owner(VerifyDecision::NotFound)
    );
    assert_eq!(callback_statuses(&store, a.app_id, s.session_id).await, vec![Status::Requested, Status::Verified]);
    // a code-entry session is not reverse
    let plain = session(a.app_id, "6281234567891", "111111", 300);
    create(&store, plain.clone()).await;
    assert_eq!(store.reverse_other_senders(plain.session_id).await.unwrap(), None);
    // the funnels: the reverse one counts it (verified), the template one leaves it out
    let pending = reverse_session(a.app_id, "ZYXWVUTSRQ", 400);
    create(&store, NewSession { msisdn: Msisdn::parse("6281234567892").unwrap(), ..pending }).await;
    let reverse = store.reverse_funnel(0).await.unwrap();
    assert_eq!(reverse, vec![waotp_store::ReverseFunnelRow { app_id: a.app_id, day: 0, requested: 2, verified: 1 }]);
    let template = store.funnel(0).await.unwrap();
    assert_eq!(template.iter().map(|r| r.requested).sum::<u64>(), 1);
    assert_eq!(template.iter().map(|r| r.verified).sum::<u64>(), 0);
}

/// Strangers sending the session's text are counted apart, up to a cap, never as the owner's
/// wrong tries: however many came, the owner still verifies (issue 38: five strangers used to
/// lock the session).
#[tokio::test]
async fn strangers_are_counted_apart_and_the_owner_still_verifies() {
    let (_d, store) = fresh_store().await;
    let a = app("a");
    store.create_app(a.clone()).await.unwrap();
    let s = NewSession { reverse_text: Some("Acme: {code}".into()), ..reverse_session(a.app_id, "ABCDEFGHJK", 100) };
    create(&store, s.clone()).await;
    // the app's text in force is kept with the session, for its link
    let parts = store.reverse_link_parts(a.app_id, s.session_id).await.unwrap().unwrap();
    assert_eq!(parts.custom_text.as_deref(), Some("Acme: {code}"));
    let stranger = "6289999999999";
    assert_eq!(
        decided(&store, inbound("ABCDEFGHJK", stranger, "wamid.x1", 110)).await,
        InboundDecision::WrongSender { senders: 1, counted: true }
    );
    // the same message replayed is not counted twice
    assert_eq!(
        store.verify_inbound(inbound("ABCDEFGHJK", stranger, "wamid.x1", 111)).await.unwrap(),
        InboundOutcome::Replayed
    );
    for n in 2..=MAX_WRONG_SENDERS + 3 {
        let d = decided(&store, inbound("ABCDEFGHJK", stranger, &format!("wamid.x{n}"), 110 + i64::from(n))).await;
        let expected =
            InboundDecision::WrongSender { senders: n.min(MAX_WRONG_SENDERS), counted: n <= MAX_WRONG_SENDERS };
        assert_eq!(d, expected, "stranger {n}");
    }
    let others = OtherSenders { wrong: MAX_WRONG_SENDERS, number_not_shared: 0 };
    assert_eq!(store.reverse_other_senders(s.session_id).await.unwrap(), Some(others));
    let record = store.get_session(a.app_id, s.session_id).await.unwrap().unwrap();
    assert_eq!((record.state, record.status, record.wrong_attempts), (SessionState::Pending, Status::Requested, 0));
    // the owner, after every stranger: verified
    assert_eq!(decided(&store, inbound("ABCDEFGHJK", M, "wamid.ok", 200)).await, VERIFIED);
    assert_eq!(callback_statuses(&store, a.app_id, s.session_id).await, vec![Status::Requested, Status::Verified]);
    // a stranger after that: the closed session's answer, nothing counted
    assert_eq!(
        decided(&store, inbound("ABCDEFGHJK", stranger, "wamid.late", 210)).await,
        InboundDecision::Closed(VerifyDecision::NotFound)
    );
}

/// A message that is not the session's text (the code alone, or inside other words) names no
/// session: nothing is read beyond one key, nothing written.
#[tokio::test]
async fn only_the_prefilled_text_names_its_session() {
    let (_d, store) = fresh_store().await;
    let a = app("a");
    store.create_app(a.clone()).await.unwrap();
    let s = reverse_session(a.app_id, "ABCDEFGHJK", 100);
    create(&store, s.clone()).await;
    for (n, text) in ["ABCDEFGHJK", "my order number is ABCDEFGHJK", "ABCDEFGHJK is my verification code, thanks"]
        .into_iter()
        .enumerate()
    {
        let attempt = InboundAttempt {
            reverse_key: key().reverse_lookup(text),
            ..inbound("ABCDEFGHJK", M, &format!("wamid.{n}"), 150)
        };
        assert_eq!(store.verify_inbound(attempt).await.unwrap(), InboundOutcome::NoSession, "{text:?}");
    }
    // the text in other case and spacing is the text
    let attempt = InboundAttempt {
        reverse_key: key().reverse_lookup("  abcdefghjk IS my   verification code"),
        ..inbound("ABCDEFGHJK", M, "wamid.ok", 150)
    };
    assert_eq!(decided(&store, attempt).await, VERIFIED);
}

#[tokio::test]
async fn an_expired_reverse_session_reports_5_and_ignores_a_late_message() {
    let (_d, store) = fresh_store().await;
    let a = app("a");
    store.create_app(a.clone()).await.unwrap();
    let s = reverse_session(a.app_id, "ABCDEFGHJK", 100);
    create(&store, s.clone()).await;
    assert_eq!(store.expire_due(2000, 100).await.unwrap(), 1);
    assert_eq!(status_of(&store, a.app_id, s.session_id).await, Status::Unverified);
    assert_eq!(
        decided(&store, inbound("ABCDEFGHJK", M, "wamid.late", 2100)).await,
        InboundDecision::Owner(VerifyDecision::Expired)
    );
    assert_eq!(callback_statuses(&store, a.app_id, s.session_id).await, vec![Status::Requested, Status::Unverified]);
}

#[tokio::test]
async fn a_reverse_code_another_session_holds_is_refused_before_anything_is_stored() {
    let (_d, store) = fresh_store().await;
    let a = app("a");
    store.create_app(a.clone()).await.unwrap();
    create(&store, reverse_session(a.app_id, "ABCDEFGHJK", 100)).await;
    let twin =
        NewSession { msisdn: Msisdn::parse("6281234567891").unwrap(), ..reverse_session(a.app_id, "ABCDEFGHJK", 110) };
    let refused = store.create_session(twin.clone(), SendGuards::default()).await;
    assert!(matches!(refused, Err(StoreError::Conflict(_))), "{refused:?}");
    assert!(store.get_session(a.app_id, twin.session_id).await.unwrap().is_none());
}

#[tokio::test]
async fn an_inbound_message_decides_only_within_its_scope() {
    let (_d, store) = fresh_store().await;
    // `a` sends from the server's number, `b` from its own.
    let a = app("a");
    let mut b = app("b");
    b.sender = Some(WhatsAppSender { phone_number_id: "222".into(), access_token: "t".into() });
    store.create_app(a.clone()).await.unwrap();
    store.create_app(b.clone()).await.unwrap();
    let sa = reverse_session(a.app_id, "ABCDEFGHJK", 100);
    create(&store, sa.clone()).await;
    let sb = reverse_session(b.app_id, "ZYXWVUTSRQ", 100);
    create(&store, sb.clone()).await;
    let scoped = |code: &str, id: &str, scope: InboundScope| InboundAttempt { scope, ..inbound(code, M, id, 150) };
    let configured = |pnid: &str| InboundScope::Number { phone_number_id: pnid.into(), configured: true };
    let other = |pnid: &str| InboundScope::Number { phone_number_id: pnid.into(), configured: false };
    // a's code sent to b's number, or to a number that is neither: nothing, and no wrong try
    for (n, scope) in [other("222"), other("333"), InboundScope::App(b.app_id)].into_iter().enumerate() {
        let outcome = store.verify_inbound(scoped("ABCDEFGHJK", &format!("wamid.a{n}"), scope)).await.unwrap();
        assert_eq!(outcome, InboundOutcome::NoSession);
    }
    // b's code sent to the server's number: nothing either
    let outcome = store.verify_inbound(scoped("ZYXWVUTSRQ", "wamid.b0", configured("111"))).await.unwrap();
    assert_eq!(outcome, InboundOutcome::NoSession);
    for (app_id, session_id) in [(a.app_id, sa.session_id), (b.app_id, sb.session_id)] {
        let record = store.get_session(app_id, session_id).await.unwrap().unwrap();
        assert_eq!((record.status, record.wrong_attempts), (Status::Requested, 0));
    }
    // each to its own number (or its own app's simulation): verified
    let a_ok = store.verify_inbound(scoped("ABCDEFGHJK", "wamid.a9", configured("111"))).await.unwrap();
    assert!(matches!(a_ok, InboundOutcome::Decided { decision: VERIFIED, .. }), "{a_ok:?}");
    let b_ok = store.verify_inbound(scoped("ZYXWVUTSRQ", "wamid.b9", InboundScope::App(b.app_id))).await.unwrap();
    assert!(matches!(b_ok, InboundOutcome::Decided { decision: VERIFIED, .. }), "{b_ok:?}");
}

/// The app's text reply to a verified reverse session is a service message Meta may bill: once
/// its message id is recorded with the session, its delivered status's pricing is recorded
/// with the session (country, app, the month's billable count) and moves nothing; a report
/// that came before the id was recorded is kept, and its pricing recorded with the id.
#[tokio::test]
async fn a_reverse_replys_pricing_is_recorded_with_its_session() {
    use waotp_core::calendar::month_of;
    use waotp_core::MessagePricing;
    use waotp_store::{CostWindow, MessageCount};
    let (_d, store) = fresh_store().await;
    let a = app("a");
    store.create_app(a.clone()).await.unwrap();
    let verified = |code: &'static str, msisdn: &'static str, message_id: &'static str| {
        let store = store.clone();
        async move {
            let s = NewSession { msisdn: Msisdn::parse(msisdn).unwrap(), ..reverse_session(a.app_id, code, 100) };
            create(&store, s.clone()).await;
            assert_eq!(decided(&store, inbound(code, msisdn, message_id, 200)).await, VERIFIED);
            s
        }
    };
    let service =
        || Some(MessagePricing::from_fields(Some(true), Some("service"), Some("PMP"), Some("regular")).unwrap());
    let delivered = || vec![Status::Sent, Status::Delivered];
    // The reply recorded, then its statuses.
    let s = verified("ABCDEFGHJK", M, "wamid.in1").await;
    store.record_reverse_reply(s.session_id, "wamid.reply1", 300).await.unwrap();
    let sent = store.report_provider_status("wamid.reply1", vec![Status::Sent], None, None, 310).await.unwrap();
    assert_eq!(sent, ProviderReport::Applied, "found, nothing to record");
    let report = store.report_provider_status("wamid.reply1", delivered(), None, service(), 320).await.unwrap();
    let ProviderReport::Priced(cost) = report else { panic!("{report:?}") };
    assert_eq!((cost.app_id, cost.session_id, cost.country), (a.app_id, s.session_id, Some("ID")));
    let again = store.report_provider_status("wamid.reply1", delivered(), None, service(), 330).await.unwrap();
    assert_eq!(again, ProviderReport::Applied, "once per message");
    assert_eq!(status_of(&store, a.app_id, s.session_id).await, Status::Verified, "the session's status is its code's");
    // A reply's status that beat the recording of its id: kept, then recorded with it.
    let gb = verified("BCDEFGHJKM", "447400123456", "wamid.in2").await;
    let early = store.report_provider_status("wamid.reply2", delivered(), None, service(), 340).await.unwrap();
    assert_eq!(early, ProviderReport::Kept { evicted: 0 });
    store.record_reverse_reply(gb.session_id, "wamid.reply2", 350).await.unwrap();
    assert_eq!(status_of(&store, a.app_id, gb.session_id).await, Status::Verified);

    let mut counts =
        store.message_counts(CostWindow { app_id: Some(a.app_id), from_ms: 0, to_ms: 1000 }).await.unwrap();
    counts.sort();
    let count = |country: &str| MessageCount {
        country: Some(country.into()),
        category: "service".into(),
        billable: true,
        day: 0,
        messages: 1,
    };
    assert_eq!(counts, vec![count("GB"), count("ID")]);
    assert_eq!(store.billable_in_month(a.app_id, month_of(0)).await.unwrap(), 2);
    // A session that is gone: nothing recorded, no error.
    store.record_reverse_reply(Uuid::new_v4(), "wamid.reply3", 360).await.unwrap();
}
