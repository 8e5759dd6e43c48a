//! Server configuration. Secrets never appear in `Debug` output or logs.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use waotp_core::CodeKey;
use waotp_store::postgres::{is_postgres_url, PgOptions, PgStore};
use waotp_store::sqlite::{SqliteOptions, SqliteStore};
use waotp_store::Store;

pub use crate::secret::Secret;
use crate::StartError;

type StartResult<T> = std::result::Result<T, StartError>;
use crate::callbacks::CallbackConfig;

/// Default database: a SQLite file under the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://waotp-data/waotp.db";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

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
    /// Every connection then comes from the proxy: the per-address connection cap is off.
    pub trust_forwarded_for: bool,
    /// The WhatsApp Cloud API; `None`: messages go to the local inbox.
    pub whatsapp: Option<WhatsAppConfig>,
    /// The business number reverse verification's links name (digits), when set; else it is
    /// read from the Graph API (`display_phone_number`), or a placeholder with the local inbox.
    pub whatsapp_display_number: Option<String>,
    /// Sessions (with their callbacks and attempts) and inbox messages older than this are
    /// deleted in the background.
    pub retention: Duration,
    /// Bearer token of the admin API (`/admin/…`) and the dashboard's login; `None`: both are
    /// off. The binary fills it on a first start with [`Config::provide_admin_token`].
    pub admin_token: Option<Secret>,
    /// The address browsers and clients reach this server at (`public_url`), when it is not
    /// the listening one: behind a proxy, or a container's published port. With it set, a
    /// SQLite server listening beyond loopback makes its own admin token (as on loopback) and
    /// the banner's one-time dashboard link names this address.
    pub public_url: Option<String>,
    /// Messages held in memory for the channel; beyond, they wait in the database.
    pub delivery_queue: usize,
    /// PostgreSQL: when a silent node is presumed dead and its work taken over.
    pub node_timeout: Duration,
    /// How long a request waits for the database (a pooled connection, the SQLite writer)
    /// before it is answered 503 `store_unavailable`.
    pub database_wait: Duration,
    /// Header-read, idle and body timeouts, and the caps on open connections (in all and per
    /// client address; the latter is off with `trust_forwarded_for`: see [`HttpLimits::applied`]).
    ///
    /// [`HttpLimits::applied`]: crate::connections::HttpLimits::applied
    pub http: crate::connections::HttpLimits,
    /// Where Prometheus metrics are served, on a listener of their own; `None`: off.
    pub metrics_listen: Option<SocketAddr>,
    /// Operator alerts on the sender's health (`alert_url`, `alert_secret`); `None`: off.
    pub alert: Option<crate::sender_health::alerts::AlertConfig>,
    /// The operator's price table, a CSV file (`whatsapp_price_table`; see
    /// [`crate::costs::prices`]): read at start, a malformed one refuses the start. `None`:
    /// cost reports count messages, without money.
    pub whatsapp_price_table: Option<PathBuf>,
}

/// The file beside the SQLite database that holds waotp's own admin token.
pub const ADMIN_TOKEN_FILE: &str = waotp_store::sqlite::files::ADMIN_TOKEN_FILE;

/// Where the admin token comes from, as settled at start by [`Config::provide_admin_token`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminTokenOrigin {
    /// Configured (`admin_token`, `WAOTP_ADMIN_TOKEN(_FILE)`): never printed.
    Configured,
    /// waotp's own, kept in this file (made on the first start): the banner prints a one-time
    /// login link, never the token.
    Generated(PathBuf),
    /// None: the dashboard and the admin API are off.
    Off(NoAdminToken),
}

