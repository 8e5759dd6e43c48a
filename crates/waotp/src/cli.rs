//! Commands and flags. Other tools and docs rely on these names: change them only additively.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use serde_json::json;
use uuid::Uuid;
use waotp_core::{CallbackMode, RuleMode, Status};
use waotp_server::config::{AdminTokenOrigin, NoAdminToken, Secret, DEFAULT_DATABASE_URL};
use waotp_server::{Clock, Config};
use waotp_store::{AppRecord, AppSettings, BlockEntry, Store};

use waotp_server::admin::{app_json, parse_block_entry, SettingsPatch, TemplateInput};

use crate::remote::Remote;
use crate::settings::Settings;

/// Self-hosted WhatsApp OTP verification, wire-compatible with Verihubs' WhatsApp OTP API.
#[derive(Parser, Debug)]
#[command(name = "waotp", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file (TOML; see config.example.toml). Default: ./waotp.toml if present.
    #[arg(long, global = true, env = "WAOTP_CONFIG")]
    config: Option<PathBuf>,
    /// Database to use: sqlite://PATH (created with its folder if missing). Default
    /// sqlite://waotp-data/waotp.db; also WAOTP_DATABASE_URL or `database_url` in the file.
    #[arg(long, global = true)]
    database_url: Option<String>,
    /// Manage a running server through its admin API instead of the database (app, template,
    /// blocklist and callbacks commands); the token comes from WAOTP_ADMIN_TOKEN(_FILE).
    #[arg(long, global = true)]
    server: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the HTTP server (send, verify, inbox) and its delivery worker.
    Serve(ServeArgs),
    /// Create, list, inspect and change apps (the App-ID / API-Key pairs clients use).
    #[command(subcommand)]
    App(AppCommand),
    /// Register the WhatsApp templates an app sends (name, language, body, code placeholder).
    #[command(subcommand)]
    Template(TemplateCommand),
    /// Inspect and replay status callbacks.
    #[command(subcommand)]
    Callbacks(CallbackCommand),
    /// Block numbers and prefixes, for one app or all (refused with 409).
    #[command(subcommand)]
    Blocklist(BlocklistCommand),
    /// Run a Graph API test double for local end-to-end trials (never talks to Meta).
    GraphDouble(DoubleArgs),
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print the OpenAPI 3.1 document of the HTTP API (as served at /openapi.json).
    Openapi,
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Validate the effective configuration (defaults, file, environment) and print it, with
    /// each value's source and secrets redacted.
    Check,
}

#[derive(Args, Debug)]
struct DoubleArgs {
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// The access token it accepts.
    #[arg(long, default_value = "double-token")]
    token: String,
    /// The phone number id it accepts.
    #[arg(long, default_value = "1234567890")]
    phone_number_id: String,
    /// Signs its status webhooks (set waotp's WAOTP_WHATSAPP_APP_SECRET to the same).
    #[arg(long, default_value = "double-app-secret")]
    app_secret: String,
    /// Where to send status webhooks, e.g. http://127.0.0.1:8080/webhooks/whatsapp
    #[arg(long)]
    webhook_url: Option<String>,
    /// Messages per second before it answers 130429.
    #[arg(long, default_value_t = 80)]
    rate: u32,
}

#[derive(Subcommand, Debug)]
pub(crate) enum BlocklistCommand {
    /// Block a number (6281234567890) or a prefix ending in `*` (62812*, or 7* for a country).
    Add {
        /// Only for this app; default every app.
        #[arg(long)]
        app: Option<Uuid>,
        number_or_prefix: String,
    },
    /// Unblock a number or prefix (as it was added).
    Remove {
        #[arg(long)]
        app: Option<Uuid>,
        number_or_prefix: String,
    },
    /// List blocked numbers and prefixes.
    List {
        #[arg(long)]
        json: bool,
    },
}

/// Flags of `serve`. Each one overrides the environment variable, the config file and the
/// default of the same name (see config.example.toml, which documents them all).
#[derive(Args, Debug, Default)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the banner prints the real one).
    #[arg(long)]
    listen: Option<String>,
    /// Serve Prometheus metrics at /metrics on this address (off unless set).
    #[arg(long)]
    metrics_listen: Option<String>,
    /// Log lines as `pretty` text or `json` (one object per line, with the request id).
    #[arg(long)]
    log_format: Option<String>,
    /// Secret that keys code hashes (at least 16 characters); prefer WAOTP_SERVER_SECRET_FILE.
    #[arg(long)]
    server_secret: Option<String>,
    /// SQLite durability: `full` or `normal`.
    #[arg(long)]
    sqlite_synchronous: Option<String>,
    /// Delays before each callback attempt, comma-separated.
    #[arg(long)]
    callback_schedule: Option<String>,
    /// Time limit of one callback attempt.
    #[arg(long)]
    callback_timeout: Option<String>,
    /// Refuse callbacks to loopback and private addresses too (true/false).
    #[arg(long)]
    callback_deny_private: Option<String>,
    /// Take client IPs from the last X-Forwarded-For entry (true/false).
    #[arg(long)]
    trust_forwarded_for: Option<String>,
    /// Sessions and inbox messages older than this are deleted (e.g. 30d).
    #[arg(long)]
    retention: Option<String>,
    /// Graph API base URL.
    #[arg(long)]
    whatsapp_api_base: Option<String>,
    /// WhatsApp Business phone number id to send from.
    #[arg(long)]
    whatsapp_phone_number_id: Option<String>,
    /// Sends per second from the number (1-1000).
    #[arg(long)]
    whatsapp_rate: Option<String>,
    /// Unique recipients per moving 24 h: 250, 2000, 10000, 100000 or unlimited.
    #[arg(long)]
    whatsapp_messaging_limit: Option<String>,
}

