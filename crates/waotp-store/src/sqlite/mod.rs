//! The embedded SQLite backend.
//!
//! One connection writes, on its own thread. Every write is a job; the thread takes every job
//! waiting in its queue (up to a batch limit), runs each inside its own savepoint of one
//! transaction, commits once (one fsync for the whole group), and only then answers the
//! callers. A failing job rolls back to its savepoint without touching its neighbours. A
//! failing commit (a full disk, a file that became read-only) rolls the whole group back and
//! answers every job with that error; the next group tries again. Reads run on a small pool
//! of read-only connections (WAL lets them proceed during writes). The rate-limit and
//! pumping-signal counters live in the writer thread's memory ([`counters`]), changed only by
//! its jobs and given back with a rolled-back job or group.

mod apps;
mod callbacks;
mod costs;
mod counters;
mod early_events;
mod error;
pub mod files;
mod guards;
mod health;
mod logins;
mod migrations;
mod replies;
mod reverse;
mod rows;
mod session_reads;
mod sessions;
mod store;
mod timeline;
mod user_ids;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;
use waotp_core::{Msisdn, Status, Template};

use self::counters::Counters;
use crate::types::ProviderEvent;
use crate::{
    AppRecord, AppSettings, AppStore, AttemptRecord, BlockEntry, CallbackJob, CallbackNext, CallbackRecord,
    CallbackStore, DashboardLogins, DashboardStore, DeliveryCheck, DeliveryOutcome, DeliveryStore, FailedCallback,
    FunnelRow, InboxMessage, NewSession, PendingDelivery, ProviderReport, RefusalCount, Result, SendGuards,
    SendOutcome, SessionQuery, SessionRecord, SessionStore, Store, StoreError, VerifyAttempt, VerifyOutcome,
    WhatsAppSender,
};

/// How the SQLite file is opened.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    pub path: PathBuf,
    /// `FULL` (default): a commit is on disk before anyone hears of it. `NORMAL` survives a
    /// process crash but not a power cut.
    pub synchronous_full: bool,
    /// Most jobs committed together.
    pub max_batch: usize,
    /// The longest a write waits for the writer (its queue, or a lock another process
    /// holds) before it is refused as [unavailable](StoreError::Unavailable).
    pub wait: Duration,
}

impl SqliteOptions {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SqliteOptions { path: path.into(), synchronous_full: true, max_batch: 1024, wait: crate::DEFAULT_DATABASE_WAIT }
    }

    /// Accepts `sqlite://PATH`, `sqlite:PATH` or a bare path.
    pub fn from_url(url: &str) -> Self {
        let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
        SqliteOptions::new(path)
    }
}

/// A write job: runs inside the group transaction, answers after the commit.
trait WriteJob: Send {
    /// Runs the job; an error means it failed and its savepoint (and its counts) must be
    /// rolled back.
    fn run(&mut self, conn: &Connection, counters: &mut Counters) -> std::result::Result<(), StoreError>;
    /// Answers the caller once the fate of the transaction is known.
    fn finish(self: Box<Self>, commit: std::result::Result<(), StoreError>);
}

struct Job<T, F> {
    work: Option<F>,
    /// A job still queued at this instant is not run: its caller has waited long enough.
    deadline: Instant,
    outcome: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
}

impl<T: Send, F: FnOnce(&Connection, &mut Counters) -> Result<T> + Send> WriteJob for Job<T, F> {
    fn run(&mut self, conn: &Connection, counters: &mut Counters) -> std::result::Result<(), StoreError> {
        let work = self.work.take().expect("a job runs once");
        let outcome = if Instant::now() > self.deadline {
            Err(StoreError::Unavailable("the database writer is busy beyond the wait".into()))
        } else {
            work(conn, counters)
        };
        let result = outcome.as_ref().map(|_| ()).map_err(Clone::clone);
        self.outcome = Some(outcome);
        result
    }

    fn finish(self: Box<Self>, commit: std::result::Result<(), StoreError>) {
        let answer = match (commit, self.outcome) {
            (Err(e), _) => Err(e),
            (Ok(()), Some(outcome)) => outcome,
            (Ok(()), None) => Err(StoreError::Closed),
        };
        let _ = self.reply.send(answer);
    }
}

/// Read-only connections handed out to blocking tasks.
struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    fn take(&self) -> Result<Connection> {
        if let Some(conn) = self.idle.lock().expect("reader pool").pop() {
            return Ok(conn);
        }
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch("PRAGMA cache_size=-8192;")?;
        Ok(conn)
    }

    fn give(&self, conn: Connection) {
        let mut idle = self.idle.lock().expect("reader pool");
        if idle.len() < 8 {
            idle.push(conn);
        }
    }
}

/// waotp's store on an embedded SQLite database.
#[derive(Clone)]
pub struct SqliteStore {
    jobs: mpsc::Sender<Box<dyn WriteJob>>,
    readers: Arc<Readers>,
    wait: Duration,
}

