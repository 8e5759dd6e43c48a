//! waotp through a connection pooler: Debian's PgBouncer, started by each test in front of
//! the PostgreSQL server the run names. In session mode a store opens and its counters'
//! connections have their session settings; in transaction or statement mode it refuses to
//! start, before writing anything, with words that name the problem and the fix. (The HTTP
//! suite runs through a session-mode PgBouncer too: `scripts/with-postgres --pgbouncer`.)

use waotp_store::postgres::{PgOptions, PgStore};
use waotp_store::Store;
use waotp_test_support::postgres::pgbouncer::PgBouncer;
use waotp_test_support::postgres::{connect, fresh_postgres_database, required_direct_postgres};

/// What the counters' connections must have, directly or through a session-mode pooler.
const COUNTERS: [&str; 3] = ["off", "force_generic_plan", "off"];

async fn open(url: &str) -> waotp_store::Result<PgStore> {
    PgStore::open(PgOptions::from_url(url).unwrap()).await
}

/// The database a `postgres://` URL names.
fn database_of(url: &str) -> &str {
    url.split('?').next().unwrap().rsplit('/').next().unwrap()
}

#[tokio::test]
#[ignore = "needs PostgreSQL: and Debian's pgbouncer (scripts/with-postgres --pgbouncer)"]
async fn session_mode_works_and_keeps_the_counters_settings() {
    let server = required_direct_postgres();
    let direct = open(&fresh_postgres_database(&server).await.unwrap()).await.unwrap();
    assert_eq!(direct.counters_settings().await.unwrap(), COUNTERS, "directly");

    let bouncer = PgBouncer::start(&server, "session");
    let db = fresh_postgres_database(&server).await.unwrap();
    let name = database_of(&db);
    let store = open(&bouncer.url(name)).await.unwrap_or_else(|e| panic!("{e}; pgbouncer: {}", bouncer.log()));
    store.ready().await.unwrap();
    assert_eq!(store.counters_settings().await.unwrap(), COUNTERS, "through PgBouncer in session mode");
}

#[tokio::test]
#[ignore = "needs PostgreSQL: and Debian's pgbouncer (scripts/with-postgres --pgbouncer)"]
async fn transaction_and_statement_modes_are_refused_at_start_up() {
    let server = required_direct_postgres();
    for mode in ["transaction", "statement"] {
        let bouncer = PgBouncer::start(&server, mode);
        let db = fresh_postgres_database(&server).await.unwrap();
        let name = database_of(&db);
        // Three times: the refusal does not depend on luck.
        for _ in 0..3 {
            let e = match open(&bouncer.url(name)).await {
                Ok(_) => panic!("a store opened through PgBouncer in {mode} mode"),
                Err(e) => e.to_string(),
            };
            assert!(e.contains("pooler in transaction or statement mode"), "{mode}: {e}");
            assert!(e.contains("session mode") && e.contains("prepares statements once per connection"), "{e}");
        }
        // Refused before anything was written: not even the schema's version table.
        let client = connect(&db).await.unwrap();
        let written = client.query_one("SELECT to_regclass('waotp_schema') IS NOT NULL", &[]).await.unwrap();
        assert!(!written.get::<_, bool>(0), "{mode}: migrations ran");
    }
}
