//! `waotp app …`: create, list, show and change apps.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde_json::json;
use uuid::Uuid;
use waotp_core::{CallbackMode, RuleMode};
use waotp_server::admin::{app_json, SettingsPatch};
use waotp_server::Clock;
use waotp_store::{AppRecord, AppSettings, Store};

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
    /// Backup templates, comma-separated, tried in order (in the send's language) when the
    /// app's template is unusable (paused, disabled, not approved), or `none`.
    #[arg(long)]
    backup_templates: Option<String>,
    /// Reverse verification's prefilled text for a language, `LANG=TEXT` with `{code}` once in
    /// TEXT (repeat for several languages; together they replace the app's), or `none` for
    /// waotp's defaults.
    #[arg(long, value_name = "LANG=TEXT")]
    reverse_text: Vec<String>,
    /// A text message sent to the user after their message verified them (may be billed by
    /// Meta; the free ✅ reaction is always sent), or `none`.
    #[arg(long)]
    reverse_reply: Option<String>,
    /// Billable WhatsApp messages per calendar month (UTC) before production sends (and, with a
    /// reverse reply, reverse starts) are refused (403 billable_ceiling_reached), or `none`
    /// (default none).
    #[arg(long, value_parser = parse_ceiling)]
    billable_ceiling: Option<Ceiling>,
}

/// A monthly ceiling: a number of billable messages, or none.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ceiling(Option<u64>);

fn parse_ceiling(s: &str) -> Result<Ceiling, String> {
    if s.eq_ignore_ascii_case("none") {
        return Ok(Ceiling(None));
    }
    s.parse::<u64>()
        .map(|n| Ceiling(Some(n)))
        .map_err(|_| "a ceiling is a number of billable messages a month (0 or more), or `none`".into())
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
        let reverse_texts = match self.reverse_text.as_slice() {
            [] => None,
            [none] if none.eq_ignore_ascii_case("none") => Some(Default::default()),
            given => Some(
                given
                    .iter()
                    .map(|t| match t.split_once('=') {
                        Some((lang, text)) => (lang.trim().to_owned(), text.to_owned()),
                        // No language: refused by the settings' check (an empty language).
                        None => (String::new(), t.clone()),
                    })
                    .collect(),
            ),
        };
        SettingsPatch {
            reverse_texts,
            billable_ceiling: self.billable_ceiling.map(|Ceiling(v)| v),
            reverse_reply: self.reverse_reply.as_ref().map(|r| {
                if r.eq_ignore_ascii_case("none") {
                    None
                } else {
                    Some(r.clone())
                }
            }),
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
            backup_templates: self.backup_templates.as_ref().map(|v| {
                if v.eq_ignore_ascii_case("none") {
                    Vec::new()
                } else {
                    v.split(',').map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()).collect()
                }
            }),
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

pub(super) async fn existing(store: &dyn Store, app_id: Uuid) -> anyhow::Result<AppRecord> {
    store.get_app(app_id).await?.with_context(|| format!("no app with id {app_id}"))
}

/// `key`: the server's code key, for the commands that seal (the access token of `set-sender`,
/// the callback secret of `create` and `rotate-callback-secret`; read only when one needs it).
pub(super) async fn app(
    store: &std::sync::Arc<dyn Store>,
    cmd: AppCommand,
    key: &dyn Fn() -> anyhow::Result<waotp_core::CodeKey>,
) -> anyhow::Result<()> {
    let store = store.as_ref();
    // The server secret, checked against the secrets already sealed in the database.
    let key = || async {
        let key = key()?;
        if !waotp_server::apps::key_opens_stored_secrets(store, &key).await? {
            bail!(
                "this server secret does not open the app secrets in the database: give the CLI the servers' \
                 secret (WAOTP_SERVER_SECRET or WAOTP_SERVER_SECRET_FILE, as the servers have it)"
            );
        }
        Ok::<_, anyhow::Error>(key)
    };
    match cmd {
        AppCommand::Create { name, quota, settings, json } => {
            let settings = settings.apply(AppSettings::default());
            let quota = quota.and_then(|q| q.0);
            let new =
                waotp_server::apps::create_app(store, &key().await?, &name, settings, quota, Clock::system().now_ms())
                    .await?;
            if json {
                let mut v = app_json(&new.app);
                v["api_key"] = new.api_key.into();
                v["callback_secret"] = new.callback_secret.into();
                println!("{v}");
            } else {
                println!("Created app {:?}", new.app.name);
                println!("  App-ID:          {}", new.app.app_id);
                println!("  API-Key:         {}", new.api_key);
                println!("  Callback secret: {}", new.callback_secret);
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
            let update =
                waotp_server::apps::AppUpdate { settings: settings.patch(), quota: quota.map(|Quota(q)| q), quota_add };
            let app = waotp_server::apps::update_app(store, app_id, update).await?;
            if quota.is_some() || quota_add.is_some() {
                match app.quota {
                    Some(q) => println!("Quota of {app_id} is now {q}."),
                    None => println!("Quota of {app_id} is now unlimited."),
                }
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
            waotp_server::apps::set_sender(store, &key().await?, app_id, sender).await?;
            match shown {
                Some(pnid) => println!("App {app_id} now sends from WhatsApp number id {pnid}."),
                None => println!("App {app_id} now sends from the server's WhatsApp number."),
            }
        }
        AppCommand::RotateCallbackSecret { app_id, json } => {
            let Some(secret) = waotp_server::apps::rotate_callback_secret(store, &key().await?, app_id).await? else {
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
