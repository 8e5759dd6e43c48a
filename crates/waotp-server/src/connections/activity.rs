//! What a connection is doing, as its reads and its requests show: which of the two time
//! limits applies to it, and since when.
//!
//! Why not hyper's own `header_read_timeout`: it starts when the previous answer is written,
//! so it also bounds idle keep-alive connections by the same figure, and the two limits are
//! set apart here (a few seconds to send a head, a minute of idle keep-alive). The watch is a
//! single timer per connection, moved only when the connection changes state.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::HttpLimits;

/// What a connection is doing, shared by its reads, its requests and its watch.
pub(super) struct Activity {
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
    pub(super) fn new() -> Arc<Activity> {
        Arc::new(Activity {
            // A new connection owes its first request's head from the start: one that sends
            // nothing is closed after `header_timeout`, not held for `idle_timeout`.
            state: Mutex::new(ActivityState {
                in_flight: 0,
                head_since: Some(Instant::now()),
                idle_since: Instant::now(),
            }),
            changed: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ActivityState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn bytes_read(&self) {
        let mut s = self.lock();
        if s.in_flight == 0 && s.head_since.is_none() {
            s.head_since = Some(Instant::now());
            drop(s);
            self.changed.notify_one();
        }
    }

    /// hyper has read a request's head. Under way until the returned guard is dropped.
    pub(super) fn request_started(self: &Arc<Self>) -> InFlight {
        let mut s = self.lock();
        s.in_flight += 1;
        s.head_since = None;
        InFlight(self.clone())
    }

    /// Resolves when the connection has broken a limit, with which one.
    pub(super) async fn expired(&self, limits: HttpLimits) -> &'static str {
        // One timer, moved to each new deadline.
        let timer = tokio::time::sleep(limits.idle_timeout);
        tokio::pin!(timer);
        loop {
            let deadline = {
                let s = self.lock();
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
pub(super) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.in_flight -= 1;
        if s.in_flight == 0 {
            s.idle_since = Instant::now();
            drop(s);
            self.0.changed.notify_one();
        }
    }
}

/// A TCP stream that tells its [`Activity`] when bytes arrive.
pub(super) struct Watched {
    pub(super) inner: TcpStream,
    pub(super) activity: Arc<Activity>,
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