impl ServeArgs {
    fn flags(&self) -> Vec<(&'static str, String)> {
        let all = [
            ("listen", &self.listen),
            ("metrics_listen", &self.metrics_listen),
            ("log_format", &self.log_format),
            ("server_secret", &self.server_secret),
            ("sqlite_synchronous", &self.sqlite_synchronous),
            ("callback_schedule", &self.callback_schedule),
            ("callback_timeout", &self.callback_timeout),
            ("callback_deny_private", &self.callback_deny_private),
            ("trust_forwarded_for", &self.trust_forwarded_for),
            ("retention", &self.retention),
            ("whatsapp_api_base", &self.whatsapp_api_base),
            ("whatsapp_phone_number_id", &self.whatsapp_phone_number_id),
            ("whatsapp_rate", &self.whatsapp_rate),
            ("whatsapp_messaging_limit", &self.whatsapp_messaging_limit),
        ];
        all.into_iter().filter_map(|(k, v)| v.clone().map(|v| (k, v))).collect()
    }
}

/// The server's configuration from every layer, validated; errors name the key.
fn server_config(s: &Settings) -> anyhow::Result<Config> {
    let mut config = Config::new(s.raw("database_url").unwrap_or(DEFAULT_DATABASE_URL));
    if let Some(listen) = s.get::<SocketAddr>("listen")? {
        config.listen = listen;
    }
    config.server_secret = s.raw("server_secret").map(Secret::new);
    if let Some(mode) = s.one_of("sqlite_synchronous", &["full", "normal"])? {
        config.sqlite_synchronous_full = mode == "full";
    }
    if let Some(schedule) = s.parse("callback_schedule", waotp_server::callbacks::parse_schedule)? {
        config.callbacks.schedule = schedule;
    }
    if let Some(timeout) = s.duration("callback_timeout")? {
        config.callbacks.timeout = timeout;
    }
    if let Some(deny) = s.get::<bool>("callback_deny_private")? {
        config.callbacks.deny_private = deny;
    }
    if let Some(trust) = s.get::<bool>("trust_forwarded_for")? {
        config.trust_forwarded_for = trust;
    }
    if let Some(retention) = s.duration("retention")? {
        config.retention = retention;
    }
    if let Some(timeout) = s.duration("node_timeout")? {
        if !(std::time::Duration::from_millis(500)..=std::time::Duration::from_secs(3600)).contains(&timeout) {
            bail!("invalid node_timeout: between 500ms and 1h (WAOTP_NODE_TIMEOUT)");
        }
        config.node_timeout = timeout;
    }
    if let Some(wait) = s.duration("database_wait")? {
        if !(std::time::Duration::from_millis(100)..=std::time::Duration::from_secs(60)).contains(&wait) {
            bail!("invalid database_wait: between 100ms and 60s (WAOTP_DATABASE_WAIT)");
        }
        config.database_wait = wait;
    }
    if let Some(t) = s.duration("http_header_timeout")? {
        if !(std::time::Duration::from_millis(100)..=std::time::Duration::from_secs(300)).contains(&t) {
            bail!("invalid http_header_timeout: between 100ms and 5m (WAOTP_HTTP_HEADER_TIMEOUT)");
        }
        config.http.header_timeout = t;
    }
    if let Some(t) = s.duration("http_idle_timeout")? {
        if !(std::time::Duration::from_millis(100)..=std::time::Duration::from_secs(3600)).contains(&t) {
            bail!("invalid http_idle_timeout: between 100ms and 1h (WAOTP_HTTP_IDLE_TIMEOUT)");
        }
        config.http.idle_timeout = t;
    }
    if let Some(t) = s.duration("http_body_timeout")? {
        if !(std::time::Duration::from_millis(100)..=std::time::Duration::from_secs(3600)).contains(&t) {
            bail!("invalid http_body_timeout: between 100ms and 1h (WAOTP_HTTP_BODY_TIMEOUT)");
        }
        config.http.body_timeout = t;
    }
    if let Some(n) = s.parse("http_max_connections", |v| {
        v.parse::<usize>()
            .ok()
            .filter(|n| (1..=1_000_000).contains(n))
            .ok_or_else(|| "must be a whole number from 1 to 1000000".to_owned())
    })? {
        config.http.max_connections = n;
    }
    if let Some(n) = s.parse("delivery_queue", |v| {
        v.parse::<usize>().ok().filter(|n| *n >= 1).ok_or_else(|| "must be a whole number of at least 1".to_owned())
    })? {
        config.delivery_queue = n;
    }
    s.one_of("log_format", &["pretty", "json"])?;
    s.get::<SocketAddr>("metrics_listen")?;
    config.whatsapp = whatsapp_config(s)?;
    config.admin_token = s.raw("admin_token").map(Secret::new);
    if config.admin_token.as_ref().is_some_and(|t| t.expose().len() < 16) {
        bail!("invalid admin_token: at least 16 characters (WAOTP_ADMIN_TOKEN)");
    }
    if let Some(secret) = &config.server_secret {
        if secret.expose().len() < 16 {
            bail!("invalid server_secret: at least 16 characters (WAOTP_SERVER_SECRET)");
        }
    }
    Ok(config)
}

