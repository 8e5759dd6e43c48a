//! Slow and idle clients, and the cap on open connections: raw sockets against the server.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use waotp_server::connections::HttpLimits;

use waotp_test_support::app::{eventually, spawn_app_with, TestApp};

const MSISDN: &str = "6281234567890";

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.base.trim_start_matches("http://")).await.expect("connect")
}

/// A connection from `from` (any of 127.0.0.0/8 is this machine on Linux; the server
/// listens on 127.0.0.1), so a test has clients at two addresses.
async fn connect_from(app: &TestApp, from: &str) -> TcpStream {
    let server: SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap_or_else(|e| panic!("bind a client to {from}: {e}"));
    socket.connect(server).await.expect("connect")
}

/// The header timeout of [`short_header_timeout`]'s server.
const SHORT_HEADER_TIMEOUT: Duration = Duration::from_secs(1);

/// A server whose clients have 1 s to send a head but an hour of idle keep-alive, so that a
/// close within seconds is the header timeout's.
async fn short_header_timeout() -> TestApp {
    spawn_app_with(|c| {
        c.http = HttpLimits {
            header_timeout: SHORT_HEADER_TIMEOUT,
            idle_timeout: Duration::from_secs(3600),
            ..HttpLimits::default()
        };
    })
    .await
}

/// A whole send request (head and JSON `body`) as the test app.
fn send_request(app: &TestApp, body: &str) -> String {
    format!(
        "POST /v2/whatsapp/otp/send HTTP/1.1\r\nHost: x\r\nApp-ID: {}\r\nAPI-Key: {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        app.app_id,
        app.api_key,
        body.len()
    )
}

/// Reads one whole answer (its head and `Content-Length` bytes of body), within 10 s.
async fn read_answer(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let text = String::from_utf8_lossy(&got);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length: usize = head
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ").map(str::to_owned))
                    .map_or(0, |v| v.trim().parse().unwrap());
                if body.len() >= length {
                    return;
                }
            }
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => panic!("closed before a whole answer: {text}"),
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("no whole answer within 10 s");
    String::from_utf8_lossy(&got).into_owned()
}

/// Reads until the server closes the connection (within `within`); what it wrote.
async fn read_to_close(stream: &mut TcpStream, within: Duration) -> String {
    let mut got = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server kept the connection open past {within:?}; it wrote {got:?}");
    String::from_utf8_lossy(&got).into_owned()
}

fn closed_for(app: &TestApp, reason: &str) -> u64 {
    app.metric(&format!("waotp_http_connections_closed_total{{reason=\"{reason}\"}}")) as u64
}

