//! Every answer of the send and verify routes, decoded as the public Verihubs clients decode
//! it: `message`, `otp`, `msisdn`, `session_id` strings, `try_count` an integer, and `code`
//! absent or an integer (a JSON number or a string of digits, as Go's `json:",string"` and
//! the loose clients take it). A field of another type under one of those names fails the
//! decode here exactly as it fails `json.Unmarshal` in the Go client.

use std::time::Duration;

use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};
use waotp_store::BlockEntry;

use waotp_test_support::app::*;

/// What a public client declares. Unknown keys (`error_code`, `reason`) are ignored, as
/// clients ignore them; the named ones must have the declared type.
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
pub struct ClientAnswer {
    pub message: String,
    #[serde(default)]
    pub otp: Option<String>,
    #[serde(default)]
    pub msisdn: Option<String>,
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub try_count: Option<i64>,
    #[serde(default, deserialize_with = "integer_code")]
    pub code: Option<i64>,
}

/// `code` as the Go client reads it: a JSON number, or a string holding only digits.
fn integer_code<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    use serde::de::Error;
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| D::Error::custom("code is not an integer")),
        Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().map(Some).map_err(D::Error::custom)
        }
        Some(other) => Err(D::Error::custom(format!("code is not an integer: {other}"))),
    }
}

/// Decodes one answer strictly; panics with the body when a client could not decode it.
pub fn decode_as_client(what: &str, a: &Answer) -> ClientAnswer {
    let decoded: ClientAnswer = serde_json::from_value(a.body.clone())
        .unwrap_or_else(|e| panic!("{what}: a public client cannot decode the {} answer {}: {e}", a.status, a.body));
    assert!(a.body.get("code").is_none(), "{what}: an answer carries a `code` key: {}", a.body);
    decoded
}

fn expect(what: &str, a: &Answer, status: u16, message: &str) -> ClientAnswer {
    assert_eq!(a.status, status, "{what}: {}", a.body);
    let decoded = decode_as_client(what, a);
    assert_eq!(decoded.message, message, "{what}");
    if status >= 400 {
        assert!(a.body["error_code"].is_string(), "{what}: an error without error_code: {}", a.body);
    }
    decoded
}

#[test]
fn the_strict_decoder_refuses_what_the_go_client_refuses() {
    let answer = |body: Value| Answer { status: 400, body, headers: Default::default() };
    let decode = |body: Value| serde_json::from_value::<ClientAnswer>(answer(body).body);
    assert!(decode(json!({ "message": "x", "code": "quota_exhausted" })).is_err());
    assert!(decode(json!({ "message": "x", "code": 1.5 })).is_err());
    assert!(decode(json!({ "message": "x", "try_count": "1" })).is_err());
    assert!(decode(json!({ "message": "x", "otp": 123456 })).is_err());
    assert!(decode(json!({ "message": 7 })).is_err());
    assert_eq!(decode(json!({ "message": "x", "code": "42" })).unwrap().code, Some(42));
    assert_eq!(decode(json!({ "message": "x", "code": 42 })).unwrap().code, Some(42));
    assert!(decode(json!({ "message": "x", "error_code": "quota_exhausted", "reason": "r" })).is_ok());
}