fn whatsapp_config(s: &Settings) -> anyhow::Result<Option<waotp_server::config::WhatsAppConfig>> {
    // Every key is checked, also when WhatsApp is not in use.
    let base = s
        .parse("whatsapp_api_base", |v| url::Url::parse(v).map(|_| v.to_owned()).map_err(|e| e.to_string()))?
        .unwrap_or_else(|| waotp_server::config::DEFAULT_WHATSAPP_API_BASE.to_owned());
    let rate = s.parse("whatsapp_rate", |v| {
        v.parse::<u32>().ok().filter(|r| (1..=1000).contains(r)).ok_or_else(|| "must be 1 to 1000".to_owned())
    })?;
    let limit = s.one_of("whatsapp_messaging_limit", &["250", "2000", "10000", "100000", "unlimited"])?;
    let (pnid, token) = (s.raw("whatsapp_phone_number_id"), s.raw("whatsapp_access_token"));
    let (Some(pnid), Some(token)) = (pnid, token) else {
        if pnid.is_some() != token.is_some() {
            bail!("set both whatsapp_phone_number_id and whatsapp_access_token (WAOTP_WHATSAPP_…), or neither");
        }
        return Ok(None);
    };
    let mut w = waotp_server::config::WhatsAppConfig::new(&base, pnid, token);
    if let Some(version) = s.raw("whatsapp_api_version") {
        w.api_version = version.to_owned();
    }
    w.app_secret = s.raw("whatsapp_app_secret").map(Secret::new);
    w.verify_token = s.raw("whatsapp_verify_token").map(Secret::new);
    if let Some(rate) = rate {
        w.messages_per_second = rate;
    }
    w.messaging_limit = limit.and_then(|l| l.parse().ok());
    Ok(Some(w))
}

