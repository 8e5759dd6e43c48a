//! The PostgreSQL backend: what several `waotp serve` nodes share.
//!
//! Every write is one transaction at READ COMMITTED. Whatever must not interleave is
//! serialized by a lock taken first: the (app, msisdn, challenge) key of a send or verify and
//! an idempotency key by transaction-level advisory locks, a session's status changes and
//! callbacks by its row, a quota by its app's row. A send's counters are the exception: they
//! are bumped and checked in one statement of their own before the session is written (given
//! back if the send is refused after all; see `guards`). The hot path's writes are SQL
//! functions (migration 0002): a send is two round trips. A verify is two statements (one when
//! its decision writes nothing): its count and its session's facts loaded, then the decision
//! stored under the key's advisory lock if the session is still as loaded (see
//! `sessions::verify`). A deadlock or serialization failure is retried.
//!
//! Work that one node must do at a time is owned: a session's delivery by the node that
//! stored it (or took it over), a callback by the node whose lease it carries. Each node
//! beats in `nodes`; the work of a node whose heartbeat is older than its `node_timeout` (by
//! the database's clock) is taken over by the others.

/// The blocklist lookup of a number, one row: whether a number entry (`number`) and whether a
/// prefix entry (`prefix`) covers it. Written once for the statements that embed it (the
/// send's counting and the pre-delivery check), with their own parameters: `$gate` (the lookup
/// runs at all), the app's scope, the every-app scope, the number's prefixes, the number.
macro_rules! blocklist_lookup {
    ($gate:literal, $app:literal, $all:literal, $prefixes:literal, $number:literal) => {
        concat!(
            "SELECT bool_or(NOT is_prefix) AS number, bool_or(is_prefix) AS prefix FROM blocklist WHERE ",
            $gate,
            " AND scope IN (",
            $app,
            ", ",
            $all,
            ") AND entry = ANY(",
            $prefixes,
            ") AND (is_prefix OR entry = ",
            $number,
            ")"
        )
    };
}

mod apps;
mod callbacks;
mod costs;
mod early_events;
mod error;
mod failover;
mod guards;
mod health;
mod inbox;
mod locks;
mod logins;
mod migrations;
mod pooler;
mod replies;
mod reverse;
mod rows;
mod session_reads;
mod sessions;
mod timeline;
mod tls;
mod user_ids;

pub use costs::explain_verified;
pub use session_reads::explain_search;
pub use tls::{ClientCert, Roots, SslMode, TlsOptions};

use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Hook, HookError, Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
use uuid::Uuid;
use waotp_core::{Msisdn, Status, Template};

use crate::types::ProviderEvent;
use crate::{
    AppRecord, AppSettings, AppStore, AttemptRecord, BlockEntry, CallbackJob, CallbackNext, CallbackRecord,
    CallbackStore, DashboardLogins, DashboardStore, DeliveryCheck, DeliveryOutcome, DeliveryStore, FailedCallback,
    FunnelRow, InboxMessage, NewSession, PendingDelivery, ProviderReport, Refusal, RefusalCount, Result, SendGuards,
    SendOutcome, SessionQuery, SessionRecord, SessionStore, Store, StoreError, VerifyAttempt, VerifyOutcome,
    WhatsAppSender,
};

/// A node whose last heartbeat is older than this (by the database's clock) is presumed
/// dead: its deliveries and callback leases go to the others. It beats five times as often.
pub const DEFAULT_NODE_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection whose sent data stays unacknowledged this long (or the wait, if longer) is
/// closed: a server behind a silent network fails requests instead of hanging them.
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle seconds before a connection's first keepalive probe, and the probes' spacing.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(5);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(2);
/// Attempts of a transaction that hits a deadlock or a serialization failure.
const TX_ATTEMPTS: u32 = 8;

/// How the database is reached.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// `postgres://user:password@host:port/database?…` (libpq-style parameters), without
    /// those waotp takes out of it: `pool_size` and the TLS settings.
    pub url: String,
    /// TLS: the URL's `sslmode`, `sslrootcert`, `sslcert` and `sslkey` (see `tls`).
    pub tls: TlsOptions,
    /// Connections this node keeps open at most.
    pub pool_size: usize,
    /// When a silent node is presumed dead (see [`DEFAULT_NODE_TIMEOUT`]).
    pub node_timeout: Duration,
    /// The longest a request waits for a connection (and a new connection for the server);
    /// beyond it the database is [unavailable](StoreError::Unavailable).
    pub wait: Duration,
}

