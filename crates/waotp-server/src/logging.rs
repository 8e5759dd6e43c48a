//! The log filter every waotp process uses.

use tracing_subscriber::EnvFilter;

/// Targets that are never logged below INFO, whatever the filter asks: the PostgreSQL driver
/// logs every statement's parameters (secrets, hashes, msisdns) at DEBUG.
const CAPPED: &[&str] = &["tokio_postgres=info"];

/// The filter for a `WAOTP_LOG` value (tracing's syntax, e.g. `info,waotp_server=debug`).
pub fn filter(spec: &str) -> Result<EnvFilter, String> {
    let mut filter = EnvFilter::try_new(spec).map_err(|e| e.to_string())?;
    for directive in CAPPED {
        filter = filter.add_directive(directive.parse().expect("a valid directive"));
    }
    Ok(filter)
}
