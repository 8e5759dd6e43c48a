//! Tests of the real `waotp` binary: the CLI contract, a clean SIGTERM, and kill -9 durability.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use waotp_test_support::binary::{Server, Waotp};
use waotp_test_support::eventually;

const BIN: &str = env!("CARGO_BIN_EXE_waotp");

/// `waotp` on the database `db`.
fn waotp(db: &str) -> Waotp {
    Waotp::new(BIN).db(db)
}

/// Creates an app with the CLI, given the server secret the servers on `db` will have (the CLI
/// seals the app's callback secret under it).
fn create_app(db: &str, secret: &str) -> (String, String) {
    let stdout = waotp(db).env("WAOTP_SERVER_SECRET", secret).ok(&["app", "create", "--name", "cli-test", "--json"]);
    assert_eq!(stdout.trim().lines().count(), 1, "exactly one JSON object: {stdout}");
    let v: Value = serde_json::from_str(stdout.trim()).unwrap();
    (v["app_id"].as_str().unwrap().to_owned(), v["api_key"].as_str().unwrap().to_owned())
}

fn start_server(db: &str, secret: &str) -> Server {
    start_server_with(db, secret, &[])
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn post(base: &str, path: &str, app: &(String, String), body: Value) -> (u16, Value) {
    let res = client()
        .post(format!("{base}{path}"))
        .header("App-ID", &app.0)
        .header("API-Key", &app.1)
        .json(&body)
        .send()
        .await
        .expect("request");
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

#[test]
fn app_create_json_and_list() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/nested/waotp.db", dir.path().display());
    let (id, key) = create_app(&db, "a-test-secret-of-some-length");
    assert!(uuid::Uuid::parse_str(&id).is_ok());
    assert!(key.starts_with("wak_"));
    let out = waotp(&db).run(&["app", "list", "--json"]);
    let list: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(list[0]["app_id"], id.as_str());
    assert!(!out.stdout.contains(&key), "keys are never listed");
    // Templates through the CLI; a bad one is refused with a message.
    let ok = waotp(&db).run(&[
        "template",
        "add",
        "--app",
        &id,
        "--name",
        "otp_reg",
        "--lang",
        "id",
        "--body",
        "Kode {{1}} untuk {{2}}",
    ]);
    assert!(ok.success(), "{}", ok.stderr);
    let bad = waotp(&db).run(&["template", "add", "--app", &id, "--name", "x", "--lang", "id", "--body", "{{2}}"]);
    assert!(!bad.success());
    let list = waotp(&db).json(&["template", "list", "--app", &id, "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    // Settings are validated.
    let bad = waotp(&db).run(&["app", "update", &id, "--code-length", "12"]);
    assert!(!bad.success());
    assert!(bad.stderr.contains("code length"), "{}", bad.stderr);
}

/// Whether process `pid` has a handler of its own for SIGTERM (Linux: `SigCgt` in its status).
fn catches_sigterm(pid: u32) -> Result<(), String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
    let caught = status.lines().find_map(|l| l.strip_prefix("SigCgt:")).ok_or("no SigCgt line")?;
    let caught = u64::from_str_radix(caught.trim(), 16).map_err(|e| e.to_string())?;
    const SIGTERM: u32 = 15;
    if caught & (1 << (SIGTERM - 1)) != 0 {
        Ok(())
    } else {
        Err(format!("caught signals {caught:#x}"))
    }
}

#[tokio::test]
async fn serve_prints_how_to_start_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/waotp.db", dir.path().display());
    let mut server = start_server(&db, "a-test-secret-of-some-length");
    server.line_containing("waotp app create");
    // The banner comes before the server listens for signals: wait until it catches SIGTERM.
    let pid = server.child.id();
    eventually("the server catching SIGTERM", Duration::from_secs(10), || async move { catches_sigterm(pid) }).await;
    let status = Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    assert!(status.success());
    let child = &std::cell::RefCell::new(&mut server.child);
    let code = eventually("the server stopped after SIGTERM", Duration::from_secs(10), || async move {
        child.borrow_mut().try_wait().unwrap().ok_or("still running")
    })
    .await;
    assert!(code.success(), "exit status {code}");
}

/// Sends many codes, kills the server with SIGKILL while sends are still in flight, restarts
/// it on the same database: every acknowledged session still verifies, and every one reaches
/// the inbox (those undelivered at the kill are delivered after the restart).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_session() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/waotp.db", dir.path().display());
    let secret = "kill-nine-secret-0123456789";
    let app = create_app(&db, secret);
    // 400 requests at once from this one address: more than http_max_connections_per_address.
    let mut server = start_server_with(&db, secret, &[("WAOTP_HTTP_MAX_CONNECTIONS_PER_ADDRESS", "0")]);
    let base = server.base.clone();

    let (acks, mut acked) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for i in 0..400u32 {
        let (base, app, acks) = (base.clone(), app.clone(), acks.clone());
        tasks.push(tokio::spawn(async move {
            let msisdn = format!("62812{:08}", 10_000_000 + i);
            let (status, body) = post(&base, "/v2/whatsapp/otp/send", &app, json!({ "msisdn": msisdn })).await;
            if status == 201 {
                let _ = acks.send((msisdn, body["otp"].as_str().unwrap().to_owned()));
            }
        }));
    }
    drop(acks);
    // Kill once a good part has been acknowledged, with the rest still in flight.
    let mut sessions = Vec::new();
    while sessions.len() < 150 {
        sessions.push(acked.recv().await.expect("acknowledgements"));
    }
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    for t in tasks {
        let _ = t.await;
    }
    while let Ok(s) = acked.try_recv() {
        sessions.push(s);
    }
    assert!(sessions.len() >= 150);

    let mut server = start_server(&db, secret);
    let base = server.base.clone();
    for (msisdn, otp) in &sessions {
        // Delivered (after the restart if need be) …
        let m = eventually(&format!("{msisdn} in the inbox"), Duration::from_secs(20), || async {
            let res = client()
                .get(format!("{base}/v1/inbox"))
                .query(&[("msisdn", msisdn)])
                .header("App-ID", &app.0)
                .header("API-Key", &app.1)
                .send()
                .await
                .unwrap();
            let v: Value = res.json().await.unwrap();
            v["messages"].as_array().and_then(|m| m.first()).cloned().ok_or(v)
        })
        .await;
        assert!(m["text"].as_str().unwrap().starts_with(otp.as_str()));
        // … and still verifiable.
        let (status, body) =
            post(&base, "/v2/whatsapp/otp/verify", &app, json!({ "msisdn": msisdn, "otp": otp })).await;
        assert_eq!(status, 200, "{msisdn}: {body}");
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}

/// A callback receiver that answers 500 until switched up, and records what it accepted.
struct Receiver {
    base: String,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    failed: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    accepted: std::sync::Arc<std::sync::Mutex<Vec<(String, i64)>>>,
}

async fn receiver() -> Receiver {
    use std::sync::atomic::Ordering;
    use std::sync::{Arc, Mutex};
    let up = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let failed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let accepted: Arc<Mutex<Vec<(String, i64)>>> = Arc::default();
    let (u, f, a) = (up.clone(), failed.clone(), accepted.clone());
    let app =
        axum::Router::new().fallback(move |q: axum::extract::Query<std::collections::HashMap<String, String>>| {
            let (u, f, a) = (u.clone(), f.clone(), a.clone());
            async move {
                if !u.load(Ordering::SeqCst) {
                    f.fetch_add(1, Ordering::SeqCst);
                    return axum::http::StatusCode::INTERNAL_SERVER_ERROR;
                }
                let status = q.0["status"].parse().unwrap();
                a.lock().unwrap().push((q.0["session_id"].clone(), status));
                axum::http::StatusCode::OK
            }
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver { base, up, failed, accepted }
}

fn start_server_with(db: &str, secret: &str, env: &[(&str, &str)]) -> Server {
    waotp(db).env("WAOTP_SERVER_SECRET", secret).envs(env).serve("127.0.0.1:0")
}

/// Callbacks still pending when the server is killed with SIGKILL are delivered after the
/// restart, in order, every one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_pending_callback() {
    use std::sync::atomic::Ordering;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/waotp.db", dir.path().display());
    let secret = "kill-nine-callbacks-0123456789";
    let app = create_app(&db, secret);
    let rx = receiver().await;
    let schedule = format!("0s{}", ",100ms".repeat(49));
    let env = [("WAOTP_CALLBACK_SCHEDULE", schedule.as_str())];
    let mut server = start_server_with(&db, secret, &env);
    let mut sessions = Vec::new();
    for i in 0..40u32 {
        let msisdn = format!("62813{:08}", 20_000_000 + i);
        let body = json!({ "msisdn": msisdn, "callback_url": format!("{}/cb", rx.base) });
        let (status, body) = post(&server.base, "/v2/whatsapp/otp/send", &app, body).await;
        assert_eq!(status, 201);
        sessions.push(body["session_id"].as_str().unwrap().to_owned());
    }
    // Wait until the receiver has refused some attempts: callbacks are pending and retrying.
    eventually("40 callback attempts refused by the receiver", Duration::from_secs(10), || async {
        match rx.failed.load(Ordering::SeqCst) {
            n if n >= 40 => Ok(()),
            n => Err(format!("{n} refused")),
        }
    })
    .await;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    assert!(rx.accepted.lock().unwrap().is_empty());

    rx.up.store(true, Ordering::SeqCst);
    let mut server = start_server_with(&db, secret, &env);
    let accepted = eventually("every callback after the restart", Duration::from_secs(30), || async {
        let accepted = rx.accepted.lock().unwrap().clone();
        let complete = sessions.iter().all(|s| {
            let got: Vec<i64> = accepted.iter().filter(|(id, _)| id == s).map(|(_, st)| *st).collect();
            got.len() >= 3
        });
        if complete {
            Ok(accepted)
        } else {
            Err(format!("{} accepted", accepted.len()))
        }
    })
    .await;
    for s in &sessions {
        let got: Vec<i64> = accepted.iter().filter(|(id, _)| id == s).map(|(_, st)| *st).collect();
        assert_eq!(&got[..3], &[0, 1, 2], "session {s}");
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}

#[test]
fn quotas_limits_and_blocklists_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/waotp.db", dir.path().display());
    let app = waotp(&db).json(&["app", "create", "--name", "q", "--quota", "10", "--json"]);
    assert_eq!(app["quota"], 10);
    let id = app["app_id"].as_str().unwrap();
    let ok = |args: &[&str]| waotp(&db).ok(args);
    ok(&[
        "app",
        "update",
        id,
        "--quota-add",
        "5",
        "--msisdn-send-limit",
        "3",
        "--msisdn-send-window",
        "60",
        "--rps-limit",
        "50",
        "--allowed-countries",
        "62,65",
        "--sequential-mode",
        "enforce",
    ]);
    let shown: Value = serde_json::from_str(&ok(&["app", "show", id, "--json"])).unwrap();
    assert_eq!(shown["quota"], 15);
    assert_eq!(shown["msisdn_send_limit"], 3);
    assert_eq!(shown["msisdn_send_window"], 60);
    assert_eq!(shown["rps_limit"], 50);
    assert_eq!(shown["allowed_countries"], json!(["62", "65"]));
    assert_eq!(shown["sequential_mode"], "enforce");
    ok(&["app", "update", id, "--quota", "unlimited", "--rps-limit", "none"]);
    let shown: Value = serde_json::from_str(&ok(&["app", "show", id, "--json"])).unwrap();
    assert_eq!((shown["quota"].clone(), shown["rps_limit"].clone()), (Value::Null, Value::Null));
    // A verify limit at or under the 5 wrong tries is refused.
    assert!(!waotp(&db).run(&["app", "update", id, "--msisdn-verify-limit", "5"]).success());
    // Backup templates, in order; a bad name is refused; `none` clears them.
    ok(&["app", "update", id, "--backup-templates", "auth_b, auth_c"]);
    let shown: Value = serde_json::from_str(&ok(&["app", "show", id, "--json"])).unwrap();
    assert_eq!(shown["backup_templates"], json!(["auth_b", "auth_c"]));
    assert!(!waotp(&db).run(&["app", "update", id, "--backup-templates", "Auth-B"]).success());
    ok(&["app", "update", id, "--backup-templates", "none"]);
    let shown: Value = serde_json::from_str(&ok(&["app", "show", id, "--json"])).unwrap();
    assert_eq!(shown["backup_templates"], json!([]));
    // Reverse verification's texts (LANG=TEXT, repeated; together they replace the app's) and
    // its reply; a text without {code} is refused; `none` clears.
    ok(&["app", "update", id, "--reverse-text", "en=Acme: {code}", "--reverse-text", "id=Kode = {code}"]);
    ok(&["app", "update", id, "--reverse-reply", "Thanks!"]);
    let shown: Value = serde_json::from_str(&ok(&["app", "show", id, "--json"])).unwrap();
    assert_eq!(shown["reverse_texts"], json!({ "en": "Acme: {code}", "id": "Kode = {code}" }));
    assert_eq!(shown["reverse_reply"], "Thanks!");
    let refused = waotp(&db).run(&["app", "update", id, "--reverse-text", "en=no code"]);
    assert!(!refused.success());
    assert!(refused.stderr.contains("{code}"), "{}", refused.stderr);
    ok(&["app", "update", id, "--reverse-text", "none", "--reverse-reply", "none"]);
    let shown: Value = serde_json::from_str(&ok(&["app", "show", id, "--json"])).unwrap();
    assert_eq!((shown["reverse_texts"].clone(), shown["reverse_reply"].clone()), (json!({}), Value::Null));

    ok(&["blocklist", "add", "62812*"]);
    ok(&["blocklist", "add", "--app", id, "+6281234567890"]);
    assert!(!waotp(&db).run(&["blocklist", "add", "12345"]).success(), "not a number, not a prefix");
    let list: Value = serde_json::from_str(&ok(&["blocklist", "list", "--json"])).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    ok(&["blocklist", "remove", "62812*"]);
    assert!(!waotp(&db).run(&["blocklist", "remove", "62812*"]).success());
    let list: Value = serde_json::from_str(&ok(&["blocklist", "list", "--json"])).unwrap();
    assert_eq!(list[0]["entry"], "6281234567890");
    assert_eq!(list[0]["app_id"], id);
}

/// `waotp ARGS` in `dir` with `env`: whether it succeeded, and what it printed.
fn waotp_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let ran = Waotp::new(BIN).current_dir(dir).envs(env).run(args);
    (ran.success(), ran.stdout, ran.stderr)
}

#[test]
fn a_bad_config_value_fails_startup_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = waotp_in(dir.path(), &["serve"], &[("WAOTP_CALLBACK_TIMEOUT", "soon")]);
    assert!(!ok);
    assert!(err.contains("callback_timeout") && err.contains("WAOTP_CALLBACK_TIMEOUT"), "{err}");
    let (ok, _, err) = waotp_in(dir.path(), &["serve", "--listen", "nowhere"], &[]);
    assert!(!ok);
    assert!(err.contains("invalid listen") && err.contains("--listen"), "{err}");
    // Operator alerts: an http(s) URL, and always a signing secret.
    let secret = ("WAOTP_ALERT_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    let (ok, _, err) =
        waotp_in(dir.path(), &["config", "check"], &[("WAOTP_ALERT_URL", "ftp://ops.example/a"), secret]);
    assert!(!ok);
    assert!(err.contains("alert_url") && err.contains("WAOTP_ALERT_URL"), "{err}");
    let (ok, _, err) = waotp_in(dir.path(), &["config", "check"], &[("WAOTP_ALERT_URL", "https://ops.example/a")]);
    assert!(!ok);
    assert!(err.contains("alert_url needs alert_secret"), "{err}");
    let (ok, _, err) =
        waotp_in(dir.path(), &["config", "check"], &[("WAOTP_ALERT_URL", "https://ops.example/a"), secret]);
    assert!(ok, "{err}");
    std::fs::write(dir.path().join("waotp.toml"), "whatsapp_rate = 5000\n").unwrap();
    let (ok, _, err) = waotp_in(dir.path(), &["config", "check"], &[]);
    assert!(!ok);
    assert!(err.contains("whatsapp_rate") && err.contains("waotp.toml"), "{err}");
    std::fs::write(dir.path().join("waotp.toml"), "callback_timout = \"1s\"\n").unwrap();
    let (ok, _, err) = waotp_in(dir.path(), &["config", "check"], &[]);
    assert!(!ok);
    assert!(err.contains("unknown key `callback_timout`"), "{err}");
    // The price table: every line checked, a bad one named.
    let table = dir.path().join("prices.csv");
    std::fs::write(&table, "country,category,price,currency,valid_from\nID,authentication,0,025,USD,2025-07-01\n")
        .unwrap();
    std::fs::write(
        dir.path().join("waotp.toml"),
        format!("whatsapp_price_table = {:?}\n", table.display().to_string()),
    )
    .unwrap();
    let (ok, _, err) = waotp_in(dir.path(), &["config", "check"], &[]);
    assert!(!ok && err.contains("whatsapp_price_table") && err.contains("line 2:"), "{err}");
    std::fs::write(&table, "country,category,price,currency,valid_from\nID,authentication,0.025,USD,2025-07-01\n")
        .unwrap();
    let (ok, _, err) = waotp_in(dir.path(), &["config", "check"], &[]);
    assert!(ok, "{err}");
}

#[test]
fn layers_override_in_order_and_secrets_stay_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("custom.toml");
    std::fs::write(&file, "retention = \"7d\"\ncallback_timeout = \"9s\"\nlisten = \"127.0.0.1:9000\"\n").unwrap();
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, "a-secret-from-a-file-0123456789\n").unwrap();
    let (ok, out, err) = waotp_in(
        dir.path(),
        &["--config", file.to_str().unwrap(), "config", "check"],
        &[
            ("WAOTP_CALLBACK_TIMEOUT", "3s"),
            ("WAOTP_SERVER_SECRET_FILE", secret_file.to_str().unwrap()),
            ("WAOTP_WHATSAPP_ACCESS_TOKEN", "EAAGsecretTokenValue"),
            ("WAOTP_WHATSAPP_PHONE_NUMBER_ID", "1234"),
            ("WAOTP_CALLBAK_SCHEDULE", "1s"),
        ],
    );
    assert!(ok, "{err}");
    let line = |key: &str| out.lines().find(|l| l.starts_with(&format!("{key} ="))).unwrap_or("").to_owned();
    assert!(line("retention").contains("\"7d\"") && line("retention").contains("custom.toml"), "{out}");
    assert!(
        line("callback_timeout").contains("\"3s\"") && line("callback_timeout").contains("env WAOTP_CALLBACK_TIMEOUT")
    );
    assert!(line("listen").contains("127.0.0.1:9000"));
    assert!(line("log").contains("default"));
    assert!(line("server_secret").contains("<redacted>") && line("server_secret").contains("WAOTP_SERVER_SECRET_FILE"));
    assert!(line("whatsapp_access_token").contains("<redacted>"));
    assert!(!out.contains("a-secret-from-a-file") && !out.contains("EAAGsecretTokenValue"));
    assert!(err.contains("unknown environment variable WAOTP_CALLBAK_SCHEDULE"), "{err}");
    // A flag beats the file and the environment.
    let (_, out, _) = waotp_in(
        dir.path(),
        &["--config", file.to_str().unwrap(), "--database-url", "sqlite://x/y.db", "config", "check"],
        &[("WAOTP_DATABASE_URL", "sqlite://env.db")],
    );
    assert!(out.lines().any(|l| l.starts_with("database_url = \"sqlite://x/y.db\"") && l.contains("flag")), "{out}");
    // A secret given twice, as a value and as a file, is refused: neither is taken.
    let (ok, _, err) = waotp_in(
        dir.path(),
        &["config", "check"],
        &[("WAOTP_DATABASE_URL", "sqlite://env.db"), ("WAOTP_DATABASE_URL_FILE", secret_file.to_str().unwrap())],
    );
    assert!(!ok);
    assert!(err.contains("set WAOTP_DATABASE_URL or WAOTP_DATABASE_URL_FILE, not both"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_manages_a_running_server_through_its_admin_api() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/server.db", dir.path().display());
    let token = "cli-admin-token-0123456789";
    let mut server = start_server_with(&db, "remote-secret-0123456789", &[("WAOTP_ADMIN_TOKEN", token)]);
    let elsewhere = tempfile::tempdir().unwrap();
    let cli = |args: &[&str]| {
        let mut full = vec!["--server", server.base.as_str()];
        full.extend_from_slice(args);
        waotp_in(elsewhere.path(), &full, &[("WAOTP_ADMIN_TOKEN", token)])
    };
    let (ok, out, err) = cli(&["app", "create", "--name", "remote", "--quota", "3", "--json"]);
    assert!(ok, "{err}");
    let app: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(app["quota"], 3);
    let creds = (app["app_id"].as_str().unwrap().to_owned(), app["api_key"].as_str().unwrap().to_owned());
    let (status, _) = post(&server.base, "/v2/whatsapp/otp/send", &creds, json!({ "msisdn": "6281234567890" })).await;
    assert_eq!(status, 201);
    let (ok, _, err) = cli(&["blocklist", "add", "62812*"]);
    assert!(ok, "{err}");
    let (status, body) =
        post(&server.base, "/v2/whatsapp/otp/send", &creds, json!({ "msisdn": "6281234567891" })).await;
    assert_eq!((status, body["error_code"].as_str()), (409, Some("blocked_prefix")));
    let (ok, out, _) = cli(&["app", "list", "--json"]);
    assert!(ok && out.contains("remote"));
    // A wrong token is refused with the server's reason, and nothing touches a local database.
    let (ok, _, err) = waotp_in(
        elsewhere.path(),
        &["--server", &server.base, "app", "list"],
        &[("WAOTP_ADMIN_TOKEN", "wrong-token-0123456789")],
    );
    assert!(!ok && err.contains("401"), "{err}");
    assert!(!elsewhere.path().join("waotp-data").exists());
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}

/// `waotp inbox inbound` applies the user's message on the database, as the server's webhook
/// does: a reverse verification's prefilled text from its number verifies it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_inbound_from_the_command_line_verifies_a_reverse_session() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("waotp.db").display());
    let secret = "cli-reverse-test-secret-0123456789";
    let app = create_app(&db, secret);
    let server = start_server(&db, secret);
    let msisdn = "6281234567890";
    let (status, started) =
        post(&server.base, "/v2/whatsapp/otp/send", &app, json!({ "msisdn": msisdn, "method": "reverse" })).await;
    assert_eq!(status, 201, "{started}");
    let text = started["text"].as_str().unwrap();
    let cli = waotp(&db).env("WAOTP_SERVER_SECRET", secret);
    let inbound = |from: &str| cli.ok(&["inbox", "inbound", "--from", from, "--text", text]);
    let stranger = inbound("6289999999999");
    assert!(stranger.starts_with("refused"), "{stranger}");
    let own = inbound(&format!("+{msisdn}"));
    assert!(own.starts_with("verified"), "{own}");
    let session = client()
        .get(format!("{}/v1/sessions/{}", server.base, started["session_id"].as_str().unwrap()))
        .header("App-ID", &app.0)
        .header("API-Key", &app.1)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    // The stranger was counted apart, not as the owner's wrong try (issue 38).
    assert_eq!(
        (session["status"].as_i64(), session["wrong_attempts"].as_i64(), session["wrong_senders"].as_i64()),
        (Some(4), Some(0), Some(1))
    );
    assert!(!cli.run(&["inbox", "inbound", "--from", "12", "--text", "x"]).success());
    server.stop();
}