#[tokio::test]
async fn every_send_and_verify_answer_decodes_in_a_public_client() {
    let app = spawn_app().await;
    let id = app.app_id.to_string();
    for v in ["v1", "v2"] {
        let send = format!("/{v}/whatsapp/otp/send");
        let verify = format!("/{v}/whatsapp/otp/verify");
        // 201, 200: production.
        let msisdn = if v == "v1" { "6281234567801" } else { "6281234567802" };
        let sent = app.post(&send, json!({ "msisdn": msisdn })).await;
        let s = expect("send", &sent, 201, "OTP sent successfully");
        assert_eq!((s.msisdn.as_deref(), s.try_count), (Some(msisdn), Some(1)));
        assert!(s.session_id.is_some() && s.otp.is_some());
        // 404: a wrong code; 200: the right one.
        let wrong = app.post(&verify, json!({ "msisdn": msisdn, "otp": "000000" })).await;
        expect("wrong code", &wrong, 404, "OTP not found");
        let ok = app.post(&verify, json!({ "msisdn": msisdn, "otp": s.otp.unwrap() })).await;
        expect("verify", &ok, 200, "OTP has been verified");
        // 400: invalid input, on both routes, and malformed JSON.
        expect("bad send", &app.post(&send, json!({ "msisdn": "12" })).await, 400, "Validation error");
        expect("bad verify", &app.post(&verify, json!({ "otp": "1234" })).await, 400, "Validation error");
        let malformed = app.post_raw(&send, Some((&id, &app.api_key)), "{\"msisdn\":").await;
        expect("malformed", &malformed, 400, "Validation error");
        // 401.
        for path in [&send, &verify] {
            let a = app.post_raw(path, Some((&id, "wrong-key")), json!({ "msisdn": msisdn }).to_string()).await;
            expect("wrong key", &a, 401, "Authorization failed");
            let a = app.post_raw(path, None, json!({ "msisdn": msisdn }).to_string()).await;
            expect("no credentials", &a, 401, "Authorization failed");
        }
        // 422: an expired code, and an idempotency key reused with another body.
        let expiring = if v == "v1" { "6281234567803" } else { "6281234567804" };
        let otp = app.post(&send, json!({ "msisdn": expiring, "time_limit": "60" })).await.otp();
        app.clock.advance(Duration::from_secs(61));
        let late = app.post(&verify, json!({ "msisdn": expiring, "otp": otp })).await;
        expect("expired", &late, 422, "OTP cannot be verified because Time limit exceeded");
        let key = format!("idem-{v}");
        let first = app.post_idempotent(&send, &key, json!({ "msisdn": "6281234567805" }).to_string()).await;
        assert_eq!(first.status, 201);
        let mismatch = app.post_idempotent(&send, &key, json!({ "msisdn": "6281234567806" }).to_string()).await;
        expect(
            "idempotency mismatch",
            &mismatch,
            422,
            "Idempotency-Key was already used with a different request body",
        );
        // 429: five wrong tries lock the code.
        let locked = if v == "v1" { "6281234567807" } else { "6281234567808" };
        assert_eq!(app.post(&send, json!({ "msisdn": locked })).await.status, 201);
        let mut last = None;
        for _ in 0..6 {
            last = Some(app.post(&verify, json!({ "msisdn": locked, "otp": "999999" })).await);
        }
        expect("locked", &last.unwrap(), 429, "Too many request in the allowed time frame");
    }
    // 409: a blocked number; 403: no quota left (v1 and v2 each).
    let store = &app.state.store;
    store
        .block(BlockEntry { app_id: None, entry: "6281234567899".into(), is_prefix: false, created_at_ms: 0 })
        .await
        .unwrap();
    assert!(store.set_quota(app.app_id, Some(0)).await.unwrap());
    for v in ["v1", "v2"] {
        let path = format!("/{v}/whatsapp/otp/send");
        let blocked = app.post(&path, json!({ "msisdn": "6281234567899" })).await;
        expect("blocked", &blocked, 409, "Msisdn invalid: msisdn has been blocked");
        let broke = app.post(&path, json!({ "msisdn": "6281234567898" })).await;
        expect("no quota", &broke, 403, "Quota insufficient");
    }
    // 429: a rate limit (the sixth send to one number in ten minutes), with quota back.
    assert!(store.set_quota(app.app_id, None).await.unwrap());
    app.state.invalidate_app(app.app_id);
    let mut last = None;
    for _ in 0..6 {
        last = Some(app.send(json!({ "msisdn": "6281234567897" })).await);
    }
    let limited = last.unwrap();
    expect("rate limit", &limited, 429, "Too many request in the allowed time frame");
    assert!(limited.headers.contains_key("retry-after"));
}

