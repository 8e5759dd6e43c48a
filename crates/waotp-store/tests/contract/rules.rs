//! The rules decided in `waotp-core` over facts a backend loads, and the ones that run inside
//! the database: each pinned here on every backend, through the store's own API.

use super::*;

/// The verify decision as stored: the last wrong try locks, the cap holds against the right
/// code, expiry is at the instant itself, a sweeper's 5 Unverified wins over a clock running
/// behind it, a superseded code is a wrong guess, and a used code is not found.
#[tokio::test]
async fn verify_decisions_are_stored_as_decided() {
    let (_d, store) = fresh_store().await;
    let a = app("a");
    store.create_app(a.clone()).await.unwrap();
    let v = |msisdn: &'static str, g: &'static str, now| decide(&store, attempt(a.app_id, msisdn, g, now));
    let record = |s: &NewSession| store.get_session(a.app_id, s.session_id);

    // Four wrong tries, then the right code: verified, reported once.
    let s = session(a.app_id, M, "111111", 100);
    create(&store, s.clone()).await;
    for n in 1..=4 {
        assert_eq!(v(M, "999999", 200).await, VerifyDecision::WrongCode { attempts: n, lock: false });
    }
    let r = record(&s).await.unwrap().unwrap();
    assert_eq!((r.state, r.wrong_attempts, r.status), (SessionState::Pending, 4, Status::Requested));
    assert_eq!(v(M, "111111", 200).await, VerifyDecision::Verified);
    let r = record(&s).await.unwrap().unwrap();
    assert_eq!((r.state, r.wrong_attempts, r.status), (SessionState::Verified, 4, Status::Verified));
    assert_eq!(v(M, "111111", 201).await, VerifyDecision::NotFound);
    assert_eq!(callback_statuses(&store, a.app_id, s.session_id).await, vec![Status::Requested, Status::Verified]);

    // Five wrong tries lock; the right code is refused then, and nothing more is counted.
    const L: &str = "6281234567891";
    let s = session(a.app_id, L, "222222", 100);
    create(&store, s.clone()).await;
    for n in 1..=5 {
        assert_eq!(v(L, "999999", 200).await, VerifyDecision::WrongCode { attempts: n, lock: n == 5 });
    }
    assert_eq!(v(L, "222222", 200).await, VerifyDecision::Locked);
    let r = record(&s).await.unwrap().unwrap();
    assert_eq!((r.state, r.wrong_attempts, r.status), (SessionState::Locked, 5, Status::Requested));

    // Expiry is at `expires_at` itself (the session's is created + 1000).
    const E: &str = "6281234567892";
    let s = session(a.app_id, E, "333333", 100);
    create(&store, s.clone()).await;
    assert_eq!(v(E, "333333", 1100).await, VerifyDecision::Expired);
    assert_eq!(v(E, "999999", 1100).await, VerifyDecision::Expired, "an expired code is not counted");
    assert_eq!(record(&s).await.unwrap().unwrap().wrong_attempts, 0);
    create(&store, session(a.app_id, E, "444444", 2000)).await;
    assert_eq!(v(E, "444444", 2999).await, VerifyDecision::Verified, "one millisecond before");

    // The sweeper reported 5 Unverified: a verify whose clock is behind agrees with it.
    const U: &str = "6281234567893";
    let s = session(a.app_id, U, "555555", 100);
    create(&store, s.clone()).await;
    store.expire_due(1100, 100).await.unwrap();
    assert_eq!(status_of(&store, a.app_id, s.session_id).await, Status::Unverified);
    assert_eq!(v(U, "555555", 1050).await, VerifyDecision::Expired);

    // A resend supersedes: the old code is a wrong guess against the new one.
    const S: &str = "6281234567894";
    let old = session(a.app_id, S, "666666", 100);
    create(&store, old.clone()).await;
    create(&store, session(a.app_id, S, "777777", 150)).await;
    assert_eq!(v(S, "666666", 200).await, VerifyDecision::WrongCode { attempts: 1, lock: false });
    assert_eq!(record(&old).await.unwrap().unwrap().state, SessionState::Superseded);
    assert_eq!(v(S, "777777", 200).await, VerifyDecision::Verified);

    // No session of the key at all.
    assert_eq!(v("6281234567899", "111111", 200).await, VerifyDecision::NotFound);
}

/// The pumping signals over the counters each backend keeps: a sequential burst fires past
/// its threshold (reported when monitored, refused when enforced, with the window as the
/// wait), and a range fires while too few of its sends are verified.
#[tokio::test]
async fn pumping_signals_fire_alike() {
    use waotp_store::{Refusal, Signal, SignalRule};
    let (_d, store) = fresh_store().await;
    let a = app("a");
    store.create_app(a.clone()).await.unwrap();
    let sequential = |enforce| Signal {
        rule: SignalRule::Sequential { key: "seq:block".into(), threshold: 3, window_ms: 60_000 },
        enforce,
    };
    let send = |n: u32, signal: Signal| {
        let store = store.clone();
        let s = session(a.app_id, &format!("62812345678{n:02}"), "111111", 1000 + i64::from(n));
        async move { store.create_session(s, SendGuards { signals: vec![signal], ..SendGuards::default() }).await }
    };
    for n in 0..3 {
        assert_eq!(send(n, sequential(false)).await.unwrap(), SendOutcome::Created { try_count: 1, signals: vec![] });
    }
    assert_eq!(
        send(3, sequential(false)).await.unwrap(),
        SendOutcome::Created { try_count: 1, signals: vec!["sequential_numbers"] }
    );
    assert_eq!(
        send(4, sequential(true)).await.unwrap(),
        SendOutcome::Refused(Refusal::RateLimited { code: "sequential_numbers", retry_after_ms: 60_000 })
    );

    // Conversion: at least 2 sends, at least half of them verified.
    let conversion = || Signal {
        rule: SignalRule::Conversion {
            sent_key: "conv-sent:range".into(),
            verified_key: "conv-ok:range".into(),
            min_sends: 2,
            min_rate: 0.5,
            window_ms: 60_000,
        },
        enforce: false,
    };
    let fired = |outcome: SendOutcome| match outcome {
        SendOutcome::Created { signals, .. } => !signals.is_empty(),
        other => panic!("not created: {other:?}"),
    };
    assert!(!fired(send(10, conversion()).await.unwrap()), "1 send so far: too few to judge");
    assert!(!fired(send(11, conversion()).await.unwrap()), "still too few");
    assert!(fired(send(12, conversion()).await.unwrap()), "2 sends, none verified");
    let verify = |n: u32| {
        let mut attempt = attempt(a.app_id, &format!("62812345678{n:02}"), "111111", 1100);
        attempt.on_verified = vec![("conv-ok:range".into(), 60_000)];
        decide(&store, attempt)
    };
    assert_eq!(verify(10).await, VerifyDecision::Verified);
    assert!(fired(send(13, conversion()).await.unwrap()), "3 sends, 1 verified");
    assert_eq!(verify(11).await, VerifyDecision::Verified);
    assert!(!fired(send(14, conversion()).await.unwrap()), "4 sends, 2 verified: half");
}
