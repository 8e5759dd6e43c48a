//! Callback signing secrets at rest: stored sealed under the server secret (the database holds
//! no usable secret), shown once when made, and callbacks signed with them verify with the
//! reference Standard Webhooks library (`scripts/standard-webhooks-verify`: the `standardwebhooks`
//! package from PyPI, pinned). A secret an older waotp stored as given still signs, and is
//! sealed at the next start.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use uuid::Uuid;
use waotp_server::config::Secret;

use waotp_test_support::app::*;
use waotp_test_support::receiver::{Received, Receiver};

const ADMIN: &str = "callback-secrets-admin-token-0123";

/// The `callback_secret` column of an app, read from the database itself (SQLite or PostgreSQL).
async fn stored_column(app: &TestApp, app_id: Uuid) -> String {
    match app.database_url.strip_prefix("sqlite://") {
        Some(path) => {
            let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
            let db = rusqlite::Connection::open_with_flags(path, flags).unwrap();
            db.busy_timeout(Duration::from_secs(10)).unwrap();
            db.query_row("SELECT callback_secret FROM apps WHERE app_id = ?1", [&app_id.as_bytes()[..]], |r| r.get(0))
                .unwrap()
        }
        None => {
            let client = waotp_test_support::postgres::connect(&app.database_url).await.unwrap();
            client.query_one("SELECT callback_secret FROM apps WHERE app_id = $1", &[&app_id]).await.unwrap().get(0)
        }
    }
}

/// Whether the column holds `secret` in no usable form: sealed, and neither the secret nor its key
/// bytes' base64 in it.
fn sealed_not(stored: &str, secret: &str) {
    assert!(stored.starts_with("sealed:v1:"), "{stored}");
    assert!(!stored.contains(secret) && !stored.contains(secret.trim_start_matches("whsec_")), "{stored}");
}

/// What the reference library says of each callback signed with `secret`: `valid`, or
/// `invalid: why`. The payload is a POST's body, a GET's path and query.
fn reference_verdicts(secret: &str, callbacks: &[Received]) -> Vec<String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/standard-webhooks-verify");
    let mut child = Command::new(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run scripts/standard-webhooks-verify");
    let mut input = String::new();
    for r in callbacks {
        let payload = if r.method == "POST" { r.body.clone() } else { r.target.clone() };
        let headers: serde_json::Map<String, Value> = ["webhook-id", "webhook-timestamp", "webhook-signature"]
            .into_iter()
            .filter_map(|h| r.headers.get(h).map(|v| (h.to_owned(), json!(v))))
            .collect();
        input.push_str(&json!({ "secret": secret, "headers": headers, "payload": payload }).to_string());
        input.push('\n');
    }
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the reference verifier failed to run: {}", out.status);
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect()
}

fn all_valid(verdicts: Vec<String>) {
    assert!(!verdicts.is_empty() && verdicts.iter().all(|v| v == "valid"), "{verdicts:?}");
}

