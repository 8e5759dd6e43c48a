//! What a connection is doing, as its reads and its requests show: which of the two time
//! limits applies to it, and since when.
//!
//! While a request is under way neither applies (its body has `body_timeout`). Between
//! requests a connection is idle (`idle_timeout`) unless the next request's head has begun
//! (`header_timeout`, from its first byte). A head begins with a byte read while nothing is
//! under way; or earlier: a client may send a request and the start of the next in one write
//! (HTTP/1.1 pipelining), or while its request is answered, and hyper keeps those bytes in its
//! buffer, which it does not show. So [`Heads`] counts the bytes read and works out where each
//! request ends: its head's length (parsed again with `httparse`, the parser hyper uses, from
//! a copy of at most [`HEAD_COPY`] bytes) plus its body's `Content-Length`. When the answer is
//! given with more bytes read than that, the next head has begun. When the end cannot be
//! known (a chunked body, a head longer than the copy), the next head is presumed begun: the
//! shorter limit applies after each request of that connection.
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

/// A head's bytes copied at most. A longer one is not measured: after its request the next
/// head is presumed begun. A request head to waotp is typically under 2 KiB.
const HEAD_COPY: usize = 16 * 1024;
/// Headers a head may have: hyper's own limit.
const MAX_HEADERS: usize = 100;

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
    heads: Heads,
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
                heads: Heads::new(),
            }),
            changed: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ActivityState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn bytes_read(&self, bytes: &[u8]) {
        let mut s = self.lock();
        s.heads.read(bytes);
        // Between requests, bytes of a body the answer did not wait for are not a head.
        if s.in_flight == 0 && s.head_since.is_none() && s.heads.next_begun() {
            s.head_since = Some(Instant::now());
            drop(s);
            self.changed.notify_one();
        }
    }

    /// hyper has read a request's head; its body is `body_length` bytes (`None`: not known
    /// in advance). Under way until the returned guard is dropped.
    pub(super) fn request_started(self: &Arc<Self>, body_length: Option<u64>) -> InFlight {
        let mut s = self.lock();
        s.in_flight += 1;
        s.head_since = None;
        s.heads.request(body_length);
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

/// A request under way; its end leaves the connection idle, or owing the next head when
/// that has begun already.
pub(super) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.in_flight -= 1;
        if s.in_flight == 0 {
            if s.heads.next_begun() {
                s.head_since = Some(Instant::now());
            } else {
                s.idle_since = Instant::now();
            }
            drop(s);
            self.0.changed.notify_one();
        }
    }
}

/// Where request heads begin in the bytes a connection has read.
struct Heads {
    /// Bytes read so far.
    read: u64,
    /// Where the next request's head begins in them; `None` once that cannot be known.
    next: Option<u64>,
    /// The bytes read from `next` on, at most [`HEAD_COPY`]: a body is not copied.
    copy: Vec<u8>,
}

impl Heads {
    fn new() -> Heads {
        Heads { read: 0, next: Some(0), copy: Vec::new() }
    }

    fn read(&mut self, bytes: &[u8]) {
        let at = self.read;
        self.read += bytes.len() as u64;
        let Some(next) = self.next else { return };
        // What comes before `next` is the body of the request under way.
        let skip = usize::try_from(next.saturating_sub(at)).unwrap_or(usize::MAX);
        let head = bytes.get(skip..).unwrap_or_default();
        let room = HEAD_COPY - self.copy.len();
        self.copy.extend_from_slice(&head[..head.len().min(room)]);
    }

    /// hyper has read the head that begins at `next`; its body is `body_length` bytes.
    fn request(&mut self, body_length: Option<u64>) {
        let Some(start) = self.next else { return };
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let head = match httparse::Request::new(&mut headers).parse(&self.copy) {
            Ok(httparse::Status::Complete(length)) => Some(length as u64),
            // Longer than the copy (or parsed otherwise than by hyper, which should not be).
            _ => None,
        };
        let length = head.zip(body_length).and_then(|(head, body)| head.checked_add(body));
        self.next = length.and_then(|length| start.checked_add(length));
        match length {
            Some(length) => {
                let copied = usize::try_from(length).unwrap_or(usize::MAX).min(self.copy.len());
                self.copy.drain(..copied);
            }
            None => self.copy = Vec::new(),
        }
    }

    /// Whether bytes beyond the last request have been read (or may have been).
    fn next_begun(&self) -> bool {
        self.next.is_none_or(|next| self.read > next)
    }
}

/// A TCP stream that tells its [`Activity`] what arrives.
pub(super) struct Watched {
    pub(super) inner: TcpStream,
    pub(super) activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_read(&buf.filled()[before..]);
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

    const GET: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

    #[test]
    fn a_request_read_whole_leaves_nothing_begun() {
        let mut heads = Heads::new();
        heads.read(GET);
        heads.request(Some(0));
        assert!(!heads.next_begun());
        assert!(heads.copy.is_empty());
    }

    #[test]
    fn a_pipelined_partial_head_in_the_same_read_is_begun() {
        let mut heads = Heads::new();
        heads.read(&[GET, b"GET /healthz HT"].concat());
        heads.request(Some(0));
        assert!(heads.next_begun());
        assert_eq!(heads.copy, b"GET /healthz HT");
        // The rest comes, and the next request is measured from the copy.
        heads.read(b"TP/1.1\r\nHost: x\r\n\r\n");
        heads.request(Some(0));
        assert!(!heads.next_begun());
    }

    #[test]
    fn a_body_is_skipped_and_what_follows_it_is_a_head() {
        let post = b"POST /v2/whatsapp/otp/send HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n";
        let mut heads = Heads::new();
        heads.read(&[&post[..], b"{\"a\":"].concat());
        heads.request(Some(10));
        assert!(!heads.next_begun());
        // The body's end, read while the request is under way, is not a head…
        heads.read(b"\"bc\"}");
        assert!(!heads.next_begun());
        assert!(heads.copy.is_empty());
        // … and a byte after it is.
        heads.read(b"G");
        assert!(heads.next_begun());
        assert_eq!(heads.copy, b"G");
    }

    #[test]
    fn a_chunked_body_leaves_the_next_head_presumed_begun() {
        let mut heads = Heads::new();
        heads.read(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
        heads.request(None);
        assert!(heads.next_begun());
        assert!(heads.copy.is_empty());
        heads.read(GET);
        heads.request(Some(0));
        assert!(heads.next_begun());
        assert!(heads.copy.is_empty());
    }

    #[test]
    fn a_head_longer_than_the_copy_leaves_the_next_head_presumed_begun() {
        let mut heads = Heads::new();
        let long = format!("GET / HTTP/1.1\r\nX-Long: {}\r\n\r\n", "a".repeat(HEAD_COPY));
        heads.read(long.as_bytes());
        assert_eq!(heads.copy.len(), HEAD_COPY);
        heads.request(Some(0));
        assert!(heads.next_begun());
        assert!(heads.copy.is_empty());
    }

    #[test]
    fn a_head_split_over_reads_is_measured_whole() {
        let mut heads = Heads::new();
        for byte in GET {
            heads.read(&[*byte]);
        }
        heads.request(Some(0));
        assert!(!heads.next_begun());
    }
}
