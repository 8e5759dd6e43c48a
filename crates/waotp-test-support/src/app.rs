//! The server in process, as waotp-server's HTTP tests start it: on `127.0.0.1:0`, with a
//! database of its own (a SQLite file, or a schema on `WAOTP_TEST_POSTGRES`), an app made, and
//! fast callback retries and expiry sweeps; [`TestApp`] talks to it over HTTP as a client does.

use std::time::Duration;

use serde_json::{json, Value};
use tempfile::TempDir;
use uuid::Uuid;
use waotp_core::{Category, Template};
use waotp_server::config::Secret;
use waotp_server::{AppState, Clock, Config};
use waotp_store::AppSettings;

/// The one way tests wait for a condition.
pub use crate::eventually;

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub state: AppState,
    pub clock: Clock,
    pub app_id: Uuid,
    pub api_key: String,
    /// The app's callback signing secret, as shown when it was made (the store holds it sealed).
    pub callback_secret: String,
    pub dir: TempDir,
    pub database_url: String,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Answer {
    pub fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or_default()
    }
    pub fn otp(&self) -> String {
        self.body["otp"].as_str().expect("otp in body").to_owned()
    }
    pub fn session_id(&self) -> Uuid {
        self.body["session_id"].as_str().expect("session_id").parse().expect("uuid")
    }
}

/// The database a test server uses: a SQLite file in `dir`, or a fresh schema on the
/// PostgreSQL server named by `WAOTP_TEST_POSTGRES` (`scripts/with-postgres`).
pub async fn test_database_url(dir: &TempDir) -> String {
    match crate::postgres::test_postgres() {
        Some(base) => crate::postgres::fresh_postgres_url(&base).await.expect("test schema"),
        None => format!("sqlite://{}/waotp.db", dir.path().display()),
    }
}

/// A config on a fresh test database; on PostgreSQL a stopped node is presumed dead after a
/// second, so restart tests see its work taken over quickly. Requests wait up to 30 s for the
/// database, not 2 s: tests that flood one server (a thousand requests at once) or run on a
/// busy shared machine count exact outcomes, not load shed with 503. The outage tests set
/// the wait they check.
pub async fn test_config(dir: &TempDir) -> Config {
    let mut config = Config::new(test_database_url(dir).await);
    config.node_timeout = Duration::from_secs(1);
    config.database_wait = Duration::from_secs(30);
    config
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// A server whose config the test adjusts first. Callback retries and the expiry sweep are
/// fast by default here.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = test_config(&dir).await;
    spawn_app_on(dir, config, adjust).await
}

/// [`spawn_app_with`] on a config the test made (a database of its own choosing).
pub async fn spawn_app_on(dir: TempDir, mut config: Config, adjust: impl FnOnce(&mut Config)) -> TestApp {
    config.server_secret = Some(Secret::new("integration-test-secret-0123456789"));
    config.sqlite_synchronous_full = false;
    config.callbacks.schedule =
        vec![Duration::ZERO, Duration::from_millis(50), Duration::from_millis(50), Duration::from_millis(50)];
    config.callbacks.poll = Duration::from_millis(10);
    config.callbacks.timeout = Duration::from_secs(5);
    config.sweep_every = Duration::from_millis(50);
    adjust(&mut config);
    let database_url = config.database_url.clone();
    let clock = Clock::system();
    let state = waotp_server::build(&config, clock.clone()).await.expect("state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(waotp_server::serve(state.clone(), listener, async {
        let _ = rx.await;
    }));
    let new = waotp_server::apps::create_app(state.store.as_ref(), &state.key, "test", AppSettings::default(), None, 0)
        .await
        .expect("app");
    TestApp {
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
        state,
        clock,
        app_id: new.app.app_id,
        api_key: new.api_key,
        callback_secret: new.callback_secret,
        dir,
        database_url,
        _shutdown: tx,
    }
}

/// The value of one series (name and labels, as written) in a metrics exposition; 0 when
/// the series is not there yet.
pub fn metric_value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .map_or(0.0, |v| v.parse().unwrap())
}

impl TestApp {
    /// The value of one series of this server's metrics (see [`metric_value`]).
    pub fn metric(&self, series: &str) -> f64 {
        metric_value(&self.state.metrics.text(), series)
    }

    /// Waits until no callback of the session is pending: each delivered or given up. Tests
    /// that move the clock forward call it first: an attempt still in flight then would find
    /// its lease expired by the jump and be claimed, and delivered, a second time.
    pub async fn callbacks_settled(&self, session_id: Uuid) {
        eventually("every callback of the session settled", Duration::from_secs(20), || async {
            let callbacks = self.state.store.list_callbacks(self.app_id, session_id).await.unwrap().unwrap_or_default();
            if callbacks.iter().all(|c| c.state != waotp_store::CallbackState::Pending) {
                Ok(())
            } else {
                Err(callbacks)
            }
        })
        .await
    }

