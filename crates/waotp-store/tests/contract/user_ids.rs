//! Business-scoped user ids (issue 31): the number a BSUID stands for is learned from what Meta
//! names together, per business, followed when a BSUID moves or a number is left, and a
//! reverse session is verified by a sender Meta names only by a learned BSUID; an unknown one
//! verifies nothing, counts nothing against the session, and is counted apart.

use super::reverse::{decided, inbound, reverse_session};
use super::*;
use waotp_core::reverse::{InboundDecision, OtherSenders, MAX_WRONG_SENDERS};
use waotp_store::{InboundAttempt, InboundOutcome, UserIdFact, UserKey};

const WABA: &str = "102290129340398";
const BSUID: &str = "ID.13491208655302741918";

fn key(user_id: &str) -> UserKey {
    UserKey::new(WABA, user_id)
}

fn pair(user_id: &str, wa_id: &str) -> UserIdFact {
    UserIdFact::Pair { key: key(user_id), wa_id: wa_id.into() }
}

/// An inbound message with `code`'s text from a sender named only by `ids`.
fn unnamed(code: &str, ids: &[UserKey], message_id: &str, now: i64) -> InboundAttempt {
    InboundAttempt { from: None, sender_ids: ids.to_vec(), ..inbound(code, M, message_id, now) }
}

#[tokio::test]
async fn pairs_are_learned_per_business_moved_and_left() {
    let (_d, store) = fresh_store().await;
    store.learn_user_ids(vec![pair(BSUID, M)], 10).await.unwrap();
    assert_eq!(store.user_number(key(BSUID)).await.unwrap().as_deref(), Some(M));
    // another business's BSUID is another user id
    assert_eq!(store.user_number(UserKey::new("other-waba", BSUID)).await.unwrap(), None);
    // a number has one BSUID per business: a new one for it replaces the old
    store.learn_user_ids(vec![pair("ID.2", M)], 20).await.unwrap();
    assert_eq!(store.user_number(key(BSUID)).await.unwrap(), None);
    assert_eq!(store.user_number(key("ID.2")).await.unwrap().as_deref(), Some(M));
    // a moved BSUID (Meta makes a new one when the user changes number) never takes the number
    // the previous stood for; the previous names nobody; a current BSUID known already stays
    store.learn_user_ids(vec![pair("ID.known", "6281234567000")], 25).await.unwrap();
    let moved = UserIdFact::Moved { previous: key("ID.2"), current: Some(key("ID.3")), wa_id: None };
    let onto_known = UserIdFact::Moved { previous: key("ID.x"), current: Some(key("ID.known")), wa_id: None };
    store.learn_user_ids(vec![moved, onto_known], 30).await.unwrap();
    assert_eq!(store.user_number(key("ID.2")).await.unwrap(), None);
    assert_eq!(store.user_number(key("ID.3")).await.unwrap(), None);
    assert_eq!(store.user_number(key("ID.known")).await.unwrap().as_deref(), Some("6281234567000"));
    // a move to a number Meta gives takes that number, and the previous number is left (its
    // parent BSUID too)
    store
        .learn_user_ids(
            vec![pair("ID.3", M), UserIdFact::Pair { key: UserKey::parent("ID.ENT.0"), wa_id: M.into() }],
            35,
        )
        .await
        .unwrap();
    let other = "6281234567899";
    let moved = UserIdFact::Moved { previous: key("ID.3"), current: Some(key("ID.4")), wa_id: Some(other.into()) };
    store.learn_user_ids(vec![moved], 40).await.unwrap();
    assert_eq!(store.user_number(key("ID.4")).await.unwrap().as_deref(), Some(other));
    assert_eq!(store.user_number(UserKey::parent("ID.ENT.0")).await.unwrap(), None);
    // a move of an unknown BSUID with no number teaches nothing
    let unknown = UserIdFact::Moved { previous: key("ID.x"), current: Some(key("ID.y")), wa_id: None };
    store.learn_user_ids(vec![unknown], 50).await.unwrap();
    assert_eq!(store.user_number(key("ID.y")).await.unwrap(), None);
    // a number left: no BSUID of the business (nor a parent) stands for it
    let parent = UserIdFact::Pair { key: UserKey::parent("ID.ENT.1"), wa_id: other.into() };
    store.learn_user_ids(vec![parent], 60).await.unwrap();
    let left = UserIdFact::LeftNumber { business: WABA.into(), wa_id: other.into() };
    store.learn_user_ids(vec![left], 70).await.unwrap();
    assert_eq!(store.user_number(key("ID.4")).await.unwrap(), None);
    assert_eq!(store.user_number(UserKey::parent("ID.ENT.1")).await.unwrap(), None);
}

