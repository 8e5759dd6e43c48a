//! `calibrate-sqlite`: the machine's own limit for a durable one-row insert behind HTTP, the
//! yardstick `scripts/bench` divides waotp's SQLite figures by. A minimal axum server answers any
//! request (so `scripts/wrk/send.lua` drives it unchanged) after storing its body under 16 random
//! bytes: one table, one index on the random key, WAL, `synchronous=FULL`, one writer thread
//! committing up to 512 waiting rows per transaction (SQLite's default autocheckpoint, in line).

use axum::body::Bytes;
use axum::http::StatusCode;
use tokio::sync::{mpsc, oneshot};

type Job = (Bytes, oneshot::Sender<bool>);

pub async fn serve(listen: &str, db: &str) -> anyhow::Result<()> {
    let conn = rusqlite::Connection::open(db)?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
         CREATE TABLE IF NOT EXISTS calib (id INTEGER PRIMARY KEY, k BLOB NOT NULL, body BLOB NOT NULL);
         CREATE INDEX IF NOT EXISTS calib_by_k ON calib (k);",
    )?;
    let (jobs, rx) = mpsc::unbounded_channel::<Job>();
    std::thread::spawn(move || writer(conn, rx));
    let app = axum::Router::new().fallback(move |body: Bytes| {
        let jobs = jobs.clone();
        async move {
            let (done, committed) = oneshot::channel();
            if jobs.send((body, done)).is_err() {
                return StatusCode::SERVICE_UNAVAILABLE;
            }
            match committed.await {
                Ok(true) => StatusCode::CREATED,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            }
        }
    });
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("waotp-bench calibrate-sqlite listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

/// Takes whatever is waiting (up to 512), inserts it in one transaction, answers each request.
fn writer(mut conn: rusqlite::Connection, mut rx: mpsc::UnboundedReceiver<Job>) {
    let mut batch = Vec::with_capacity(512);
    while let Some(job) = rx.blocking_recv() {
        batch.push(job);
        while batch.len() < 512 {
            let Ok(job) = rx.try_recv() else { break };
            batch.push(job);
        }
        let ok = insert(&mut conn, &batch).is_ok();
        for (_, done) in batch.drain(..) {
            let _ = done.send(ok);
        }
    }
}

fn insert(conn: &mut rusqlite::Connection, batch: &[Job]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached("INSERT INTO calib (k, body) VALUES (?1, ?2)")?;
        for (body, _) in batch {
            let key: [u8; 16] = rand::random();
            stmt.execute(rusqlite::params![&key[..], &body[..]])?;
        }
    }
    tx.commit()
}
