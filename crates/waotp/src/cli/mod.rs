//! Commands and flags. Other tools and docs rely on these names: change them only additively.
//! One module per command group; this one parses and dispatches.

mod apps;
mod blocklist;
mod callbacks;
mod double;
mod inbox;
mod ops;
mod remote;
mod serve;
mod templates;
mod whatsapp;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use waotp_server::config::DEFAULT_DATABASE_URL;
use waotp_server::Config;

use crate::settings::Settings;
use apps::AppCommand;
use blocklist::BlocklistCommand;
use callbacks::CallbackCommand;
use double::DoubleArgs;
use remote::Remote;
use serve::{server_config, ServeArgs};
use templates::TemplateCommand;

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
    /// Register in waotp's database the templates an app sends (name, language, body, code
    /// placeholder); to create templates at Meta, see `waotp whatsapp template`.
    #[command(subcommand)]
    Template(TemplateCommand),
    /// Meta's side: check the setup (`doctor`), create and list authentication templates at Meta.
    #[command(subcommand)]
    Whatsapp(whatsapp::WhatsAppCommand),
    /// Inspect and replay status callbacks.
    #[command(subcommand)]
    Callbacks(CallbackCommand),
    /// Block numbers and prefixes, for one app or all (refused with 409).
    #[command(subcommand)]
    Blocklist(BlocklistCommand),
    /// Simulate the user's WhatsApp message to the business (reverse verification).
    #[command(subcommand)]
    Inbox(inbox::InboxCommand),
    /// Run a Graph API test double for local end-to-end trials (never talks to Meta).
    GraphDouble(DoubleArgs),
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print the OpenAPI 3.1 document of the HTTP API (as served at /openapi.json).
    Openapi,
    /// Ask the running server's /readyz: exit 0 when ready (a container's HEALTHCHECK).
    Healthcheck(ops::HealthcheckArgs),
    /// The dashboard of the running server.
    #[command(subcommand)]
    Dashboard(ops::DashboardCommand),
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Validate the effective configuration (defaults, file, environment) and print it, with
    /// each value's source and secrets redacted.
    Check,
    /// Print the reference of every setting as Markdown (the book's configuration reference):
    /// each key's environment variables, flag, default and description.
    Reference,
}

/// The server's configuration from these settings, as `serve` builds it.
#[cfg(test)]
pub(crate) fn config_of(settings: &Settings) -> anyhow::Result<Config> {
    server_config(settings)
}

/// Each settings key's command-line flag, read off the command line's definition: `serve`'s
/// flags and the global ones (`--server` sets `server_url`), with the commands a global one
/// applies to.
pub(crate) fn key_flags() -> crate::config_reference::Flags {
    use clap::CommandFactory;
    let cli = Cli::command();
    let key = |long: &str| match long {
        "server" => Some("server_url"),
        long => crate::settings::KEYS.iter().map(|(k, _)| *k).find(|k| k.replace('_', "-") == long),
    };
    let mut flags = std::collections::BTreeMap::new();
    for arg in cli.get_arguments() {
        if let Some((long, k)) = arg.get_long().and_then(|long| Some((long, key(long)?))) {
            let scope =
                if long == "server" { "the app, template, blocklist and callbacks commands" } else { "every command" };
            flags.insert(k, (format!("--{long}"), Some(scope)));
        }
    }
    let serve = cli.find_subcommand("serve").expect("the serve command");
    for arg in serve.get_arguments() {
        if let Some(k) = arg.get_long().and_then(key) {
            flags.insert(k, (format!("waotp serve --{}", arg.get_long().unwrap_or_default()), None));
        }
    }
    flags
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
        Command::Serve(_) => serve::serve(&settings).await,
        Command::Config(ConfigCommand::Check) => {
            server_config(&settings)?;
            print!("{}", settings.render());
            println!("# configuration is valid");
            Ok(())
        }
        Command::Config(ConfigCommand::Reference) => {
            print!("{}", crate::config_reference::reference(crate::settings::DEFAULTS, &key_flags())?);
            Ok(())
        }
        Command::App(cmd) => apps::app(&store().await?, cmd, &|| Ok(server_config(&settings)?.code_key()?)).await,
        Command::Template(cmd) => templates::template(&store().await?, cmd).await,
        Command::Callbacks(cmd) => callbacks::callbacks(&store().await?, cmd).await,
        Command::Blocklist(cmd) => blocklist::blocklist(&store().await?, cmd).await,
        Command::Inbox(cmd) => inbox::inbox(&store().await?, server_config(&settings)?.code_key()?, cmd).await,
        Command::GraphDouble(args) => double::graph_double(args).await,
        Command::Whatsapp(cmd) => whatsapp::whatsapp(&settings, cmd).await,
        Command::Healthcheck(args) => ops::healthcheck(&settings, args).await,
        Command::Dashboard(cmd) => ops::dashboard(&settings, cmd).await,
        Command::Openapi => {
            print!("{}", waotp_server::openapi::document());
            Ok(())
        }
    }
}