/// A client that sends its request head one byte at a time is cut off after the header
/// timeout, while other clients are served meanwhile.
#[tokio::test]
async fn a_slow_header_is_cut_off_while_others_are_served() {
    let app = spawn_app_with(|c| {
        c.http = HttpLimits { header_timeout: Duration::from_secs(1), ..HttpLimits::default() };
    })
    .await;
    let mut slow = connect(&app).await;
    let (mut reader, mut writer) = slow.split();
    let trickle = async {
        for byte in b"POST /v2/whatsapp/otp/send HTTP/1.1\r\nHost: x\r\nX-Slow: ".iter().cycle() {
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
            // Pacing, not a wait: the slow client's trickle.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let others = async {
        // Sends go through while the slow head trickles in.
        for _ in 0..3 {
            let sent = app.post("/v2/whatsapp/otp/send", json!({ "msisdn": MSISDN })).await;
            assert_eq!(sent.status, 201, "{:?}", sent.body);
        }
    };
    let closed = async {
        let mut buf = [0u8; 256];
        tokio::time::timeout(Duration::from_secs(15), async {
            loop {
                match reader.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await
        .expect("the slow connection is still open after 15 s")
    };
    tokio::select! {
        () = trickle => panic!("the trickle ended first"),
        ((), ()) = async { tokio::join!(others, closed) } => {}
    }
    assert_eq!(closed_for(&app, "header_timeout"), 1);
}

/// A keep-alive connection with nothing under way is closed after the idle timeout.
#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let app = spawn_app_with(|c| {
        c.http = HttpLimits { idle_timeout: Duration::from_millis(500), ..HttpLimits::default() };
    })
    .await;
    let mut stream = connect(&app).await;
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let answer = read_to_close(&mut stream, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(closed_for(&app, "idle_timeout"), 1);
    assert_eq!(closed_for(&app, "header_timeout"), 0);
}

/// Past the cap a new connection is answered 503 at once and closed; once a held connection
/// goes, new ones are served again.
#[tokio::test]
async fn connections_past_the_cap_are_refused_with_503() {
    let app = spawn_app_with(|c| {
        c.http = HttpLimits { max_connections: 2, ..HttpLimits::default() };
    })
    .await;
    // Two idle connections hold the cap (accepted in order, before the third).
    let first = connect(&app).await;
    let _second = connect(&app).await;
    let mut third = connect(&app).await;
    // Its request is read and dropped: closing with it unread would reset the connection and
    // could lose the answer.
    third.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    third.shutdown().await.unwrap();
    let answer = read_to_close(&mut third, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("retry-after: 1"), "{answer}");
    let body: serde_json::Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body, json!({ "message": "Service unavailable", "error_code": "too_many_connections" }));
    assert!(closed_for(&app, "over_limit") >= 1);
    drop(first);
    eventually("a connection served once one is freed", Duration::from_secs(10), || async {
        let mut stream = connect(&app).await;
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
        let answer = read_to_close(&mut stream, Duration::from_secs(10)).await;
        if answer.starts_with("HTTP/1.1 200") {
            Ok(())
        } else {
            Err(answer)
        }
    })
    .await;
}

/// A body trickled in past the body timeout fails its request with a clear 400, and the
/// route never sees it.
#[tokio::test]
async fn a_trickled_body_fails_its_request() {
    let app = spawn_app_with(|c| {
        c.http = HttpLimits { body_timeout: Duration::from_secs(1), ..HttpLimits::default() };
    })
    .await;
    let mut stream = connect(&app).await;
    let head = format!(
        "POST /v2/whatsapp/otp/send HTTP/1.1\r\nHost: x\r\nApp-ID: {}\r\nAPI-Key: {}\r\n\
         Content-Type: application/json\r\nContent-Length: 200\r\n\r\n",
        app.app_id, app.api_key
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let (mut reader, mut writer) = stream.split();
    let trickle = async {
        loop {
            if writer.write_all(b" ").await.is_err() {
                return;
            }
            // Pacing, not a wait: the slow client's trickle.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let answer = async {
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        tokio::time::timeout(Duration::from_secs(15), async {
            while !got.windows(4).any(|w| w == b"\r\n\r\n") || !got.ends_with(b"}") {
                match reader.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
        })
        .await
        .expect("no answer 15 s into a trickled body");
        String::from_utf8_lossy(&got).into_owned()
    };
    let answer = tokio::select! {
        () = trickle => panic!("the trickle ended first"),
        answer = answer => answer,
    };
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("http_body_timeout") && answer.contains("validation_error"), "{answer}");
    let query = waotp_store::SessionQuery { limit: 10, ..Default::default() };
    let stored = app.state.store.search_sessions(query).await.unwrap();
    assert!(stored.is_empty(), "{stored:?}");
}

/// A connection that never sends a byte owes its first head from the start: it is closed
/// after the header timeout, not held for the (longer) idle timeout.
#[tokio::test]
async fn a_silent_new_connection_is_closed_after_the_header_timeout() {
    let app = short_header_timeout().await;
    let mut silent = connect(&app).await;
    let answer = read_to_close(&mut silent, Duration::from_secs(15)).await;
    assert!(answer.is_empty(), "{answer}");
    assert_eq!(closed_for(&app, "header_timeout"), 1);
}

/// One address holding its cap of connections has the next one refused with a 503 of its own,
/// while a client at another address is served.
#[tokio::test]
async fn an_address_over_its_cap_is_refused_while_another_is_served() {
    let app = spawn_app_with(|c| {
        c.http = HttpLimits { max_connections_per_address: 2, ..HttpLimits::default() };
    })
    .await;
    // Two idle connections from 127.0.0.2 hold its cap (accepted in order, before the third).
    let _first = connect_from(&app, "127.0.0.2").await;
    let _second = connect_from(&app, "127.0.0.2").await;
    let mut third = connect_from(&app, "127.0.0.2").await;
    third.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    third.shutdown().await.unwrap();
    let answer = read_to_close(&mut third, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("retry-after: 1"), "{answer}");
    let body: serde_json::Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body, json!({ "message": "Service unavailable", "error_code": "too_many_connections_from_address" }));
    assert_eq!(closed_for(&app, "over_address_limit"), 1);
    assert_eq!(closed_for(&app, "over_limit"), 0);
    // Another address is served meanwhile.
    let mut other = connect_from(&app, "127.0.0.1").await;
    other.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let answer = read_to_close(&mut other, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// A complete request followed by the start of the next one (pipelined, in the same write):
/// once the first is answered the connection owes the rest of the second head, and is closed
/// after the header timeout, not held for the idle one. The same after a request with a body.
#[tokio::test]
async fn a_pipelined_partial_head_is_closed_after_the_header_timeout() {
    let app = short_header_timeout().await;
    let body = json!({ "msisdn": MSISDN }).to_string();
    let post = send_request(&app, &body);
    let firsts = [
        ("GET", "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".to_owned(), "HTTP/1.1 200"),
        ("POST", post, "HTTP/1.1 201"),
    ];
    for (n, (what, first, status)) in firsts.into_iter().enumerate() {
        let mut stream = connect(&app).await;
        stream.write_all(format!("{first}GET /healthz HTTP/1.1\r\nHo").as_bytes()).await.unwrap();
        let since = Instant::now();
        let answer = read_to_close(&mut stream, Duration::from_secs(15)).await;
        assert!(answer.starts_with(status), "after a {what}: {answer}");
        assert_eq!(answer.matches("HTTP/1.1 ").count(), 1, "after a {what}: {answer}");
        // Well before the idle timeout (an hour); the header timeout is a second.
        assert!(since.elapsed() < Duration::from_secs(15), "after a {what}: {:?}", since.elapsed());
        eventually("the close counted", Duration::from_secs(5), || async {
            match closed_for(&app, "header_timeout") {
                c if c == n as u64 + 1 => Ok(()),
                c => Err(c),
            }
        })
        .await;
    }
    assert_eq!(closed_for(&app, "idle_timeout"), 0);
}

/// A keep-alive connection with nothing pipelined (after a request with a body, too) is idle:
/// not closed at the header timeout, and serves its next request.
#[tokio::test]
async fn a_keep_alive_connection_is_not_closed_at_the_header_timeout() {
    let header_timeout = SHORT_HEADER_TIMEOUT;
    let app = short_header_timeout().await;
    let body = json!({ "msisdn": MSISDN }).to_string();
    let mut stream = connect(&app).await;
    let post = send_request(&app, &body);
    stream.write_all(post.as_bytes()).await.unwrap();
    let answer = read_answer(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let answer = read_answer(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // What is measured: three header timeouts of quiet, and the server neither closes nor writes.
    let mut buf = [0u8; 64];
    let quiet = tokio::time::timeout(3 * header_timeout, stream.read(&mut buf)).await;
    assert!(
        quiet.is_err(),
        "the idle connection was closed (or written to) within {:?}: {quiet:?}",
        3 * header_timeout
    );
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let answer = read_to_close(&mut stream, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(closed_for(&app, "header_timeout"), 0);
}
