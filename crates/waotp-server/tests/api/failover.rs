//! A failover under a running server: PostgreSQL as a primary with a synchronous streaming
//! standby, waotp given both hosts with `target_session_attrs=read-write`. The primary dies
//! (`pg_ctl stop -m immediate`) while sends run, and the standby is promoted. Meanwhile every
//! answer is a 201 or the outage's 503 within the wait (never a 500, never a hang); the same
//! process serves again within seconds of the promotion; every send acknowledged with a 201
//! verifies on the new primary, and the callbacks of those acknowledged before the stop all
//! arrive.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use waotp_server::Config;

use waotp_test_support::app::*;
use waotp_test_support::postgres::cluster::{server_bin, Cluster};
use waotp_test_support::receiver::Receiver;

/// The wait the server runs with (the default).
const WAIT: Duration = waotp_store::DEFAULT_DATABASE_WAIT;
/// The longest any answer may take: the wait and a margin for a busy machine.
const BOUND: Duration = Duration::from_secs(4);
/// Clients sending at once, each one send after another.
const SENDERS: usize = 4;

/// One send and what it was answered.
struct Sent {
    msisdn: String,
    started: Instant,
    answered: Instant,
    /// 0: no answer within [`BOUND`].
    status: u16,
    body: serde_json::Value,
    retry_after: Option<String>,
}

