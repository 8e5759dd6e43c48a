//! Several `waotp serve` processes on one PostgreSQL database: a shared quota, callbacks
//! delivered once, and a killed node's work finished by the others.
//!
//! Needs a PostgreSQL server in `WAOTP_TEST_POSTGRES`: the tests are ignored by a plain
//! `cargo test`, and `scripts/test` runs them (`--include-ignored`) beside the cluster
//! `scripts/with-postgres` starts; run by name without a server, they fail.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use waotp_store::prelude::*;
use waotp_test_support::binary::{Server, Waotp};
use waotp_test_support::eventually;

const SECRET: &str = "multi-node-shared-secret-0123456789";

async fn database() -> String {
    let base = waotp_test_support::postgres::required_postgres();
    waotp_test_support::postgres::fresh_postgres_url(&base).await.expect("test schema")
}

/// `waotp` on `db`, with the nodes' shared secret.
fn waotp(db: &str) -> Waotp {
    Waotp::new(env!("CARGO_BIN_EXE_waotp")).db(db).env("WAOTP_SERVER_SECRET", SECRET)
}

fn create_app(db: &str, quota: Option<u32>) -> (String, String) {
    let quota = quota.map(|q| q.to_string());
    let mut args = vec!["app", "create", "--name", "multi", "--json"];
    if let Some(q) = &quota {
        args.extend(["--quota", q]);
    }
    let v = waotp(db).json(&args);
    (v["app_id"].as_str().unwrap().to_owned(), v["api_key"].as_str().unwrap().to_owned())
}

/// The tests here each run a small cluster on two cores: one at a time, so that no node of
/// one test is starved into looking dead by another test's load.
static ONE_CLUSTER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn start_node(db: &str, node_timeout: &str) -> Server {
    // A thousand sends at once, one limited quota, two shared cores: connections are waited
    // for longer than the 2 s default, after which a node sheds load with 503 (as it should in
    // production, where clients retry). These tests count exact outcomes, so every send waits
    // its turn.
    waotp(db).env("WAOTP_NODE_TIMEOUT", node_timeout).env("WAOTP_DATABASE_WAIT", "30s").serve("127.0.0.1:0")
}

/// A callback receiver: every request it answered, as (session id, status, webhook-id).
struct Receiver {
    base: String,
    got: Arc<Mutex<Vec<(String, i64, String)>>>,
    /// While `true`, every request is held unanswered (and unrecorded) until it turns `false`.
    held: tokio::sync::watch::Sender<bool>,
}