/// A number has parent BSUIDs in several enterprises at once; within a business one BSUID, also
/// when nodes learn two at once (PostgreSQL: they take turns on the number).
#[tokio::test]
async fn one_bsuid_per_number_and_business_but_parents_side_by_side() {
    let (_d, store) = fresh_store().await;
    let parents = [UserKey::parent("ID.ENT.1"), UserKey::parent("ID.ENT.2")];
    for p in &parents {
        store.learn_user_ids(vec![UserIdFact::Pair { key: p.clone(), wa_id: M.into() }], 10).await.unwrap();
    }
    for p in parents {
        assert_eq!(store.user_number(p).await.unwrap().as_deref(), Some(M));
    }
    let writes = (0..8).map(|i| {
        let store = store.clone();
        tokio::spawn(async move { store.learn_user_ids(vec![pair(&format!("ID.c{i}"), M)], 20).await.unwrap() })
    });
    for w in writes.collect::<Vec<_>>() {
        w.await.unwrap();
    }
    let mut left = 0;
    for i in 0..8 {
        left += usize::from(store.user_number(key(&format!("ID.c{i}"))).await.unwrap().is_some());
    }
    assert_eq!(left, 1, "one BSUID of the number is left");
}

#[tokio::test]
async fn pairs_not_seen_for_the_retention_period_go() {
    let (_d, store) = fresh_store().await;
    let day = 86_400_000;
    store.learn_user_ids(vec![pair("ID.old", M), pair("ID.new", "6281234567899")], 1).await.unwrap();
    // seen again the next day: refreshed, so it stays
    store.learn_user_ids(vec![pair("ID.new", "6281234567899")], day + 1).await.unwrap();
    store.prune_older_than(day, 100).await.unwrap();
    assert_eq!(store.user_number(key("ID.old")).await.unwrap(), None);
    assert_eq!(store.user_number(key("ID.new")).await.unwrap().as_deref(), Some("6281234567899"));
}

