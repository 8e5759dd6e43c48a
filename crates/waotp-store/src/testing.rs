//! Support for test suites that run against both backends: with `WAOTP_TEST_POSTGRES` set to
//! a PostgreSQL server's URL (as `scripts/with-postgres` does), each test gets a schema of its
//! own on that server; without it, tests use SQLite files.

use tokio_postgres::NoTls;
use uuid::Uuid;

use crate::{Result, StoreError};

/// The variable that names the PostgreSQL server tests run against.
pub const TEST_POSTGRES_ENV: &str = "WAOTP_TEST_POSTGRES";

/// The PostgreSQL server tests run against, if any.
pub fn test_postgres() -> Option<String> {
    std::env::var(TEST_POSTGRES_ENV).ok().filter(|u| !u.trim().is_empty())
}

/// Creates an empty schema on the server at `base` and returns a URL whose connections use
/// it (through `search_path`): a database of its own for one test.
pub async fn fresh_postgres_url(base: &str) -> Result<String> {
    let schema = format!("t_{}", Uuid::new_v4().simple());
    let (client, connection) =
        tokio_postgres::connect(base, NoTls).await.map_err(|e| StoreError::Open(format!("test server: {e}")))?;
    let task = tokio::spawn(connection);
    client.batch_execute(&format!("CREATE SCHEMA {schema}")).await?;
    drop(client);
    let _ = task.await;
    let sep = if base.contains('?') { '&' } else { '?' };
    Ok(format!("{base}{sep}options=-csearch_path%3D{schema}"))
}

/// The schema a URL made by [`fresh_postgres_url`] uses.
pub fn schema_of(url: &str) -> Option<&str> {
    url.split("search_path%3D").nth(1).map(|rest| rest.split('&').next().unwrap_or(rest))
}