impl SqliteStore {
    /// Opens (creating folder and file if needed) and migrates the database, and starts the
    /// writer thread.
    pub fn open(options: SqliteOptions) -> Result<SqliteStore> {
        let db_name = options.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if let Some(dir) = options.path.parent() {
            files::prepare_folder(dir, &db_name).map_err(|e| StoreError::Open(format!("{}: {e}", dir.display())))?;
        }
        files::prepare_files(&options.path)
            .map_err(|e| StoreError::Open(format!("{}: {e}", options.path.display())))?;
        let mut conn = open_writer(&options.path, options.synchronous_full)?;
        migrations::apply(&mut conn)?;
        // Another process holding the write lock (the CLI) is waited for as long as any
        // request waits; past it, the group fails as busy (unavailable).
        conn.busy_timeout(options.wait)?;
        let (jobs, queue) = mpsc::channel(64 * 1024);
        let max_batch = options.max_batch.max(1);
        std::thread::Builder::new()
            .name("waotp-sqlite-writer".into())
            .spawn(move || write_loop(conn, queue, max_batch))
            .map_err(|e| StoreError::Open(e.to_string()))?;
        let checkpointer = Connection::open(&options.path)?;
        let closed = jobs.downgrade();
        std::thread::Builder::new()
            .name("waotp-sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpointer, closed))
            .map_err(|e| StoreError::Open(e.to_string()))?;
        Ok(SqliteStore {
            jobs,
            readers: Arc::new(Readers { path: options.path, idle: Mutex::new(Vec::new()) }),
            wait: options.wait,
        })
    }

    async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.write_counting(move |c, _| work(c)).await
    }

    /// A write that also reads or bumps the in-memory counters.
    async fn write_counting<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &mut Counters) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Job { work: Some(work), deadline: Instant::now() + self.wait, outcome: None, reply });
        self.jobs.send(job).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn read<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let conn = readers.take()?;
            let out = work(&conn);
            readers.give(conn);
            out
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }
}

fn open_writer(path: &Path, synchronous_full: bool) -> Result<Connection> {
    let conn = Connection::open(path).map_err(|e| StoreError::Open(format!("{}: {e}", path.display())))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Open(format!("cannot switch {} to WAL mode", path.display())));
    }
    conn.execute_batch(if synchronous_full {
        "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
    } else {
        "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
    })?;
    // A 64 MiB page cache keeps the indexes' upper levels in memory as tables grow; the WAL
    // is checkpointed in the background (see `checkpoint_loop`) so that the writer's own
    // automatic checkpoints find little left to do. Each job's savepoint keeps the pages it
    // changes in a statement journal: in memory, not spilled to a temporary file once a job
    // passes 64 KiB (a send does), which cost a file created, written and deleted per job.
    conn.execute_batch("PRAGMA cache_size=-65536; PRAGMA wal_autocheckpoint=4000; PRAGMA temp_store=MEMORY;")?;
    Ok(conn)
}

/// Copies committed WAL frames into the database file every few hundred milliseconds
/// (PASSIVE: never blocks the writer or readers), until the store is dropped.
fn checkpoint_loop(conn: Connection, store: mpsc::WeakSender<Box<dyn WriteJob>>) {
    while store.upgrade().is_some() {
        std::thread::sleep(std::time::Duration::from_millis(250));
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::debug!(error = %e, "background checkpoint");
        }
    }
}

fn write_loop(conn: Connection, mut queue: mpsc::Receiver<Box<dyn WriteJob>>, max_batch: usize) {
    let mut batch: Vec<Box<dyn WriteJob>> = Vec::with_capacity(max_batch);
    let mut counters = Counters::default();
    // Whether the last group commit failed as unavailable, until a commit that writes succeeds.
    let mut failing = false;
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let changes = conn.total_changes();
        // After a failed commit, a group that writes nothing (a verify of an unknown code:
        // its count is in memory) would commit trivially and be answered as if the database
        // were back; until a commit that writes succeeds, each group proves it can write.
        let probe = failing;
        let commit = run_batch(&conn, &mut counters, &mut batch, probe);
        match &commit {
            Err(e) => {
                // Logged here once per group; each request's answer logs its own refusal.
                tracing::warn!(error = %e, jobs = batch.len(), "group commit failed; nothing of it was written");
                failing |= e.is_unavailable();
            }
            Ok(()) if probe || conn.total_changes() != changes => failing = false,
            Ok(()) => {}
        }
        for job in batch.drain(..) {
            job.finish(commit.clone());
        }
    }
}

/// Runs a group in one transaction. Any error leaves no trace of the group: a job's own
/// failure is rolled back to its savepoint, unless SQLite already rolled the whole
/// transaction back (a full disk or an I/O error mid-statement): then the group fails with
/// that job's error. The counters follow: a job's bumps are given back with its savepoint, the
/// group's with the group. A `probe` group also rewrites the schema version, unchanged, so that
/// its commit writes.
fn run_batch(
    conn: &Connection,
    counters: &mut Counters,
    batch: &mut [Box<dyn WriteJob>],
    probe: bool,
) -> std::result::Result<(), StoreError> {
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    let result = (|| {
        if probe {
            let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            conn.pragma_update(None, "user_version", version)?;
        }
        for job in batch.iter_mut() {
            conn.prepare_cached("SAVEPOINT job")?.execute([])?;
            let mark = counters.mark();
            if let Err(e) = job.run(conn, counters) {
                counters.undo_to(mark);
                if conn.is_autocommit() {
                    return Err(e);
                }
                conn.prepare_cached("ROLLBACK TO job")?.execute([])?;
            }
            conn.prepare_cached("RELEASE job")?.execute([])?;
        }
        conn.prepare_cached("COMMIT")?.execute([])?;
        Ok(())
    })();
    if result.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    match result {
        Ok(()) => counters.committed(),
        Err(_) => counters.undo_to(0),
    }
    result
}

pub(crate) fn uuid_from(bytes: Vec<u8>) -> rusqlite::Result<Uuid> {
    Uuid::from_slice(&bytes)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Blob, Box::new(e)))
}