impl Receiver {
    async fn start() -> Receiver {
        let got: Arc<Mutex<Vec<(String, i64, String)>>> = Arc::default();
        let (held, hold) = tokio::sync::watch::channel(false);
        let g = got.clone();
        let app = axum::Router::new().fallback(
            move |q: axum::extract::Query<HashMap<String, String>>, headers: axum::http::HeaderMap| {
                let (g, mut hold) = (g.clone(), hold.clone());
                async move {
                    // A held receiver answers nothing until the test lets it go.
                    let _ = hold.wait_for(|held| !held).await;
                    let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                    let status = q.0["status"].parse().unwrap();
                    g.lock().unwrap().push((q.0["session_id"].clone(), status, id));
                    axum::http::StatusCode::OK
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { base, got, held }
    }

    /// Holds every request unanswered from now on, until [`Receiver::release`].
    fn hold(&self) {
        self.held.send_replace(true);
    }

    /// Answers the held requests and every later one.
    fn release(&self) {
        self.held.send_replace(false);
    }

    /// Waits until every session has received every status in `statuses`.
    async fn wait_for(&self, sessions: &HashSet<String>, statuses: &[i64], within: Duration) {
        eventually("every callback arrived", within, || async {
            let seen: HashSet<(String, i64)> =
                self.got.lock().unwrap().iter().map(|(s, st, _)| (s.clone(), *st)).collect();
            let missing = sessions
                .iter()
                .flat_map(|s| statuses.iter().map(move |st| (s.clone(), *st)))
                .filter(|k| !seen.contains(k))
                .count();
            if missing == 0 {
                Ok(())
            } else {
                Err(format!("{missing} callbacks missing"))
            }
        })
        .await
    }

    /// How often each (session, status) was received, and whether repeats kept the webhook-id.
    fn counts(&self) -> HashMap<(String, i64), (usize, HashSet<String>)> {
        let mut out: HashMap<(String, i64), (usize, HashSet<String>)> = HashMap::new();
        for (s, st, id) in self.got.lock().unwrap().iter() {
            let entry = out.entry((s.clone(), *st)).or_default();
            entry.0 += 1;
            entry.1.insert(id.clone());
        }
        out
    }
}

async fn post(http: &reqwest::Client, url: String, app: &(String, String), body: Value) -> Option<(u16, Value)> {
    let res = http.post(url).header("App-ID", &app.0).header("API-Key", &app.1).json(&body).send().await.ok()?;
    let status = res.status().as_u16();
    Some((status, res.json().await.unwrap_or(Value::Null)))
}

/// 1,000 sends over three nodes, 192 at a time, with a quota of 500: exactly 500 accepted, every
/// callback of theirs received exactly once, and codes verify on any node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn three_nodes_share_one_quota_and_send_each_callback_once() {
    let db = database().await;
    let _turn = ONE_CLUSTER_AT_A_TIME.lock().await;
    let app = create_app(&db, Some(500));
    let rx = Receiver::start().await;
    // The default liveness limit: no node dies here, none may look dead.
    let nodes: Vec<Server> = (0..3).map(|_| start_node(&db, "10s")).collect();
    let http = reqwest::Client::new();

    // 192 requests in flight (64 per node, each node's pool size): the quota is contended on
    // every send, and on a loaded machine no connection waits past the server's 10 s header
    // timeout behind a thousand others, as it could with all 1,000 at once.
    let in_flight = std::sync::Arc::new(tokio::sync::Semaphore::new(192));
    let mut tasks = Vec::new();
    for i in 0..1000u32 {
        let (http, app, in_flight) = (http.clone(), app.clone(), in_flight.clone());
        let node = i as usize % nodes.len();
        let url = format!("{}/v2/whatsapp/otp/send", nodes[node].base);
        let msisdn = format!("62812{:08}", 30_000_000 + i);
        let body = json!({ "msisdn": msisdn, "callback_url": format!("{}/cb", rx.base) });
        tasks.push(tokio::spawn(async move {
            let _slot = in_flight.acquire_owned().await.unwrap();
            (node, msisdn, post(&http, url, &app, body).await.expect("node answers"))
        }));
    }
    let mut accepted = Vec::new();
    let mut refused = 0;
    for t in tasks {
        let (node, msisdn, (status, body)) = t.await.unwrap();
        match status {
            201 => accepted.push((node, body["session_id"].as_str().unwrap().to_owned(), msisdn, body["otp"].clone())),
            403 => {
                assert_eq!(body["message"], "Quota insufficient");
                refused += 1;
            }
            other => panic!("unexpected answer {other}: {body}"),
        }
    }
    assert_eq!((accepted.len(), refused), (500, 500));
    assert!((0..3).all(|n| accepted.iter().any(|(node, ..)| *node == n)), "every node accepted sends");

    // A hundred codes verified on another node than the one that sent them.
    for (node, _, msisdn, otp) in accepted.iter().take(100) {
        let other = &nodes[(node + 1) % nodes.len()];
        let (status, body) = post(
            &http,
            format!("{}/v2/whatsapp/otp/verify", other.base),
            &app,
            json!({ "msisdn": msisdn, "otp": otp }),
        )
        .await
        .unwrap();
        assert_eq!(status, 200, "{body}");
    }

    let sessions: HashSet<String> = accepted.iter().map(|(_, s, ..)| s.clone()).collect();
    rx.wait_for(&sessions, &[0, 1, 2], Duration::from_secs(60)).await;
    let verified: HashSet<String> = accepted.iter().take(100).map(|(_, s, ..)| s.clone()).collect();
    rx.wait_for(&verified, &[4], Duration::from_secs(30)).await;
    // The outbox settled: nothing pending, so no node claims a callback again, and an attempt
    // whose lease another node took over has timed out (a lease outlasts the attempt's
    // timeout). A duplicate, if any node were to deliver one twice, has arrived by now.
    let store = waotp_store::postgres::PgStore::open(waotp_store::postgres::PgOptions::from_url(&db).unwrap())
        .await
        .expect("the test's own look at the database");
    eventually("no callback pending", Duration::from_secs(30), || async {
        match store.pending_callbacks().await.unwrap() {
            0 => Ok(()),
            n => Err(format!("{n} pending")),
        }
    })
    .await;
    let counts = rx.counts();
    for ((session, status), (n, _)) in &counts {
        assert!(sessions.contains(session), "a callback for a session that was never accepted");
        assert_eq!(*n, 1, "session {session} status {status} received {n} times");
    }
    assert_eq!(counts.len(), 500 * 3 + 100);
}

/// A node killed mid-run: every callback of every session it (or any node) accepted still
/// arrives, taken over by the nodes that live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn a_killed_nodes_callbacks_still_arrive() {
    let db = database().await;
    let _turn = ONE_CLUSTER_AT_A_TIME.lock().await;
    let app = create_app(&db, None);
    let rx = Receiver::start().await;
    // The receiver answers nothing until the node is dead: every callback of the sessions the
    // node accepted is still leased or pending when it dies, by construction (not by timing).
    rx.hold();
    // A short liveness limit, so the takeover comes within seconds.
    let mut nodes: Vec<Server> = (0..3).map(|_| start_node(&db, "2s")).collect();
    let bases: Vec<String> = nodes.iter().map(|n| n.base.clone()).collect();
    let http = reqwest::Client::new();

    let (acks, mut acked) = tokio::sync::mpsc::unbounded_channel::<(usize, String)>();
    let mut tasks = Vec::new();
    for i in 0..600u32 {
        let (http, app, acks) = (http.clone(), app.clone(), acks.clone());
        let node = i as usize % bases.len();
        let url = format!("{}/v2/whatsapp/otp/send", bases[node]);
        let body =
            json!({ "msisdn": format!("62813{:08}", 40_000_000 + i), "callback_url": format!("{}/cb", rx.base) });
        tasks.push(tokio::spawn(async move {
            // Pacing, not a wait: sends spread out so that some are still coming after the kill.
            tokio::time::sleep(Duration::from_millis(u64::from(i) * 4)).await;
            if let Some((201, body)) = post(&http, url, &app, body).await {
                let _ = acks.send((node, body["session_id"].as_str().unwrap().to_owned()));
            }
        }));
    }
    drop(acks);

    // The node to be killed has accepted sessions of its own before it dies.
    let mut sessions = Vec::new();
    while sessions.len() < 300 || !sessions.iter().any(|(n, _)| *n == 1) {
        sessions.push(acked.recv().await.expect("acknowledged sends"));
    }
    nodes[1].child.kill().unwrap();
    nodes[1].child.wait().unwrap();
    let killed_at = Instant::now();
    rx.release();
    for t in tasks {
        t.await.unwrap();
    }
    while let Ok(ack) = acked.try_recv() {
        sessions.push(ack);
    }

    let all: HashSet<String> = sessions.iter().map(|(_, s)| s.clone()).collect();
    rx.wait_for(&all, &[0, 1, 2], Duration::from_secs(90)).await;
    eprintln!("every callback arrived {:.1} s after the kill", killed_at.elapsed().as_secs_f64());
    // At least once; a callback the dead node was sending may come twice, with one webhook-id.
    for ((session, status), (_, ids)) in rx.counts() {
        assert_eq!(ids.len(), 1, "session {session} status {status} arrived under several webhook-ids");
    }
}

/// Nodes must share the server secret: on PostgreSQL there is no key file to fall back on, so
/// a node without one refuses to start (and says why) instead of making codes of its own.
#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn a_node_without_a_server_secret_refuses_to_start() {
    let db = database().await;
    let out = waotp(&db).env_remove("WAOTP_SERVER_SECRET").run(&["serve", "--listen", "127.0.0.1:0"]);
    assert!(!out.success());
    assert!(out.stderr.contains("WAOTP_SERVER_SECRET"), "{}", out.stderr);
}