/// Why waotp made no admin token of its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoAdminToken {
    /// Every node must hold the same token: an operator sets it.
    Postgres,
    /// The address is reachable from other machines: no secret is made, or printed to a shared
    /// terminal, by surprise. `existing`: an `admin.token` made by an earlier loopback start.
    BeyondLoopback { existing: Option<PathBuf> },
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
    /// Unique recipients per moving 24 h (250, 2,000, 10,000, 100,000): an override of the
    /// limit Meta announces. `None`: Meta's (see `messaging_limit_from_meta`).
    pub messaging_limit: Option<usize>,
    /// The WhatsApp Business Account the number belongs to (the doctor, template commands).
    pub waba_id: Option<String>,
    /// The Meta app's id (the doctor's token and subscription checks).
    pub app_id: Option<String>,
    /// Without an override, follow the messaging limit Meta's webhooks announce (unlimited until
    /// one does); false: unlimited (`whatsapp_messaging_limit = "unlimited"`).
    pub messaging_limit_from_meta: bool,
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
            waba_id: None,
            app_id: None,
            messaging_limit_from_meta: true,
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
            whatsapp_display_number: None,
            retention: Duration::from_secs(30 * 24 * 3600),
            admin_token: None,
            public_url: None,
            delivery_queue: 50_000,
            node_timeout: waotp_store::postgres::DEFAULT_NODE_TIMEOUT,
            database_wait: waotp_store::DEFAULT_DATABASE_WAIT,
            http: crate::connections::HttpLimits::default(),
            metrics_listen: None,
            alert: None,
            whatsapp_price_table: None,
        }
    }

    fn sqlite_options(&self) -> StartResult<SqliteOptions> {
        let url = self.database_url.trim();
        if url.is_empty() {
            return Err(StartError::Config("WAOTP_DATABASE_URL must not be empty".into()));
        }
        let mut options = SqliteOptions::from_url(url);
        options.synchronous_full = self.sqlite_synchronous_full;
        options.wait = self.database_wait;
        Ok(options)
    }

    /// The SQLite database's file, when the configured database is SQLite.
    pub fn sqlite_file(&self) -> Option<PathBuf> {
        (!self.uses_postgres()).then(|| self.sqlite_options().ok().map(|o| o.path)).flatten()
    }

    /// Whether the configured database is PostgreSQL.
    pub fn uses_postgres(&self) -> bool {
        is_postgres_url(&self.database_url)
    }

    /// Opens (and migrates) the configured database.
    pub async fn open_store(&self) -> StartResult<Arc<dyn Store>> {
        if self.uses_postgres() {
            let mut options = PgOptions::from_url(self.database_url.trim())
                .map_err(StartError::store(format!("WAOTP_DATABASE_URL {}", redact_url(&self.database_url))))?;
            options.node_timeout = self.node_timeout;
            options.wait = self.database_wait;
            let store = PgStore::open(options)
                .await
                .map_err(StartError::store(format!("opening database {}", redact_url(&self.database_url))))?;
            return Ok(Arc::new(store));
        }
        let options = self.sqlite_options()?;
        let path = options.path.clone();
        let store =
            SqliteStore::open(options).map_err(StartError::store(format!("opening database {}", path.display())))?;
        Ok(Arc::new(store))
    }

    /// The folder of the SQLite database, where waotp keeps its own key files.
    fn data_dir(&self) -> StartResult<PathBuf> {
        let db = self.sqlite_options()?.path;
        Ok(db.parent().unwrap_or(Path::new(".")).to_path_buf())
    }

    /// The SQLite database's file name (its folder is made private if it holds only waotp's
    /// files: see `waotp_store::sqlite::files`).
    fn db_file_name(&self) -> StartResult<String> {
        let db = self.sqlite_options()?.path;
        Ok(db.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default())
    }

    /// Where waotp keeps the admin token it makes itself: beside the SQLite database.
    pub fn admin_token_file(&self) -> StartResult<PathBuf> {
        Ok(self.data_dir()?.join(ADMIN_TOKEN_FILE))
    }

    /// Where the default key file lives: beside the SQLite database.
    pub fn default_key_file(&self) -> StartResult<PathBuf> {
        Ok(self.data_dir()?.join(waotp_store::sqlite::files::SERVER_KEY_FILE))
    }

    /// Settles where the admin token comes from, before the server starts. A configured one
    /// is kept. Without one, on SQLite and a loopback address, waotp uses its own: read from
    /// `admin.token` beside the database, created there (mode 0600) on the first start, so it
    /// stays the same across restarts. With PostgreSQL it is never generated (every node
    /// must hold the same token), and on an address beyond loopback neither, unless
    /// `public_url` says where the server is published (a container's port, say: the operator
    /// chose to reach it from elsewhere); otherwise the dashboard and the admin API stay off
    /// until an operator sets one.
    pub fn provide_admin_token(&mut self) -> StartResult<AdminTokenOrigin> {
        if self.admin_token.is_some() {
            return Ok(AdminTokenOrigin::Configured);
        }
        if self.uses_postgres() {
            return Ok(AdminTokenOrigin::Off(NoAdminToken::Postgres));
        }
        let file = self.data_dir()?.join(ADMIN_TOKEN_FILE);
        if !self.listen.ip().to_canonical().is_loopback() && self.public_url.is_none() {
            let existing = file.exists().then_some(file);
            return Ok(AdminTokenOrigin::Off(NoAdminToken::BeyondLoopback { existing }));
        }
        if create_secret_file(&file, &self.db_file_name()?)? {
            tracing::info!(path = %file.display(), "created an admin token for the dashboard and the admin API");
        }
        let token = read_secret_file(&file, "admin token", " (delete the file to have a new one made)")?;
        self.admin_token = Some(Secret::new(token));
        Ok(AdminTokenOrigin::Generated(file))
    }

    /// The key for code hashes: from the secret, the secret file, or the default key file
    /// (created with mode 0600 on first start).
    pub fn code_key(&self) -> StartResult<CodeKey> {
        if let Some(secret) = &self.server_secret {
            if secret.expose().len() < 16 {
                return Err(StartError::Config("WAOTP_SERVER_SECRET must be at least 16 characters".into()));
            }
            return Ok(CodeKey::from_secret(secret.expose().as_bytes()));
        }
        let file = match &self.server_secret_file {
            Some(f) => f.clone(),
            None if self.uses_postgres() => {
                return Err(StartError::Config(
                    "with PostgreSQL, set WAOTP_SERVER_SECRET or WAOTP_SERVER_SECRET_FILE: every node sharing the \
                     database must key code hashes with the same secret"
                        .into(),
                ))
            }
            None => {
                let f = self.default_key_file()?;
                if create_secret_file(&f, &self.db_file_name()?)? {
                    tracing::info!(path = %f.display(), "created a new server secret; back it up with the database");
                }
                f
            }
        };
        let secret = read_secret_file(&file, "server secret", "")?;
        Ok(CodeKey::from_secret(secret.as_bytes()))
    }
}

