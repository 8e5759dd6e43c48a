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
        SendOutcome::Created { try_count: 1, signals: vec![waotp_core::PumpingRule::SequentialNumbers] }
    );
    assert_eq!(
        send(4, sequential(true)).await.unwrap(),
        SendOutcome::Refused(Refusal::retry_after(waotp_core::PumpingRule::SequentialNumbers.into(), 60_000))
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

/// A range's signal counts the sends made under it, in this window and the last (weighted by
/// how much of it the sliding window still covers), from every msisdn of the range, and
/// nothing counted under another key, even one named like it (`seq:b#05`, `seq:b#3`: on
/// PostgreSQL, the signal's shards are `seq:b#0` … `seq:b#9`, read as one index range).
#[tokio::test]
async fn a_signal_counts_its_range_and_nothing_named_like_it() {
    use waotp_core::{PumpingRule, RefusalReason};
    use waotp_store::{Limit, Signal, SignalRule};
    let (_d, store) = fresh_store().await;
    let a = app("a");
    store.create_app(a.clone()).await.unwrap();
    const WINDOW: i64 = 60_000;
    let signal = || Signal {
        rule: SignalRule::Sequential { key: "seq:b".into(), threshold: 4, window_ms: WINDOW },
        enforce: false,
    };
    // Another counter's key and window; its sends never fire the signal.
    let other =
        |key: &str, window_ms| Limit { key: key.into(), limit: 100, window_ms, reason: RefusalReason::RateLimitedApp };
    let send = |n: u32, now: i64, guards: SendGuards| {
        let store = store.clone();
        let s = session(a.app_id, &format!("62812345678{n:02}"), "111111", now);
        async move {
            match store.create_session(s, guards).await.unwrap() {
                SendOutcome::Created { signals, .. } => signals == vec![PumpingRule::SequentialNumbers],
                other => panic!("not created: {other:?}"),
            }
        }
    };
    let with_signal = || SendGuards { signals: vec![signal()], ..SendGuards::default() };
    let with_limit = |key: &str, window_ms| SendGuards { limits: vec![other(key, window_ms)], ..SendGuards::default() };

    // The last window (60,000–119,999): three sends of the range, from three msisdns.
    for n in 1..=3 {
        assert!(!send(n, WINDOW + 100, with_signal()).await, "send {n} of the last window");
    }
    // Counted under other keys: one sorting among the shards' names, in this window; one
    // named like a shard, in a window that starts between the last window and this one.
    for n in 10..15 {
        assert!(!send(n, 2 * WINDOW + WINDOW / 2, with_limit("seq:b#05", WINDOW)).await);
        assert!(!send(n, WINDOW + 10_500, with_limit("seq:b#3", 7_000)).await);
    }
    // Halfway through this window: the last window's 3 weigh 1.5. Fires when the estimate
    // of the sends so far, plus this one, passes 4: at the third send of this window
    // (1.5 + 2 + 1), not before.
    let now = 2 * WINDOW + WINDOW / 2;
    assert!(!send(4, now, with_signal()).await, "1.5 + 0 + 1");
    assert!(!send(5, now, with_signal()).await, "1.5 + 1 + 1");
    assert!(send(16, now, with_signal()).await, "1.5 + 2 + 1, from another shard");
}

/// The last look before a send, on the facts each backend loads: every outcome, and what the
/// local inbox's delivery records for a stopped one.
#[tokio::test]
async fn the_delivery_check_decides_alike() {
    use waotp_core::{Blocklisted, DeliveryCheck, Stale};
    use waotp_store::BlockEntry;
    let (_d, store) = fresh_store().await;
    let a = app("a");
    store.create_app(a.clone()).await.unwrap();
    let check = |s: &NewSession, now| {
        let (store, session_id, msisdn) = (store.clone(), s.session_id, s.msisdn.clone());
        async move { store.delivery_check(a.app_id, session_id, &msisdn, now).await }
    };

    let pending = session(a.app_id, "6281200000001", "111111", 100);
    create(&store, pending.clone()).await;
    assert_eq!(check(&pending, 1099).await.unwrap(), DeliveryCheck::Send);
    assert_eq!(check(&pending, 1100).await.unwrap(), DeliveryCheck::Stale(Stale::Expired), "at the instant");
    let elsewhere = store.delivery_check(Uuid::new_v4(), pending.session_id, &pending.msisdn, 200).await.unwrap();
    assert_eq!(elsewhere, DeliveryCheck::Stale(Stale::Gone), "another app's session");

    let superseded = session(a.app_id, "6281200000002", "222222", 100);
    create(&store, superseded.clone()).await;
    create(&store, session(a.app_id, "6281200000002", "333333", 150)).await;
    assert_eq!(check(&superseded, 200).await.unwrap(), DeliveryCheck::Stale(Stale::Superseded));

    let verified = session(a.app_id, "6281200000003", "444444", 100);
    create(&store, verified.clone()).await;
    assert_eq!(decide(&store, attempt(a.app_id, "6281200000003", "444444", 200)).await, VerifyDecision::Verified);
    assert_eq!(check(&verified, 300).await.unwrap(), DeliveryCheck::Stale(Stale::Verified));

    let locked = session(a.app_id, "6281200000004", "555555", 100);
    create(&store, locked.clone()).await;
    for _ in 0..5 {
        decide(&store, attempt(a.app_id, "6281200000004", "999999", 200)).await;
    }
    assert_eq!(check(&locked, 300).await.unwrap(), DeliveryCheck::Stale(Stale::Locked));

    // Blocked after the send was accepted: a prefix for every app, the number for this one
    // (named first), and a blocked number is reported even when the code is stale too.
    let block = |app_id, entry: &str, is_prefix| {
        store.block(BlockEntry { app_id, entry: entry.into(), is_prefix, created_at_ms: 0 })
    };
    assert!(block(None, "6281200", true).await.unwrap());
    assert_eq!(check(&pending, 200).await.unwrap(), DeliveryCheck::Blocked(Blocklisted::Prefix));
    assert_eq!(check(&locked, 300).await.unwrap(), DeliveryCheck::Blocked(Blocklisted::Prefix));
    assert!(block(Some(a.app_id), "6281200000001", false).await.unwrap());
    assert_eq!(check(&pending, 200).await.unwrap(), DeliveryCheck::Blocked(Blocklisted::Number));
    assert!(block(Some(Uuid::new_v4()), "6281200000003", false).await.unwrap());
    assert_eq!(
        check(&verified, 300).await.unwrap(),
        DeliveryCheck::Blocked(Blocklisted::Prefix),
        "another app's entry for the number does not count"
    );

    // The inbox's delivery records what the check found, in its own transaction.
    let deliver = |s: &NewSession, now| {
        let message = inbox_message(s, now);
        let store = store.clone();
        async move { store.deliver_to_inbox(message).await.unwrap() }
    };
    deliver(&pending, 200).await;
    let r = store.get_session(a.app_id, pending.session_id).await.unwrap().unwrap();
    assert_eq!(r.status, Status::Blocked);
    assert_eq!(r.error_text.as_deref(), Some("blocked_number: blocked after the request was accepted"));
    assert!(r.delivered_to_channel);
    assert!(store.unblock(None, "6281200", true).await.unwrap());
    deliver(&superseded, 200).await;
    let r = store.get_session(a.app_id, superseded.session_id).await.unwrap().unwrap();
    assert_eq!((r.status, r.delivered_to_channel), (Status::Requested, true));
    assert_eq!(r.error_text.as_deref(), Some("superseded by a newer code before it was sent"));
    assert!(store.inbox(a.app_id, &superseded.msisdn, 10).await.unwrap().is_empty());
}

/// The order of statuses, as every backend applies it (PostgreSQL inside `waotp_advance`,
/// with the order passed from Rust): from each status, each other one is taken only if it is
/// later, and then with its callback. Spelled out here rather than read from the domain, so a
/// change to the order shows up as a change to the contract.
#[tokio::test]
async fn statuses_only_move_forward_in_the_same_order_everywhere() {
    // By code: Requested, Sent, Delivered, Read, Verified, Unverified, then the failures 6–10.
    const RANK: [u8; 11] = [0, 1, 2, 3, 5, 5, 4, 4, 4, 4, 4];
    let (_d, store) = fresh_store().await;
    let a = app("a");
    store.create_app(a.clone()).await.unwrap();
    for from in Status::ALL {
        let mut sessions = Vec::new();
        for to in Status::ALL {
            let s = NewSession {
                scripted: vec![from, to],
                ..session_for(a.app_id, M, &format!("{}-{}", from.code(), to.code()), 100)
            };
            create(&store, s.clone()).await;
            sessions.push((to, s));
        }
        for (to, s) in sessions {
            let rank = |s: Status| RANK[usize::from(s.code())];
            let want = if rank(to) > rank(from) { to } else { from };
            assert_eq!(status_of(&store, a.app_id, s.session_id).await, want, "{from:?} then {to:?}");
            let mut reported = vec![Status::Requested];
            reported.extend([from, want].into_iter().filter(|st| *st != Status::Requested));
            reported.dedup();
            assert_eq!(callback_statuses(&store, a.app_id, s.session_id).await, reported, "{from:?} then {to:?}");
        }
    }
}
