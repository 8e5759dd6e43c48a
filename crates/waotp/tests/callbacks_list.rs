//! `waotp callbacks list`, against the database and through a running server's admin API,
//! while a receiver is down: a callback held behind an earlier pending one is listed as
//! `waiting`. On SQLite always, and on PostgreSQL too when `WAOTP_TEST_POSTGRES` names a
//! server (`scripts/with-postgres`).

use std::time::Duration;

use serde_json::{json, Value};
use waotp_test_support::binary::{Server, Waotp};
use waotp_test_support::eventually;

const TOKEN: &str = "callbacks-list-admin-token-0123456789";
/// The servers' secret, which the CLI is given too (it seals the apps' callback secrets).
const SECRET: &str = "callbacks-list-secret-0123456789";

/// `waotp` on the database `db`, with the servers' secret and admin token.
fn waotp(db: &str) -> Waotp {
    Waotp::new(env!("CARGO_BIN_EXE_waotp")).db(db).env("WAOTP_ADMIN_TOKEN", TOKEN).env("WAOTP_SERVER_SECRET", SECRET)
}

fn serve(db: &str) -> Server {
    // The first attempt at once, the retry an hour later: the later statuses stay held.
    waotp(db).env("WAOTP_CALLBACK_SCHEDULE", "0s,1h").serve("127.0.0.1:0")
}

/// The databases to run on: a SQLite file in `dir`, and a fresh PostgreSQL schema if one is
/// configured.
async fn databases(dir: &tempfile::TempDir) -> Vec<String> {
    let mut dbs = vec![format!("sqlite://{}/waotp.db", dir.path().display())];
    if let Some(base) = waotp_test_support::postgres::test_postgres() {
        dbs.push(waotp_test_support::postgres::fresh_postgres_url(&base).await.expect("test schema"));
    }
    dbs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_callback_is_listed_as_waiting_from_the_database_and_through_the_server() {
    let dir = tempfile::tempdir().unwrap();
    for db in databases(&dir).await {
        held_callbacks_are_listed(&db).await;
    }
}

async fn held_callbacks_are_listed(db: &str) {
    let app = waotp(db).json(&["app", "create", "--name", "held", "--json"]);
    let (app_id, key) = (app["app_id"].as_str().unwrap(), app["api_key"].as_str().unwrap());
    let server = serve(db);
    // Nothing listens on port 1: every attempt fails.
    let sent: Value = reqwest::Client::new()
        .post(format!("{}/v2/whatsapp/otp/send", server.base))
        .header("App-ID", app_id)
        .header("API-Key", key)
        .json(&json!({ "msisdn": "6281234567890", "callback_url": "http://127.0.0.1:1/cb" }))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("JSON");
    let session = sent["session_id"].as_str().expect("session_id").to_owned();
    let list = ["callbacks", "list", "--app", app_id, "--session", session.as_str()];
    let remote = |json: bool| {
        let mut args = vec!["--server", server.base.as_str()];
        args.extend(list);
        if json {
            args.push("--json");
        }
        waotp(db).ok(&args)
    };

    // Through the server: the first status tried once and due again, the later ones held.
    let callbacks = eventually(&format!("{db}: a held callback listed"), Duration::from_secs(15), || async {
        let callbacks: Value = serde_json::from_str(remote(true).trim()).expect("JSON");
        let callbacks = callbacks.as_array().expect("an array").clone();
        if callbacks.len() >= 2 && callbacks[0]["attempts"] == 1 {
            Ok(callbacks)
        } else {
            Err(callbacks)
        }
    })
    .await;
    let states: Vec<&str> = callbacks.iter().map(|c| c["state"].as_str().unwrap()).collect();
    assert_eq!(states[0], "pending", "{db}: {callbacks:?}");
    assert!(states[1..].iter().all(|s| *s == "waiting"), "{db}: {callbacks:?}");
    assert!(callbacks[0]["next_attempt_at"].is_string() && callbacks[1]["next_attempt_at"].is_null());
    // The operator's view keeps the detail.
    let error = callbacks[0]["log"][0]["error"].as_str().unwrap();
    assert!(error.starts_with("unreachable: cannot connect"), "{db}: {error}");
    let pretty = remote(false);
    assert!(pretty.contains("\"state\": \"waiting\""), "{db}: {pretty}");

    // From the database: the same in JSON, and one line per callback in text.
    let local = waotp(db).json(&[&list[..], &["--json"]].concat());
    let local = local.as_array().expect("an array");
    assert_eq!(local[..2], callbacks[..2], "{db}: the CLI and the admin API disagree");
    assert!(local[1..].iter().all(|c| c["state"] == "waiting"), "{db}: {local:?}");
    let text = waotp(db).ok(&list);
    // A line per callback, and one indented further per attempt.
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with("     ")).collect();
    assert!(lines.len() >= 2, "{db}: {text}");
    assert!(lines[0].contains(" pending ") && lines[0].contains("attempts=1 next="), "{db}: {text}");
    assert!(lines[1..].iter().all(|l| l.contains(" waiting ") && l.contains("attempts=0 ")), "{db}: {text}");
}
