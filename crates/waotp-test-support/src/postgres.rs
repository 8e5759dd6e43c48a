//! Tests that run against both backends: with `WAOTP_TEST_POSTGRES` set to a PostgreSQL
//! server's URL (as `scripts/with-postgres` does), each test gets a schema of its own on that
//! server; without it, tests use SQLite files. PostgreSQL-only tests ask for the server with
//! [`required_postgres`].

use uuid::Uuid;
use waotp_store::postgres::{is_postgres_url, PgOptions};
use waotp_store::{Result, SessionQuery, StoreError};

pub mod cluster;
pub mod pgbouncer;

/// The variable that names the PostgreSQL server tests run against.
pub const TEST_POSTGRES_ENV: &str = "WAOTP_TEST_POSTGRES";

/// Set (by `scripts/with-postgres --pgbouncer`) when [`TEST_POSTGRES_ENV`] names a pooler in
/// front of the server: then it names the server itself.
pub const TEST_POSTGRES_DIRECT_ENV: &str = "WAOTP_TEST_POSTGRES_DIRECT";

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

/// The PostgreSQL server a PostgreSQL-only test runs against, without the pooler
/// [`TEST_POSTGRES_ENV`] may name (see [`TEST_POSTGRES_DIRECT_ENV`]); panics without one.
pub fn required_direct_postgres() -> String {
    std::env::var(TEST_POSTGRES_DIRECT_ENV).ok().filter(|u| !u.trim().is_empty()).unwrap_or_else(required_postgres)
}

/// One connection to the server at `url` (a `postgres://` URL as waotp takes it, TLS
/// parameters and all), outside any store: for tests that look at the database directly.
pub async fn connect(url: &str) -> Result<tokio_postgres::Client> {
    PgOptions::from_url(url)?.connect().await.map_err(|e| StoreError::Open(format!("test server: {e}")))
}

/// Creates an empty schema on the server at `base` and returns a URL whose connections use
/// it (through `search_path`): a database of its own for one test. Through a pooler (see
/// [`TEST_POSTGRES_DIRECT_ENV`]), which cannot pass `search_path` in the startup `options`, an
/// empty database instead ([`fresh_postgres_database`]).
pub async fn fresh_postgres_url(base: &str) -> Result<String> {
    if std::env::var_os(TEST_POSTGRES_DIRECT_ENV).is_some() && test_postgres().as_deref() == Some(base) {
        return fresh_postgres_database(base).await;
    }
    let schema = format!("t_{}", Uuid::new_v4().simple());
    connect(base).await?.batch_execute(&format!("CREATE SCHEMA {schema}")).await?;
    let sep = if base.contains('?') { '&' } else { '?' };
    Ok(format!("{base}{sep}options=-csearch_path%3D{schema}"))
}

/// Creates an empty database on the server at `base` and returns `base` with its name.
pub async fn fresh_postgres_database(base: &str) -> Result<String> {
    let name = format!("t_{}", Uuid::new_v4().simple());
    connect(base).await?.batch_execute(&format!("CREATE DATABASE {name}")).await?;
    let (address, query) = base.split_once('?').map_or((base, None), |(a, q)| (a, Some(q)));
    let (server, _) = address.rsplit_once('/').ok_or_else(|| StoreError::Open("no database in the URL".into()))?;
    Ok(match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    })
}

/// The schema a URL made by [`fresh_postgres_url`] uses (`public` in a database of its own),
/// on a PostgreSQL server.
pub fn schema_of(url: &str) -> Option<&str> {
    if !is_postgres_url(url) {
        return None;
    }
    Some(url.split("search_path%3D").nth(1).map_or("public", |rest| rest.split('&').next().unwrap_or(rest)))
}

/// PostgreSQL's plan (EXPLAIN's text, without costs) for the dashboard's session search
/// `query` on the database at `url`, planned as the store plans it: for tests that pin which
/// index a search uses.
pub async fn postgres_search_plan(url: &str, query: &SessionQuery) -> Result<String> {
    waotp_store::postgres::explain_search(&connect(url).await?, query).await
}

/// PostgreSQL's plans (EXPLAIN's text, without costs) of a cost report's reads of `sessions`
/// (the window's ids, then its verified sessions) on the database at `url`, planned with the
/// values the store runs them with: for tests that pin them to the primary key.
pub async fn postgres_cost_plans(url: &str, window: &waotp_store::CostWindow) -> Result<Vec<String>> {
    waotp_store::postgres::explain_verified(&connect(url).await?, window).await
}
