//! Connection poolers between waotp and PostgreSQL (PgBouncer, Supavisor, the services' own).
//!
//! waotp keeps state in its connections' server sessions: statements are prepared once per
//! connection and reused (`prepare_cached`: the hot path is planned once, not on every run),
//! and the counters' connections are set up with `SET` (see `PgStore::open`). A pooler in
//! session mode gives each client connection one server session for its whole life, so that
//! state holds. One in transaction (or statement) mode hands out a server session per
//! transaction: a statement prepared in one would be missing in the next ("prepared statement
//! does not exist", at random, under load) and the counters' settings would be lost. Rather
//! than fail like that later on, waotp checks at start-up and refuses.

use super::tls::MakeTls;
use crate::{Result, StoreError};

/// What waotp says when its connections are not its own sessions.
const REFUSAL: &str = "PostgreSQL is reached through a connection pooler in transaction or \
     statement mode (one connection's statements ran in different server sessions); waotp \
     needs a session of its own per connection (it prepares statements once per connection \
     and sets up its connections with SET). Use the pooler's session mode (PgBouncer: \
     pool_mode = session; Supabase: the session pooler on port 5432; Neon: the host name \
     without -pooler) or connect to PostgreSQL directly";

/// Rounds of the check; one finds a PgBouncer in transaction mode that nothing else uses (it
/// hands out the server connection released last), more help when others use it too.
const ROUNDS: usize = 3;

/// Refuses a pooler in transaction or statement mode: `a` (a connection of the store's pool)
/// asks which server session runs its statement, twice, while a second connection holds a
/// transaction open in between. Directly or through a session-mode pooler, `a` keeps its
/// session and the other one cannot hold it; a transaction-mode pooler hands `a`'s released
/// session to the other connection, or `a` a different one. `a` asks with a statement it
/// prepared, as the store does: a pooler that keeps a connection on one server session once
/// it has prepared a statement passes (RDS Proxy pins a session on some kinds of state; not
/// tried); one that moves it fails the statement ("does not exist") or answers from another
/// session.
pub(crate) async fn refuse_transaction_pooling(
    a: &tokio_postgres::Client,
    config: &tokio_postgres::Config,
    tls: &MakeTls,
) -> Result<()> {
    let (b, connection) = config.connect(tls.clone()).await?;
    let connection = tokio::spawn(connection);
    let shared = async {
        let which = a.prepare(WHICH_SESSION).await?;
        for _ in 0..ROUNDS {
            let first: String = a.query_one(&which, &[]).await?.get(0);
            b.batch_execute("BEGIN").await?;
            let other = session_value(&b, WHICH_SESSION).await?;
            let again = a.query_one(&which, &[]).await;
            b.batch_execute("COMMIT").await?;
            match again {
                Ok(row) if row.get::<_, String>(0) == first && other != first => {}
                Ok(_) => return Ok(true),
                Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::INVALID_SQL_STATEMENT_NAME) => {
                    return Ok(true)
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok::<_, StoreError>(false)
    }
    .await;
    drop(b);
    let _ = connection.await;
    match shared {
        Ok(false) => Ok(()),
        Ok(true) => Err(StoreError::Open(REFUSAL.to_owned())),
        // PgBouncer in statement mode refuses the BEGIN itself.
        Err(e) if e.to_string().contains("statement pooling") => Err(StoreError::Open(REFUSAL.to_owned())),
        Err(e) => Err(e),
    }
}

/// Which server session runs a statement: its process id and its server's start time (two
/// servers' processes may share an id).
const WHICH_SESSION: &str = "SELECT pg_backend_pid() || '@' || pg_postmaster_start_time()";

/// The one value `sql` answers, by a simple query.
async fn session_value(c: &tokio_postgres::Client, sql: &str) -> Result<String> {
    let rows = c.simple_query(sql).await?;
    rows.iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
            _ => None,
        })
        .ok_or_else(|| StoreError::Corrupt(format!("no value from {sql}")))
}

impl super::PgStore {
    /// `synchronous_commit`, `plan_cache_mode` and `enable_seqscan` as one of the counters'
    /// connections has them (see `PgStore::open`): for tests.
    #[doc(hidden)]
    pub async fn counters_settings(&self) -> Result<Vec<String>> {
        let conn = super::get(&self.counters, self.wait).await?;
        let mut settings = Vec::new();
        for name in ["synchronous_commit", "plan_cache_mode", "enable_seqscan"] {
            settings.push(session_value(&conn, &format!("SHOW {name}")).await?);
        }
        Ok(settings)
    }
}
