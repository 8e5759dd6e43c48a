//! `waotp serve`: the server's configuration from every layer, start-up and the banner.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::bail;
use clap::Args;
use waotp_server::config::{AdminTokenOrigin, NoAdminToken, Secret, DEFAULT_DATABASE_URL};
use waotp_server::{Clock, Config};

use crate::settings::Settings;

/// Flags of `serve`. Each one overrides the environment variable, the config file and the
/// default of the same name (see config.example.toml, which documents them all).
#[derive(Args, Debug, Default)]
pub(super) struct ServeArgs {
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
    /// Unique recipients per moving 24 h: meta (the limit Meta announces), or an override: 250,
    /// 2000, 10000, 100000 or unlimited.
    #[arg(long)]
    whatsapp_messaging_limit: Option<String>,
}

impl ServeArgs {
    pub(super) fn flags(&self) -> Vec<(&'static str, String)> {
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
pub(super) fn server_config(s: &Settings) -> anyhow::Result<Config> {
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
    if let Some(timeout) =
        s.duration_within("node_timeout", Duration::from_millis(500)..=Duration::from_secs(3600), "500ms and 1h")?
    {
        config.node_timeout = timeout;
    }
    if let Some(wait) =
        s.duration_within("database_wait", Duration::from_millis(100)..=Duration::from_secs(60), "100ms and 60s")?
    {
        config.database_wait = wait;
    }
    if let Some(t) =
        s.duration_within("http_header_timeout", Duration::from_millis(100)..=Duration::from_secs(300), "100ms and 5m")?
    {
        config.http.header_timeout = t;
    }
    if let Some(t) =
        s.duration_within("http_idle_timeout", Duration::from_millis(100)..=Duration::from_secs(3600), "100ms and 1h")?
    {
        config.http.idle_timeout = t;
    }
    if let Some(t) =
        s.duration_within("http_body_timeout", Duration::from_millis(100)..=Duration::from_secs(3600), "100ms and 1h")?
    {
        config.http.body_timeout = t;
    }
    if let Some(n) = s.count_within("http_max_connections", 1..=1_000_000, "from 1 to 1000000")? {
        config.http.max_connections = n;
    }
    if let Some(t) =
        s.duration_within("http_shutdown_grace", Duration::from_millis(100)..=Duration::from_secs(300), "100ms and 5m")?
    {
        config.http.shutdown_grace = t;
    }
    if let Some(n) =
        s.count_within("http_max_connections_per_address", 0..=1_000_000, "from 0 (no cap per address) to 1000000")?
    {
        config.http.max_connections_per_address = n;
    }
    if let Some(n) = s.count_within("delivery_queue", 1..=usize::MAX, "of at least 1")? {
        config.delivery_queue = n;
    }
    s.one_of("log_format", &["pretty", "json"])?;
    config.metrics_listen = s.get::<SocketAddr>("metrics_listen")?;
    config.whatsapp = whatsapp_config(s)?;
    config.alert = alert_config(s, config.callbacks.deny_private)?;
    config.whatsapp_display_number = s.parse("whatsapp_display_number", |v| {
        let digits: String = v.chars().filter(|c| !matches!(c, ' ' | '-' | '+' | '(' | ')')).collect();
        if (6..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
            Ok(digits)
        } else {
            Err("must be a phone number: 6 to 15 digits (spaces, dashes and a leading + are dropped)".to_owned())
        }
    })?;
    // Every row is checked here (`config check` too), and again when the server reads it.
    config.whatsapp_price_table = s.parse("whatsapp_price_table", |v| {
        let text = std::fs::read_to_string(v).map_err(|e| format!("cannot read the price table: {e}"))?;
        waotp_server::costs::PriceTable::parse(&text)?;
        Ok(std::path::PathBuf::from(v))
    })?;
    config.public_url = s.parse("public_url", public_url)?;
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
    let limit = s.one_of("whatsapp_messaging_limit", &["meta", "250", "2000", "10000", "100000", "unlimited"])?;
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
    w.messaging_limit = limit.as_deref().and_then(|l| l.parse().ok());
    w.messaging_limit_from_meta = limit.as_deref().is_none_or(|l| l == "meta");
    w.waba_id = s.parse("whatsapp_waba_id", graph_id)?;
    w.app_id = s.parse("whatsapp_app_id", graph_id)?;
    Ok(Some(w))
}

/// `public_url`: an http(s) URL naming a host, without credentials, query or fragment; kept
/// without a trailing `/`.
pub(super) fn public_url(v: &str) -> Result<String, String> {
    let url = url::Url::parse(v).map_err(|e| e.to_string())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("must be an http:// or https:// URL with a host".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() || url.query().is_some() || url.fragment().is_some() {
        return Err("must have no credentials, query or fragment".to_owned());
    }
    Ok(v.trim_end_matches('/').to_owned())
}

/// A Graph node id: digits.
fn graph_id(v: &str) -> Result<String, String> {
    if v.bytes().all(|b| b.is_ascii_digit()) {
        Ok(v.to_owned())
    } else {
        Err("must be Meta's numeric id".to_owned())
    }
}

/// Operator alerts: `alert_url` (checked as a callback URL is) with its `alert_secret`.
fn alert_config(
    s: &Settings,
    deny_private: bool,
) -> anyhow::Result<Option<waotp_server::sender_health::alerts::AlertConfig>> {
    let url = s.parse("alert_url", |v| waotp_server::callbacks::target::check(v, deny_private))?;
    let secret = s.parse("alert_secret", |v| {
        waotp_core::callback::secret_bytes(v).filter(|k| k.len() >= 24).map(|_| Secret::new(v)).ok_or_else(|| {
            "must be whsec_ and the base64 of at least 24 random bytes (e.g. whsec_$(openssl rand -base64 32))"
                .to_owned()
        })
    })?;
    match (url, secret) {
        (Some(url), Some(secret)) => Ok(Some(waotp_server::sender_health::alerts::AlertConfig { url, secret })),
        (None, None) => Ok(None),
        (Some(_), None) => bail!("alert_url needs alert_secret (WAOTP_ALERT_SECRET): alerts are always signed"),
        (None, Some(_)) => bail!("alert_secret is set without alert_url (WAOTP_ALERT_URL)"),
    }
}

pub(super) async fn serve(settings: &Settings) -> anyhow::Result<()> {
    let mut config = server_config(settings)?;
    let filter = waotp_server::logging::filter(settings.raw("log").unwrap_or("info"))
        .map_err(|e| anyhow::anyhow!("invalid log filter (WAOTP_LOG): {e}"))?;
    // Colours only on a terminal: a container's log, a journal or a file gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    if settings.raw("log_format") == Some("json") {
        logs.json().with_current_span(true).init();
    } else {
        logs.init();
    }
    let admin_token = config.provide_admin_token()?;
    let server = waotp_server::Server::bind(&config, Clock::system()).await?;
    let addr = server.local_addr()?;
    println!("waotp listening on http://{addr}");
    if let Some(metrics) = server.metrics_addr() {
        println!("  metrics:  http://{metrics}/metrics");
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
    print_dashboard(&server.state, &base_url(config.public_url.as_deref(), addr), &admin_token);
    if server.state.store.list_apps().await?.is_empty() {
        println!();
        println!("  No apps yet. Create one (also while the server runs):");
        println!("    waotp app create --name my-app");
    }
    server.serve(shutdown_signal()).await?;
    println!("waotp stopped");
    Ok(())
}

/// Where a browser reaches this server: `public_url`, else the listening address (a wildcard
/// one as this machine's loopback).
pub(super) fn base_url(public_url: Option<&str>, addr: SocketAddr) -> String {
    if let Some(url) = public_url {
        return url.to_owned();
    }
    let ip = match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => std::net::IpAddr::from([127, 0, 0, 1]),
        ip if ip.is_unspecified() => std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

/// The banner's dashboard line. A configured token is never printed; waotp's own is not
/// either: a one-time link stands for it (see `waotp_server::dashboard::LINK_LIFETIME`).
fn print_dashboard(state: &waotp_server::AppState, base: &str, origin: &AdminTokenOrigin) {
    let turn_on = "             turn it on with admin_token, WAOTP_ADMIN_TOKEN or WAOTP_ADMIN_TOKEN_FILE";
    match origin {
        AdminTokenOrigin::Configured => {
            println!("  dashboard: {base}/dashboard (log in with the configured admin token)");
        }
        AdminTokenOrigin::Generated(file) => {
            if let Some(link) = state.issue_login_link() {
                let minutes = waotp_server::dashboard::LINK_LIFETIME.as_secs() / 60;
                println!("  dashboard: {base}{link}");
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
            println!(
                "  dashboard: off (listening beyond loopback without public_url: waotp makes no admin token of its own)"
            );
            println!("{turn_on}");
            if let Some(file) = existing {
                println!("             (the one made on an earlier start: WAOTP_ADMIN_TOKEN_FILE={})", file.display());
            }
        }
    }
}

pub(super) async fn shutdown_signal() {
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
