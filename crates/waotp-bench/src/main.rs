#![forbid(unsafe_code)]
//! `waotp-bench callbacks`: sends N OTPs with a `callback_url` pointing at a receiver it runs
//! itself on 127.0.0.1, and reports how fast the server delivers the callbacks (each session
//! reports 0 Requested, 1 Sent, 2 Delivered through the local inbox channel).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::json;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Measure callback delivery throughput against a running server.
    Callbacks {
        /// The server, e.g. http://127.0.0.1:8080
        #[arg(long)]
        server: String,
        #[arg(long, env = "APP_ID")]
        app_id: String,
        #[arg(long, env = "API_KEY")]
        api_key: String,
        /// Sessions to create (each produces 3 callbacks).
        #[arg(long, default_value_t = 10_000)]
        sessions: u64,
        /// Concurrent sends.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Callbacks { server, app_id, api_key, sessions, concurrency } => {
            callbacks(server, app_id, api_key, sessions, concurrency).await
        }
    }
}

async fn callbacks(server: String, app_id: String, api_key: String, n: u64, concurrency: usize) -> anyhow::Result<()> {
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    let app = axum::Router::new().fallback(move || {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::Relaxed);
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let callback_url = format!("http://{}/cb", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let http = reqwest::Client::new();
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut senders = Vec::new();
    for _ in 0..concurrency {
        let (http, next, server, app_id, api_key, callback_url) =
            (http.clone(), next.clone(), server.clone(), app_id.clone(), api_key.clone(), callback_url.clone());
        senders.push(tokio::spawn(async move {
            let mut ok = 0u64;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return ok;
                }
                let body = json!({ "msisdn": format!("62817{:08}", i), "callback_url": callback_url });
                let res = http
                    .post(format!("{server}/v2/whatsapp/otp/send"))
                    .header("App-ID", &app_id)
                    .header("API-Key", &api_key)
                    .json(&body)
                    .send()
                    .await;
                if matches!(res, Ok(r) if r.status().as_u16() == 201) {
                    ok += 1;
                }
            }
        }));
    }
    let mut accepted = 0;
    for s in senders {
        accepted += s.await?;
    }
    let sent_in = started.elapsed();
    let expected = accepted * 3;
    let mut last_change = Instant::now();
    let mut last = 0;
    loop {
        let got = received.load(Ordering::Relaxed);
        if got >= expected {
            break;
        }
        if got != last {
            last = got;
            last_change = Instant::now();
        } else if last_change.elapsed() > Duration::from_secs(10) {
            anyhow::bail!("stalled at {got} of {expected} callbacks");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let total = started.elapsed();
    println!(
        "sessions={accepted} sent_in={:.2}s callbacks={expected} all_received_in={:.2}s callbacks_per_s={:.0}",
        sent_in.as_secs_f64(),
        total.as_secs_f64(),
        expected as f64 / total.as_secs_f64()
    );
    Ok(())
}
