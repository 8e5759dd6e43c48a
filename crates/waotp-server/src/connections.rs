//! The accept loop: HTTP/1.1 connections served by hyper, with the limits `axum::serve` does
//! not have. A client gets `header_timeout` to send a request's head (from its first byte), a
//! connection between requests stays open `idle_timeout` at most, a request's body must
//! arrive within `body_timeout` of its head, and at most
//! `max_connections` are open at once: one more is answered 503 and closed at once.
//!
//! Why not hyper's own `header_read_timeout`: it starts when the previous answer is written,
//! so it also bounds idle keep-alive connections by the same figure, and the two limits are
//! set apart here (a few seconds to send a head, a minute of idle keep-alive). The watch is a
//! single timer per connection, moved only when the connection changes state.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::{Body as _, Incoming};
use hyper::Request;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, Semaphore};
use tokio::time::Instant;

use crate::metrics::Metrics;

/// How long clients may take and how many may be connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// From a request's first byte to the end of its head.
    pub header_timeout: Duration,
    /// A keep-alive connection with no request under way is closed after this.
    pub idle_timeout: Duration,
    /// From a request's head to the end of its body.
    pub body_timeout: Duration,
    /// Open connections; the next is answered 503 and closed.
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(30),
            max_connections: 4096,
        }
    }
}

/// How long a stop waits for requests under way.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// The body of the answer to a connection over the cap.
const OVER_LIMIT_BODY: &str = r#"{"message":"Service unavailable","error_code":"too_many_connections"}"#;

/// The answer to a connection over the cap, written whole before it is closed.
fn over_limit() -> &'static str {
    static ANSWER: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
             connection: close\r\ncontent-length: {}\r\n\r\n{OVER_LIMIT_BODY}",
            OVER_LIMIT_BODY.len()
        )
    });
    &ANSWER
}

/// Serves `router` on `listener` until `shutdown` resolves; then stops accepting, asks every
/// connection to finish its request in flight and close, and returns once all have.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let max = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS) as u32;
    let open = Arc::new(Semaphore::new(max as usize));
    let (stop, stopping) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: let others close before trying again.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            metrics.connection_closed("over_limit");
            tokio::spawn(refuse(stream));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (router, metrics, stopping) = (router.clone(), metrics.clone(), stopping.clone());
        tokio::spawn(async move {
            if let Some(reason) = connection(stream, peer, router, limits, stopping).await {
                metrics.connection_closed(reason);
            }
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    // Every connection holds a permit until it ends. One whose request never finishes (a
    // handler stuck on the database) is given up after a grace period, so a stop never hangs.
    if tokio::time::timeout(SHUTDOWN_GRACE, open.acquire_many(max)).await.is_err() {
        tracing::warn!(grace = ?SHUTDOWN_GRACE, "stopping with requests still under way");
    }
    Ok(())
}

/// Writes the over-the-cap answer (giving a client that does not read a second) and closes.
async fn refuse(mut stream: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(over_limit().as_bytes()).await?;
        stream.shutdown().await?;
        // Read what the client sent until it closes: closing with its request unread would
        // reset the connection, and the client might never see the answer.
        let mut sink = [0u8; 1024];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<_, io::Error>(())
    })
    .await;
}

/// Serves one connection until it ends; `Some(reason)` when waotp closed it for a limit.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: HttpLimits,
    mut stopping: watch::Receiver<bool>,
) -> Option<&'static str> {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched { inner: stream, activity: activity.clone() });
    let inner = TowerToHyperService::new(router);
    let requests = activity.clone();
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let mut request = request.map(|body| {
            if body.is_end_stream() {
                axum::body::Body::new(body)
            } else {
                axum::body::Body::new(Deadline { body, at: Box::pin(tokio::time::sleep(limits.body_timeout)) })
            }
        });
        request.extensions_mut().insert(ConnectInfo(peer));
        let in_flight = requests.request_started();
        let answer = hyper::service::Service::call(&inner, request);
        async move {
            let answer: Result<_, Infallible> = answer.await;
            drop(in_flight);
            answer
        }
    });
    let conn = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
    let mut conn = std::pin::pin!(conn);
    let mut draining = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return None;
            }
            reason = activity.expired(limits) => {
                tracing::debug!(reason, "closing a connection");
                return Some(reason);
            }
            _ = stopping.changed(), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// What a connection is doing, as its reads and its requests show.
struct Activity {
    state: Mutex<ActivityState>,
    changed: Notify,
}

struct ActivityState {
    /// Requests handed to the router and not answered yet.
    in_flight: usize,
    /// When the first byte of a request head arrived, until the head is complete.
    head_since: Option<Instant>,
    /// When the connection last had nothing under way.
    idle_since: Instant,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            // A new connection owes its first request's head from the start: one that sends
            // nothing is closed after `header_timeout`, not held for `idle_timeout`.
            state: Mutex::new(ActivityState {
                in_flight: 0,
                head_since: Some(Instant::now()),
                idle_since: Instant::now(),
            }),
            changed: Notify::new(),
        }
    }

    fn bytes_read(&self) {
        let mut s = self.state.lock().expect("activity");
        if s.in_flight == 0 && s.head_since.is_none() {
            s.head_since = Some(Instant::now());
            drop(s);
            self.changed.notify_one();
        }
    }

    fn request_started(self: &Arc<Self>) -> InFlight {
        let mut s = self.state.lock().expect("activity");
        s.in_flight += 1;
        s.head_since = None;
        InFlight(self.clone())
    }

    /// Resolves when the connection has broken a limit, with which one.
    async fn expired(&self, limits: HttpLimits) -> &'static str {
        // One timer, moved to each new deadline.
        let timer = tokio::time::sleep(limits.idle_timeout);
        tokio::pin!(timer);
        loop {
            let deadline = {
                let s = self.state.lock().expect("activity");
                if s.in_flight > 0 {
                    None
                } else if let Some(since) = s.head_since {
                    Some((since + limits.header_timeout, "header_timeout"))
                } else {
                    Some((s.idle_since + limits.idle_timeout, "idle_timeout"))
                }
            };
            match deadline {
                Some((at, reason)) if at <= Instant::now() => return reason,
                // A change (a head begun, the last request answered) may move the deadline.
                Some((at, _)) => {
                    if timer.deadline() != at {
                        timer.as_mut().reset(at);
                    }
                    tokio::select! {
                        () = timer.as_mut() => {}
                        () = self.changed.notified() => {}
                    }
                }
                None => self.changed.notified().await,
            }
        }
    }
}

/// A request under way; its end makes the connection idle again if it was the last.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut s = self.0.state.lock().expect("activity");
        s.in_flight -= 1;
        if s.in_flight == 0 {
            s.idle_since = Instant::now();
            drop(s);
            self.0.changed.notify_one();
        }
    }
}

/// A request body that must arrive whole by a deadline: a client that trickles its body
/// fails the request (the route's body extractor answers 400) instead of holding it.
struct Deadline {
    body: Incoming,
    at: Pin<Box<tokio::time::Sleep>>,
}

impl hyper::body::Body for Deadline {
    type Data = hyper::body::Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        match self.at.as_mut().poll(cx) {
            Poll::Ready(()) => {
                Poll::Ready(Some(Err("the request body did not arrive within http_body_timeout".into())))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// A TCP stream that tells its [`Activity`] when bytes arrive.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_over_limit_answer_is_well_formed() {
        let text = over_limit();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let length: usize = head.lines().find_map(|l| l.strip_prefix("content-length: ")).unwrap().parse().unwrap();
        assert_eq!(body.len(), length);
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error_code"], "too_many_connections");
    }
}
