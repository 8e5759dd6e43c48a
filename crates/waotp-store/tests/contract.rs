//! The store contract: what every backend must do, through the store's traits (`AppStore`,
//! `SessionStore`, `DeliveryStore`, `CallbackStore`, `DashboardStore`, `DashboardLogins`,
//! gathered in `Store`) and its driver-neutral `StoreError`. The single statement of a
//! backend's promises: a new backend is added to [`open`] and passes every test here. Runs
//! against SQLite, or against PostgreSQL when `WAOTP_TEST_POSTGRES` names a server
//! (`scripts/with-postgres`; `-- --include-ignored` adds the PostgreSQL-only cases).

use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;
use waotp_core::{Category, CodeKey, Guess, Msisdn, OtpCode, SessionState, Status, Template, VerifyDecision};
use waotp_store::postgres::{PgOptions, PgStore};
use waotp_store::sqlite::{SqliteOptions, SqliteStore};
use waotp_store::{
    AppRecord, AppSettings, DeliveryOutcome, InboxMessage, NewSession, ProviderReport, SendGuards, SendOutcome, Store,
    StoreError, VerifyAttempt, VerifyOutcome,
};
use waotp_test_support::eventually;
use waotp_test_support::postgres::{fresh_postgres_url, required_postgres, test_postgres};

/// A database of the backend under test, empty.
struct Db {
    _dir: tempfile::TempDir,
    url: String,
}

async fn fresh_db() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let url = match test_postgres() {
        Some(base) => fresh_postgres_url(&base).await.unwrap(),
        None => format!("sqlite://{}", dir.path().join("db").join("waotp.db").display()),
    };
    Db { _dir: dir, url }
}

/// Stores wait up to 30 s for the database, not 2 s: the concurrency cases count exact
/// outcomes on a machine that may be busy, not load shed as unavailable.
const WAIT: std::time::Duration = std::time::Duration::from_secs(30);

async fn open(db: &Db) -> Arc<dyn Store> {
    if db.url.starts_with("postgres") {
        let mut options = PgOptions::from_url(&db.url).unwrap();
        options.wait = WAIT;
        Arc::new(PgStore::open(options).await.unwrap())
    } else {
        let mut options = SqliteOptions::from_url(&db.url);
        options.synchronous_full = false;
        options.wait = WAIT;
        Arc::new(SqliteStore::open(options).unwrap())
    }
}

async fn fresh_store() -> (Db, Arc<dyn Store>) {
    let db = fresh_db().await;
    let store = open(&db).await;
    (db, store)
}

fn app(name: &str) -> AppRecord {
    AppRecord {
        app_id: Uuid::new_v4(),
        name: name.into(),
        api_key_hash: [7; 32],
        callback_secret: waotp_core::callback::generate_secret(),
        settings: AppSettings::default(),
        quota: None,
        sender: None,
        created_at_ms: 1,
    }
}

fn key() -> Arc<CodeKey> {
    Arc::new(CodeKey::from_secret(b"contract-test-secret"))
}

fn session(app_id: Uuid, msisdn: &str, code: &str, now: i64) -> NewSession {
    let session_id = Uuid::new_v4();
    let code = OtpCode::parse_custom(code).unwrap();
    NewSession {
        session_id,
        app_id,
        msisdn: Msisdn::parse(msisdn).unwrap(),
        challenge: "login".into(),
        code_hash: key().hash(&session_id, &code),
        sealed_code: Some(key().seal(&session_id, &code)),
        sandbox: false,
        scripted: vec![],
        template_name: "verification_code".into(),
        lang_code: "en".into(),
        content: vec!["x".into()],
        callback_url: Some("http://127.0.0.1/cb".into()),
        created_at_ms: now,
        expires_at_ms: now + 1000,
        inbox_text: None,
        reverse_key: None,
        reverse_text: None,
    }
}

fn attempt(app_id: Uuid, msisdn: &str, guess: &str, now: i64) -> VerifyAttempt {
    VerifyAttempt {
        app_id,
        msisdn: Msisdn::parse(msisdn).unwrap(),
        challenge: "login".into(),
        guess: Guess::new(OtpCode::from_guess(guess), key()),
        sandbox: false,
        limit: None,
        on_verified: vec![],

        now_ms: now,
    }
}

const M: &str = "6281234567890";

#[path = "contract/rules.rs"]
mod rules;

#[path = "contract/costs.rs"]
mod costs;
#[path = "contract/health.rs"]
mod health;
#[path = "contract/reverse.rs"]
mod reverse;
#[path = "contract/user_ids.rs"]
mod user_ids;

/// Stores a session with no guards; its try_count.
async fn create(store: &Arc<dyn Store>, s: NewSession) -> u32 {
    match store.create_session(s, SendGuards::default()).await.unwrap() {
        SendOutcome::Created { try_count, .. } => try_count,
        other => panic!("not created: {other:?}"),
    }
}

/// Records that `session_id`'s message went out as `provider_id` at `at`.
async fn record_sent(store: &Arc<dyn Store>, session_id: Uuid, provider_id: &str, at: i64) {
    store.record_delivery(session_id, DeliveryOutcome::Sent { provider_id: provider_id.into() }, at).await.unwrap();
}

/// A stored session's status.
async fn status_of(store: &Arc<dyn Store>, app_id: Uuid, session_id: Uuid) -> Status {
    store.get_session(app_id, session_id).await.unwrap().unwrap().status
}

async fn decide(store: &Arc<dyn Store>, a: VerifyAttempt) -> VerifyDecision {
    match store.verify(a).await.unwrap() {
        VerifyOutcome::Decided(d) => d,
        other => panic!("refused: {other:?}"),
    }
}

#[tokio::test]
async fn apps_and_templates() {
    let (_d, store) = fresh_store().await;
    let a = app("a");
    store.create_app(a.clone()).await.unwrap();
    assert_eq!(store.get_app(a.app_id).await.unwrap(), Some(a.clone()));
    assert_eq!(store.get_app(Uuid::new_v4()).await.unwrap(), None);
    let s = AppSettings { code_length: 8, return_code: false, ..AppSettings::default() };
    assert!(store.update_app_settings(a.app_id, s.clone()).await.unwrap());
    assert_eq!(store.get_app(a.app_id).await.unwrap().unwrap().settings, s);
    assert!(!store.update_app_settings(Uuid::new_v4(), s).await.unwrap());
    assert!(store.set_api_key_hash(a.app_id, [9; 32]).await.unwrap());
    assert_eq!(store.get_app(a.app_id).await.unwrap().unwrap().api_key_hash, [9; 32]);

    let t = Template {
        name: "otp".into(),
        language: "id".into(),
        category: Category::Utility,
        body: "{{1}} for {{2}}".into(),
        code_placeholder: 1,
        copy_code_button: false,
    };
    assert!(store.put_template(a.app_id, t.clone()).await.unwrap());
    assert!(!store.put_template(Uuid::new_v4(), t.clone()).await.unwrap());
    let mut replaced = t.clone();
    replaced.body = "{{1}} untuk {{2}}".into();
    assert!(store.put_template(a.app_id, replaced.clone()).await.unwrap());
    assert_eq!(store.list_templates(a.app_id).await.unwrap(), vec![replaced]);
    assert!(store.delete_template(a.app_id, "otp", "id").await.unwrap());
    assert!(!store.delete_template(a.app_id, "otp", "id").await.unwrap());
    assert_eq!(store.list_apps().await.unwrap().len(), 1);
}

