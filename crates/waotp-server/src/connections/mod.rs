//! The accept loop: HTTP/1.1 connections served by hyper, with the limits `axum::serve` does
//! not have. A client gets `header_timeout` to send a request's head (from its first byte), a
//! connection between requests stays open `idle_timeout` at most, a request's body must
//! arrive within `body_timeout` of its head, at most `max_connections` are open at once, and
//! at most `max_connections_per_address` of them from one client address: one more is
//! answered 503 and closed at once.
//!
//! [`activity`] tells which time limit applies to a connection; [`per_address`] counts the
//! connections of each address.

mod activity;
mod per_address;

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::{Body as _, Incoming};
use hyper::Request;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

use self::activity::{Activity, Watched};
use self::per_address::PerAddress;
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
    /// Open connections from one client address (IPv4, or IPv6 by its /64); the next is
    /// answered 503 and closed. 0: no cap per address.
    pub max_connections_per_address: usize,
    /// How long a stop (SIGTERM) waits for requests under way before it gives them up.
    pub shutdown_grace: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(30),
            max_connections: 4096,
            max_connections_per_address: 256,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

impl HttpLimits {
    /// The limits as applied. Behind a trusted proxy (`trust_forwarded_for`) every connection
    /// comes from the proxy, and the client it is for is only named in a header, read after
    /// the connection is accepted: the cap per address is off, and the proxy caps per client.
    pub fn applied(self, trust_forwarded_for: bool) -> HttpLimits {
        if trust_forwarded_for {
            HttpLimits { max_connections_per_address: 0, ..self }
        } else {
            self
        }
    }
}

/// Refused connections being answered at once, at most (each for up to a second).
const MAX_REFUSING: usize = 256;

/// Why a new connection is refused.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    /// `max_connections` are open.
    Full,
    /// Its address holds `max_connections_per_address` already.
    AddressFull,
}

impl Refusal {
    fn error_code(self) -> &'static str {
        match self {
            Refusal::Full => "too_many_connections",
            Refusal::AddressFull => "too_many_connections_from_address",
        }
    }

    /// Its `reason` in `waotp_http_connections_closed_total`.
    fn reason(self) -> &'static str {
        match self {
            Refusal::Full => "over_limit",
            Refusal::AddressFull => "over_address_limit",
        }
    }

    /// The answer, written whole before the connection is closed.
    fn answer(self) -> &'static str {
        fn answer(code: &str) -> String {
            let body = format!(r#"{{"message":"Service unavailable","error_code":"{code}"}}"#);
            format!(
                "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
                 connection: close\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
        }
        static FULL: LazyLock<String> = LazyLock::new(|| answer(Refusal::Full.error_code()));
        static ADDRESS_FULL: LazyLock<String> = LazyLock::new(|| answer(Refusal::AddressFull.error_code()));
        match self {
            Refusal::Full => &FULL,
            Refusal::AddressFull => &ADDRESS_FULL,
        }
    }
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
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
    let per_address = PerAddress::new(limits.max_connections_per_address);
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
        // The address first: one over its own cap is told so, and takes no place in the cap
        // of all.
        let admitted = per_address.open(peer.ip()).ok_or(Refusal::AddressFull).and_then(|slot| {
            let permit = open.clone().try_acquire_owned().map_err(|_| Refusal::Full)?;
            Ok((slot, permit))
        });
        let (slot, permit) = match admitted {
            Ok(places) => places,
            Err(refusal) => {
                metrics.connection_closed(refusal.reason());
                // Refusals answered at once are bounded too: past MAX_REFUSING, a refused
                // connection is closed without its answer, so a client that keeps reconnecting
                // cannot pile up sockets (and run the process out of descriptors).
                if let Ok(turn) = refusing.clone().try_acquire_owned() {
                    tokio::spawn(async move {
                        refuse(stream, refusal).await;
                        drop(turn);
                    });
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (router, metrics, stopping) = (router.clone(), metrics.clone(), stopping.clone());
        tokio::spawn(async move {
            if let Some(reason) = connection(stream, peer, router, limits, stopping).await {
                metrics.connection_closed(reason);
            }
            drop((slot, permit));
        });
    }
    drop(listener);
    let _ = stop.send(true);
    // Every connection holds a permit until it ends. One whose request never finishes (a
    // handler stuck on the database) is given up after a grace period, so a stop never hangs.
    if tokio::time::timeout(limits.shutdown_grace, open.acquire_many(max)).await.is_err() {
        tracing::warn!(grace = ?limits.shutdown_grace, "stopping with requests still under way");
    }
    Ok(())
}

/// Writes the answer to a refused connection (giving a client that does not read a second)
/// and closes.
async fn refuse(mut stream: TcpStream, refusal: Refusal) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(refusal.answer().as_bytes()).await?;
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
    let activity = Activity::new();
    let io = TokioIo::new(Watched { inner: stream, activity: activity.clone() });
    let inner = TowerToHyperService::new(router);
    let requests = activity.clone();
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        // Its Content-Length (0 without a body); `None` for a chunked one.
        let in_flight = requests.request_started(request.body().size_hint().exact());
        let mut request = request.map(|body| {
            if body.is_end_stream() {
                axum::body::Body::new(body)
            } else {
                axum::body::Body::new(Deadline { body, at: Box::pin(tokio::time::sleep(limits.body_timeout)) })
            }
        });
        request.extensions_mut().insert(ConnectInfo(peer));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusals_are_well_formed() {
        for refusal in [Refusal::Full, Refusal::AddressFull] {
            let text = refusal.answer();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            let length: usize = head.lines().find_map(|l| l.strip_prefix("content-length: ")).unwrap().parse().unwrap();
            assert_eq!(body.len(), length);
            let json: serde_json::Value = serde_json::from_str(body).unwrap();
            assert_eq!(json["error_code"], refusal.error_code());
        }
    }

    #[test]
    fn behind_a_trusted_proxy_there_is_no_cap_per_address() {
        let limits = HttpLimits::default();
        assert_eq!(limits.applied(false), limits);
        assert_eq!(limits.applied(true).max_connections_per_address, 0);
        assert_eq!(limits.applied(true).max_connections, limits.max_connections);
    }
}