#[tokio::test]
async fn a_sender_named_only_by_a_learned_bsuid_verifies_its_number() {
    let (_d, store) = fresh_store().await;
    let a = app("a");
    store.create_app(a.clone()).await.unwrap();
    let s = reverse_session(a.app_id, "ABCDEFGHJK", 100);
    create(&store, s.clone()).await;
    store.learn_user_ids(vec![pair(BSUID, M)], 100).await.unwrap();
    // the first of its ids that was learned names it (its own, else its parent)
    let ids = [key("ID.unknown"), key(BSUID)];
    match store.verify_inbound(unnamed("ABCDEFGHJK", &ids, "wamid.1", 150)).await.unwrap() {
        InboundOutcome::Decided { decision, sender_number, .. } => {
            assert_eq!(decision, InboundDecision::Owner(VerifyDecision::Verified));
            assert_eq!(sender_number.as_ref().map(Msisdn::as_str), Some(M));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(status_of(&store, a.app_id, s.session_id).await, Status::Verified);
    // a BSUID standing for another number is a stranger
    let t =
        NewSession { msisdn: Msisdn::parse("6281234567891").unwrap(), ..reverse_session(a.app_id, "ZYXWVUTSRQ", 200) };
    create(&store, t.clone()).await;
    assert_eq!(
        decided(&store, unnamed("ZYXWVUTSRQ", &[key(BSUID)], "wamid.2", 210)).await,
        InboundDecision::WrongSender { senders: 1, counted: true }
    );
}

#[tokio::test]
async fn an_unknown_bsuid_verifies_nothing_and_counts_nothing_against_the_session() {
    let (_d, store) = fresh_store().await;
    let a = app("a");
    store.create_app(a.clone()).await.unwrap();
    let s = reverse_session(a.app_id, "ABCDEFGHJK", 100);
    create(&store, s.clone()).await;
    let ids = [key(BSUID), UserKey::parent("ID.ENT.1")];
    assert_eq!(
        decided(&store, unnamed("ABCDEFGHJK", &ids, "wamid.1", 110)).await,
        InboundDecision::NumberNotShared { messages: 1, counted: true }
    );
    // replayed: not counted twice
    assert_eq!(
        store.verify_inbound(unnamed("ABCDEFGHJK", &ids, "wamid.1", 111)).await.unwrap(),
        InboundOutcome::Replayed
    );
    // no sender ids at all: the same
    assert_eq!(
        decided(&store, unnamed("ABCDEFGHJK", &[], "wamid.2", 112)).await,
        InboundDecision::NumberNotShared { messages: 2, counted: true }
    );
    for n in 3..=MAX_WRONG_SENDERS + 2 {
        let d = decided(&store, unnamed("ABCDEFGHJK", &ids, &format!("wamid.n{n}"), 120)).await;
        assert_eq!(
            d,
            InboundDecision::NumberNotShared { messages: n.min(MAX_WRONG_SENDERS), counted: n <= MAX_WRONG_SENDERS }
        );
    }
    let others = OtherSenders { wrong: 0, number_not_shared: MAX_WRONG_SENDERS };
    assert_eq!(store.reverse_other_senders(s.session_id).await.unwrap(), Some(others));
    let record = store.get_session(a.app_id, s.session_id).await.unwrap().unwrap();
    assert_eq!((record.state, record.status, record.wrong_attempts), (SessionState::Pending, Status::Requested, 0));
    // once learned (a status of a message sent to the number), the same BSUID verifies
    store.learn_user_ids(vec![pair(BSUID, M)], 130).await.unwrap();
    assert_eq!(
        decided(&store, unnamed("ABCDEFGHJK", &ids, "wamid.ok", 140)).await,
        InboundDecision::Owner(VerifyDecision::Verified)
    );
}

/// A moved BSUID: the previous no longer verifies, the current one does with the number Meta
/// gave; without a number it does not (the user may have changed number).
#[tokio::test]
async fn after_a_move_the_previous_bsuid_no_longer_verifies() {
    let (_d, store) = fresh_store().await;
    let a = app("a");
    store.create_app(a.clone()).await.unwrap();
    store.learn_user_ids(vec![pair("ID.old", M)], 100).await.unwrap();
    let moved = UserIdFact::Moved { previous: key("ID.old"), current: Some(key("ID.new")), wa_id: Some(M.into()) };
    let unnumbered = UserIdFact::Moved { previous: key("ID.new"), current: Some(key("ID.newer")), wa_id: None };
    store.learn_user_ids(vec![moved], 110).await.unwrap();
    let s = reverse_session(a.app_id, "ABCDEFGHJK", 120);
    create(&store, s.clone()).await;
    assert_eq!(
        decided(&store, unnamed("ABCDEFGHJK", &[key("ID.old")], "wamid.old", 130)).await,
        InboundDecision::NumberNotShared { messages: 1, counted: true }
    );
    let t = NewSession { msisdn: Msisdn::parse(M).unwrap(), ..reverse_session(a.app_id, "ZYXWVUTSRQ", 120) };
    assert_eq!(
        decided(&store, unnamed("ABCDEFGHJK", &[key("ID.new")], "wamid.new", 140)).await,
        InboundDecision::Owner(VerifyDecision::Verified)
    );
    // moved on without a number: neither the previous nor the current verifies
    create(&store, t.clone()).await;
    store.learn_user_ids(vec![unnumbered], 150).await.unwrap();
    for (id, n) in [("ID.new", 1), ("ID.newer", 2)] {
        assert_eq!(
            decided(&store, unnamed("ZYXWVUTSRQ", &[key(id)], &format!("wamid.{id}"), 160)).await,
            InboundDecision::NumberNotShared { messages: n, counted: true }
        );
    }
}