/// One failing job in a group commit rolls back alone; its neighbours commit. The failure is
/// the statement's, told apart from an unavailable database without any driver type.
#[tokio::test]
async fn a_failing_write_does_not_spoil_its_batch() {
    let (_d, store) = fresh_store().await;
    let dup = app("dup");
    store.create_app(dup.clone()).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..100 {
        let store = store.clone();
        let record = if i == 50 { dup.clone() } else { app(&format!("app{i}")) };
        tasks.push(tokio::spawn(async move { store.create_app(record).await }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(e) => assert!(matches!(e, StoreError::Backend(_)) && !e.is_unavailable(), "{e:?}"),
        }
    }
    assert_eq!(ok, 99);
    assert_eq!(store.list_apps().await.unwrap().len(), 100);
}

#[tokio::test]
async fn sessions_supersede_verify_and_lock() {
    let (_d, store) = fresh_store().await;
    let a = app("a");
    store.create_app(a.clone()).await.unwrap();
    let first = session(a.app_id, M, "111111", 100);
    assert_eq!(create(&store, first.clone()).await, 1);
    assert_eq!(create(&store, session(a.app_id, M, "222222", 200)).await, 2);
    let v = |g: &str, now| decide(&store, attempt(a.app_id, M, g, now));
    // The superseded code is just a wrong guess against the newest one.
    assert_eq!(v("111111", 300).await, VerifyDecision::WrongCode { attempts: 1, lock: false });
    for n in 2..=5 {
        assert_eq!(v("999999", 300).await, VerifyDecision::WrongCode { attempts: n, lock: n == 5 });
    }
    assert_eq!(v("222222", 300).await, VerifyDecision::Locked);
    let old = store.get_session(a.app_id, first.session_id).await.unwrap().unwrap();
    assert_eq!(old.state, SessionState::Superseded);
    // Locked is not pending: a new send starts at 1, and verifies.
    assert_eq!(create(&store, session(a.app_id, M, "333333", 400)).await, 1);
    assert_eq!(v("333333", 1399).await, VerifyDecision::Verified);
    assert_eq!(v("333333", 1399).await, VerifyDecision::NotFound);
    // Expiry.
    create(&store, session(a.app_id, M, "444444", 2000)).await;
    assert_eq!(v("444444", 3000).await, VerifyDecision::Expired);
    // Another app sees nothing.
    let b = app("b");
    create(&store, session(a.app_id, M, "555555", 5000)).await;
    assert_eq!(decide(&store, attempt(b.app_id, M, "555555", 5001)).await, VerifyDecision::NotFound);
}

#[tokio::test]
async fn delivery_bookkeeping_and_the_inbox() {
    let (_d, store) = fresh_store().await;
    let a = app("a");
    store.create_app(a.clone()).await.unwrap();
    let s1 = session(a.app_id, M, "111111", 100);
    let s2 = session(a.app_id, "6281234567891", "222222", 100);
    create(&store, s1.clone()).await;
    create(&store, s2.clone()).await;
    let pending = store.undelivered(0, 10).await.unwrap();
    assert_eq!(pending.len(), 2);
    assert_eq!(pending[0].session_id, s1.session_id);
    assert_eq!(pending[0].content, vec!["x".to_owned()]);
    assert_eq!(key().unseal(&s1.session_id, &pending[0].sealed_code).unwrap().as_str(), "111111");
    assert_eq!(store.undelivered(pending[0].row_id, 10).await.unwrap().len(), 1);

    store
        .deliver_to_inbox(InboxMessage {
            app_id: a.app_id,
            session_id: s1.session_id,
            msisdn: s1.msisdn.clone(),
            text: "111111 is your verification code.".into(),
            created_at_ms: 150,
        })
        .await
        .unwrap();
    store
        .record_delivery(
            s2.session_id,
            DeliveryOutcome::Failed {
                status: Status::Failed,
                error_code: Some(131026),
                error_text: "undeliverable".into(),
            },
            150,
        )
        .await
        .unwrap();
    assert!(store.undelivered(0, 10).await.unwrap().is_empty());
    let r1 = store.get_session(a.app_id, s1.session_id).await.unwrap().unwrap();
    assert_eq!(r1.status, Status::Delivered);
    let r2 = store.get_session(a.app_id, s2.session_id).await.unwrap().unwrap();
    assert_eq!((r2.status, r2.error_code), (Status::Failed, Some(131026)));

    let inbox = store.inbox(a.app_id, &s1.msisdn, 10).await.unwrap();
    assert_eq!(inbox.len(), 1);
    // Another app cannot mark it read; its owner can; it never moves back.
    store.mark_read(Uuid::new_v4(), vec![s1.session_id], 160).await.unwrap();
    assert_eq!(store.get_session(a.app_id, s1.session_id).await.unwrap().unwrap().status, Status::Delivered);
    store.mark_read(a.app_id, vec![s1.session_id], 160).await.unwrap();
    assert_eq!(store.get_session(a.app_id, s1.session_id).await.unwrap().unwrap().status, Status::Read);
    record_sent(&store, s1.session_id, "wamid.x", 170).await;
    assert_eq!(store.get_session(a.app_id, s1.session_id).await.unwrap().unwrap().status, Status::Read);
}

/// A send to the local inbox is stored with its message, in its own write: delivered at its
/// creation, its callbacks queued in order behind status 0's, no sealed code left to deliver;
/// an idempotent retry of it still answers its code.
#[tokio::test]
async fn a_send_to_the_inbox_is_stored_delivered_with_its_message() {
    use waotp_store::{IdempotencyKey, Timeline};
    let (_d, store) = fresh_store().await;
    let a = app("a");
    store.create_app(a.clone()).await.unwrap();
    let text = "111111 is your verification code.";
    let s = NewSession { inbox_text: Some(text.into()), ..session(a.app_id, M, "111111", 100) };
    let guards = SendGuards {
        idempotency: Some(IdempotencyKey { key: "k1".into(), body_hash: [7; 32] }),
        ..SendGuards::default()
    };
    assert!(matches!(
        store.create_session(s.clone(), guards.clone()).await.unwrap(),
        SendOutcome::Created { try_count: 1, .. }
    ));
    // Nothing is left for the dispatcher.
    assert!(store.undelivered(0, 10).await.unwrap().is_empty());
    let record = store.get_session(a.app_id, s.session_id).await.unwrap().unwrap();
    assert_eq!(record.status, Status::Delivered);
    assert_eq!(record.timeline, Timeline { sent_at_ms: Some(100), delivered_at_ms: Some(100), ..Timeline::default() });
    let inbox = store.inbox(a.app_id, &s.msisdn, 10).await.unwrap();
    assert_eq!(inbox.len(), 1);
    assert_eq!((inbox[0].session_id, inbox[0].text.as_str(), inbox[0].created_at_ms), (s.session_id, text, 100));
    // Statuses 0, 1, 2, each due once the one before it is settled.
    assert_eq!(
        callback_statuses(&store, a.app_id, s.session_id).await,
        [Status::Requested, Status::Sent, Status::Delivered]
    );
    let jobs = store.claim_callbacks(200, 10_000, 10).await.unwrap();
    assert_eq!(jobs.iter().map(|j| j.status).collect::<Vec<_>>(), [Status::Requested]);
    store.finish_callback(&jobs[0], None, waotp_store::CallbackNext::Delivered, 201).await.unwrap();
    let next = store.claim_callbacks(201, 10_000, 10).await.unwrap();
    assert_eq!(next.iter().map(|j| j.status).collect::<Vec<_>>(), [Status::Sent]);
    // The retry answers the code it was sent with.
    match store.create_session(s.clone(), guards).await.unwrap() {
        SendOutcome::Replayed(replay) => {
            assert_eq!(replay.session_id, s.session_id);
            assert_eq!(key().unseal(&s.session_id, &replay.sealed_code).unwrap().as_str(), "111111");
        }
        other => panic!("not replayed: {other:?}"),
    }
    assert_eq!(store.inbox(a.app_id, &s.msisdn, 10).await.unwrap().len(), 1);
    // A new code supersedes it, and is delivered with its own message.
    let s2 = NewSession { inbox_text: Some("222222".into()), ..session(a.app_id, M, "222222", 150) };
    assert_eq!(create(&store, s2.clone()).await, 2);
    assert_eq!(store.inbox(a.app_id, &s.msisdn, 10).await.unwrap().len(), 2);
    assert!(matches!(decide(&store, attempt(a.app_id, M, "111111", 160)).await, VerifyDecision::WrongCode { .. }));
    assert_eq!(decide(&store, attempt(a.app_id, M, "222222", 161)).await, VerifyDecision::Verified);
}

#[tokio::test]
async fn reopening_keeps_everything() {
    let db = fresh_db().await;
    let a = app("a");
    {
        let store = open(&db).await;
        store.create_app(a.clone()).await.unwrap();
        create(&store, session(a.app_id, M, "111111", 100)).await;
    }
    let store = open(&db).await;
    assert_eq!(store.get_app(a.app_id).await.unwrap(), Some(a.clone()));
    assert_eq!(decide(&store, attempt(a.app_id, M, "111111", 200)).await, VerifyDecision::Verified);
}

#[tokio::test]
async fn callbacks_are_claimed_in_order_per_session() {
    use waotp_store::{AttemptRecord, CallbackNext, CallbackState};
    let (_d, store) = fresh_store().await;
    let a = app("a");
    store.create_app(a.clone()).await.unwrap();
    let s1 = session(a.app_id, M, "111111", 100);
    let s2 = session(a.app_id, "6281234567891", "222222", 100);
    create(&store, s1.clone()).await;
    create(&store, s2.clone()).await;
    record_sent(&store, s1.session_id, "w1", 110).await;
    // One per session: the two status-0 callbacks, not s1's status 1.
    let jobs = store.claim_callbacks(200, 10_000, 10).await.unwrap();
    assert_eq!(jobs.len(), 2);
    assert!(jobs.iter().all(|j| j.status == Status::Requested));
    // Leased: not claimed again.
    assert!(store.claim_callbacks(200, 10_000, 10).await.unwrap().is_empty());
    let j1 = jobs.iter().find(|j| j.session_id == s1.session_id).unwrap();
    let attempt = AttemptRecord { at_ms: 210, http_status: Some(500), error: Some("HTTP 500".into()), latency_ms: 3 };
    store.finish_callback(j1, Some(attempt), CallbackNext::RetryAt(1000), 210).await.unwrap();
    // Not due yet, and its successor waits behind it.
    assert!(store.claim_callbacks(500, 10_000, 10).await.unwrap().is_empty());
    let again = store.claim_callbacks(1000, 20_000, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].id, again[0].attempts), (j1.id, 1));
    // A settlement with a stale lease (the callback was replayed meanwhile) changes nothing.
    let mut stale = again[0].clone();
    stale.lease_until_ms += 1;
    store.finish_callback(&stale, None, CallbackNext::Delivered, 1001).await.unwrap();
    assert!(store.claim_callbacks(1001, 20_000, 10).await.unwrap().is_empty());
    store.finish_callback(&again[0], None, CallbackNext::Delivered, 1001).await.unwrap();
    let next = store.claim_callbacks(1001, 20_000, 10).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].status, Status::Sent);
    let list = store.list_callbacks(a.app_id, s1.session_id).await.unwrap().unwrap();
    assert_eq!(list[0].state, CallbackState::Delivered);
    assert_eq!(list[0].log.len(), 1);
    assert_eq!(store.pending_callbacks().await.unwrap(), 2);
    store.release_callback_leases().await.unwrap();
    if store.multi_node() {
        // Only a dead node's leases are released (see `a_dead_nodes_work_is_taken_over`).
        assert!(store.claim_callbacks(1001, 20_000, 10).await.unwrap().is_empty());
    } else {
        // One server per file: after a crash every lease is void, claimable again at once.
        assert_eq!(store.claim_callbacks(1001, 20_000, 10).await.unwrap().len(), 2);
    }
}

