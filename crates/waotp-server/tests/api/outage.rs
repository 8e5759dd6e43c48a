//! Outages under a running server: PostgreSQL stopped and started again, a SQLite disk that
//! fills up, a SQLite file that turns unwritable. Meanwhile every send and verify answers 503
//! `store_unavailable` with `Retry-After: 1` within the wait (never a 500, never a hang); a
//! refused send leaves no session and spends no quota or limit; every session acknowledged
//! with a 201 survives; and the same process answers 201 again once the fault is gone.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use waotp_server::Config;
use waotp_store::SessionQuery;

use crate::client_types::decode_as_client;
use waotp_test_support::app::*;
use waotp_test_support::postgres::cluster::{server_bin, Cluster};

/// The wait the tests run with (the default).
const WAIT: Duration = waotp_store::DEFAULT_DATABASE_WAIT;
/// The longest any answer may take during an outage: the wait and a margin for the machine.
const BOUND: Duration = Duration::from_secs(4);
/// Quota the app starts with.
const QUOTA: i64 = 10_000;
/// The number whose send limit (5 per window) must not count refused sends.
const LIMITED: &str = "6281255500000";

/// What a test was answered: sessions acknowledged with a 201 (msisdn, code).
#[derive(Default)]
struct Ledger {
    acknowledged: Vec<(String, String)>,
    /// 201s for [`LIMITED`].
    limited_ok: u32,
}

impl Ledger {
    fn record(&mut self, msisdn: &str, a: &Answer) {
        if msisdn == LIMITED {
            self.limited_ok += 1;
        } else {
            self.acknowledged.push((msisdn.to_owned(), a.otp()));
        }
    }
}

/// A send (v2, or v1 for odd `n`) that must answer within [`BOUND`].
async fn send_in_time(app: &TestApp, msisdn: &str, n: usize) -> (Answer, Duration) {
    let path = ["/v2/whatsapp/otp/send", "/v1/whatsapp/otp/send"][n % 2];
    let started = Instant::now();
    let answer = tokio::time::timeout(BOUND, app.post(path, json!({ "msisdn": msisdn })))
        .await
        .unwrap_or_else(|_| panic!("a send hung for {BOUND:?} during the outage"));
    (answer, started.elapsed())
}

/// Exactly the outage answer, as a strict public client decodes it.
fn assert_unavailable(what: &str, a: &Answer) {
    assert_eq!(a.status, 503, "{what}: {}", a.body);
    assert_eq!(a.body, json!({ "message": "Service unavailable", "error_code": "store_unavailable" }), "{what}");
    assert_eq!(a.headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("1"), "{what}: Retry-After");
    assert_eq!(decode_as_client(what, a).message, "Service unavailable");
}

/// Sends and verifies on both paths while the fault lasts: each answers 503 in time. The
/// limited number is sent to five times (each refusal must leave its limit untouched).
async fn all_refused(app: &TestApp) {
    for n in 0..5 {
        let (a, took) = send_in_time(app, LIMITED, n).await;
        assert_unavailable(&format!("send {n} during the outage"), &a);
        assert!(took < BOUND, "send {n} took {took:?}");
    }
    for path in ["/v1/whatsapp/otp/verify", "/v2/whatsapp/otp/verify"] {
        let a = tokio::time::timeout(BOUND, app.post(path, json!({ "msisdn": LIMITED, "otp": "123456" })))
            .await
            .expect("a verify hung during the outage");
        assert_unavailable(&format!("{path} during the outage"), &a);
    }
}

/// Sends until one answers 201 again (503 meanwhile, nothing else); the same process, no
/// restart.
async fn until_served(app: &TestApp, ledger: &mut Ledger) -> Duration {
    let started = Instant::now();
    let mut n = 0;
    let (msisdn, a) = eventually("a send served after the fault was gone", Duration::from_secs(20), || {
        let k = n;
        n += 1;
        let msisdn = format!("62812888{k:05}");
        async move {
            let (a, _) = send_in_time(app, &msisdn, k).await;
            match a.status {
                201 => Ok((msisdn, a)),
                503 => {
                    assert_unavailable("a send while recovering", &a);
                    Err(a.status)
                }
                other => panic!("a send while recovering answered {other}: {}", a.body),
            }
        }
    })
    .await;
    ledger.record(&msisdn, &a);
    started.elapsed()
}

