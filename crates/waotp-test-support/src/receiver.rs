//! A real local callback receiver: records every request, answers as scripted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Router;

use crate::eventually;

#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    /// Path and query exactly as requested.
    pub target: String,
    pub headers: HashMap<String, String>,
    pub body: String,
    pub at: Instant,
    /// What the receiver answered.
    pub answered: u16,
}

impl Received {
    pub fn query(&self) -> HashMap<String, String> {
        let q = self.target.split_once('?').map(|(_, q)| q).unwrap_or("");
        url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()
    }
    pub fn status(&self) -> i64 {
        if self.method == "POST" {
            let v: serde_json::Value = serde_json::from_str(&self.body).unwrap();
            v["status"].as_i64().unwrap()
        } else {
            self.query()["status"].parse().unwrap()
        }
    }
    pub fn session_id(&self) -> String {
        if self.method == "POST" {
            let v: serde_json::Value = serde_json::from_str(&self.body).unwrap();
            v["session_id"].as_str().unwrap().to_owned()
        } else {
            self.query()["session_id"].clone()
        }
    }
}

#[derive(Default)]
struct Inner {
    log: Mutex<Vec<Received>>,
    /// Answer 500 to this many requests first.
    fail_first: AtomicUsize,
    /// Answer 500 to everything while set (non-zero).
    down: AtomicUsize,
    /// `Retry-After` seconds to send with failures (0: none).
    retry_after: AtomicUsize,
    /// The status failures are answered with (0: 500).
    failure_status: AtomicU16,
}

#[derive(Clone)]
pub struct Receiver {
    pub base: String,
    inner: Arc<Inner>,
}

async fn record(State(inner): State<Arc<Inner>>, headers: HeaderMap, req: Request) -> impl IntoResponse {
    let method = req.method().to_string();
    let target = req.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default();
    let body: Bytes = axum::body::to_bytes(req.into_body(), 1 << 20).await.unwrap_or_default();
    let fail = inner.down.load(Ordering::SeqCst) != 0
        || inner.fail_first.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
    let failure = match inner.failure_status.load(Ordering::SeqCst) {
        0 => 500,
        status => status,
    };
    let answered = if fail { failure } else { 200 };
    inner.log.lock().unwrap().push(Received {
        method,
        target,
        headers: headers.iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned())).collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
        at: Instant::now(),
        answered,
    });
    let mut h = HeaderMap::new();
    let retry_after = inner.retry_after.load(Ordering::SeqCst);
    if fail && retry_after > 0 {
        h.insert("retry-after", retry_after.to_string().parse().unwrap());
    }
    (StatusCode::from_u16(answered).unwrap(), h, "ok")
}

impl Receiver {
    pub async fn start() -> Receiver {
        let inner = Arc::new(Inner::default());
        let app = Router::new().fallback(record).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { base, inner }
    }

    pub fn fail_first(&self, n: usize) {
        self.inner.fail_first.store(n, Ordering::SeqCst);
    }

    pub fn set_down(&self, down: bool) {
        self.inner.down.store(down as usize, Ordering::SeqCst);
    }

    /// Answer failures with `status` instead of 500.
    pub fn fail_with(&self, status: u16) {
        self.inner.failure_status.store(status, Ordering::SeqCst);
    }

    pub fn retry_after(&self, secs: usize) {
        self.inner.retry_after.store(secs, Ordering::SeqCst);
    }

    pub fn log(&self) -> Vec<Received> {
        self.inner.log.lock().unwrap().clone()
    }

    /// Requests answered 2xx for one session, in arrival order.
    pub fn received(&self, session_id: &str) -> Vec<Received> {
        self.log().into_iter().filter(|r| r.answered == 200 && r.session_id() == session_id).collect()
    }

    /// Waits until `session_id` has received `n` callbacks; returns their statuses.
    pub async fn wait_statuses(&self, session_id: &str, n: usize) -> Vec<i64> {
        let what = format!("{n} callbacks for {session_id} (last seen: the statuses, then the whole log)");
        eventually(&what, Duration::from_secs(15), || async {
            let got: Vec<i64> = self.received(session_id).iter().map(Received::status).collect();
            if got.len() >= n {
                Ok(got)
            } else {
                Err((got, self.log()))
            }
        })
        .await
    }
}
