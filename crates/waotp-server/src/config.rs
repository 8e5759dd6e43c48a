//! Server configuration. Secrets never appear in `Debug` output or logs.

use std::fmt;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use waotp_core::CodeKey;
use waotp_store::postgres::{is_postgres_url, PgOptions, PgStore};
use waotp_store::sqlite::{SqliteOptions, SqliteStore};
use waotp_store::Store;

use crate::callbacks::CallbackConfig;

/// Default database: a SQLite file under the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://waotp-data/waotp.db";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// A secret string: usable, never printed.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `given` is this secret, compared in constant time (as API keys are).
    pub fn matches(&self, given: &str) -> bool {
        waotp_core::code::api_key_matches(&waotp_core::hash_api_key(&self.0), given)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    /// `sqlite://PATH` (or a bare path), or `postgres://…` (several nodes may share it).
    /// May carry a password: print it with [`redact_url`] only.
    pub database_url: String,
    /// The secret that keys code hashes. When neither it nor `server_secret_file` is set,
    /// a key file `server.key` is created beside the SQLite database on first start (with
    /// PostgreSQL one of them is required: every node must use the same secret).
    pub server_secret: Option<Secret>,
    pub server_secret_file: Option<PathBuf>,
    /// `synchronous=FULL` (true, default) or `NORMAL` for SQLite.
    pub sqlite_synchronous_full: bool,
    /// Status callbacks: retry schedule, timeout, address policy.
    pub callbacks: CallbackConfig,
    /// How often expired sessions are looked for (to report status 5).
    pub sweep_every: Duration,
    /// Take client IPs (for the per-IP limit) from `X-Forwarded-For`, set by a trusted proxy.
    pub trust_forwarded_for: bool,
    /// The WhatsApp Cloud API; `None`: messages go to the local inbox.
    pub whatsapp: Option<WhatsAppConfig>,
    /// Sessions (with their callbacks and attempts) and inbox messages older than this are
    /// deleted in the background.
    pub retention: Duration,
    /// Bearer token of the admin API (`/admin/…`); `None`: the admin API is off.
    pub admin_token: Option<Secret>,
    /// Messages held in memory for the channel; beyond, they wait in the database.
    pub delivery_queue: usize,
    /// PostgreSQL: when a silent node is presumed dead and its work taken over.
    pub node_timeout: Duration,
    /// How long a request waits for the database (a pooled connection, the SQLite writer)
    /// before it is answered 503 `store_unavailable`.
    pub database_wait: Duration,
}

/// Meta's Graph API base.
pub const DEFAULT_WHATSAPP_API_BASE: &str = "https://graph.facebook.com";
pub const DEFAULT_WHATSAPP_API_VERSION: &str = "v24.0";

/// The WhatsApp Business number waotp sends from, and Meta's webhook secrets.
#[derive(Clone, Debug)]
pub struct WhatsAppConfig {
    pub api_base: String,
    pub api_version: String,
    pub phone_number_id: String,
    pub access_token: Secret,
    /// Verifies `X-Hub-Signature-256` on status webhooks; without it webhooks are refused.
    pub app_secret: Option<Secret>,
    /// Answers Meta's `hub.verify_token` handshake.
    pub verify_token: Option<Secret>,
    /// Sends per second from the number (Meta: 80 by default, up to 1,000).
    pub messages_per_second: u32,
    /// Unique recipients per moving 24 h (250, 2,000, 10,000, 100,000); `None`: unlimited.
    pub messaging_limit: Option<usize>,
}

impl WhatsAppConfig {
    pub fn new(api_base: &str, phone_number_id: &str, access_token: &str) -> Self {
        WhatsAppConfig {
            api_base: api_base.to_owned(),
            api_version: DEFAULT_WHATSAPP_API_VERSION.to_owned(),
            phone_number_id: phone_number_id.to_owned(),
            access_token: Secret::new(access_token),
            app_secret: None,
            verify_token: None,
            messages_per_second: 80,
            messaging_limit: None,
        }
    }
}

impl Config {
    /// Defaults with the database at `database_url`.
    pub fn new(database_url: impl Into<String>) -> Self {
        Config {
            listen: DEFAULT_LISTEN.parse().expect("valid default"),
            database_url: database_url.into(),
            server_secret: None,
            server_secret_file: None,
            sqlite_synchronous_full: true,
            callbacks: CallbackConfig::default(),
            sweep_every: Duration::from_secs(1),
            trust_forwarded_for: false,
            whatsapp: None,
            retention: Duration::from_secs(30 * 24 * 3600),
            admin_token: None,
            delivery_queue: 50_000,
            node_timeout: waotp_store::postgres::DEFAULT_NODE_TIMEOUT,
            database_wait: waotp_store::DEFAULT_DATABASE_WAIT,
        }
    }