/// After the fault: every acknowledged session verifies; exactly the acknowledged sends are
/// stored and paid for; the limited number has exactly its five sends left minus the ones
/// acknowledged; readiness is back.
async fn nothing_lost_nothing_spent(app: &TestApp, ledger: &Ledger) {
    eventually("/readyz ready again", Duration::from_secs(10), || async {
        match app.http.get(format!("{}/readyz", app.base)).send().await.unwrap().status().as_u16() {
            200 => Ok(()),
            other => Err(other),
        }
    })
    .await;
    let store = &app.state.store;
    let query =
        SessionQuery { app_id: Some(app.app_id), session_id: None, msisdn: None, challenge: None, limit: 100_000 };
    let stored = store.search_sessions(query).await.unwrap().len();
    let acknowledged = ledger.acknowledged.len() + ledger.limited_ok as usize;
    assert_eq!(stored, acknowledged, "sessions stored vs sends answered 201");
    let quota = store.get_app(app.app_id).await.unwrap().unwrap().quota;
    assert_eq!(quota, Some(QUOTA - acknowledged as i64), "quota spent only by acknowledged sends");
    let mut allowed = ledger.limited_ok;
    for n in 0..10 {
        let a = app.send(json!({ "msisdn": LIMITED })).await;
        if a.status == 429 {
            break;
        }
        assert_eq!(a.status, 201, "send {n} to the limited number after the outage: {}", a.body);
        allowed += 1;
    }
    assert_eq!(allowed, 5, "the limited number's five sends: refused sends must not count");
    for (msisdn, otp) in &ledger.acknowledged {
        let a = app.verify(json!({ "msisdn": msisdn, "otp": otp })).await;
        assert_eq!(a.status, 200, "the session acknowledged for {msisdn} no longer verifies: {}", a.body);
    }
}

/// A server on `database_url` with a limited quota.
async fn spawn_on(dir: tempfile::TempDir, database_url: String) -> TestApp {
    let mut config = Config::new(database_url);
    config.node_timeout = Duration::from_secs(1);
    config.database_wait = WAIT;
    let app = spawn_app_on(dir, config, |_| {}).await;
    assert!(app.state.store.set_quota(app.app_id, Some(QUOTA)).await.unwrap());
    app.state.invalidate_app(app.app_id);
    app
}

/// `count` sends that must all be acknowledged, to numbers `{prefix}00000`, `{prefix}00001`…
async fn acknowledged(app: &TestApp, ledger: &mut Ledger, prefix: &str, count: usize) {
    for n in 0..count {
        let msisdn = format!("{prefix}{n:05}");
        let (a, _) = send_in_time(app, &msisdn, n).await;
        assert_eq!(a.status, 201, "{}", a.body);
        ledger.record(&msisdn, &a);
    }
}

/// A fault this machine cannot make: a note on a developer's machine, a failure in CI (which
/// runs as root, where both faults can be made), so the test never passes there unrun.
fn cannot_run(why: &str) {
    assert!(std::env::var_os("CI").is_none(), "{why}: CI must run this test");
    eprintln!("note: {why}; test skipped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn postgres_stopped_mid_test_answers_503_fast_and_serves_again_once_started() {
    let bin = server_bin().expect(
        "this test needs PostgreSQL's server binaries (WAOTP_TEST_PG_BIN; run it through scripts/with-postgres)",
    );
    let cluster = tokio::task::spawn_blocking(move || Cluster::start(&bin)).await.unwrap();
    let app = spawn_on(tempfile::tempdir().unwrap(), cluster.url()).await;
    let mut ledger = Ledger::default();
    acknowledged(&app, &mut ledger, "62812777", 10).await;
    app.wait_inbox("6281277700009", 1).await;

    // A client that keeps sending through the stop and the start: a send in flight when the
    // server goes down is answered too, 201 or 503.
    let steady = Steady::start(&app);
    steady.answered(3).await;
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.stop();
        cluster
    })
    .await
    .unwrap();
    let (first, took) = send_in_time(&app, "6281233300001", 0).await;
    assert_unavailable("the first send after the stop", &first);
    eprintln!("PostgreSQL stopped: the first send answered 503 in {took:?}");
    assert!(took < WAIT + Duration::from_secs(1), "the first 503 took {took:?}");
    all_refused(&app).await;
    let ready = app.http.get(format!("{}/readyz", app.base)).send().await.unwrap();
    assert_eq!(ready.status(), 503, "/readyz while the database is down");
    steady.refused().await;

    let cluster = tokio::task::spawn_blocking(move || {
        cluster.start_again();
        cluster
    })
    .await
    .unwrap();
    let back = until_served(&app, &mut ledger).await;
    eprintln!("PostgreSQL started again: served within {back:?}");
    steady.stop(&mut ledger).await;
    acknowledged(&app, &mut ledger, "62812999", 3).await;
    // Background work resumed: a send made after the outage reaches the inbox.
    app.wait_inbox("6281299900002", 1).await;
    nothing_lost_nothing_spent(&app, &ledger).await;
    drop(app);
    drop(cluster);
}