impl PgOptions {
    /// Accepts `postgres://…` or `postgresql://…`; waotp's own `pool_size=N` parameter and
    /// libpq's TLS parameters (which the driver knows only in part) are taken out of the query
    /// string, the rest goes to the driver. Several hosts are written as libpq writes them,
    /// `postgres://u@h1:5432,h2:5432/db` or `postgres://u@/db?host=h1,h2&port=5432,5432`
    /// (the driver reads a `host` parameter as one host: it is handed over one host at a time).
    /// An error quotes no part of the URL but a bad value.
    pub fn from_url(url: &str) -> Result<PgOptions> {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut pool_size = 64;
        let mut tls = tls::TlsParams::default();
        let mut rest: Vec<std::borrow::Cow<str>> = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("pool_size", n)) => {
                    pool_size = n
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=1000).contains(n))
                        .ok_or_else(|| StoreError::Open(format!("pool_size must be 1 to 1000, not {n:?}")))?;
                }
                _ if tls.take(pair) => {}
                Some(("host", hosts)) => rest.extend(hosts.split(',').map(|h| format!("host={h}").into())),
                _ => rest.push(pair.into()),
            }
        }
        let url = if rest.is_empty() { base.to_owned() } else { format!("{base}?{}", rest.join("&")) };
        Ok(PgOptions {
            url,
            tls: tls.options()?,
            pool_size,
            node_timeout: DEFAULT_NODE_TIMEOUT,
            wait: crate::DEFAULT_DATABASE_WAIT,
        })
    }

    /// One connection of its own, outside any pool (for tools and tests), with the URL's TLS
    /// settings; it closes when the client is dropped.
    pub async fn connect(&self) -> Result<tokio_postgres::Client> {
        let (client, connection) = self
            .driver_config()?
            .connect(self.tls.connector()?)
            .await
            .map_err(|e| self.cannot_connect(error::describe(&e)))?;
        tokio::spawn(connection);
        Ok(client)
    }

    /// A first connection's failure, in words: the driver's, with what the TLS settings add.
    fn cannot_connect(&self, why: String) -> StoreError {
        StoreError::Open(format!("cannot connect to PostgreSQL: {}", self.tls.explain(why)))
    }

    /// The driver's configuration: the URL's parameters, and where the URL says nothing, the
    /// timeouts that make a request fail within the wait instead of hanging.
    pub fn driver_config(&self) -> Result<tokio_postgres::Config> {
        let mut config: tokio_postgres::Config =
            self.url.parse().map_err(|e| StoreError::Open(format!("invalid PostgreSQL URL: {e}")))?;
        config.ssl_mode(self.tls.mode.driver());
        // A server that is gone must fail a request within the wait, not hang it: connecting
        // gives up after the wait, and a connection whose packets go unacknowledged (a
        // silent network) is closed. The URL's own connect_timeout / tcp_user_timeout win.
        // The driver tries the hosts one after another, each within the connect timeout: with
        // several, each gets its share of the wait, so a dead host that drops packets (the old
        // primary's machine, after a failover) leaves time to reach the next one.
        if config.get_connect_timeout().is_none() {
            let hosts = config.get_hosts().len().max(config.get_hostaddrs().len()).max(1);
            config.connect_timeout(self.wait / hosts as u32);
        }
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(self.wait.max(TCP_USER_TIMEOUT));
        }
        // A server whose host froze after acknowledging a query sends nothing more, and the
        // user timeout above never fires (nothing is left unacknowledged): keepalive probes
        // after a few idle seconds close such a connection in about KEEPALIVE_IDLE +
        // 3 × KEEPALIVE_INTERVAL instead of the driver's default two hours. The URL's own
        // keepalives_idle / keepalives_interval / keepalives_retries win.
        if !self.url.contains("keepalives_idle") {
            config.keepalives_idle(KEEPALIVE_IDLE);
        }
        if config.get_keepalives_interval().is_none() {
            config.keepalives_interval(KEEPALIVE_INTERVAL);
        }
        if config.get_keepalives_retries().is_none() {
            config.keepalives_retries(3);
        }
        Ok(config)
    }
}