/// A database URL fit for logs and printouts: its password (in the userinfo, or a libpq
/// `password=` parameter) replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let url = redact_userinfo(url);
    match url.split_once('?') {
        Some((base, query)) => {
            let params: Vec<&str> =
                query.split('&').map(|p| if p.starts_with("password=") { "password=***" } else { p }).collect();
            format!("{base}?{}", params.join("&"))
        }
        None => url,
    }
}

fn redact_userinfo(url: &str) -> String {
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

/// The secret a file holds (trimmed): the server secret or the admin token; at least 16
/// characters, else an error naming the file (and `hint`).
fn read_secret_file(file: &Path, what: &str, hint: &str) -> StartResult<String> {
    let text = std::fs::read_to_string(file).map_err(StartError::io(format!("reading {what} {}", file.display())))?;
    let secret = text.trim();
    if secret.len() < 16 {
        return Err(StartError::Config(format!(
            "the {what} in {} must be at least 16 characters{hint}",
            file.display()
        )));
    }
    Ok(secret.to_owned())
}

/// Creates `path` holding a fresh random secret (mode 0600) unless it exists; true when it
/// made it. The secret is written and synced under a temporary name first, then linked into
/// place: a crash never leaves a partial file behind, and of two processes starting at once
/// one wins and both read the same secret.
fn create_secret_file(path: &Path, db_name: &str) -> StartResult<bool> {
    if path.exists() {
        return Ok(false);
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    waotp_store::sqlite::files::prepare_folder(dir, db_name)
        .map_err(StartError::io(format!("creating {}", dir.display())))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("secret");
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&temp).and_then(|mut f| {
        writeln!(f, "{}", CodeKey::generate_secret())?;
        f.sync_all()
    });
    let linked = written.and_then(|()| match std::fs::hard_link(&temp, path) {
        // A file system without hard links: a rename, which replaces a file made meanwhile.
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => std::fs::rename(&temp, path).map_err(|_| e),
        linked => linked,
    });
    let _ = std::fs::remove_file(&temp);
    match linked {
        Ok(()) => {
            // The new name is durable once its folder is synced too.
            #[cfg(unix)]
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(StartError::io(format!("creating {}", path.display()))(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite_config(dir: &Path, listen: &str) -> Config {
        let mut config = Config::new(format!("sqlite://{}/data/waotp.db", dir.display()));
        config.listen = listen.parse().unwrap();
        config
    }

    #[test]
    fn a_loopback_first_start_makes_an_admin_token_and_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("data").join(ADMIN_TOKEN_FILE);
        let mut config = sqlite_config(dir.path(), "127.0.0.1:0");
        assert_eq!(config.provide_admin_token().unwrap(), AdminTokenOrigin::Generated(file.clone()));
        let token = config.admin_token.clone().expect("a token");
        assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), token.expose());
        assert!(token.expose().len() >= 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let leftovers: Vec<_> = std::fs::read_dir(file.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
        // The next start reads the same token; so does one on IPv6 loopback.
        for listen in ["127.0.0.1:8080", "[::1]:0", "[::ffff:127.0.0.1]:0"] {
            let mut again = sqlite_config(dir.path(), listen);
            assert_eq!(again.provide_admin_token().unwrap(), AdminTokenOrigin::Generated(file.clone()), "{listen}");
            assert!(again.admin_token.unwrap().matches(token.expose()));
        }
    }

    #[test]
    fn no_admin_token_is_made_beyond_loopback_with_postgres_or_when_configured() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("data").join(ADMIN_TOKEN_FILE);
        for listen in ["0.0.0.0:0", "[::]:0", "192.0.2.7:8080"] {
            let mut config = sqlite_config(dir.path(), listen);
            let origin = config.provide_admin_token().unwrap();
            assert_eq!(origin, AdminTokenOrigin::Off(NoAdminToken::BeyondLoopback { existing: None }), "{listen}");
            assert!(config.admin_token.is_none() && !file.exists());
        }
        // A token an earlier loopback start made is named, not used.
        sqlite_config(dir.path(), "127.0.0.1:0").provide_admin_token().unwrap();
        let mut config = sqlite_config(dir.path(), "0.0.0.0:0");
        let origin = config.provide_admin_token().unwrap();
        assert_eq!(origin, AdminTokenOrigin::Off(NoAdminToken::BeyondLoopback { existing: Some(file) }));
        assert!(config.admin_token.is_none());

        let mut config = Config::new("postgres://waotp@127.0.0.1:1/waotp");
        assert_eq!(config.provide_admin_token().unwrap(), AdminTokenOrigin::Off(NoAdminToken::Postgres));
        assert!(config.admin_token.is_none());

        let elsewhere = tempfile::tempdir().unwrap();
        let mut config = sqlite_config(elsewhere.path(), "127.0.0.1:0");
        config.admin_token = Some(Secret::new("configured-token-0123456789"));
        assert_eq!(config.provide_admin_token().unwrap(), AdminTokenOrigin::Configured);
        assert!(!elsewhere.path().join("data").exists(), "nothing is written");
    }

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
        // libpq's password parameter, beside the TLS ones.
        assert_eq!(
            redact_url("postgres://u@db/w?sslmode=verify-full&password=s3cret&sslrootcert=/etc/ca.pem"),
            "postgres://u@db/w?sslmode=verify-full&password=***&sslrootcert=/etc/ca.pem"
        );
    }
}
