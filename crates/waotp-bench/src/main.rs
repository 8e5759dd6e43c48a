#![forbid(unsafe_code)]
//! Load drivers for `scripts/bench` (saturation figures come from `wrk`; these cover what a
//! closed-loop tool cannot):
//! - `callbacks`: sends N OTPs with a `callback_url` pointing at a receiver it runs itself on
//!   127.0.0.1, and reports how fast the server delivers the callbacks (each session reports
//!   0 Requested, 1 Sent, 2 Delivered through the local inbox channel).
//! - `rate`: an open-loop load at a fixed request rate; latency is measured from each
//!   request's scheduled start, so a stall is not hidden by the generator waiting on it.
//! - `count`: sessions stored in a SQLite database (the correctness check of a run).
//! - `preload`: fills a fresh database with N finished sessions (the scale runs).
//! - `calibrate-sqlite`: a minimal group-commit insert server, the machine's own yardstick
//!   (see `calibrate.rs`).

mod calibrate;

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
    /// Send OTPs at a fixed rate and report latency percentiles.
    Rate {
        #[arg(long)]
        server: String,
        #[arg(long, env = "APP_ID")]
        app_id: String,
        #[arg(long, env = "API_KEY")]
        api_key: String,
        /// Requests per second.
        #[arg(long, default_value_t = 2000)]
        rate: u64,
        /// Seconds.
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// First digits of the msisdns sent (two runs on one server use different prefixes).
        #[arg(long, default_value = "62819")]
        prefix: String,
    },
    /// Count the rows of a table (waotp's sessions, or the calibration's rows) in a SQLite file.
    Count {
        #[arg(long)]
        db: String,
        #[arg(long, default_value = "sessions", value_parser = ["sessions", "calib"])]
        table: String,
    },
    /// Serve the SQLite calibration: one-row durable inserts, group-committed.
    CalibrateSqlite {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
        /// A SQLite database file (created if missing).
        #[arg(long)]
        db: String,
    },
    /// Insert N finished sessions of an app into a SQLite database file (server stopped).
    Preload {
        #[arg(long)]
        db: String,
        #[arg(long, env = "APP_ID")]
        app_id: String,
        #[arg(long)]
        rows: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Callbacks { server, app_id, api_key, sessions, concurrency } => {
            callbacks(server, app_id, api_key, sessions, concurrency).await
        }
        Command::Rate { server, app_id, api_key, rate, duration, prefix } => {
            fixed_rate(server, app_id, api_key, rate, duration, prefix).await
        }
        Command::CalibrateSqlite { listen, db } => calibrate::serve(&listen, &db).await,
        Command::Count { db, table } => {
            let conn = rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
            let n: i64 = conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?;
            println!("{n}");
            Ok(())
        }
        Command::Preload { db, app_id, rows } => preload(&db, &app_id, rows),
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

async fn fixed_rate(
    server: String,
    app_id: String,
    api_key: String,
    rate: u64,
    seconds: u64,
    prefix: String,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let total = rate * seconds;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Duration, u16)>();
    let started = Instant::now();
    let mut sent = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    while sent < total {
        tick.tick().await;
        let due = ((started.elapsed().as_secs_f64() * rate as f64) as u64).min(total);
        while sent < due {
            let scheduled = started + Duration::from_secs_f64(sent as f64 / rate as f64);
            let (http, tx, server, app_id, api_key) =
                (http.clone(), tx.clone(), server.clone(), app_id.clone(), api_key.clone());
            let msisdn = format!("{prefix}{:08}", (sent * 7919 + 7) % 100_000_000);
            tokio::spawn(async move {
                let res = http
                    .post(format!("{server}/v2/whatsapp/otp/send"))
                    .header("App-ID", app_id)
                    .header("API-Key", api_key)
                    .json(&json!({ "msisdn": msisdn, "challenge": "login" }))
                    .send()
                    .await;
                // The answer's status, 0 for no answer.
                let status = res.as_ref().map_or(0, |r| r.status().as_u16());
                if let Ok(r) = res {
                    let _ = r.bytes().await;
                }
                let _ = tx.send((scheduled.elapsed(), status));
            });
            sent += 1;
        }
    }
    drop(tx);
    let mut latencies = Vec::with_capacity(total as usize);
    let mut failed = 0;
    let mut failures = std::collections::BTreeMap::<u16, u64>::new();
    while let Some((latency, status)) = rx.recv().await {
        latencies.push(latency);
        if status != 201 {
            failed += 1;
            *failures.entry(status).or_default() += 1;
        }
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let pct =
        |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)].as_secs_f64() * 1000.0;
    println!(
        "rate={rate} requests={} failed={failed} achieved_per_s={:.0} p50_ms={:.2} p90_ms={:.2} p99_ms={:.2} max_ms={:.2}",
        latencies.len(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.90),
        pct(0.99),
        latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    );
    if failed > 0 {
        eprintln!("rate={rate}: answers other than 201 by status (0: no answer): {failures:?}");
    }
    Ok(())
}

fn preload(db: &str, app_id: &str, rows: u64) -> anyhow::Result<()> {
    use rand::Rng;
    let app = uuid::Uuid::parse_str(app_id)?;
    let mut conn = rusqlite::Connection::open(db)?;
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF;")?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    let mut rng = rand::rng();
    for chunk in 0..rows.div_ceil(50_000) {
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare(
                "INSERT INTO sessions (session_id, app_id, msisdn, challenge, sandbox, code_hash, state, status, \
                 try_count, template_name, lang_code, created_at, expires_at, updated_at) \
                 VALUES (?1, ?2, ?3, 'login', 0, ?4, 1, 4, 1, 'verification_code', 'en', ?5, ?6, ?5)",
            )?;
            for i in chunk * 50_000..((chunk + 1) * 50_000).min(rows) {
                let hash: [u8; 32] = rng.random();
                // 0859… numbers: a range the benchmark's own traffic never uses.
                let msisdn = format!("62859{:08}", (i * 7919 + 3) % 100_000_000);
                stmt.execute(rusqlite::params![
                    uuid::Uuid::new_v4().as_bytes(),
                    app.as_bytes(),
                    msisdn,
                    &hash[..],
                    now - 3_600_000,
                    now + 86_400_000
                ])?;
            }
        }
        tx.commit()?;
    }
    println!("preloaded {rows} sessions");
    Ok(())
}