/// Whether a database URL selects this backend.
pub fn is_postgres_url(url: &str) -> bool {
    let url = url.trim();
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// waotp's store on PostgreSQL (or a compatible engine; see docs/src/operations/multi-node.md).
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// Connections that commit asynchronously, for counters only (see `guards`).
    counters: Pool,
    node_id: Uuid,
    /// [`PgOptions::node_timeout`] in milliseconds.
    node_ttl_ms: i64,
    /// [`PgOptions::wait`].
    wait: Duration,
    /// Dropped with the last clone of the store: the heartbeat stops.
    _alive: Arc<()>,
}

impl PgStore {
    /// Connects, applies migrations (one node at a time), registers this node and starts its
    /// heartbeat. Must run inside a Tokio runtime.
    pub async fn open(options: PgOptions) -> Result<PgStore> {
        let config = options.driver_config()?;
        // Every connection of the store, pooled or not, goes through this one connector.
        let tls = options.tls.connector()?;
        // Connections made before the heartbeat finds the database gone are not reused (see
        // `failover`).
        let fence = failover::Fence::new();
        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        );
        let pool = new_pool(manager, options.pool_size, options.wait, &fence, None)?;
        // The hot path's statements, planned once per connection: left to choose, PostgreSQL
        // planned the send's counting statement afresh on every run (its generic plan's
        // estimate looks worse than the custom plans', which are the same index probes), and
        // planning was a third of the database's CPU per send (perf, scripts/pg-cost). Only
        // this pool: the background workers' queries over fast-growing tables want the
        // custom plans they ask for (see `query_fresh`). Every statement here is a key probe: a
        // plan made once must not be a scan because the table was empty when it was planned
        // (the unlogged counters are, after a crash of PostgreSQL), hence no sequential scans.
        // Set by `SET` on each new connection rather than as startup options: a pooler in
        // session mode (PgBouncer) refuses the `options` startup parameter, or drops it.
        let counters = new_pool(
            Manager::from_config(
                config.clone(),
                tls.clone(),
                ManagerConfig { recycling_method: RecyclingMethod::Fast },
            ),
            (options.pool_size / 2).max(4),
            options.wait,
            &fence,
            Some(COUNTERS_SESSION),
        )?;
        {
            let mut conn = pool.get().await.map_err(|e| {
                options.cannot_connect(match &e {
                    deadpool_postgres::PoolError::Backend(e) => error::describe(e),
                    other => other.to_string(),
                })
            })?;
            // Before anything is written: through a pooler in transaction mode, statements
            // would fail at random later on (see `pooler`).
            pooler::refuse_transaction_pooling(&conn, &config, &tls).await?;
            migrations::apply(&mut conn).await?;
        }
        let node_ttl_ms = options.node_timeout.as_millis().clamp(100, 3_600_000) as i64;
        let store =
            PgStore { pool, counters, node_id: Uuid::new_v4(), node_ttl_ms, wait: options.wait, _alive: Arc::new(()) };
        store.beat().await?;
        let every = Duration::from_millis(node_ttl_ms as u64 / 5);
        tokio::spawn(heartbeat(config, tls, store.node_id, every, fence, Arc::downgrade(&store._alive)));
        tracing::info!(node_id = %store.node_id, "joined the PostgreSQL database as a node");
        Ok(store)
    }

    /// This process's id among the nodes.
    pub fn node_id(&self) -> Uuid {
        self.node_id
    }

    async fn beat(&self) -> Result<()> {
        let conn = self.conn().await?;
        beat(&conn, self.node_id).await
    }

    async fn conn(&self) -> Result<deadpool_postgres::Object> {
        get(&self.pool, self.wait).await
    }
}

/// The session settings of the counters' connections (see `PgStore::open`).
const COUNTERS_SESSION: &str =
    "SET synchronous_commit = off; SET plan_cache_mode = force_generic_plan; SET enable_seqscan = off";