async fn admin(app: &TestApp, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    let mut req = app.http.request(method, format!("{}{path}", app.base)).bearer_auth(ADMIN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    assert!(res.status().is_success(), "{path}: {}", res.status());
    res.json().await.unwrap()
}

/// Sends a code to `msisdn` as the app `creds`, callbacks to `rx`; waits for `n` of them.
async fn callbacks_of(app: &TestApp, creds: (&str, &str), rx: &Receiver, msisdn: &str, n: usize) -> Vec<Received> {
    let body = json!({ "msisdn": msisdn, "callback_url": format!("{}/cb?tenant=acme", rx.base) });
    let sent = app.post_raw("/v2/whatsapp/otp/send", Some(creds), body.to_string()).await;
    assert_eq!(sent.status, 201, "{}", sent.body);
    let sid = sent.session_id().to_string();
    rx.wait_statuses(&sid, n).await;
    rx.received(&sid)
}

/// An app made through the admin API (or `create_app`) and its rotated secret are stored sealed,
/// never as shown; callbacks signed with them verify with the reference library, POST and GET,
/// and nothing else does (a changed body, the old secret after a rotation, the stored form).
#[tokio::test]
async fn callback_secrets_are_stored_sealed_and_sign_as_the_reference_library_verifies() {
    let app = spawn_app_with(|c| c.admin_token = Some(Secret::new(ADMIN))).await;
    let rx = Receiver::start().await;
    sealed_not(&stored_column(&app, app.app_id).await, &app.callback_secret);

    let created = admin(&app, reqwest::Method::POST, "/admin/apps", Some(json!({ "name": "shop" }))).await;
    let (id, key, shown) = (
        created["app_id"].as_str().unwrap().to_owned(),
        created["api_key"].as_str().unwrap().to_owned(),
        created["callback_secret"].as_str().unwrap().to_owned(),
    );
    assert!(shown.starts_with("whsec_"), "{created}");
    let app_id: Uuid = id.parse().unwrap();
    let stored = stored_column(&app, app_id).await;
    sealed_not(&stored, &shown);
    admin(&app, reqwest::Method::PATCH, &format!("/admin/apps/{id}"), Some(json!({ "callback_mode": "post" }))).await;

    let posts = callbacks_of(&app, (&id, &key), &rx, MSISDN, 2).await;
    assert!(posts.iter().all(|r| r.method == "POST"));
    all_valid(reference_verdicts(&shown, &posts));
    let mut changed = posts[0].clone();
    changed.body.push(' ');
    let refused = reference_verdicts(&shown, &[changed]);
    assert!(refused[0].starts_with("invalid"), "{refused:?}");
    // The GET mode's payload (path and query), too, for the app made with `create_app`.
    let id0 = app.app_id.to_string();
    let gets = callbacks_of(&app, (&id0, &app.api_key), &rx, "6281234567891", 2).await;
    assert!(gets.iter().all(|r| r.method == "GET"));
    all_valid(reference_verdicts(&app.callback_secret, &gets));

    // Rotated: shown once, stored sealed, and the next callbacks verify with it alone.
    let rotated = admin(&app, reqwest::Method::POST, &format!("/admin/apps/{id}/callback-secret"), None).await;
    let new = rotated["callback_secret"].as_str().unwrap().to_owned();
    assert_ne!(new, shown);
    sealed_not(&stored_column(&app, app_id).await, &new);
    let after = callbacks_of(&app, (&id, &key), &rx, "6281234567892", 2).await;
    all_valid(reference_verdicts(&new, &after));
    assert!(reference_verdicts(&shown, &after).iter().all(|v| v.starts_with("invalid")));
    // The database's form signs nothing the receiver would take.
    let sealed = stored_column(&app, app_id).await;
    let listed = admin(&app, reqwest::Method::GET, &format!("/admin/apps/{id}"), None).await;
    assert!(!listed.to_string().contains(&new) && !listed.to_string().contains(&sealed), "never listed");
}

/// A secret an older waotp stored as given still signs (verified by the reference library),
/// and the next start seals it, the same secret; one sealed under another server secret signs
/// nothing: its callbacks are not sent (never unsigned), and the attempt says why.
#[tokio::test]
async fn a_callback_secret_stored_as_given_still_signs_and_is_sealed_at_the_next_start() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    let store = app.state.store.as_ref();
    let given = waotp_core::callback::generate_secret();
    store.set_callback_secret(app.app_id, given.clone()).await.unwrap();
    app.state.invalidate_app(app.app_id);
    assert_eq!(stored_column(&app, app.app_id).await, given);
    let id = app.app_id.to_string();
    let before = callbacks_of(&app, (&id, &app.api_key), &rx, MSISDN, 2).await;
    all_valid(reference_verdicts(&given, &before));

    let mut config = waotp_server::Config::new(app.database_url.clone());
    config.database_wait = Duration::from_secs(30);
    // The restarted node stays up beside the first (both deliver callbacks from this database).
    let restarted = spawn_app_on(tempfile::tempdir().unwrap(), config, |_| {}).await;
    sealed_not(&stored_column(&app, app.app_id).await, &given);
    app.state.invalidate_app(app.app_id);
    let after = callbacks_of(&app, (&id, &app.api_key), &rx, "6281234567891", 2).await;
    all_valid(reference_verdicts(&given, &after));

    // Sealed under another server secret: nothing is sent; the operator's log says why.
    let other = waotp_core::CodeKey::from_secret(b"another-server-secret-0123456789");
    store.set_callback_secret(app.app_id, other.seal_callback_secret(&app.app_id, &given)).await.unwrap();
    // Both nodes forget the secret they had opened (a node's app cache is its own; whichever
    // claims the callback must read the new one).
    app.state.invalidate_app(app.app_id);
    restarted.state.invalidate_app(app.app_id);
    let sent = app.send(json!({ "msisdn": "6281234567892", "callback_url": format!("{}/cb", rx.base) })).await;
    let sid = sent.session_id();
    let attempts = eventually("a failed attempt", Duration::from_secs(15), || async {
        let callbacks = store.list_callbacks(app.app_id, sid).await.unwrap().unwrap_or_default();
        let errors: Vec<String> = callbacks.iter().flat_map(|c| c.log.iter().filter_map(|a| a.error.clone())).collect();
        if errors.is_empty() {
            Err(callbacks.len())
        } else {
            Ok(errors)
        }
    })
    .await;
    assert!(attempts[0].contains("cannot sign") && attempts[0].contains("server secret"), "{attempts:?}");
    assert!(rx.received(&sid.to_string()).is_empty(), "nothing went out unsigned");
}