/// Sends one after another to fresh numbers from a task of its own until stopped.
struct Steady {
    stop: tokio::sync::watch::Sender<bool>,
    /// Answers so far, and how many of them were 503.
    count: tokio::sync::watch::Receiver<(usize, usize)>,
    task: tokio::task::JoinHandle<Vec<(String, u16, serde_json::Value, Duration)>>,
}

impl Steady {
    fn start(app: &TestApp) -> Steady {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let (counted, count) = tokio::sync::watch::channel((0, 0));
        let (http, url) = (app.http.clone(), format!("{}/v2/whatsapp/otp/send", app.base));
        let (id, key) = (app.app_id.to_string(), app.api_key.clone());
        let task = tokio::spawn(async move {
            let mut answers = Vec::new();
            for n in 0.. {
                if *stopped.borrow() {
                    break;
                }
                let msisdn = format!("62812444{n:05}");
                let request = http.post(&url).header("App-ID", &id).header("API-Key", &key);
                let started = Instant::now();
                let answer = tokio::time::timeout(BOUND, request.json(&json!({ "msisdn": msisdn })).send())
                    .await
                    .unwrap_or_else(|_| panic!("a steady send hung for {BOUND:?}"))
                    .unwrap();
                let status = answer.status().as_u16();
                answers.push((msisdn, status, answer.json().await.unwrap(), started.elapsed()));
                let refused = answers.iter().filter(|a| a.1 == 503).count();
                counted.send_replace((answers.len(), refused));
                // Pacing, not a wait: a steady trickle of sends, not a flood.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            answers
        });
        Steady { stop, count, task }
    }

    /// Waits until the client has had `n` answers.
    async fn answered(&self, n: usize) {
        let mut count = self.count.clone();
        tokio::time::timeout(Duration::from_secs(10), count.wait_for(|c| c.0 >= n))
            .await
            .expect("the steady client never got going")
            .unwrap();
    }

    /// Waits until the client has had a 503: it has seen the outage (its precondition holds
    /// by construction, not by how long the outage happened to last).
    async fn refused(&self) {
        let mut count = self.count.clone();
        tokio::time::timeout(Duration::from_secs(30), count.wait_for(|c| c.1 > 0))
            .await
            .expect("the steady client never saw the outage")
            .unwrap();
    }

    /// Every answer was a 201 (acknowledged) or the outage answer.
    async fn stop(self, ledger: &mut Ledger) {
        self.stop.send(true).unwrap();
        let answers = self.task.await.unwrap();
        let refused = answers.iter().filter(|a| a.1 == 503).count();
        assert!(refused > 0, "the steady client never saw the outage");
        let slowest = answers.iter().map(|a| a.3).max().unwrap_or_default();
        eprintln!("steady client: {} answers, {refused} of them 503, the slowest in {slowest:?}", answers.len());
        for (msisdn, status, body, _) in answers {
            let answer = Answer { status, body, headers: Default::default() };
            match status {
                201 => ledger.record(&msisdn, &answer),
                503 => assert_eq!(answer.body["error_code"], "store_unavailable"),
                other => panic!("a steady send answered {other}: {}", answer.body),
            }
        }
    }
}

/// Restores a fault however the test ends.
struct Undo(Option<Box<dyn FnOnce()>>);

impl Drop for Undo {
    fn drop(&mut self) {
        if let Some(undo) = self.0.take() {
            undo();
        }
    }
}

fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}/waotp.db", dir.display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_made_unwritable_answers_503_and_serves_again_once_writable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let app = spawn_on(dir, sqlite_url(&path)).await;
    let mut ledger = Ledger::default();
    acknowledged(&app, &mut ledger, "62812777", 5).await;

    // The database and its WAL become immutable (chattr +i: refused even to root, also
    // through the server's open file handles).
    let files: Vec<PathBuf> = ["waotp.db", "waotp.db-wal"].iter().map(|f| path.join(f)).collect();
    let chattr = |flag: &str, files: &[PathBuf]| Command::new("chattr").arg(flag).args(files).status();
    if !chattr("+i", &files).is_ok_and(|s| s.success()) {
        cannot_run("chattr +i is not possible here (no tool, no CAP_LINUX_IMMUTABLE, or the file system)");
        return;
    }
    let undo_files = files.clone();
    let mut undo = Undo(Some(Box::new(move || {
        let _ = chattr("-i", &undo_files);
    })));
    let (first, took) = send_in_time(&app, "6281233300001", 0).await;
    assert_unavailable("the first send on an unwritable file", &first);
    assert!(took < BOUND, "{took:?}");
    all_refused(&app).await;
    let ready = app.http.get(format!("{}/readyz", app.base)).send().await.unwrap();
    assert_eq!(ready.status(), 503, "/readyz while the file is unwritable");

    if let Some(restore) = undo.0.take() {
        restore();
    }
    until_served(&app, &mut ledger).await;
    acknowledged(&app, &mut ledger, "62812999", 3).await;
    nothing_lost_nothing_spent(&app, &ledger).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_disk_that_fills_answers_503_and_serves_again_once_space_is_freed() {
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path().join("disk");
    std::fs::create_dir(&mount).unwrap();
    let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", "size=16m", "tmpfs"]).arg(&mount).output();
    if !mounted.is_ok_and(|o| o.status.success()) {
        cannot_run("cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN)");
        return;
    }
    let unmount_at = mount.clone();
    // Declared before the server: dropped (unmounted, lazily) after it.
    let _unmount = Undo(Some(Box::new(move || {
        let _ = Command::new("umount").arg("-l").arg(&unmount_at).status();
    })));
    let app = spawn_on(dir, sqlite_url(&mount)).await;
    let mut ledger = Ledger::default();
    acknowledged(&app, &mut ledger, "62812777", 5).await;

    // Fill the disk to the last byte.
    let ballast = mount.join("ballast");
    fill(&ballast);
    // Sends go on while SQLite still finds room in its own files (its WAL is reused); the
    // first that needs more is refused, whole. Every answer is a 201 or that 503.
    let mut refused = 0;
    for n in 0..5000 {
        let msisdn = format!("62812666{n:05}");
        let (a, took) = send_in_time(&app, &msisdn, n).await;
        assert!(took < BOUND, "{took:?}");
        match a.status {
            201 => ledger.record(&msisdn, &a),
            503 => {
                assert_unavailable("a send on a full disk", &a);
                refused += 1;
                if refused == 3 {
                    break;
                }
            }
            other => panic!("a send on a full disk answered {other}: {}", a.body),
        }
    }
    assert_eq!(refused, 3, "the disk never filled up");
    // The limited number: whatever it is answered, only a 201 may count.
    for n in 0..5 {
        let (a, _) = send_in_time(&app, LIMITED, n).await;
        match a.status {
            201 => ledger.record(LIMITED, &a),
            503 => assert_unavailable("a send to the limited number on a full disk", &a),
            other => panic!("a send on a full disk answered {other}: {}", a.body),
        }
    }

    std::fs::remove_file(&ballast).unwrap();
    until_served(&app, &mut ledger).await;
    acknowledged(&app, &mut ledger, "62812999", 3).await;
    nothing_lost_nothing_spent(&app, &ledger).await;
}

/// Writes zeros to `path` until the file system is full.
fn fill(path: &Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(28) => break,
            Err(e) => panic!("filling the disk: {e}"),
        }
    }
    // The last partial chunk: byte by byte.
    while let Ok(1) = file.write(&[0]) {}
    let _ = file.sync_all();
}