/// Concurrent sends through two handles on one database (two nodes, on PostgreSQL) never
/// oversell a quota, and verifies of one code count every wrong try.
#[tokio::test]
async fn quota_and_attempts_hold_across_handles() {
    let db = fresh_db().await;
    let (one, two) = (open(&db).await, open(&db).await);
    let mut a = app("a");
    a.quota = Some(25);
    one.create_app(a.clone()).await.unwrap();
    let guards = SendGuards { use_quota: true, ..SendGuards::default() };
    let mut tasks = Vec::new();
    for i in 0..100 {
        let store = if i % 2 == 0 { one.clone() } else { two.clone() };
        let s = session(a.app_id, &format!("62812345{:05}", i), "111111", 100);
        let guards = guards.clone();
        tasks.push(tokio::spawn(async move { store.create_session(s, guards).await.unwrap() }));
    }
    let mut created = 0;
    for t in tasks {
        match t.await.unwrap() {
            SendOutcome::Created { .. } => created += 1,
            SendOutcome::Refused(waotp_store::Refusal {
                reason: waotp_core::RefusalReason::QuotaExhausted, ..
            }) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(created, 25);
    assert_eq!(two.get_app(a.app_id).await.unwrap().unwrap().quota, Some(0));

    create(&one, session(a.app_id, M, "123456", 1000)).await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = if i % 2 == 0 { one.clone() } else { two.clone() };
        tasks.push(tokio::spawn(async move { decide(&store, attempt(a.app_id, M, "000000", 1001)).await }));
    }
    let mut wrong = 0;
    for t in tasks {
        match t.await.unwrap() {
            VerifyDecision::WrongCode { .. } => wrong += 1,
            VerifyDecision::Locked => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(wrong, 5);
}

/// PostgreSQL: a node's deliveries and callbacks are its own while it lives, and another
/// node's once its heartbeat stops.
#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn a_dead_nodes_work_is_taken_over() {
    let url = fresh_postgres_url(&required_postgres()).await.unwrap();
    // The first node beats every 100 ms, so that its heartbeat is soon seen to have stopped;
    // the second judges liveness by the default limit, so the first is alive to it until then.
    let mut quick = PgOptions::from_url(&url).unwrap();
    quick.node_timeout = Duration::from_millis(500);
    let first = PgStore::open(quick).await.unwrap();
    let second = PgStore::open(PgOptions::from_url(&url).unwrap()).await.unwrap();
    let first_id = first.node_id();
    let (one, two): (Arc<dyn Store>, Arc<dyn Store>) = (Arc::new(first), Arc::new(second));
    let a = app("a");
    one.create_app(a.clone()).await.unwrap();
    let s1 = session(a.app_id, M, "111111", 100);
    let s2 = session(a.app_id, "6281234567891", "222222", 100);
    create(&one, s1.clone()).await;
    create(&one, s2.clone()).await;
    // The first node stored them: they are its to deliver, not the second's.
    assert_eq!(one.undelivered(0, 10).await.unwrap().len(), 2);
    assert!(two.undelivered(0, 10).await.unwrap().is_empty());
    // A callback leased by the first node is not claimed by the second.
    assert_eq!(one.claim_callbacks(200, 100_000, 1).await.unwrap().len(), 1);
    let rest = two.claim_callbacks(200, 100_000, 10).await.unwrap();
    assert_eq!(rest.len(), 1);

    // The first node dies: its heartbeat stops (none for ten of its beats: no beat begun
    // before the drop is still on its way) and ages past the limit.
    drop(one);
    let client = waotp_test_support::postgres::connect(&url).await.unwrap();
    eventually("the dropped node's heartbeat stopped", Duration::from_secs(10), || async {
        let age: i64 = client
            .query_one("SELECT waotp_now_ms() - heartbeat_at FROM nodes WHERE node_id = $1", &[&first_id])
            .await
            .unwrap()
            .get(0);
        if age > 1000 {
            Ok(())
        } else {
            Err(format!("last beat {age} ms ago"))
        }
    })
    .await;
    client.execute("UPDATE nodes SET heartbeat_at = 0 WHERE node_id = $1", &[&first_id]).await.unwrap();

    let taken = two.undelivered(0, 10).await.unwrap();
    assert_eq!(taken.iter().map(|p| p.session_id).collect::<Vec<_>>(), vec![s1.session_id, s2.session_id]);
    let jobs = two.claim_callbacks(300, 100_000, 10).await.unwrap();
    assert_eq!(jobs.len(), 1, "the dead node's leased callback");
    assert_ne!(jobs[0].session_id, rest[0].session_id);
}

/// A replayed callback goes before its session's later ones, even one that was in flight
/// when the replay came and then failed.
#[tokio::test]
async fn a_replay_goes_before_the_sessions_later_callbacks() {
    use waotp_store::{AttemptRecord, CallbackNext};
    let (_d, store) = fresh_store().await;
    let a = app("a");
    store.create_app(a.clone()).await.unwrap();
    let s = session(a.app_id, M, "111111", 100);
    create(&store, s.clone()).await;
    let first = store.claim_callbacks(200, 10_000, 10).await.unwrap();
    assert_eq!(first.len(), 1);
    store.finish_callback(&first[0], None, CallbackNext::Delivered, 210).await.unwrap();
    record_sent(&store, s.session_id, "w", 220).await;
    let sent = store.claim_callbacks(300, 10_000, 10).await.unwrap();
    assert_eq!(sent.iter().map(|j| j.status).collect::<Vec<_>>(), vec![Status::Sent]);
    // Status 0 is replayed while status 1 is in flight; status 1's attempt then fails.
    assert!(store.replay_callback(a.app_id, s.session_id, Status::Requested, 310).await.unwrap());
    let failed = AttemptRecord { at_ms: 320, http_status: Some(500), error: Some("HTTP 500".into()), latency_ms: 1 };
    store.finish_callback(&sent[0], Some(failed), CallbackNext::RetryAt(330), 320).await.unwrap();
    let next = store.claim_callbacks(400, 10_000, 10).await.unwrap();
    assert_eq!(next.iter().map(|j| j.status).collect::<Vec<_>>(), vec![Status::Requested]);
    store.finish_callback(&next[0], None, CallbackNext::Delivered, 410).await.unwrap();
    let last = store.claim_callbacks(500, 10_000, 10).await.unwrap();
    assert_eq!(last.iter().map(|j| (j.status, j.attempts)).collect::<Vec<_>>(), vec![(Status::Sent, 1)]);
}

// ---- the dashboard's reads ------------------------------------------------------------------

/// A session of `challenge` instead of `login`.
fn session_for(app_id: Uuid, msisdn: &str, challenge: &str, now: i64) -> NewSession {
    NewSession { challenge: challenge.into(), ..session(app_id, msisdn, "111111", now) }
}

fn inbox_message(s: &NewSession, now: i64) -> InboxMessage {
    InboxMessage {
        app_id: s.app_id,
        session_id: s.session_id,
        msisdn: s.msisdn.clone(),
        text: format!("code for {}", s.session_id),
        created_at_ms: now,
    }
}

/// Each status change stamps its stage's time, once: a late report of an earlier status, or
/// of the same one, moves nothing.
#[tokio::test]
async fn status_changes_stamp_the_timeline() {
    use waotp_store::Timeline;
    let (_d, store) = fresh_store().await;
    let a = app("a");
    store.create_app(a.clone()).await.unwrap();
    let timeline = |id: Uuid| {
        let store = store.clone();
        async move { store.get_session(a.app_id, id).await.unwrap().unwrap().timeline }
    };

    // Sent, delivered, read (by the provider's reports and the inbox's read receipt), verified.
    let s1 = session(a.app_id, M, "111111", 100);
    create(&store, s1.clone()).await;
    assert_eq!(timeline(s1.session_id).await, Timeline::default());
    record_sent(&store, s1.session_id, "wamid.1", 110).await;
    assert_eq!(
        store.report_provider_status("wamid.1", vec![Status::Delivered], None, None, 120).await.unwrap(),
        ProviderReport::Applied
    );
    store.mark_read(a.app_id, vec![s1.session_id], 130).await.unwrap();
    let read =
        Timeline { sent_at_ms: Some(110), delivered_at_ms: Some(120), read_at_ms: Some(130), ..Timeline::default() };
    assert_eq!(timeline(s1.session_id).await, read);
    // Late and repeated reports: nothing moves.
    assert_eq!(
        store.report_provider_status("wamid.1", vec![Status::Sent, Status::Delivered], None, None, 140).await.unwrap(),
        ProviderReport::Applied
    );
    store.mark_read(a.app_id, vec![s1.session_id], 141).await.unwrap();
    assert_eq!(timeline(s1.session_id).await, read);
    assert_eq!(decide(&store, attempt(a.app_id, M, "111111", 150)).await, VerifyDecision::Verified);
    let record = store.get_session(a.app_id, s1.session_id).await.unwrap().unwrap();
    assert_eq!((record.status, record.sandbox), (Status::Verified, false));
    assert_eq!(record.timeline, Timeline { closed_at_ms: Some(150), ..read });

    // The local inbox: sent and delivered at once; a read report straight after a send
    // stamps read, not delivered.
    let s2 = session(a.app_id, "6281234567891", "222222", 100);
    create(&store, s2.clone()).await;
    store.deliver_to_inbox(inbox_message(&s2, 160)).await.unwrap();
    assert_eq!(
        timeline(s2.session_id).await,
        Timeline { sent_at_ms: Some(160), delivered_at_ms: Some(160), ..Timeline::default() }
    );
    let s3 = session(a.app_id, "6281234567892", "333333", 100);
    create(&store, s3.clone()).await;
    record_sent(&store, s3.session_id, "wamid.3", 170).await;
    assert_eq!(
        store.report_provider_status("wamid.3", vec![Status::Read], None, None, 180).await.unwrap(),
        ProviderReport::Applied
    );
    assert_eq!(
        timeline(s3.session_id).await,
        Timeline { sent_at_ms: Some(170), read_at_ms: Some(180), ..Timeline::default() }
    );
    // A delivery report that arrives after the read one: the status stays, its time is kept.
    assert_eq!(
        store.report_provider_status("wamid.3", vec![Status::Delivered], None, None, 185).await.unwrap(),
        ProviderReport::Applied
    );
    let record = store.get_session(a.app_id, s3.session_id).await.unwrap().unwrap();
    assert_eq!(record.status, Status::Read);
    assert_eq!(
        record.timeline,
        Timeline { sent_at_ms: Some(170), delivered_at_ms: Some(185), read_at_ms: Some(180), ..Timeline::default() }
    );

    // A read receipt after the code was verified counts as read (for the funnel), with no
    // status change and no callback for it.
    let mut s6 = session(a.app_id, "6281234567895", "666666", 100);
    s6.callback_url = Some("http://127.0.0.1:9/cb".into());
    create(&store, s6.clone()).await;
    record_sent(&store, s6.session_id, "wamid.6", 171).await;
    assert_eq!(decide(&store, attempt(a.app_id, "6281234567895", "666666", 172)).await, VerifyDecision::Verified);
    assert_eq!(
        store.report_provider_status("wamid.6", vec![Status::Delivered, Status::Read], None, None, 173).await.unwrap(),
        ProviderReport::Applied
    );
    assert_eq!(
        store.report_provider_status("wamid.6", vec![Status::Read], None, None, 174).await.unwrap(),
        ProviderReport::Applied
    );
    let record = store.get_session(a.app_id, s6.session_id).await.unwrap().unwrap();
    assert_eq!(record.status, Status::Verified);
    assert_eq!(
        record.timeline,
        Timeline {
            sent_at_ms: Some(171),
            delivered_at_ms: Some(173),
            read_at_ms: Some(173),
            closed_at_ms: Some(172),
            ..Timeline::default()
        }
    );
    let statuses: Vec<Status> =
        store.list_callbacks(a.app_id, s6.session_id).await.unwrap().unwrap().iter().map(|c| c.status).collect();
    assert_eq!(statuses, [Status::Requested, Status::Sent, Status::Verified]);

    // A failure, then the expiry sweep's Unverified.
    let s4 = session(a.app_id, "6281234567893", "444444", 100);
    create(&store, s4.clone()).await;
    let failed = DeliveryOutcome::Failed { status: Status::Rejected, error_code: None, error_text: "no".into() };
    store.record_delivery(s4.session_id, failed, 190).await.unwrap();
    assert_eq!(timeline(s4.session_id).await, Timeline { failed_at_ms: Some(190), ..Timeline::default() });
    assert_eq!(store.expire_due(5000, 100).await.unwrap(), 3);
    assert_eq!(
        timeline(s4.session_id).await,
        Timeline { failed_at_ms: Some(190), closed_at_ms: Some(5000), ..Timeline::default() }
    );
    // Verified stays closed at its verify, not the sweep.
    assert_eq!(timeline(s1.session_id).await.closed_at_ms, Some(150));
    assert_eq!(timeline(s2.session_id).await.closed_at_ms, Some(5000));

    // A sandbox session's scripted statuses are stamped at its creation.
    let mut s5 = session(a.app_id, "6281234567894", "555555", 6000);
    s5.sandbox = true;
    s5.sealed_code = None;
    s5.scripted = vec![Status::Sent, Status::Delivered, Status::Read];
    create(&store, s5.clone()).await;
    let record = store.get_session(a.app_id, s5.session_id).await.unwrap().unwrap();
    assert_eq!((record.status, record.sandbox), (Status::Read, true));
    assert_eq!(
        record.timeline,
        Timeline { sent_at_ms: Some(6000), delivered_at_ms: Some(6000), read_at_ms: Some(6000), ..Timeline::default() }
    );
}

/// The statuses of a session's callbacks, in order.
async fn callback_statuses(store: &Arc<dyn Store>, app_id: Uuid, session_id: Uuid) -> Vec<Status> {
    store.list_callbacks(app_id, session_id).await.unwrap().unwrap().iter().map(|c| c.status).collect()
}

/// A provider's events that beat the send's own answer (delivered and read before the wamid is
/// recorded) are kept, and applied once, in arrival order, when the delivery records the id.
#[tokio::test]
async fn early_provider_events_are_applied_in_order_when_the_id_is_recorded() {
    use waotp_store::Timeline;
    let (_d, store) = fresh_store().await;
    let a = app("a");
    store.create_app(a.clone()).await.unwrap();
    let kept = ProviderReport::Kept { evicted: 0 };
    let (sent, delivered, read) = (
        vec![Status::Sent],
        vec![Status::Sent, Status::Delivered],
        vec![Status::Sent, Status::Delivered, Status::Read],
    );

    let s1 = session(a.app_id, M, "111111", 100);
    create(&store, s1.clone()).await;
    // Reordered and duplicated, as Meta may send them; and "I didn't request this code".
    for (i, steps) in [sent.clone(), read.clone(), delivered.clone(), read.clone()].into_iter().enumerate() {
        assert_eq!(store.report_provider_status("wamid.e1", steps, None, None, 101 + i as i64).await.unwrap(), kept);
    }
    assert_eq!(store.flag_not_requested("wamid.e1", 105).await.unwrap(), kept);
    assert_eq!(store.report_provider_status("wamid.other", delivered.clone(), None, None, 106).await.unwrap(), kept);
    let record = store.get_session(a.app_id, s1.session_id).await.unwrap().unwrap();
    assert_eq!((record.status, record.not_requested), (Status::Requested, false));
    assert_eq!(callback_statuses(&store, a.app_id, s1.session_id).await, [Status::Requested]);

    record_sent(&store, s1.session_id, "wamid.e1", 110).await;
    let record = store.get_session(a.app_id, s1.session_id).await.unwrap().unwrap();
    assert_eq!((record.status, record.not_requested), (Status::Read, true));
    assert_eq!(
        record.timeline,
        Timeline { sent_at_ms: Some(110), delivered_at_ms: Some(110), read_at_ms: Some(110), ..Timeline::default() }
    );
    let all = [Status::Requested, Status::Sent, Status::Delivered, Status::Read];
    assert_eq!(callback_statuses(&store, a.app_id, s1.session_id).await, all);
    // Applied once: gone from the kept events; a later duplicate finds the session.
    assert_eq!(
        store.report_provider_status("wamid.e1", read.clone(), None, None, 120).await.unwrap(),
        ProviderReport::Applied
    );
    assert_eq!(callback_statuses(&store, a.app_id, s1.session_id).await, all);

    // A kept failure reports its status with Meta's error; a read after it moves nothing.
    let s2 = session(a.app_id, "6281234567891", "222222", 100);
    create(&store, s2.clone()).await;
    let undeliverable = Some((131026, "Message undeliverable".to_owned()));
    assert_eq!(store.report_provider_status("wamid.e2", sent, None, None, 130).await.unwrap(), kept);
    assert_eq!(
        store.report_provider_status("wamid.e2", vec![Status::Failed], undeliverable, None, 131).await.unwrap(),
        kept
    );
    assert_eq!(store.report_provider_status("wamid.e2", read, None, None, 132).await.unwrap(), kept);
    record_sent(&store, s2.session_id, "wamid.e2", 140).await;
    let record = store.get_session(a.app_id, s2.session_id).await.unwrap().unwrap();
    assert_eq!((record.status, record.error_code), (Status::Failed, Some(131026)));
    assert_eq!(
        callback_statuses(&store, a.app_id, s2.session_id).await,
        [Status::Requested, Status::Sent, Status::Failed]
    );

    // Another message's events wait for their own id.
    let s3 = session(a.app_id, "6281234567892", "333333", 100);
    create(&store, s3.clone()).await;
    record_sent(&store, s3.session_id, "wamid.other", 150).await;
    assert_eq!(store.get_session(a.app_id, s3.session_id).await.unwrap().unwrap().status, Status::Delivered);
}

/// A webhook and the recording of its message id racing on two handles (two nodes on
/// PostgreSQL): whichever goes first, every event is applied once, in order.
#[tokio::test]
async fn an_early_event_racing_the_recording_of_its_id_is_never_lost() {
    let db = fresh_db().await;
    let (one, two) = (open(&db).await, open(&db).await);
    let a = app("a");
    one.create_app(a.clone()).await.unwrap();
    let mut sessions = Vec::new();
    for i in 0..60 {
        let s = session(a.app_id, &format!("62812345{i:05}"), "111111", 100);
        create(&one, s.clone()).await;
        sessions.push(s.session_id);
    }
    let mut tasks = Vec::new();
    for (i, session_id) in sessions.iter().copied().enumerate() {
        let wamid = format!("wamid.race{i}");
        let (recorder, reporter) = if i % 2 == 0 { (one.clone(), two.clone()) } else { (two.clone(), one.clone()) };
        let id = wamid.clone();
        tasks.push(tokio::spawn(async move {
            recorder.record_delivery(session_id, DeliveryOutcome::Sent { provider_id: id }, 200).await.unwrap();
        }));
        tasks.push(tokio::spawn(async move {
            for steps in [vec![Status::Sent, Status::Delivered], vec![Status::Sent, Status::Delivered, Status::Read]] {
                reporter.report_provider_status(&wamid, steps, None, None, 200).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for session_id in sessions {
        assert_eq!(
            callback_statuses(&one, a.app_id, session_id).await,
            [Status::Requested, Status::Sent, Status::Delivered, Status::Read]
        );
    }
}

/// Kept events go after [`waotp_store::EARLY_EVENT_TTL_MS`] (with the counters' pruning), and
/// beyond [`waotp_store::EARLY_EVENTS_MAX`] the oldest go first.
#[tokio::test]
async fn early_provider_events_expire_and_are_bounded() {
    use waotp_store::{EARLY_EVENTS_MAX, EARLY_EVENT_TTL_MS};
    let (_d, store) = fresh_store().await;
    let a = app("a");
    store.create_app(a.clone()).await.unwrap();
    let delivered = || vec![Status::Sent, Status::Delivered];
    let kept = ProviderReport::Kept { evicted: 0 };

    assert_eq!(store.report_provider_status("wamid.old", delivered(), None, None, 1000).await.unwrap(), kept);
    assert_eq!(store.report_provider_status("wamid.young", delivered(), None, None, 2000).await.unwrap(), kept);
    store.prune_guards(1000 + EARLY_EVENT_TTL_MS).await.unwrap();
    store.prune_guards(1001 + EARLY_EVENT_TTL_MS).await.unwrap();
    let (old, young) = (session(a.app_id, M, "111111", 100), session(a.app_id, "6281234567891", "222222", 100));
    create(&store, old.clone()).await;
    create(&store, young.clone()).await;
    record_sent(&store, old.session_id, "wamid.old", 3000).await;
    record_sent(&store, young.session_id, "wamid.young", 3000).await;
    assert_eq!(status_of(&store, a.app_id, old.session_id).await, Status::Sent);
    assert_eq!(status_of(&store, a.app_id, young.session_id).await, Status::Delivered);

    // The bound: the first of EARLY_EVENTS_MAX + 1 kept events goes; the newest stays. Each a
    // delivered status with its pricing, kept as one event.
    let priced =
        || Some(waotp_core::MessagePricing::from_fields(Some(true), Some("authentication"), None, None).unwrap());
    assert_eq!(store.report_provider_status("wamid.first", delivered(), None, priced(), 4000).await.unwrap(), kept);
    let in_flight = Arc::new(tokio::sync::Semaphore::new(32));
    let mut tasks = Vec::new();
    for i in 0..EARLY_EVENTS_MAX - 1 {
        let (store, permit) = (store.clone(), in_flight.clone().acquire_owned().await.unwrap());
        tasks.push(tokio::spawn(async move {
            let report = store.report_provider_status(&format!("wamid.n{i}"), delivered(), None, priced(), 4001).await;
            drop(permit);
            report.unwrap()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), kept);
    }
    let last = store.report_provider_status("wamid.last", delivered(), None, priced(), 4002).await.unwrap();
    assert!(matches!(last, ProviderReport::Kept { evicted } if evicted >= 1), "{last:?}");
    let (first, newest) =
        (session(a.app_id, "6281234567892", "333333", 100), session(a.app_id, "6281234567893", "444444", 100));
    create(&store, first.clone()).await;
    create(&store, newest.clone()).await;
    record_sent(&store, first.session_id, "wamid.first", 5000).await;
    record_sent(&store, newest.session_id, "wamid.last", 5000).await;
    assert_eq!(status_of(&store, a.app_id, first.session_id).await, Status::Sent);
    assert_eq!(status_of(&store, a.app_id, newest.session_id).await, Status::Delivered);
    // The newest's pricing came with its status; the first's went with it.
    let costs =
        store.message_counts(waotp_store::CostWindow { app_id: None, from_ms: 0, to_ms: 10_000 }).await.unwrap();
    assert_eq!(costs.iter().map(|c| c.messages).sum::<u64>(), 1, "{costs:?}");
}

#[tokio::test]
async fn sessions_are_searched_newest_first() {
    use waotp_store::SessionQuery;
    let (_d, store) = fresh_store().await;
    let (a, b) = (app("a"), app("b"));
    store.create_app(a.clone()).await.unwrap();
    store.create_app(b.clone()).await.unwrap();
    const M2: &str = "6281234567891";
    let s1 = session_for(a.app_id, M, "login", 100);
    let s2 = session_for(a.app_id, M2, "login", 200);
    let s3 = session_for(b.app_id, M, "login", 300);
    let s4 = session_for(a.app_id, M, "signup", 400);
    for s in [&s1, &s2, &s3, &s4] {
        create(&store, s.clone()).await;
    }
    let search = |q: SessionQuery| {
        let store = store.clone();
        async move { store.search_sessions(q).await.unwrap().into_iter().map(|r| r.session_id).collect::<Vec<_>>() }
    };
    let ids = |ss: &[&NewSession]| ss.iter().map(|s| s.session_id).collect::<Vec<_>>();
    let q = SessionQuery { limit: 10, ..SessionQuery::default() };
    assert_eq!(search(q.clone()).await, ids(&[&s4, &s3, &s2, &s1]));
    assert_eq!(search(SessionQuery { limit: 2, ..q.clone() }).await, ids(&[&s4, &s3]));
    let by_msisdn = SessionQuery { msisdn: Some(M.into()), ..q.clone() };
    assert_eq!(search(by_msisdn.clone()).await, ids(&[&s4, &s3, &s1]));
    assert_eq!(search(SessionQuery { limit: 1, ..by_msisdn.clone() }).await, ids(&[&s4]));
    assert_eq!(search(SessionQuery { app_id: Some(a.app_id), ..by_msisdn.clone() }).await, ids(&[&s4, &s1]));
    assert_eq!(search(SessionQuery { challenge: Some("login".into()), ..by_msisdn }).await, ids(&[&s3, &s1]));
    assert_eq!(search(SessionQuery { challenge: Some("signup".into()), ..q.clone() }).await, ids(&[&s4]));
    assert_eq!(search(SessionQuery { app_id: Some(b.app_id), ..q.clone() }).await, ids(&[&s3]));
    assert_eq!(search(SessionQuery { session_id: Some(s2.session_id), ..q.clone() }).await, ids(&[&s2]));
    // Every field must match.
    assert!(search(SessionQuery { session_id: Some(s2.session_id), app_id: Some(b.app_id), ..q.clone() })
        .await
        .is_empty());
    assert!(search(SessionQuery { msisdn: Some("6200000000000".into()), ..q.clone() }).await.is_empty());
    // The records are the ones `get_session` gives.
    let found = store.search_sessions(SessionQuery { msisdn: Some(M.into()), ..q }).await.unwrap();
    for r in &found {
        assert_eq!(Some(r), store.get_session(r.app_id, r.session_id).await.unwrap().as_ref());
    }
    assert_eq!((found[1].app_id, found[1].msisdn.as_str(), found[1].challenge.as_str()), (b.app_id, M, "login"));
}

/// PostgreSQL: a search by msisdn goes through `sessions_by_key`, each probe a range of it
/// bounded by (app, sandbox, msisdn), never a scan of the table or of a whole index, on a
/// table large enough (100,000 sessions of three apps, both sandbox values) that a scan would
/// be planned for a statement the index cannot serve; and it finds what a scan finds. The
/// index of msisdns alone is gone (migration 0011).
#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn a_search_by_msisdn_probes_the_key_index() {
    use waotp_store::SessionQuery;
    use waotp_test_support::postgres::postgres_search_plan;
    let url = fresh_postgres_url(&required_postgres()).await.unwrap();
    let store: Arc<dyn Store> = Arc::new(PgStore::open(PgOptions::from_url(&url).unwrap()).await.unwrap());
    let apps = [app("a"), app("b"), app("c")];
    for a in &apps {
        store.create_app(a.clone()).await.unwrap();
    }
    let client = waotp_test_support::postgres::connect(&url).await.unwrap();
    let gone: bool = client.query_one("SELECT to_regclass('sessions_by_msisdn') IS NULL", &[]).await.unwrap().get(0);
    assert!(gone, "sessions_by_msisdn is dropped");
    // 100,000 sessions, 2 per msisdn (M among them), and 12 more of M: of app b, under both
    // challenges and both sandbox values.
    let ids: Vec<Uuid> = apps.iter().map(|a| a.app_id).collect();
    client
        .execute(
            "INSERT INTO sessions (session_id, app_id, msisdn, challenge, sandbox, code_hash, state, status, \
               try_count, template_name, lang_code, created_at, expires_at, updated_at) \
             SELECT gen_random_uuid(), ($1::uuid[])[1 + i % 3], (6281234540000 + i % 50000)::text, \
               CASE WHEN i % 4 = 0 THEN 'signup' ELSE 'login' END, i % 7 = 0, '\\x00', 0, 0, 1, 't', 'en', i, i, i \
             FROM generate_series(1, 100000) AS i",
            &[&ids],
        )
        .await
        .unwrap();
    for n in 0..12 {
        let challenge = if n % 3 == 0 { "signup" } else { "login" };
        let s = NewSession { sandbox: n % 2 == 0, ..session_for(apps[1].app_id, M, challenge, 200_000 + n) };
        create(&store, s).await;
    }
    client.batch_execute("ANALYZE sessions").await.unwrap();

    let q = SessionQuery { msisdn: Some(M.into()), limit: 100, ..SessionQuery::default() };
    let searches = [
        q.clone(),
        SessionQuery { limit: 5, ..q.clone() },
        SessionQuery { app_id: Some(apps[1].app_id), ..q.clone() },
        SessionQuery { challenge: Some("signup".into()), ..q.clone() },
        SessionQuery { app_id: Some(apps[1].app_id), challenge: Some("login".into()), limit: 3, ..q.clone() },
    ];
    for search in searches {
        let plan = postgres_search_plan(&url, &search).await.unwrap();
        let lines: Vec<&str> = plan.lines().collect();
        let probes: Vec<usize> = (0..lines.len()).filter(|&i| lines[i].contains("using sessions_by_key")).collect();
        assert!(!probes.is_empty(), "{search:?}: no probe of sessions_by_key in\n{plan}");
        for i in probes {
            let bound = lines.get(i + 1).copied().unwrap_or_default();
            assert!(
                bound.contains("Index Cond: ((app_id = ")
                    && bound.contains("(sandbox = ")
                    && bound.contains("(msisdn = "),
                "{search:?}: a probe not bounded by (app, sandbox, msisdn) in\n{plan}"
            );
        }
        assert!(!plan.contains("Seq Scan on sessions"), "{search:?}: a scan of sessions in\n{plan}");
        assert!(!plan.contains("Backward using sessions_pkey"), "{search:?}: a walk of every id in\n{plan}");

        let found: Vec<Uuid> =
            store.search_sessions(search.clone()).await.unwrap().into_iter().map(|r| r.session_id).collect();
        let scanned: Vec<Uuid> = client
            .query(
                "SELECT session_id FROM sessions WHERE msisdn = $1 AND ($2::uuid IS NULL OR app_id = $2) \
                 AND ($3::text IS NULL OR challenge = $3) ORDER BY id DESC LIMIT $4",
                &[&M, &search.app_id, &search.challenge, &(search.limit as i64)],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert!(!found.is_empty());
        assert_eq!(found, scanned, "{search:?}");
    }
}

#[tokio::test]
async fn the_funnel_counts_production_sessions_by_app_and_day() {
    use waotp_store::{FunnelRow, DAY_MS};
    let (_d, store) = fresh_store().await;
    let (a, b) = (app("a"), app("b"));
    store.create_app(a.clone()).await.unwrap();
    store.create_app(b.clone()).await.unwrap();
    let (day1, day2) = (DAY_MS + 10, 2 * DAY_MS + 10);
    // Day 0 (before the cut of the first query).
    create(&store, session(a.app_id, "6281200000001", "111111", 10)).await;
    // Day 1, app a: one verified after being read, one sent, one failed, one only requested.
    let s1 = session(a.app_id, "6281200000002", "111111", day1);
    create(&store, s1.clone()).await;
    store.deliver_to_inbox(inbox_message(&s1, day1 + 1)).await.unwrap();
    store.mark_read(a.app_id, vec![s1.session_id], day1 + 2).await.unwrap();
    assert_eq!(decide(&store, attempt(a.app_id, "6281200000002", "111111", day1 + 3)).await, VerifyDecision::Verified);
    let s2 = session(a.app_id, "6281200000003", "111111", day1);
    create(&store, s2.clone()).await;
    record_sent(&store, s2.session_id, "w2", day1 + 1).await;
    let s3 = session(a.app_id, "6281200000004", "111111", day1);
    create(&store, s3.clone()).await;
    let failed = DeliveryOutcome::Failed { status: Status::Failed, error_code: None, error_text: "x".into() };
    store.record_delivery(s3.session_id, failed, day1 + 1).await.unwrap();
    create(&store, session(a.app_id, "6281200000005", "111111", day1)).await;
    // Sandbox sessions are left out, however far they got.
    let mut sandbox = session(a.app_id, "6281200000006", "111111", day1);
    sandbox.sandbox = true;
    sandbox.sealed_code = None;
    sandbox.scripted = vec![Status::Sent, Status::Delivered, Status::Read];
    create(&store, sandbox).await;
    // Day 1, app b: requested only.
    create(&store, session(b.app_id, "6281200000007", "111111", day1 + 5)).await;
    // Day 2, app a: a read report straight after the send counts as delivered too.
    let s5 = session(a.app_id, "6281200000008", "111111", day2);
    create(&store, s5.clone()).await;
    record_sent(&store, s5.session_id, "w5", day2 + 1).await;
    assert_eq!(
        store.report_provider_status("w5", vec![Status::Read], None, None, day2 + 2).await.unwrap(),
        ProviderReport::Applied
    );
    // Day 2, app a: verified with no receipt at all (read receipts off): it reached every stage.
    let s6 = session(a.app_id, "6281200000009", "111111", day2);
    create(&store, s6.clone()).await;
    assert_eq!(decide(&store, attempt(a.app_id, "6281200000009", "111111", day2 + 3)).await, VerifyDecision::Verified);

    let row = |app_id, day, requested, sent, delivered, read, verified| FunnelRow {
        app_id,
        day,
        requested,
        sent,
        delivered,
        read,
        verified,
    };
    let mut day1_rows = vec![row(a.app_id, 1, 4, 2, 1, 1, 1), row(b.app_id, 1, 1, 0, 0, 0, 0)];
    day1_rows.sort_by_key(|r| r.app_id);
    let mut expected = day1_rows.clone();
    expected.push(row(a.app_id, 2, 2, 2, 2, 2, 1));
    assert_eq!(store.funnel(DAY_MS).await.unwrap(), expected);
    assert_eq!(store.funnel(day1 + 1).await.unwrap(), vec![row(b.app_id, 1, 1, 0, 0, 0, 0), expected[2]]);
    let all = store.funnel(0).await.unwrap();
    assert_eq!(all[0], row(a.app_id, 0, 1, 0, 0, 0, 0));
    assert_eq!(&all[1..], &expected[..]);
    assert!(store.funnel(3 * DAY_MS).await.unwrap().is_empty());
}

#[tokio::test]
async fn refusal_counts_add_up_and_are_pruned_by_day() {
    use waotp_store::{RefusalCount, DAY_MS};
    let (_d, store) = fresh_store().await;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let count = |app_id, day, reason: &str, count| RefusalCount {
        app_id,
        day,
        reason: waotp_core::RefusalReason::from_code(reason).unwrap(),
        count,
    };
    store.add_refusals(vec![]).await.unwrap();
    assert!(store.refusals(0).await.unwrap().is_empty());
    store
        .add_refusals(vec![
            count(a, 1, "rate_limited_msisdn", 2),
            count(a, 1, "blocked_number", 1),
            count(b, 2, "rate_limited_msisdn", 5),
        ])
        .await
        .unwrap();
    // Another node's tally adds to the same rows; one key twice in a batch counts twice.
    store
        .add_refusals(vec![
            count(a, 1, "rate_limited_msisdn", 3),
            count(a, 0, "quota_exhausted", 1),
            count(a, 2, "rate_limited_ip", 1),
            count(a, 2, "rate_limited_ip", 1),
        ])
        .await
        .unwrap();
    let mut day2 = vec![count(a, 2, "rate_limited_ip", 2), count(b, 2, "rate_limited_msisdn", 5)];
    day2.sort_by_key(|r| r.app_id);
    let mut since1 = vec![count(a, 1, "blocked_number", 1), count(a, 1, "rate_limited_msisdn", 5)];
    since1.extend(day2.clone());
    assert_eq!(store.refusals(1).await.unwrap(), since1);
    let all = store.refusals(0).await.unwrap();
    assert_eq!(all[0], count(a, 0, "quota_exhausted", 1));
    assert_eq!(&all[1..], &since1[..]);
    assert_eq!(store.refusals(2).await.unwrap(), day2);
    assert!(store.refusals(3).await.unwrap().is_empty());
    // Retention drops the days wholly before the cut.
    store.prune_older_than(2 * DAY_MS + 5, 100).await.unwrap();
    assert_eq!(store.refusals(0).await.unwrap(), day2);
}

#[tokio::test]
async fn failed_callbacks_are_listed_with_their_logs() {
    use waotp_store::{AttemptRecord, CallbackNext, CallbackState};
    let (_d, store) = fresh_store().await;
    let a = app("a");
    store.create_app(a.clone()).await.unwrap();
    let s1 = session(a.app_id, M, "111111", 100);
    let s2 = session(a.app_id, "6281234567891", "222222", 100);
    create(&store, s1.clone()).await;
    create(&store, s2.clone()).await;
    assert!(store.failed_callbacks(10).await.unwrap().is_empty());
    let jobs = store.claim_callbacks(200, 10_000, 10).await.unwrap();
    assert_eq!(jobs.len(), 2);
    let j1 = jobs.iter().find(|j| j.session_id == s1.session_id).unwrap();
    let j2 = jobs.iter().find(|j| j.session_id == s2.session_id).unwrap();
    let first = AttemptRecord { at_ms: 210, http_status: Some(500), error: Some("HTTP 500".into()), latency_ms: 3 };
    store.finish_callback(j1, Some(first.clone()), CallbackNext::RetryAt(300), 210).await.unwrap();
    store.finish_callback(j2, None, CallbackNext::Delivered, 210).await.unwrap();
    // Retrying is not failed yet.
    assert!(store.failed_callbacks(10).await.unwrap().is_empty());
    let again = store.claim_callbacks(300, 20_000, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    let second = AttemptRecord { at_ms: 310, http_status: None, error: Some("timed out".into()), latency_ms: 5000 };
    store.finish_callback(&again[0], Some(second.clone()), CallbackNext::GiveUp, 310).await.unwrap();
    // A later session's callback is given up on at its first attempt.
    let s3 = session(a.app_id, "6281234567892", "333333", 400);
    create(&store, s3.clone()).await;
    let j3 = store.claim_callbacks(400, 30_000, 10).await.unwrap();
    assert_eq!(j3.len(), 1);
    let third = AttemptRecord { at_ms: 410, http_status: Some(404), error: None, latency_ms: 1 };
    store.finish_callback(&j3[0], Some(third.clone()), CallbackNext::GiveUp, 410).await.unwrap();

    let failed = store.failed_callbacks(10).await.unwrap();
    assert_eq!(failed.iter().map(|f| f.session_id).collect::<Vec<_>>(), vec![s3.session_id, s1.session_id]);
    let f1 = &failed[1];
    assert_eq!((f1.app_id, &f1.msisdn), (a.app_id, &s1.msisdn));
    assert_eq!(
        (f1.callback.status, f1.callback.state, f1.callback.attempts),
        (Status::Requested, CallbackState::Failed, 2)
    );
    assert_eq!(f1.callback.log, vec![first, second]);
    assert_eq!(failed[0].callback.log, vec![third]);
    // The same records the session's own callback list shows.
    assert_eq!(store.list_callbacks(a.app_id, s1.session_id).await.unwrap().unwrap(), vec![f1.callback.clone()]);
    assert_eq!(store.list_callbacks(a.app_id, s3.session_id).await.unwrap().unwrap(), vec![failed[0].callback.clone()]);
    let newest = store.failed_callbacks(1).await.unwrap();
    assert_eq!(newest, failed[..1].to_vec());
}

#[tokio::test]
async fn the_recent_inbox_is_newest_first_across_apps() {
    let (_d, store) = fresh_store().await;
    let (a, b) = (app("a"), app("b"));
    store.create_app(a.clone()).await.unwrap();
    store.create_app(b.clone()).await.unwrap();
    assert!(store.recent_inbox(10).await.unwrap().is_empty());
    let s1 = session(a.app_id, M, "111111", 100);
    let s2 = session(b.app_id, M, "222222", 100);
    let s3 = session(a.app_id, "6281234567891", "333333", 100);
    let mut messages = Vec::new();
    for (i, s) in [&s1, &s2, &s3].into_iter().enumerate() {
        create(&store, s.clone()).await;
        let m = inbox_message(s, 150 + i as i64);
        store.deliver_to_inbox(m.clone()).await.unwrap();
        messages.push(m);
    }
    messages.reverse();
    assert_eq!(store.recent_inbox(10).await.unwrap(), messages);
    assert_eq!(store.recent_inbox(2).await.unwrap(), messages[..2].to_vec());
}

/// A dashboard login is live from its creation until it is ended or expires, for every handle
/// on the database (every node); expired ones are deleted by the sweep.
#[tokio::test]
async fn dashboard_logins_end_at_logout_on_every_handle_and_expire() {
    let db = fresh_db().await;
    let (one, two) = (open(&db).await, open(&db).await);
    let (a, b, unknown) = ([1u8; 32], [2u8; 32], [3u8; 32]);
    one.create_login(a, 1_000, 11_000).await.unwrap();
    one.create_login(b, 1_000, 5_000).await.unwrap();
    assert!(one.login_is_live(a, 1_000).await.unwrap());
    assert!(two.login_is_live(a, 10_999).await.unwrap(), "another handle sees it");
    assert!(!two.login_is_live(a, 11_000).await.unwrap(), "expired at its expiry");
    assert!(!one.login_is_live(unknown, 1_000).await.unwrap());
    assert!(one.create_login(a, 2_000, 12_000).await.is_err(), "an id is never recorded twice");

    // A logout on one handle ends it on the other.
    assert!(two.end_login(a).await.unwrap());
    assert!(!one.login_is_live(a, 2_000).await.unwrap());
    assert!(!one.end_login(a).await.unwrap(), "already ended");
    assert!(!one.end_login(unknown).await.unwrap());

    // The sweep deletes expired logins, and only those.
    one.create_login(a, 3_000, 13_000).await.unwrap();
    one.prune_guards(5_000).await.unwrap();
    assert!(!two.end_login(b).await.unwrap(), "the expired login was deleted");
    assert!(two.login_is_live(a, 5_000).await.unwrap(), "a live login stays");
}