/// A pool of at most `size` connections; `session` (`SET` statements) runs once on each new
/// connection, before its first use.
fn new_pool(
    manager: Manager,
    size: usize,
    wait: Duration,
    fence: &failover::Fence,
    session: Option<&'static str>,
) -> Result<Pool> {
    let mut builder = Pool::builder(manager)
        .pre_recycle(fence.hook())
        .max_size(size)
        .wait_timeout(Some(wait))
        .create_timeout(Some(wait))
        .recycle_timeout(Some(wait))
        .runtime(deadpool_postgres::Runtime::Tokio1);
    if let Some(sql) = session {
        builder = builder.post_create(Hook::async_fn(move |client, _| {
            Box::pin(async move { client.batch_execute(sql).await.map_err(HookError::Backend) })
        }));
    }
    builder.build().map_err(|e| StoreError::Open(e.to_string()))
}

/// A connection within `wait` (waiting for a free one and making a new one together), or
/// [`StoreError::Unavailable`]. A pooled connection the server closed (it restarted, say), or
/// one made before the heartbeat found the database unavailable (a failover: see `failover`),
/// is dropped on the way out of the pool and replaced by a new one.
async fn get(pool: &Pool, wait: Duration) -> Result<deadpool_postgres::Object> {
    match tokio::time::timeout(wait, pool.get()).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(deadpool_postgres::PoolError::Backend(e))) => Err(StoreError::from(e)),
        Ok(Err(other)) => Err(StoreError::Unavailable(format!("no database connection: {other}"))),
        Err(_) => Err(StoreError::Unavailable(format!("no connection within {}ms", wait.as_millis()))),
    }
}

/// How long counts of a send that was not stored are offered back to a database that is away.
const GIVE_BACK_FOR: Duration = Duration::from_secs(3600);

/// Gives a send's counts back in the background, once the database answers again.
fn give_back_later(pool: Pool, wait: Duration, counted: Vec<(String, i64)>) {
    tokio::spawn(async move {
        let until = std::time::Instant::now() + GIVE_BACK_FOR;
        let first = Duration::from_millis(250);
        tokio::time::sleep(first).await;
        let given = crate::retry_while_unavailable(
            first * 2,
            Duration::from_secs(5),
            || std::time::Instant::now() < until,
            || async { guards::give_back(&get(&pool, wait).await?, &counted).await },
        )
        .await;
        match given {
            Ok(()) => {}
            Err(e) if e.is_unavailable() => {
                tracing::warn!("gave up giving back an unstored send's counts: the database stayed away")
            }
            Err(e) => tracing::warn!(error = %e, "could not give back an unstored send's counts"),
        }
    });
}

async fn beat(c: &tokio_postgres::Client, node_id: Uuid) -> Result<()> {
    c.execute(
        "INSERT INTO nodes (node_id, started_at, heartbeat_at) VALUES ($1, waotp_now_ms(), waotp_now_ms()) \
         ON CONFLICT (node_id) DO UPDATE SET heartbeat_at = waotp_now_ms()",
        &[&node_id],
    )
    .await?;
    Ok(())
}

/// Beats until the store is dropped, on a connection of its own: a pool busy with traffic
/// (sends queued behind a quota's row lock, say) must not make a live node look dead. A beat
/// the database is unavailable for (gone, or no longer the primary) fences off the pools'
/// connections made until then (see `failover`).
async fn heartbeat(
    config: tokio_postgres::Config,
    tls: tls::MakeTls,
    node_id: Uuid,
    every: Duration,
    fence: failover::Fence,
    alive: Weak<()>,
) {
    let mut client: Option<tokio_postgres::Client> = None;
    let mut last_cleanup = std::time::Instant::now();
    loop {
        tokio::time::sleep(every).await;
        if alive.upgrade().is_none() {
            break;
        }
        let result = async {
            if client.as_ref().is_none_or(|c| c.is_closed()) {
                let (c, connection) = config.connect(tls.clone()).await?;
                tokio::spawn(connection);
                client = Some(c);
            }
            let c = client.as_ref().expect("connected above");
            beat(c, node_id).await?;
            if last_cleanup.elapsed() > Duration::from_secs(3600) {
                last_cleanup = std::time::Instant::now();
                // Forget nodes gone for a day.
                c.execute("DELETE FROM nodes WHERE heartbeat_at < waotp_now_ms() - 86400000", &[]).await?;
            }
            Ok::<_, StoreError>(())
        }
        .await;
        if let Err(e) = result {
            client = None;
            if e.is_unavailable() {
                fence.failed();
            }
            tracing::warn!(error = %e, "node heartbeat failed");
        }
    }
}