#[tokio::test]
async fn every_sandbox_answer_decodes_in_a_public_client() {
    let app = spawn_app().await;
    let id = app.app_id.to_string();
    for v in ["v1", "v2"] {
        let send = format!("/{v}/whatsapp/otp/send/sandbox");
        let verify = format!("/{v}/whatsapp/otp/verify/sandbox");
        for &(msisdn, status, message) in crate::sandbox::SEND_TABLE {
            let a = app.post(&send, json!({ "msisdn": msisdn })).await;
            let d = expect(&format!("sandbox send {msisdn}"), &a, status, message);
            if status == 201 {
                assert_eq!((d.msisdn.as_deref(), d.try_count), (Some(msisdn), Some(1)));
                assert!(d.otp.is_some() && d.session_id.is_some());
            }
        }
        for &(msisdn, status, message) in crate::sandbox::VERIFY_TABLE {
            let a = app.post(&verify, json!({ "msisdn": msisdn, "otp": "123456" })).await;
            expect(&format!("sandbox verify {msisdn}"), &a, status, message);
        }
        let a = app.post_raw(&send, Some((&id, "wrong-key")), json!({ "msisdn": "6282123060001" }).to_string()).await;
        expect("sandbox wrong key", &a, 401, "Authorization failed");
        let a = app.post_raw(&verify, Some((&id, &app.api_key)), "[1,").await;
        expect("sandbox malformed", &a, 400, "Validation error");
    }
}

/// Something else holds the database past the wait: on SQLite another process keeps the
/// write lock (busy), on PostgreSQL the server's one connection is stuck behind a row lock,
/// so no connection can be had.
enum Hold {
    Sqlite(rusqlite::Connection),
    Postgres { client: tokio_postgres::Client, stuck: tokio::task::JoinHandle<u16> },
}

