#![forbid(unsafe_code)]
//! What waotp's test suites share, in one crate that only tests depend on (a
//! `[dev-dependencies]` entry of each product crate; `publish = false`): nothing here ships in
//! the product.
//!
//! - [`eventually`]: the one way a test waits for a condition.
//! - [`postgres`]: with `WAOTP_TEST_POSTGRES` set to a PostgreSQL server's URL (as
//!   `scripts/with-postgres` does), a schema of its own on that server for each test; clusters
//!   and PgBouncers of a test's own ([`postgres::cluster`], [`postgres::pgbouncer`]).
//! - [`binary`]: the real `waotp` binary as a process: a command line run to its end, and a
//!   `waotp serve` read up to its banner and killed when dropped.
//! - `app` (feature `app`): the server in process on `127.0.0.1:0` with a database of its own
//!   (`spawn_app`), and `receiver`, a real local callback receiver.
//! - `browser` (feature `browser`): headless Chromium through chromedriver.

use std::fmt::Debug;
use std::future::Future;
use std::time::{Duration, Instant};

#[cfg(feature = "app")]
pub mod app;
pub mod binary;
#[cfg(feature = "browser")]
pub mod browser;
#[cfg(feature = "app")]
pub mod graph;
pub mod postgres;
#[cfg(feature = "app")]
pub mod receiver;

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