/// Clients that send (with a callback URL) until stopped, each to fresh numbers.
struct Traffic {
    sent: Arc<Mutex<Vec<Sent>>>,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Traffic {
    fn start(app: &TestApp, callback_url: &str) -> Traffic {
        let sent = Arc::new(Mutex::new(Vec::new()));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let tasks = (0..SENDERS)
            .map(|client| {
                let (http, url) = (app.http.clone(), format!("{}/v2/whatsapp/otp/send", app.base));
                let (id, key, callback_url) = (app.app_id.to_string(), app.api_key.clone(), callback_url.to_owned());
                let (sent, stopped) = (sent.clone(), stopped.clone());
                tokio::spawn(async move {
                    for n in 0.. {
                        if *stopped.borrow() {
                            break;
                        }
                        let msisdn = format!("628124{client}{n:06}");
                        let request = http
                            .post(&url)
                            .header("App-ID", &id)
                            .header("API-Key", &key)
                            .json(&json!({ "msisdn": msisdn, "callback_url": callback_url }));
                        let started = Instant::now();
                        let (status, body, retry_after) = match tokio::time::timeout(BOUND, request.send()).await {
                            Ok(answer) => {
                                let answer = answer.expect("the server answers");
                                let status = answer.status().as_u16();
                                let retry_after = answer
                                    .headers()
                                    .get("retry-after")
                                    .and_then(|v| v.to_str().ok())
                                    .map(str::to_owned);
                                (status, answer.json().await.expect("a JSON answer"), retry_after)
                            }
                            Err(_) => (0, serde_json::Value::Null, None),
                        };
                        let answered = Instant::now();
                        sent.lock().unwrap().push(Sent { msisdn, started, answered, status, body, retry_after });
                        // Pacing, not a wait: a steady stream of sends, not a flood.
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                })
            })
            .collect();
        Traffic { sent, stop, tasks }
    }

    /// Waits until `enough` holds of the answers so far.
    async fn until(&self, what: &str, within: Duration, enough: impl Fn(&[Sent]) -> bool) {
        eventually(what, within, || async {
            let sent = self.sent.lock().unwrap();
            if enough(&sent) {
                Ok(())
            } else {
                Err(sent.len())
            }
        })
        .await
    }

    async fn stop(self) -> Vec<Sent> {
        self.stop.send(true).unwrap();
        for task in self.tasks {
            task.await.unwrap();
        }
        Arc::try_unwrap(self.sent).ok().expect("the clients are done").into_inner().unwrap()
    }
}

/// 201s answered after `t`.
fn acknowledged_after(sent: &[Sent], t: Instant) -> usize {
    sent.iter().filter(|s| s.status == 201 && s.answered > t).count()
}

/// A primary that acknowledges a commit once its standby has it (`synchronous_commit=on` is
/// the default; written out, as it is the setting this relies on), and that standby, streaming.
async fn primary_and_standby() -> (Cluster, Cluster) {
    let bin = server_bin().expect(
        "this test needs PostgreSQL's server binaries (WAOTP_TEST_PG_BIN; run it through scripts/with-postgres)",
    );
    let (primary, standby) = tokio::task::spawn_blocking(move || {
        let primary = Cluster::create(&bin, "-c synchronous_commit=on -c synchronous_standby_names='*'");
        primary.start_again();
        let standby = Cluster::standby_of(&primary, "");
        (primary, standby)
    })
    .await
    .unwrap();
    let admin = waotp_test_support::postgres::connect(&primary.url()).await.unwrap();
    eventually("the standby streaming as the synchronous one", Duration::from_secs(20), || async {
        let row = admin.query_opt("SELECT sync_state FROM pg_stat_replication", &[]).await.unwrap();
        match row.map(|r| r.get::<_, String>(0)) {
            Some(state) if state == "sync" => Ok(()),
            other => Err(other),
        }
    })
    .await;
    (primary, standby)
}

/// A server given both hosts, the primary first, and told to use the one that takes writes.
async fn spawn_on_both(primary: &Cluster, standby: &Cluster) -> TestApp {
    let url = format!(
        "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/postgres?target_session_attrs=read-write",
        primary.port(),
        standby.port()
    );
    let mut config = Config::new(url);
    config.node_timeout = Duration::from_secs(1);
    config.database_wait = WAIT;
    spawn_app_on(tempfile::tempdir().unwrap(), config, |_| {}).await
}

/// The sends around a switch of primary: until 30 are acknowledged, then `disrupt` (of the
/// primary, which starts at the instant returned first), until each client has been refused
/// three times after it (the gap: no primary until an operator or a failover tool promotes the
/// standby), then `pg_ctl promote` of the standby (done at the instant returned second), until
/// 20 are acknowledged after that. Every send is returned.
async fn through_a_switch(
    app: &TestApp,
    callback_url: &str,
    standby: &Cluster,
    disruption: &str,
    disrupt: impl std::future::Future<Output = ()>,
) -> (Vec<Sent>, Instant, Instant) {
    let traffic = Traffic::start(app, callback_url);
    traffic
        .until(&format!("30 sends acknowledged before {disruption}"), Duration::from_secs(20), |s| {
            s.iter().filter(|s| s.status == 201).count() >= 30
        })
        .await;
    let disrupted_at = Instant::now();
    disrupt.await;
    traffic
        .until(&format!("sends refused after {disruption}"), Duration::from_secs(20), |s| {
            s.iter().filter(|s| s.status == 503 && s.started > disrupted_at).count() >= 3 * SENDERS
        })
        .await;
    tokio::task::block_in_place(|| standby.promote());
    let promoted_at = Instant::now();
    traffic
        .until("sends acknowledged after the promotion", Duration::from_secs(20), |s| {
            acknowledged_after(s, promoted_at) >= 20
        })
        .await;
    (traffic.stop().await, disrupted_at, promoted_at)
}

/// Every answer was a 201 or the outage answer, in time; the first 201 after the promotion
/// came within seconds of it. Returns the number of 503s and that first 201's instant.
fn answered_in_time(sent: &[Sent], promoted_at: Instant) -> (usize, Instant) {
    let mut refused = 0;
    for s in sent {
        let took = s.answered - s.started;
        assert!(took < BOUND, "a send to {} took {took:?} (answered {})", s.msisdn, s.status);
        match s.status {
            201 => {}
            503 => {
                assert_eq!(s.body, json!({ "message": "Service unavailable", "error_code": "store_unavailable" }));
                assert_eq!(s.retry_after.as_deref(), Some("1"), "Retry-After of a 503");
                refused += 1;
            }
            other => panic!("a send during the failover answered {other}: {}", s.body),
        }
    }
    assert!(refused > 0, "no send saw the gap");
    let first_after = sent
        .iter()
        .filter(|s| s.status == 201 && s.answered > promoted_at)
        .map(|s| s.answered)
        .min()
        .expect("a 201 after the promotion");
    let back = first_after - promoted_at;
    assert!(back < Duration::from_secs(5), "the first 201 came {back:?} after the promotion");
    (refused, first_after)
}

/// Every acknowledged send verifies (on the new primary), with its code; returns how many.
async fn all_verify(app: &TestApp, sent: &[Sent]) -> usize {
    let acknowledged: Vec<&Sent> = sent.iter().filter(|s| s.status == 201).collect();
    for s in &acknowledged {
        let code = s.body["otp"].as_str().expect("the code in the answer");
        let a = app.verify(json!({ "msisdn": s.msisdn, "otp": code })).await;
        assert_eq!(a.status, 200, "the send acknowledged for {} does not verify: {}", s.msisdn, a.body);
    }
    acknowledged.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn a_failover_to_a_synchronous_standby_loses_no_acknowledged_send() {
    let (primary, standby) = primary_and_standby().await;
    let app = spawn_on_both(&primary, &standby).await;
    let rx = Receiver::start().await;
    // The primary crashes: `pg_ctl stop -m immediate`.
    let (sent, stopped_at, promoted_at) =
        through_a_switch(&app, &format!("{}/cb", rx.base), &standby, "the stop", async {
            tokio::task::block_in_place(|| primary.kill())
        })
        .await;

    let (refused, first_after) = answered_in_time(&sent, promoted_at);
    let back = first_after - promoted_at;
    let gap = first_after - stopped_at;
    let slowest = sent.iter().map(|s| s.answered - s.started).max().unwrap_or_default();

    // The callbacks of every session acknowledged before the stop arrive: accepted, sent and
    // delivered (0, 1, 2), from the new primary's outbox. A claim whose commit reached the
    // standby but whose answer was lost with the primary holds its callbacks until their lease
    // ends (the attempt's timeout and 30 s): hence the long deadline, rarely used.
    let before: Vec<&Sent> = sent.iter().filter(|s| s.status == 201 && s.answered < stopped_at).collect();
    let sessions: Vec<String> = before.iter().map(|s| s.body["session_id"].as_str().unwrap().to_owned()).collect();
    let callbacks_at = Instant::now();
    eventually("every callback of the sessions acknowledged before the stop", Duration::from_secs(60), || async {
        let mut seen: HashMap<String, BTreeSet<i64>> = HashMap::new();
        for r in rx.log().iter().filter(|r| r.answered == 200) {
            seen.entry(r.session_id()).or_default().insert(r.status());
        }
        let missing: Vec<&String> = sessions
            .iter()
            .filter(|sid| !seen.get(*sid).is_some_and(|got| got.is_superset(&[0, 1, 2].into())))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(missing.len())
        }
    })
    .await;
    let callbacks_took = callbacks_at.elapsed();

    let verified = all_verify(&app, &sent).await;
    eventually("/readyz ready again", Duration::from_secs(10), || async {
        match app.http.get(format!("{}/readyz", app.base)).send().await.unwrap().status().as_u16() {
            200 => Ok(()),
            other => Err(other),
        }
    })
    .await;
    println!(
        "failover: gap {:.2} s from the stop to the first 201 after the promotion ({:.2} s after it); {} sends \
         answered, {refused} of them 503, the slowest in {slowest:?}; {} 201s verified after the promotion ({} \
         from before the stop, whose callbacks all arrived {callbacks_took:?} after the traffic stopped)",
        gap.as_secs_f64(),
        back.as_secs_f64(),
        sent.len(),
        verified,
        before.len(),
    );
    drop(app);
    drop((primary, standby));
}

/// A switchover as an operator (or a failover tool) makes one: the old primary is fenced first
/// (`default_transaction_read_only`, reloaded: its open connections stay open and answer every
/// write with SQLSTATE 25006), then the standby is promoted. The server's connections to the
/// old primary must not stay in its pools.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn a_switchover_away_from_a_primary_fenced_read_only_leaves_no_connection_on_it() {
    let (primary, standby) = primary_and_standby().await;
    let app = spawn_on_both(&primary, &standby).await;
    let rx = Receiver::start().await;
    let (sent, _, promoted_at) = through_a_switch(&app, &format!("{}/cb", rx.base), &standby, "the fence", async {
        let admin = waotp_test_support::postgres::connect(&primary.url()).await.unwrap();
        // Two statements: ALTER SYSTEM cannot run in the implicit transaction of a batch.
        admin.batch_execute("ALTER SYSTEM SET default_transaction_read_only = on").await.unwrap();
        admin.batch_execute("SELECT pg_reload_conf()").await.unwrap();
    })
    .await;
    let (refused, first_after) = answered_in_time(&sent, promoted_at);
    let verified = all_verify(&app, &sent).await;
    println!(
        "switchover: first 201 {:.2} s after the promotion; {} sends answered, {refused} of them 503; {verified} \
         201s verified on the new primary",
        (first_after - promoted_at).as_secs_f64(),
        sent.len(),
    );
    drop(app);
    drop((primary, standby));
}
