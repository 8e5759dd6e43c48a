//! Commands for running waotp as a service: `waotp healthcheck` (a container's or a unit's
//! health probe, with no curl needed in the image) and `waotp dashboard link` (a fresh
//! one-time login link from the running server, e.g. `podman exec waotp waotp dashboard link`).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde_json::Value;

use super::serve::{base_url, public_url};
use crate::settings::Settings;

#[derive(Args, Debug)]
pub(crate) struct HealthcheckArgs {
    /// The server to ask; default: the configured `listen` address (a wildcard one as
    /// loopback).
    #[arg(long)]
    url: Option<String>,
    /// How long to wait for the answer.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

#[derive(Subcommand, Debug)]
pub(crate) enum DashboardCommand {
    /// Print a one-time dashboard login link (10 minutes, one use) issued by the running server
    /// (its admin API, with the configured admin token or the one waotp made in its data folder).
    Link {
        /// The server to ask; default: the configured `listen` address.
        #[arg(long)]
        url: Option<String>,
    },
}

/// Where this machine reaches the configured server: the `listen` address, a wildcard one as
/// loopback (never `public_url`: a container's published address is not reachable from inside).
fn local_base(settings: &Settings) -> anyhow::Result<String> {
    let listen = settings
        .get::<SocketAddr>("listen")?
        .unwrap_or_else(|| waotp_server::config::DEFAULT_LISTEN.parse().expect("valid default"));
    Ok(base_url(None, listen))
}

/// Exit 0 when `/readyz` answers 200 within the timeout; otherwise a line on stderr and exit 1.
pub(super) async fn healthcheck(settings: &Settings, args: HealthcheckArgs) -> anyhow::Result<()> {
    let base = match args.url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => local_base(settings)?,
    };
    let http = reqwest::Client::builder().timeout(args.timeout).build()?;
    let answer = http.get(format!("{base}/readyz")).send().await.with_context(|| format!("cannot reach {base}"))?;
    let status = answer.status();
    if !status.is_success() {
        let body: Value = answer.json().await.unwrap_or(Value::Null);
        let why = body.get("reason").and_then(Value::as_str).unwrap_or("not ready");
        bail!("{base}/readyz answered {status}: {why}");
    }
    println!("ready");
    Ok(())
}

pub(super) async fn dashboard(settings: &Settings, cmd: DashboardCommand) -> anyhow::Result<()> {
    let DashboardCommand::Link { url } = cmd;
    let local = match url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => local_base(settings)?,
    };
    let token = match settings.raw("admin_token") {
        Some(token) => token.to_owned(),
        None => own_admin_token(settings)?,
    };
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
    let answer = http
        .post(format!("{local}/admin/dashboard/login-link"))
        .bearer_auth(token)
        .send()
        .await
        .with_context(|| format!("cannot reach {local}"))?;
    let status = answer.status();
    let body: Value = answer.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let why = body.get("message").and_then(Value::as_str).unwrap_or("");
        bail!("{local} answered {status}: {why}");
    }
    let path = body["path"].as_str().context("the server's answer has no path")?;
    let public = settings.parse("public_url", public_url)?;
    println!("{}{path}", public.as_deref().unwrap_or(&local));
    let minutes = body["expires_in_seconds"].as_u64().unwrap_or(600) / 60;
    eprintln!("(logs in once, within {minutes} minutes, on this node)");
    Ok(())
}

/// The admin token waotp made beside its SQLite database (`admin.token`).
fn own_admin_token(settings: &Settings) -> anyhow::Result<String> {
    let url = settings.raw("database_url").unwrap_or(waotp_server::config::DEFAULT_DATABASE_URL);
    let config = waotp_server::Config::new(url);
    if config.uses_postgres() {
        bail!("with PostgreSQL waotp makes no admin token: set WAOTP_ADMIN_TOKEN(_FILE)");
    }
    let file = config.admin_token_file()?;
    let token = std::fs::read_to_string(&file)
        .with_context(|| format!("no admin token configured, and none in {}", file.display()))?;
    Ok(token.trim().to_owned())
}