#[derive(Subcommand, Debug)]
pub(crate) enum AppCommand {
    /// Create an app and print its App-ID and API-Key (the key is shown only this once).
    Create {
        /// A name for people (e.g. "shop-backend").
        #[arg(long)]
        name: String,
        /// Production sends allowed (each accepted send uses one); default unlimited.
        #[arg(long, value_parser = parse_quota)]
        quota: Option<Quota>,
        #[command(flatten)]
        settings: SettingsArgs,
        /// Print exactly one JSON object with `app_id` and `api_key`.
        #[arg(long)]
        json: bool,
    },
    /// List apps (never their keys).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one app's settings and templates.
    Show {
        app_id: Uuid,
        #[arg(long)]
        json: bool,
    },
    /// Change an app's settings, limits and quota; what is not given stays as it is.
    Update {
        app_id: Uuid,
        /// Set the quota: a number of production sends, or `unlimited`.
        #[arg(long, value_parser = parse_quota)]
        quota: Option<Quota>,
        /// Top the quota up by N (an unlimited app becomes limited at N).
        #[arg(long, allow_negative_numbers = true)]
        quota_add: Option<i64>,
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// Replace an app's API key; the old key stops working within 2 seconds.
    RotateKey {
        app_id: Uuid,
        #[arg(long)]
        json: bool,
    },
    /// Send this app's messages from its own WhatsApp number (or `--clear` to use the
    /// server's). The token is read from a file or the environment, never from the command line.
    SetSender {
        app_id: Uuid,
        #[arg(long, required_unless_present = "clear")]
        phone_number_id: Option<String>,
        /// File holding the access token.
        #[arg(long, env = "WAOTP_APP_ACCESS_TOKEN_FILE", required_unless_present = "clear")]
        access_token_file: Option<PathBuf>,
        #[arg(long, conflicts_with_all = ["phone_number_id", "access_token_file"])]
        clear: bool,
    },
    /// Replace an app's callback signing secret (whsec_…); callbacks are signed with the new
    /// one within 2 seconds.
    RotateCallbackSecret {
        app_id: Uuid,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum CallbackCommand {
    /// Show a session's callbacks and every delivery attempt.
    List {
        #[arg(long)]
        app: Uuid,
        #[arg(long)]
        session: Uuid,
        #[arg(long)]
        json: bool,
    },
    /// Queue a session's callback for one status again (a running server sends it at once).
    Replay {
        #[arg(long)]
        app: Uuid,
        #[arg(long)]
        session: Uuid,
        /// The status number, 0-10.
        #[arg(long)]
        status: i64,
    },
}

#[derive(Args, Debug, Default)]
pub(crate) struct SettingsArgs {
    /// Length of generated codes when a send has no `otp_length` (4-10; default 6).
    #[arg(long)]
    code_length: Option<u32>,
    /// Validity in seconds when a send has no `time_limit` (1-86400; default 300).
    #[arg(long)]
    time_limit: Option<u32>,
    /// Template used when a send has no `template_name` (default verification_code).
    #[arg(long)]
    template: Option<String>,
    /// Language used when a send has no `lang_code` (default en).
    #[arg(long)]
    lang: Option<String>,
    /// Whether the send response carries the code, as Verihubs does (default true).
    #[arg(long)]
    return_code: Option<bool>,
    /// How callbacks are sent: `get` (Verihubs: session_id and status in the query) or `post`
    /// (a JSON body). Default get.
    #[arg(long, value_parser = ["get", "post"])]
    callback_mode: Option<String>,
    /// Whether callbacks carry Standard Webhooks signature headers (default true).
    #[arg(long)]
    callback_signing: Option<bool>,
    /// Production sends per second for the whole app, or `none` (default none).
    #[arg(long, value_parser = parse_optional_limit)]
    rps_limit: Option<OptionalLimit>,
    /// Sends to one msisdn per window (default 5).
    #[arg(long)]
    msisdn_send_limit: Option<u32>,
    /// That window in seconds (default 600).
    #[arg(long)]
    msisdn_send_window: Option<u32>,
    /// Verifies of one msisdn per window; must stay above 5, the wrong tries a code allows
    /// (default 10).
    #[arg(long)]
    msisdn_verify_limit: Option<u32>,
    /// That window in seconds (default 600).
    #[arg(long)]
    msisdn_verify_window: Option<u32>,
    /// Sends per minute from one client IP, or `none` (default none).
    #[arg(long, value_parser = parse_optional_limit)]
    ip_send_limit: Option<OptionalLimit>,
    /// Calling codes a number must have, comma-separated (e.g. 62,65), or `all` (default all).
    #[arg(long)]
    allowed_countries: Option<String>,
    /// Sequential-number pumping rule: off, monitor (log and count) or enforce (refuse).
    #[arg(long, value_parser = ["off", "monitor", "enforce"])]
    sequential_mode: Option<String>,
    /// Low-conversion range rule: off, monitor or enforce.
    #[arg(long, value_parser = ["off", "monitor", "enforce"])]
    conversion_mode: Option<String>,
}

/// A quota value: a count or unlimited.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Quota(Option<i64>);

fn parse_quota(s: &str) -> Result<Quota, String> {
    if s.eq_ignore_ascii_case("unlimited") {
        return Ok(Quota(None));
    }
    s.parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .map(|n| Quota(Some(n)))
        .ok_or_else(|| "a quota is a number of sends (0 or more) or `unlimited`".into())
}

/// A limit value: a number, or none.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OptionalLimit(Option<u32>);

fn parse_optional_limit(s: &str) -> Result<OptionalLimit, String> {
    if s.eq_ignore_ascii_case("none") {
        return Ok(OptionalLimit(None));
    }
    s.parse::<u32>()
        .ok()
        .filter(|n| *n > 0)
        .map(|n| OptionalLimit(Some(n)))
        .ok_or_else(|| "a limit is a number above 0, or `none`".into())
}

impl SettingsArgs {
    /// The settings given on the command line, as a patch (absent: unchanged).
    pub(crate) fn patch(&self) -> SettingsPatch {
        SettingsPatch {
            code_length: self.code_length,
            time_limit: self.time_limit,
            template_name: self.template.clone(),
            lang_code: self.lang.clone(),
            return_code: self.return_code,
            callback_mode: self.callback_mode.as_deref().and_then(CallbackMode::parse),
            callback_signing: self.callback_signing,
            rps_limit: self.rps_limit.map(|OptionalLimit(v)| v),
            msisdn_send_limit: self.msisdn_send_limit,
            msisdn_send_window: self.msisdn_send_window,
            msisdn_verify_limit: self.msisdn_verify_limit,
            msisdn_verify_window: self.msisdn_verify_window,
            ip_send_limit: self.ip_send_limit.map(|OptionalLimit(v)| v),
            allowed_countries: self.allowed_countries.as_ref().map(|v| {
                if v.eq_ignore_ascii_case("all") {
                    Vec::new()
                } else {
                    v.split(',')
                        .map(|c| c.trim().trim_start_matches('+').to_owned())
                        .filter(|c| !c.is_empty())
                        .collect()
                }
            }),
            sequential_mode: self.sequential_mode.as_deref().and_then(RuleMode::parse),
            conversion_mode: self.conversion_mode.as_deref().and_then(RuleMode::parse),
        }
    }

    fn apply(&self, s: AppSettings) -> AppSettings {
        self.patch().apply(s)
    }
}

impl Quota {
    /// `None`: unlimited.
    pub(crate) fn value(self) -> Option<i64> {
        self.0
    }
}

#[derive(Subcommand, Debug)]
pub(crate) enum TemplateCommand {
    /// Register (or replace) a template for an app in one language.
    Add {
        #[arg(long)]
        app: Uuid,
        /// Template name as approved by Meta ([a-z0-9_]).
        #[arg(long)]
        name: String,
        /// Language code as approved by Meta (e.g. en, id, en_US).
        #[arg(long)]
        lang: String,
        /// `authentication` (Meta's fixed body, one placeholder) or `utility`.
        #[arg(long, default_value = "utility")]
        category: String,
        /// Body text with numbered placeholders, e.g. "Your code is {{1}}. Use it for {{2}}".
        /// Default for authentication: "{{1}} is your verification code."
        #[arg(long)]
        body: Option<String>,
        /// Which placeholder receives the code; `content` fills the others in order.
        #[arg(long, default_value_t = 1)]
        code_placeholder: u32,
        /// Whether a copy-code button carries the code (default: yes for authentication).
        #[arg(long)]
        copy_code_button: Option<bool>,
    },
    /// List an app's templates.
    List {
        #[arg(long)]
        app: Uuid,
        #[arg(long)]
        json: bool,
    },
    /// Remove a template in one language.
    Remove {
        #[arg(long)]
        app: Uuid,
        #[arg(long)]
        name: String,
        #[arg(long)]
        lang: String,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut flags = match &cli.command {
        Command::Serve(args) => args.flags(),
        _ => Vec::new(),
    };
    if let Some(url) = &cli.database_url {
        flags.push(("database_url", url.clone()));
    }
    if let Some(url) = &cli.server {
        flags.push(("server_url", url.clone()));
    }
    let settings = Settings::load(cli.config.as_deref(), &flags)?;
    for var in Settings::unknown_env() {
        eprintln!("warning: unknown environment variable {var} is ignored (see config.example.toml)");
    }
    let store =
        || async { Config::new(settings.raw("database_url").unwrap_or(DEFAULT_DATABASE_URL)).open_store().await };
    if let Some(url) = settings.raw("server_url") {
        let token = settings.raw("admin_token").context("--server needs the admin token: WAOTP_ADMIN_TOKEN(_FILE)")?;
        let remote = Remote::new(url, token)?;
        match cli.command {
            Command::App(cmd) => return remote.app(cmd).await,
            Command::Template(cmd) => return remote.template(cmd).await,
            Command::Blocklist(cmd) => return remote.blocklist(cmd).await,
            Command::Callbacks(cmd) => return remote.callbacks(cmd).await,
            _ => {}
        }
    }
    match cli.command {
        Command::Serve(_) => serve(&settings).await,
        Command::Config(ConfigCommand::Check) => {
            server_config(&settings)?;
            print!("{}", settings.render());
            println!("# configuration is valid");
            Ok(())
        }
        Command::App(cmd) => app(&store().await?, cmd, &|| server_config(&settings)?.code_key()).await,
        Command::Template(cmd) => template(&store().await?, cmd).await,
        Command::Callbacks(cmd) => callbacks(&store().await?, cmd).await,
        Command::Blocklist(cmd) => blocklist(&store().await?, cmd).await,
        Command::GraphDouble(args) => graph_double(args).await,
        Command::Openapi => {
            print!("{}", waotp_server::openapi::document());
            Ok(())
        }
    }
}

async fn serve(settings: &Settings) -> anyhow::Result<()> {
    let mut config = server_config(settings)?;
    let filter = waotp_server::logging::filter(settings.raw("log").unwrap_or("info"))
        .map_err(|e| anyhow::anyhow!("invalid log filter (WAOTP_LOG): {e}"))?;
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if settings.raw("log_format") == Some("json") {
        logs.json().with_current_span(true).init();
    } else {
        logs.init();
    }
    let admin_token = config.provide_admin_token()?;
    let state = waotp_server::build(&config, Clock::system()).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    println!("waotp listening on http://{addr}");
    if let Some(metrics_addr) = settings.get::<SocketAddr>("metrics_listen")? {
        let metrics = tokio::net::TcpListener::bind(metrics_addr)
            .await
            .with_context(|| format!("cannot listen on {metrics_addr} for metrics"))?;
        println!("  metrics:  http://{}/metrics", metrics.local_addr()?);
        let router = waotp_server::metrics::router(state.clone());
        // The same time limits and cap as the API's listener.
        let serving = waotp_server::connections::serve(
            metrics,
            router,
            state.http_limits,
            state.metrics.clone(),
            std::future::pending(),
        );
        tokio::spawn(serving);
    }
    println!("  database: {}", waotp_server::config::redact_url(&config.database_url));
    match &config.whatsapp {
        Some(w) => {
            println!("  channel:  WhatsApp Cloud API, phone number id {} via {}", w.phone_number_id, w.api_base);
            if w.app_secret.is_none() {
                println!("            (no WAOTP_WHATSAPP_APP_SECRET: status webhooks are refused)");
            }
        }
        None => println!("  channel:  local inbox (no WhatsApp account configured): GET /v1/inbox?msisdn=..."),
    }
    print_dashboard(&state, addr, &admin_token);
    if state.store.list_apps().await?.is_empty() {
        println!();
        println!("  No apps yet. Create one (also while the server runs):");
        println!("    waotp app create --name my-app");
    }
    waotp_server::serve(state, listener, shutdown_signal()).await?;
    println!("waotp stopped");
    Ok(())
}

/// The banner's dashboard line. A configured token is never printed; waotp's own is not
/// either: a one-time link stands for it (see `waotp_server::dashboard::LINK_LIFETIME`).
fn print_dashboard(state: &waotp_server::AppState, addr: SocketAddr, origin: &AdminTokenOrigin) {
    let turn_on = "             turn it on with admin_token, WAOTP_ADMIN_TOKEN or WAOTP_ADMIN_TOKEN_FILE";
    match origin {
        AdminTokenOrigin::Configured => {
            println!("  dashboard: http://{addr}/dashboard (log in with the configured admin token)");
        }
        AdminTokenOrigin::Generated(file) => {
            if let Some(link) = state.issue_login_link() {
                let minutes = waotp_server::dashboard::LINK_LIFETIME.as_secs() / 60;
                println!("  dashboard: http://{addr}{link}");
                println!(
                    "             (logs in once, within {minutes} minutes; the admin token is in {})",
                    file.display()
                );
            }
        }
        AdminTokenOrigin::Off(NoAdminToken::Postgres) => {
            println!("  dashboard: off (with PostgreSQL every node needs the same admin token)");
            println!("{turn_on}");
        }
        AdminTokenOrigin::Off(NoAdminToken::BeyondLoopback { existing }) => {
            println!("  dashboard: off (listening beyond loopback: waotp makes no admin token of its own)");
            println!("{turn_on}");
            if let Some(file) = existing {
                println!("             (the one made on an earlier start: WAOTP_ADMIN_TOKEN_FILE={})", file.display());
            }
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

async fn existing(store: &dyn Store, app_id: Uuid) -> anyhow::Result<AppRecord> {
    store.get_app(app_id).await?.with_context(|| format!("no app with id {app_id}"))
}

/// `key`: the server's code key, for the commands that seal (read only when one needs it).
async fn app(
    store: &std::sync::Arc<dyn Store>,
    cmd: AppCommand,
    key: &dyn Fn() -> anyhow::Result<waotp_core::CodeKey>,
) -> anyhow::Result<()> {
    let store = store.as_ref();
    match cmd {
        AppCommand::Create { name, quota, settings, json } => {
            let settings = settings.apply(AppSettings::default());
            let quota = quota.and_then(|q| q.0);
            let (app, key) =
                waotp_server::apps::create_app(store, &name, settings, quota, Clock::system().now_ms()).await?;
            if json {
                let mut v = app_json(&app);
                v["api_key"] = key.into();
                v["callback_secret"] = app.callback_secret.clone().into();
                println!("{v}");
            } else {
                println!("Created app {:?}", app.name);
                println!("  App-ID:          {}", app.app_id);
                println!("  API-Key:         {key}");
                println!("  Callback secret: {}", app.callback_secret);
                println!("The API key is shown only now; store it in your app's secrets.");
                println!("The callback secret verifies the webhook-signature header of callbacks.");
            }
        }
        AppCommand::List { json } => {
            let apps = store.list_apps().await?;
            if json {
                println!("{}", serde_json::Value::Array(apps.iter().map(app_json).collect()));
            } else if apps.is_empty() {
                println!("No apps. Create one: waotp app create --name my-app");
            } else {
                println!("{:<36}  {:<24}  {:>4}  {:>6}  template (lang)", "APP-ID", "NAME", "LEN", "TTL(s)");
                for a in apps {
                    let s = &a.settings;
                    println!(
                        "{:<36}  {:<24}  {:>4}  {:>6}  {} ({})",
                        a.app_id, a.name, s.code_length, s.time_limit, s.template_name, s.lang_code
                    );
                }
            }
        }
        AppCommand::Show { app_id, json } => {
            let app = existing(store, app_id).await?;
            let templates = store.list_templates(app_id).await?;
            let mut v = app_json(&app);
            v["templates"] = serde_json::to_value(&templates)?;
            if json {
                println!("{v}");
            } else {
                println!("{}", serde_json::to_string_pretty(&v)?);
            }
        }
        AppCommand::Update { app_id, quota, quota_add, settings } => {
            let app = existing(store, app_id).await?;
            let updated = settings.apply(app.settings.clone());
            waotp_server::apps::validate_settings(&updated).map_err(anyhow::Error::msg)?;
            store.update_app_settings(app_id, updated).await?;
            if let Some(Quota(q)) = quota {
                store.set_quota(app_id, q).await?;
            }
            if let Some(n) = quota_add {
                let balance = store.add_quota(app_id, n).await?;
                println!("Quota of {app_id} is now {}.", balance.unwrap_or_default());
            }
            println!("Updated app {app_id} (running servers pick it up within 2 seconds).");
        }
        AppCommand::RotateKey { app_id, json } => {
            let Some(key) = waotp_server::apps::rotate_api_key(store, app_id).await? else {
                bail!("no app with id {app_id}");
            };
            if json {
                println!("{}", json!({ "app_id": app_id, "api_key": key }));
            } else {
                println!("New API-Key for {app_id}: {key}");
                println!("The old key stops working within 2 seconds. This key is shown only now.");
            }
        }
        AppCommand::SetSender { app_id, phone_number_id, access_token_file, clear } => {
            existing(store, app_id).await?;
            let sender = match (clear, phone_number_id, access_token_file) {
                (true, ..) => None,
                (false, Some(phone_number_id), Some(file)) => {
                    let token = std::fs::read_to_string(&file)
                        .with_context(|| format!("reading {}", file.display()))?
                        .trim()
                        .to_owned();
                    if token.is_empty() {
                        bail!("{} is empty", file.display());
                    }
                    Some((phone_number_id, token))
                }
                _ => bail!("give --phone-number-id and --access-token-file, or --clear"),
            };
            let shown = sender.as_ref().map(|(pnid, _)| pnid.clone());
            waotp_server::apps::set_sender(store, &key()?, app_id, sender).await?;
            match shown {
                Some(pnid) => println!("App {app_id} now sends from WhatsApp number id {pnid}."),
                None => println!("App {app_id} now sends from the server's WhatsApp number."),
            }
        }
        AppCommand::RotateCallbackSecret { app_id, json } => {
            let Some(secret) = waotp_server::apps::rotate_callback_secret(store, app_id).await? else {
                bail!("no app with id {app_id}");
            };
            if json {
                println!("{}", json!({ "app_id": app_id, "callback_secret": secret }));
            } else {
                println!("New callback secret for {app_id}: {secret}");
            }
        }
    }
    Ok(())
}

async fn callbacks(store: &std::sync::Arc<dyn Store>, cmd: CallbackCommand) -> anyhow::Result<()> {
    let store = store.as_ref();
    match cmd {
        CallbackCommand::List { app, session, json } => {
            let Some(list) = store.list_callbacks(app, session).await? else {
                bail!("app {app} has no session {session}");
            };
            let rfc = waotp_server::clock::rfc3339;
            if json {
                println!("{}", waotp_server::admin::callbacks_json(&list, waotp_server::admin::LogReader::Operator));
            } else if list.is_empty() {
                println!("No callbacks (the send had no callback_url).");
            } else {
                for c in &list {
                    let next = c.due_at_ms().map(|at| format!(" next={}", rfc(at))).unwrap_or_default();
                    println!(
                        "{:>2} {:<20} {:<9} attempts={}{next} {}",
                        c.status.code(),
                        c.status.name(),
                        c.shown_state(),
                        c.attempts,
                        c.url
                    );
                    for a in &c.log {
                        println!(
                            "     {}  {}  {} ms",
                            rfc(a.at_ms),
                            a.http_status.map_or_else(|| a.error.clone().unwrap_or_default(), |s| format!("HTTP {s}")),
                            a.latency_ms
                        );
                    }
                }
            }
        }
        CallbackCommand::Replay { app, session, status } => {
            let status = Status::from_code(status).context("status must be 0 to 10")?;
            if !store.replay_callback(app, session, status, Clock::system().now_ms()).await? {
                bail!("session {session} of app {app} has no callback for status {}", status.code());
            }
            println!("Queued callback {} ({}) of session {session} again.", status.code(), status.name());
        }
    }
    Ok(())
}

async fn template(store: &std::sync::Arc<dyn Store>, cmd: TemplateCommand) -> anyhow::Result<()> {
    let store = store.as_ref();
    match cmd {
        TemplateCommand::Add { app, name, lang, category, body, code_placeholder, copy_code_button } => {
            let t = TemplateInput { name, language: lang, category, body, code_placeholder, copy_code_button }
                .into_template()
                .map_err(anyhow::Error::msg)?;
            if !store.put_template(app, t.clone()).await? {
                bail!("no app with id {app}");
            }
            println!(
                "Template {} ({}) saved for app {app}; it needs {} content value(s) per send.",
                t.name,
                t.language,
                t.content_needed()
            );
        }
        TemplateCommand::List { app, json } => {
            existing(store, app).await?;
            let templates = store.list_templates(app).await?;
            if json {
                println!("{}", serde_json::to_string(&templates)?);
            } else if templates.is_empty() {
                println!("No templates: sends use Meta's authentication template shape for any name.");
            } else {
                for t in templates {
                    println!(
                        "{} ({}) [{}] code at {{{{{}}}}}{}: {}",
                        t.name,
                        t.language,
                        t.category.as_str(),
                        t.code_placeholder,
                        if t.copy_code_button { ", copy-code button" } else { "" },
                        t.body
                    );
                }
            }
        }
        TemplateCommand::Remove { app, name, lang } => {
            if !store.delete_template(app, &name, &lang).await? {
                bail!("app {app} has no template {name} ({lang})");
            }
            println!("Removed template {name} ({lang}) from app {app}.");
        }
    }
    Ok(())
}

async fn blocklist(store: &std::sync::Arc<dyn Store>, cmd: BlocklistCommand) -> anyhow::Result<()> {
    let store = store.as_ref();
    let scope = |app: Option<Uuid>| app.map_or_else(|| "every app".to_owned(), |a| format!("app {a}"));
    match cmd {
        BlocklistCommand::Add { app, number_or_prefix } => {
            if let Some(a) = app {
                existing(store, a).await?;
            }
            let (entry, is_prefix) = parse_block_entry(&number_or_prefix).map_err(anyhow::Error::msg)?;
            let shown = if is_prefix { format!("{entry}*") } else { entry.clone() };
            let added = store
                .block(BlockEntry { app_id: app, entry, is_prefix, created_at_ms: Clock::system().now_ms() })
                .await?;
            if added {
                println!("Blocked {shown} for {}.", scope(app));
            } else {
                println!("{shown} was already blocked for {}.", scope(app));
            }
        }
        BlocklistCommand::Remove { app, number_or_prefix } => {
            let (entry, is_prefix) = parse_block_entry(&number_or_prefix).map_err(anyhow::Error::msg)?;
            if !store.unblock(app, &entry, is_prefix).await? {
                bail!("{number_or_prefix} is not blocked for {}", scope(app));
            }
            println!("Unblocked {number_or_prefix} for {}.", scope(app));
        }
        BlocklistCommand::List { json } => {
            let entries = store.blocklist().await?;
            if json {
                let rows: Vec<serde_json::Value> = entries
                    .iter()
                    .map(|e| json!({ "app_id": e.app_id, "entry": e.entry, "prefix": e.is_prefix }))
                    .collect();
                println!("{}", serde_json::Value::Array(rows));
            } else if entries.is_empty() {
                println!("Nothing is blocked.");
            } else {
                for e in entries {
                    println!("{}{}  {}", e.entry, if e.is_prefix { "*" } else { "" }, scope(e.app_id));
                }
            }
        }
    }
    Ok(())
}

async fn graph_double(args: DoubleArgs) -> anyhow::Result<()> {
    use waotp_whatsapp::double::{DoubleConfig, GraphDouble};
    let mut config = DoubleConfig::new(&args.token, &args.phone_number_id, &args.app_secret);
    config.webhook_url = args.webhook_url.clone();
    config.max_per_second = args.rate;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let double = GraphDouble::start(config, listener)?;
    println!("Graph API double on {}", double.base());
    println!("  run waotp with:");
    println!(
        "    WAOTP_WHATSAPP_API_BASE={} WAOTP_WHATSAPP_PHONE_NUMBER_ID={} \\",
        double.base(),
        args.phone_number_id
    );
    println!(
        "    WAOTP_WHATSAPP_ACCESS_TOKEN={} WAOTP_WHATSAPP_APP_SECRET={} waotp serve",
        args.token, args.app_secret
    );
    match &args.webhook_url {
        Some(url) => println!("  status webhooks go to {url}"),
        None => println!("  no --webhook-url: no status webhooks"),
    }
    shutdown_signal().await;
    Ok(())
}