    fn sqlite_options(&self) -> anyhow::Result<SqliteOptions> {
        let url = self.database_url.trim();
        if url.is_empty() {
            bail!("WAOTP_DATABASE_URL must not be empty");
        }
        let mut options = SqliteOptions::from_url(url);
        options.synchronous_full = self.sqlite_synchronous_full;
        options.wait = self.database_wait;
        Ok(options)
    }

    /// Whether the configured database is PostgreSQL.
    pub fn uses_postgres(&self) -> bool {
        is_postgres_url(&self.database_url)
    }

    /// Opens (and migrates) the configured database.
    pub async fn open_store(&self) -> anyhow::Result<Arc<dyn Store>> {
        if self.uses_postgres() {
            let mut options = PgOptions::from_url(self.database_url.trim())
                .with_context(|| format!("WAOTP_DATABASE_URL {}", redact_url(&self.database_url)))?;
            options.node_timeout = self.node_timeout;
            options.wait = self.database_wait;
            let store = PgStore::open(options)
                .await
                .with_context(|| format!("opening database {}", redact_url(&self.database_url)))?;
            return Ok(Arc::new(store));
        }
        let options = self.sqlite_options()?;
        let path = options.path.clone();
        let store = SqliteStore::open(options).with_context(|| format!("opening database {}", path.display()))?;
        Ok(Arc::new(store))
    }

    /// Where the default key file lives: beside the SQLite database.
    pub fn default_key_file(&self) -> anyhow::Result<PathBuf> {
        let db = self.sqlite_options()?.path;
        Ok(db.parent().unwrap_or(Path::new(".")).join("server.key"))
    }

    /// The key for code hashes: from the secret, the secret file, or the default key file
    /// (created with mode 0600 on first start).
    pub fn code_key(&self) -> anyhow::Result<CodeKey> {
        if let Some(secret) = &self.server_secret {
            if secret.expose().len() < 16 {
                bail!("WAOTP_SERVER_SECRET must be at least 16 characters");
            }
            return Ok(CodeKey::from_secret(secret.expose().as_bytes()));
        }
        let file = match &self.server_secret_file {
            Some(f) => f.clone(),
            None if self.uses_postgres() => bail!(
                "with PostgreSQL, set WAOTP_SERVER_SECRET or WAOTP_SERVER_SECRET_FILE: every node sharing the \
                 database must key code hashes with the same secret"
            ),
            None => {
                let f = self.default_key_file()?;
                create_key_file(&f)?;
                f
            }
        };
        let secret =
            std::fs::read_to_string(&file).with_context(|| format!("reading server secret {}", file.display()))?;
        let secret = secret.trim();
        if secret.len() < 16 {
            bail!("server secret in {} must be at least 16 characters", file.display());
        }
        Ok(CodeKey::from_secret(secret.as_bytes()))
    }
}

/// A database URL fit for logs and printouts: its password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    // The userinfo ends at the last '@' before the query: a password may hold '@' or '/'.
    let before_query = rest.split('?').next().unwrap_or(rest);
    let Some(at) = before_query.rfind('@') else { return url.to_owned() };
    let (userinfo, host_and_rest) = (&rest[..at], &rest[at..]);
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***{host_and_rest}"),
        None => url.to_owned(),
    }
}

fn create_key_file(path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut f) => {
            writeln!(f, "{}", CodeKey::generate_secret())?;
            f.sync_all()?;
            tracing::info!(path = %path.display(), "created a new server secret; back it up with the database");
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(|| format!("creating server secret {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn database_passwords_never_print() {
        assert_eq!(
            redact_url("postgres://waotp:s3cr%40t@db.internal:5432/waotp?pool_size=8"),
            "postgres://waotp:***@db.internal:5432/waotp?pool_size=8"
        );
        assert_eq!(redact_url("postgresql://waotp@db/waotp"), "postgresql://waotp@db/waotp");
        assert_eq!(redact_url("sqlite://waotp-data/waotp.db"), "sqlite://waotp-data/waotp.db");
        // A password holding '@' or '/' (unencoded): still all of it.
        assert_eq!(redact_url("postgres://u:p@ss/w@host/db"), "postgres://u:***@host/db");
    }
}