impl Hold {
    async fn take(app: &TestApp) -> Hold {
        if let Some(path) = app.database_url.strip_prefix("sqlite://") {
            let conn = rusqlite::Connection::open(path).unwrap();
            conn.busy_timeout(Duration::from_secs(5)).unwrap();
            conn.execute_batch("BEGIN IMMEDIATE").unwrap();
            return Hold::Sqlite(conn);
        }
        // The send's quota update waits for the app's row, holding the pool's only
        // connection; every later request waits for a connection.
        assert!(app.state.store.set_quota(app.app_id, Some(1000)).await.unwrap());
        app.state.invalidate_app(app.app_id);
        let url = app.database_url.replace("&pool_size=1", "");
        let client = waotp_test_support::postgres::connect(&url).await.unwrap();
        client.batch_execute("BEGIN").await.unwrap();
        client.execute("SELECT 1 FROM apps WHERE app_id = $1 FOR UPDATE", &[&app.app_id]).await.unwrap();
        let pid: i32 = client.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0);
        let request = app
            .http
            .post(format!("{}/v2/whatsapp/otp/send", app.base))
            .header("App-ID", app.app_id.to_string())
            .header("API-Key", &app.api_key)
            .json(&json!({ "msisdn": "6281234567820" }));
        let stuck = tokio::spawn(async move { request.send().await.unwrap().status().as_u16() });
        let blocked = "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))";
        eventually("the send waiting for the app's row", Duration::from_secs(10), || async {
            let waiting: i64 = client.query_one(blocked, &[&pid]).await.unwrap().get(0);
            if waiting > 0 {
                Ok(())
            } else {
                Err(waiting)
            }
        })
        .await;
        Hold::Postgres { client, stuck }
    }

    async fn release(self) {
        match self {
            Hold::Sqlite(conn) => conn.execute_batch("ROLLBACK").unwrap(),
            Hold::Postgres { client, stuck } => {
                client.batch_execute("ROLLBACK").await.unwrap();
                assert_eq!(stuck.await.unwrap(), 201, "the send that waited for the row");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unavailable_answer_decodes_in_a_public_client() {
    let wait = Duration::from_millis(300);
    let admin = "admin-token-for-the-outage-test";
    let app = spawn_app_with(|c| {
        c.database_wait = wait;
        c.admin_token = Some(waotp_server::config::Secret::new(admin));
        if c.uses_postgres() {
            let sep = if c.database_url.contains('?') { '&' } else { '?' };
            c.database_url.push_str(&format!("{sep}pool_size=1"));
        }
    })
    .await;
    let hold = Hold::take(&app).await;
    for v in ["v1", "v2"] {
        let send = app.post(&format!("/{v}/whatsapp/otp/send"), json!({ "msisdn": "6281234567821" })).await;
        let verify =
            app.post(&format!("/{v}/whatsapp/otp/verify"), json!({ "msisdn": "6281234567821", "otp": "123456" })).await;
        for (what, a) in [("send", send), ("verify", verify)] {
            let what = format!("{v} {what} while the database is held");
            expect(&what, &a, 503, "Service unavailable");
            assert_eq!(a.body["error_code"], "store_unavailable", "{what}");
            assert_eq!(a.headers.get("retry-after").and_then(|h| h.to_str().ok()), Some("1"), "{what}");
        }
    }
    // The admin API too: a database that is away is a 503, never a 400 with its message.
    let create = || app.http.post(format!("{}/admin/apps", app.base)).bearer_auth(admin).json(&json!({ "name": "x" }));
    let res = create().send().await.unwrap();
    assert_eq!(res.status().as_u16(), 503, "admin app creation while the database is held");
    assert_eq!(res.json::<Value>().await.unwrap()["error_code"], "store_unavailable");
    hold.release().await;
    assert_eq!(create().send().await.unwrap().status().as_u16(), 201);
    let sent = app.send(json!({ "msisdn": "6281234567821" })).await;
    expect("send once the database is free", &sent, 201, "OTP sent successfully");
}

/// The other routes' errors (inbox, quota, callbacks, admin API, axum's own rejections) have
/// the same shape: a `message`, an `error_code` string, and no `code` key.
#[tokio::test]
async fn no_error_of_any_route_carries_a_code_key() {
    let admin = "admin-token-for-the-code-key-test";
    let app = spawn_app_with(|c| c.admin_token = Some(waotp_server::config::Secret::new(admin))).await;
    let id = app.app_id.to_string();
    let unknown = uuid::Uuid::new_v4();
    let checks: Vec<(reqwest::Method, String, Option<&str>, Option<&str>)> = vec![
        (reqwest::Method::GET, "/v1/inbox".into(), None, None),
        (reqwest::Method::GET, "/v1/inbox?msisdn=12".into(), None, None),
        (reqwest::Method::GET, "/v2/quota".into(), Some("wrong-key"), None),
        (reqwest::Method::GET, format!("/v1/sessions/{unknown}/callbacks"), None, None),
        (reqwest::Method::GET, "/v1/sessions/not-a-uuid/callbacks".into(), None, None),
        (reqwest::Method::POST, format!("/v1/sessions/{unknown}/callbacks/9/replay"), None, None),
        (reqwest::Method::GET, "/v2/whatsapp/otp/send".into(), None, None),
        (reqwest::Method::GET, "/no/such/route".into(), None, None),
        (reqwest::Method::GET, "/admin/apps".into(), None, Some("wrong-admin-token-0123456789")),
        (reqwest::Method::GET, format!("/admin/apps/{unknown}"), None, Some(admin)),
        (reqwest::Method::POST, "/admin/apps".into(), None, Some(admin)),
    ];
    for (method, path, key, bearer) in checks {
        let mut req = app
            .http
            .request(method.clone(), format!("{}{path}", app.base))
            .header("App-ID", &id)
            .header("API-Key", key.unwrap_or(&app.api_key))
            .header("content-type", "application/json")
            .body("{\"name\": 7}");
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap_or_else(|e| panic!("{method} {path}: not JSON: {e}"));
        assert!(status >= 400, "{method} {path}: {status} {body}");
        assert!(body.get("code").is_none(), "{method} {path}: a `code` key: {body}");
        assert!(body["message"].is_string() && body["error_code"].is_string(), "{method} {path}: {body}");
    }
}