    /// A second app in the same server.
    pub async fn other_app(&self) -> (Uuid, String) {
        let store = self.state.store.as_ref();
        let new = waotp_server::apps::create_app(store, &self.state.key, "other", AppSettings::default(), None, 0)
            .await
            .unwrap();
        (new.app.app_id, new.api_key)
    }

    pub async fn post_raw(&self, path: &str, creds: Option<(&str, &str)>, body: impl Into<reqwest::Body>) -> Answer {
        self.post_with(path, creds, &[], body).await
    }

    /// A send with an `Idempotency-Key`, as the test app.
    pub async fn post_idempotent(&self, path: &str, key: &str, body: impl Into<reqwest::Body>) -> Answer {
        let id = self.app_id.to_string();
        self.post_with(path, Some((&id, &self.api_key)), &[("Idempotency-Key", key)], body).await
    }

    /// A POST with the given credentials and extra headers; the answer must be JSON.
    pub async fn post_with(
        &self,
        path: &str,
        creds: Option<(&str, &str)>,
        headers: &[(&str, &str)],
        body: impl Into<reqwest::Body>,
    ) -> Answer {
        let mut req =
            self.http.post(format!("{}{path}", self.base)).header("content-type", "application/json").body(body);
        if let Some((id, key)) = creds {
            req = req.header("App-ID", id).header("API-Key", key);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
        Answer { status, body, headers }
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        let id = self.app_id.to_string();
        self.post_raw(path, Some((&id, &self.api_key)), body.to_string()).await
    }

    pub async fn send(&self, body: Value) -> Answer {
        self.post("/v2/whatsapp/otp/send", body).await
    }

    pub async fn verify(&self, body: Value) -> Answer {
        self.post("/v2/whatsapp/otp/verify", body).await
    }

    /// A GET with the given credentials (`None`: the test app's).
    pub async fn get_as(&self, path: &str, creds: Option<(&str, &str)>) -> Answer {
        let own = self.app_id.to_string();
        let (id, key) = creds.unwrap_or((&own, &self.api_key));
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .header("App-ID", id)
            .header("API-Key", key)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        Answer { status, body: res.json().await.unwrap(), headers }
    }

    pub async fn inbox_as(&self, msisdn: &str, id: &str, key: &str) -> Answer {
        let query: String = url::form_urlencoded::Serializer::new(String::new()).append_pair("msisdn", msisdn).finish();
        self.get_as(&format!("/v1/inbox?{query}"), Some((id, key))).await
    }

    pub async fn inbox(&self, msisdn: &str) -> Answer {
        self.inbox_as(msisdn, &self.app_id.to_string(), &self.api_key).await
    }

    /// Waits until the inbox of `msisdn` holds at least `n` messages; returns them.
    pub async fn wait_inbox(&self, msisdn: &str, n: usize) -> Vec<Value> {
        eventually(&format!("inbox of {msisdn} holding {n} messages"), Duration::from_secs(10), || async {
            let messages = self.inbox(msisdn).await.body["messages"].as_array().cloned().unwrap_or_default();
            if messages.len() >= n {
                Ok(messages)
            } else {
                Err(messages)
            }
        })
        .await
    }

    pub async fn add_template(&self, name: &str, lang: &str, body: &str, code_at: u32) {
        let t = Template {
            name: name.into(),
            language: lang.into(),
            category: Category::Utility,
            body: body.into(),
            code_placeholder: code_at,
            copy_code_button: false,
        };
        t.validate().unwrap();
        assert!(self.state.store.put_template(self.app_id, t).await.unwrap());
        self.state.invalidate_app(self.app_id);
    }
}

pub const MSISDN: &str = "6281234567890";

pub fn send_body(msisdn: &str) -> Value {
    json!({ "msisdn": msisdn })
}

/// A session written straight into a store, as the send route would, but never handed to
/// the channel: what a process that died right after the 201 leaves behind.
pub fn stored_session(
    key: &waotp_core::CodeKey,
    app_id: Uuid,
    msisdn: &str,
    code: &str,
    callback_url: Option<String>,
    created_at_ms: i64,
) -> waotp_store::NewSession {
    let code = waotp_core::OtpCode::parse_custom(code).unwrap();
    let session_id = Uuid::new_v4();
    waotp_store::NewSession {
        session_id,
        app_id,
        msisdn: waotp_core::Msisdn::parse(msisdn).unwrap(),
        challenge: String::new(),
        code_hash: key.hash(&session_id, &code),
        sealed_code: Some(key.seal(&session_id, &code)),
        sandbox: false,
        scripted: vec![],
        template_name: "verification_code".into(),
        lang_code: "en".into(),
        content: vec![],
        callback_url,
        created_at_ms,
        expires_at_ms: created_at_ms + 300_000,
        inbox_text: None,
        reverse_key: None,
        reverse_text: None,
    }
}
