//! Support for test suites that run against both backends: with `WAOTP_TEST_POSTGRES` set to
//! a PostgreSQL server's URL (as `scripts/with-postgres` does), each test gets a schema of its
//! own on that server; without it, tests use SQLite files. Also the one way tests wait for
//! something: [`eventually`].

use std::fmt::Debug;
use std::future::Future;
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::postgres::PgOptions;
use crate::{Result, StoreError};

pub mod cluster;

/// The variable that names the PostgreSQL server tests run against.
pub const TEST_POSTGRES_ENV: &str = "WAOTP_TEST_POSTGRES";

/// The PostgreSQL server tests run against, if any.
pub fn test_postgres() -> Option<String> {
    std::env::var(TEST_POSTGRES_ENV).ok().filter(|u| !u.trim().is_empty())
}

/// The PostgreSQL server a PostgreSQL-only test runs against; panics without one. Such tests
/// are `#[ignore]`d (`scripts/test` runs them with `--include-ignored` inside
/// `scripts/with-postgres`), so one run by name without a server fails instead of passing.
pub fn required_postgres() -> String {
    test_postgres().unwrap_or_else(|| {
        panic!("this test needs PostgreSQL: set {TEST_POSTGRES_ENV} (run it through scripts/with-postgres or scripts/test)")
    })
}

/// Polls `check` every 20 ms until it answers `Ok`, and returns that; after `within`, fails
/// with `what` and the last `Err` it saw (what the state was instead). The one way tests wait
/// for a condition: never a fixed sleep, never a loop of their own.
pub async fn eventually<T, E: Debug, F: Future<Output = std::result::Result<T, E>>>(
    what: &str,
    within: Duration,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        match check().await {
            Ok(done) => return done,
            Err(seen) => assert!(Instant::now() < deadline, "{what} within {within:?}; last seen: {seen:?}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One connection to the server at `url` (a `postgres://` URL as waotp takes it, TLS
/// parameters and all), outside any store: for tests that look at the database directly.
pub async fn connect(url: &str) -> Result<tokio_postgres::Client> {
    PgOptions::from_url(url)?.connect().await.map_err(|e| StoreError::Open(format!("test server: {e}")))
}

/// Creates an empty schema on the server at `base` and returns a URL whose connections use
/// it (through `search_path`): a database of its own for one test.
pub async fn fresh_postgres_url(base: &str) -> Result<String> {
    let schema = format!("t_{}", Uuid::new_v4().simple());
    connect(base).await?.batch_execute(&format!("CREATE SCHEMA {schema}")).await?;
    let sep = if base.contains('?') { '&' } else { '?' };
    Ok(format!("{base}{sep}options=-csearch_path%3D{schema}"))
}

/// The schema a URL made by [`fresh_postgres_url`] uses.
pub fn schema_of(url: &str) -> Option<&str> {
    url.split("search_path%3D").nth(1).map(|rest| rest.split('&').next().unwrap_or(rest))
}

/// PostgreSQL's plan (EXPLAIN's text, without costs) for the dashboard's session search
/// `query` on the database at `url`, planned as the store plans it: for tests that pin which
/// index a search uses.
pub async fn postgres_search_plan(url: &str, query: &crate::SessionQuery) -> Result<String> {
    crate::postgres::explain_search(&connect(url).await?, query).await
}
