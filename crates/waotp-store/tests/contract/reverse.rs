//! Reverse verification (issue 20): a session marked reverse is found by its code's key,
//! decided on by an inbound message from its number, never by the verify route, and a
//! message seen before changes nothing.

use super::*;
use waotp_store::{InboundAttempt, InboundOutcome, InboundScope, WhatsAppSender};

/// A reverse session of `M` with `code`, created at `now`, valid 1 s.
fn reverse_session(app_id: Uuid, code: &str, now: i64) -> NewSession {
    let c = OtpCode::parse_custom(code).unwrap();
    NewSession { reverse_key: Some(key().reverse_lookup(&c)), ..session(app_id, M, code, now) }
}

fn inbound(code: &str, from: &str, message_id: &str, now: i64) -> InboundAttempt {
    let c = OtpCode::from_guess(code);
    InboundAttempt {
        reverse_key: key().reverse_lookup(&c),
        guess: Guess::new(c, key()),
        from: from.into(),
        message_id: message_id.into(),
        now_ms: now,
        scope: InboundScope::Any,
    }
}

async fn decided(store: &Arc<dyn Store>, a: InboundAttempt) -> VerifyDecision {
    match store.verify_inbound(a).await.unwrap() {
        InboundOutcome::Decided { decision, .. } => decision,
        other => panic!("not decided: {other:?}"),
    }
}

#[tokio::test]
async fn a_reverse_session_is_verified_by_its_sender_only_once() {
    let (_d, store) = fresh_store().await;
    let a = app("a");
    store.create_app(a.clone()).await.unwrap();
    let s = reverse_session(a.app_id, "ABCDEFGHJK", 100);
    create(&store, s.clone()).await;
    assert!(store.is_reverse(s.session_id).await.unwrap());
    // its code, sealed, for its link: to its own app only
    let sealed = store.reverse_sealed_code(a.app_id, s.session_id).await.unwrap().unwrap();
    assert_eq!(key().unseal(&s.session_id, &sealed).unwrap().as_str(), "ABCDEFGHJK");
    assert_eq!(store.reverse_sealed_code(Uuid::new_v4(), s.session_id).await.unwrap(), None);
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
        InboundOutcome::Decided { app_id, session_id, msisdn, decision } => {
            assert_eq!(
                (app_id, session_id, msisdn.as_str(), decision),
                (a.app_id, s.session_id, M, VerifyDecision::Verified)
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(status_of(&store, a.app_id, s.session_id).await, Status::Verified);
    assert_eq!(callback_statuses(&store, a.app_id, s.session_id).await, vec![Status::Requested, Status::Verified]);
    // the same message again, and a new one: nothing changes
    assert_eq!(store.verify_inbound(inbound("ABCDEFGHJK", M, "wamid.1", 250)).await.unwrap(), InboundOutcome::Replayed);
    assert_eq!(decided(&store, inbound("ABCDEFGHJK", M, "wamid.2", 250)).await, VerifyDecision::NotFound);
    assert_eq!(callback_statuses(&store, a.app_id, s.session_id).await, vec![Status::Requested, Status::Verified]);
    // a code-entry session is not reverse
    let plain = session(a.app_id, "6281234567891", "111111", 300);
    create(&store, plain.clone()).await;
    assert!(!store.is_reverse(plain.session_id).await.unwrap());
    // the funnels: the reverse one counts it (verified), the template one leaves it out
    let pending = reverse_session(a.app_id, "ZYXWVUTSRQ", 400);
    create(&store, NewSession { msisdn: Msisdn::parse("6281234567892").unwrap(), ..pending }).await;
    let reverse = store.reverse_funnel(0).await.unwrap();
    assert_eq!(reverse, vec![waotp_store::ReverseFunnelRow { app_id: a.app_id, day: 0, requested: 2, verified: 1 }]);
    let template = store.funnel(0).await.unwrap();
    assert_eq!(template.iter().map(|r| r.requested).sum::<u64>(), 1);
    assert_eq!(template.iter().map(|r| r.verified).sum::<u64>(), 0);
}

#[tokio::test]
async fn another_sender_counts_wrong_tries_up_to_the_lock_and_replays_count_once() {
    let (_d, store) = fresh_store().await;
    let a = app("a");
    store.create_app(a.clone()).await.unwrap();
    let s = reverse_session(a.app_id, "ABCDEFGHJK", 100);
    create(&store, s.clone()).await;
    let stranger = "6289999999999";
    assert_eq!(
        decided(&store, inbound("ABCDEFGHJK", stranger, "wamid.x1", 110)).await,
        VerifyDecision::WrongCode { attempts: 1, lock: false }
    );
    // the same message replayed is not a second try
    assert_eq!(
        store.verify_inbound(inbound("ABCDEFGHJK", stranger, "wamid.x1", 111)).await.unwrap(),
        InboundOutcome::Replayed
    );
    for n in 2..=5u32 {
        let d = decided(&store, inbound("ABCDEFGHJK", stranger, &format!("wamid.x{n}"), 110 + i64::from(n))).await;
        assert_eq!(d, VerifyDecision::WrongCode { attempts: n, lock: n == 5 });
    }
    // locked: even the right sender is refused
    assert_eq!(decided(&store, inbound("ABCDEFGHJK", M, "wamid.ok", 200)).await, VerifyDecision::Locked);
    let record = store.get_session(a.app_id, s.session_id).await.unwrap().unwrap();
    assert_eq!((record.state, record.wrong_attempts), (SessionState::Locked, 5));
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
    assert_eq!(decided(&store, inbound("ABCDEFGHJK", M, "wamid.late", 2100)).await, VerifyDecision::Expired);
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
    assert!(matches!(a_ok, InboundOutcome::Decided { decision: VerifyDecision::Verified, .. }), "{a_ok:?}");
    let b_ok = store.verify_inbound(scoped("ZYXWVUTSRQ", "wamid.b9", InboundScope::App(b.app_id))).await.unwrap();
    assert!(matches!(b_ok, InboundOutcome::Decided { decision: VerifyDecision::Verified, .. }), "{b_ok:?}");
}