/// SQL that is true when `owner` (a column or parameter) is a node that beat within
/// `ttl_ms`.
pub(crate) fn live(owner: &str, ttl_ms: i64) -> String {
    format!("EXISTS (SELECT 1 FROM nodes n WHERE n.node_id = {owner} AND n.heartbeat_at > waotp_now_ms() - {ttl_ms})")
}

// ---- small helpers over cached statements -------------------------------------------------

pub(crate) async fn query<C: GenericClient>(c: &C, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
    let stmt = c.prepare_cached(sql).await?;
    Ok(c.query(&stmt, params).await?)
}

/// A statement planned afresh on every run, with the values it runs with: for the background
/// workers' queries over tables that grow fast (a cached generic plan made while a table was
/// small can turn an index probe into a scan per row — seen: a claim taking seconds).
pub(crate) async fn query_fresh<C: GenericClient>(
    c: &C,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>> {
    Ok(c.query(sql, params).await?)
}

/// [`exec`] planned afresh on every run (see [`query_fresh`]).
pub(crate) async fn fresh_exec<C: GenericClient>(c: &C, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
    Ok(c.execute(sql, params).await?)
}

pub(crate) async fn query_opt<C: GenericClient>(
    c: &C,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Option<Row>> {
    let stmt = c.prepare_cached(sql).await?;
    Ok(c.query_opt(&stmt, params).await?)
}

pub(crate) async fn query_one<C: GenericClient>(c: &C, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row> {
    let stmt = c.prepare_cached(sql).await?;
    Ok(c.query_one(&stmt, params).await?)
}

pub(crate) async fn exec<C: GenericClient>(c: &C, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
    let stmt = c.prepare_cached(sql).await?;
    Ok(c.execute(&stmt, params).await?)
}

/// A msisdn's prefixes, the number itself last: what a blocklist lookup matches entries against.
pub(crate) fn prefixes(msisdn: &Msisdn) -> Vec<&str> {
    let digits = msisdn.as_str();
    (1..=digits.len()).map(|end| &digits[..end]).collect()
}

/// A count or other small number stored as bigint, as the u32 the records use.
pub(crate) fn small(v: i64) -> Result<u32> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{v} is out of range")))
}

pub(crate) fn status_from(code: i64) -> Result<Status> {
    Status::from_code(code).ok_or_else(|| StoreError::Corrupt(format!("status {code}")))
}

/// Runs `$body` (an expression using the transaction `$t`) in a transaction, retried on a
/// deadlock or serialization failure. `$keep` says, from the body's value, whether to commit
/// (a refusal rolls back whatever the body counted).
macro_rules! transaction {
    ($store:expr, |$t:ident| $body:expr) => {
        transaction!($store, |$t| $body, |_v| true)
    };
    ($store:expr, |$t:ident| $body:expr, |$v:ident| $keep:expr) => {{
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let mut conn = $store.conn().await?;
            let $t = conn.transaction().await?;
            let outcome: Result<_> = async { $body }.await;
            let done: Result<_> = match outcome {
                Ok($v) if $keep => match $t.commit().await {
                    Ok(()) => Ok($v),
                    Err(e) => Err(StoreError::from(e)),
                },
                Ok(v) => {
                    $t.rollback().await?;
                    Ok(v)
                }
                Err(e) => {
                    let _ = $t.rollback().await;
                    Err(e)
                }
            };
            match done {
                Err(e) if matches!(e, StoreError::Conflict(_)) && attempt < TX_ATTEMPTS => {
                    tracing::debug!(error = %e, attempt, "retrying a transaction");
                    tokio::time::sleep(Duration::from_millis(u64::from(attempt) * 3)).await;
                }
                other => break other,
            }
        }
    }};
}

/// Runs a single-statement write again after a deadlock or serialization failure.
async fn retry<T, F, Fut>(mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match f().await {
            Err(e) if matches!(e, StoreError::Conflict(_)) && attempt < TX_ATTEMPTS => {
                tokio::time::sleep(Duration::from_millis(u64::from(attempt) * 3)).await;
            }
            other => return other,
        }
    }
}

// The store traits on PgStore (after `transaction!`, which they use).
mod store;
