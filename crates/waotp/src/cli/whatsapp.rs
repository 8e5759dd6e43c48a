//! `waotp whatsapp …`: Meta's side of the setup. `doctor` checks it; `template create|list`
//! create and read authentication templates at Meta (unlike `waotp template`, which registers
//! templates in waotp's own database).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Subcommand;
use uuid::Uuid;
use waotp_core::Category;
use waotp_server::config::{WhatsAppConfig, DEFAULT_DATABASE_URL};
use waotp_server::Config;
use waotp_store::Store;
use waotp_whatsapp::auth_template::{AndroidApp, AuthTemplate, OtpButton};
use waotp_whatsapp::doctor::{self, Check, ExpectedTemplate, Outcome, Report, Setup};
use waotp_whatsapp::management::ManagementClient;

use super::serve::server_config;
use crate::settings::Settings;

/// waotp's default code lifetime, when no app exists yet.
const DEFAULT_CODE_LIFETIME: u32 = 300;

#[derive(Subcommand, Debug)]
pub(crate) enum WhatsAppCommand {
    /// Check Meta's side of the setup, in the order a send needs it (token, WhatsApp account,
    /// number, subscription, webhook fields, each app's templates, webhook URL): one line per
    /// check with the fix. Exits non-zero when a send would fail.
    Doctor {
        /// Print the checks as JSON.
        #[arg(long)]
        json: bool,
        /// waotp's public webhook address (https://…/webhooks/whatsapp), compared with the URL
        /// Meta calls.
        #[arg(long)]
        webhook_url: Option<String>,
    },
    /// Create and list authentication templates at Meta (WhatsApp Manager's templates; to
    /// register a template's body in waotp, see `waotp template`).
    #[command(subcommand)]
    Template(MetaTemplateCommand),
}

#[derive(Subcommand, Debug)]
pub(crate) enum MetaTemplateCommand {
    /// Create (or update) an authentication template in one or several languages, with Meta's
    /// bulk upsert. Meta fixes the text: "<code> is your verification code." plus the optional
    /// security recommendation and expiry footer.
    Create {
        /// Template name ([a-z0-9_]).
        #[arg(long)]
        name: String,
        /// Languages (repeat or comma-separate: --lang en_US,id).
        #[arg(long, value_delimiter = ',', required = true)]
        lang: Vec<String>,
        /// copy-code, one-tap or zero-tap.
        #[arg(long, default_value = "copy-code")]
        button: String,
        /// An Android app for one-tap/zero-tap: PACKAGE:SIGNATURE_HASH (repeat, up to 5).
        #[arg(long = "android-app")]
        android_app: Vec<String>,
        /// Accept Meta's zero-tap terms (required for --button zero-tap).
        #[arg(long)]
        zero_tap_terms_accepted: bool,
        /// Add "For your security, do not share this code."
        #[arg(long)]
        security_recommendation: bool,
        /// Add "This code expires in N minutes." (1–90).
        #[arg(long)]
        code_expiry_minutes: Option<u32>,
        /// How long Meta tries to deliver, in seconds (30–900); at most the code lifetime.
        /// Default: the code lifetime.
        #[arg(long)]
        ttl: Option<u32>,
        /// The app whose code lifetime (time_limit) bounds the TTL. Default: the shortest
        /// lifetime among the apps sending this template (all apps if none does; 300 s
        /// without apps).
        #[arg(long)]
        app: Option<Uuid>,
        /// Print Meta's answer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the WhatsApp account's templates: name, language, status, category, quality.
    List {
        /// Only templates of this name.
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

struct Meta {
    client: ManagementClient,
    whatsapp: WhatsAppConfig,
}

impl Meta {
    fn new(settings: &Settings) -> anyhow::Result<Meta> {
        let whatsapp = server_config(settings)?.whatsapp.context(
            "WhatsApp is not configured: set whatsapp_phone_number_id and whatsapp_access_token \
             (WAOTP_WHATSAPP_PHONE_NUMBER_ID, WAOTP_WHATSAPP_ACCESS_TOKEN)",
        )?;
        let client = ManagementClient::new(
            &whatsapp.api_base,
            &whatsapp.api_version,
            whatsapp.access_token.expose(),
            Duration::from_secs(20),
        )?;
        Ok(Meta { client, whatsapp })
    }

    fn waba(&self) -> anyhow::Result<&str> {
        self.whatsapp.waba_id.as_deref().context(
            "whatsapp_waba_id is not set (WAOTP_WHATSAPP_WABA_ID): the WhatsApp Business Account id from \
             WhatsApp Manager → API setup",
        )
    }
}

/// The server's database, if there is one: the doctor and the template commands read the apps
/// from it, and never create an empty one (run from a folder without the server's data, they
/// would otherwise check nothing and say so as ok).
async fn open_existing_store(settings: &Settings) -> anyhow::Result<Option<Arc<dyn Store>>> {
    let config = Config::new(settings.raw("database_url").unwrap_or(DEFAULT_DATABASE_URL));
    if let Some(file) = config.sqlite_file() {
        if !file.exists() {
            eprintln!(
                "note: no database at {}: no app's templates or code lifetime can be read (run where the \
                 server's data is, or give --database-url)",
                file.display()
            );
            return Ok(None);
        }
    }
    Ok(Some(config.open_store().await?))
}

pub(super) async fn whatsapp(settings: &Settings, cmd: WhatsAppCommand) -> anyhow::Result<()> {
    match cmd {
        WhatsAppCommand::Doctor { json, webhook_url } => {
            let meta = Meta::new(settings)?;
            let store = open_existing_store(settings).await?;
            let templates = match &store {
                Some(store) => expected_templates(store.as_ref()).await?,
                None => Vec::new(),
            };
            let w = &meta.whatsapp;
            let setup = Setup {
                phone_number_id: w.phone_number_id.clone(),
                waba_id: w.waba_id.clone(),
                app_id: w.app_id.clone(),
                app_secret: w.app_secret.as_ref().map(|s| s.expose().to_owned()),
                webhook_url,
                messages_per_second: w.messages_per_second,
                messaging_limit: w.messaging_limit,
                messaging_limit_from_meta: w.messaging_limit_from_meta,
                templates,
            };
            let mut report = doctor::run(&meta.client, &setup).await;
            if setup.templates.is_empty() {
                report.checks.push(Check {
                    check: "apps",
                    subject: None,
                    outcome: Outcome::Warning,
                    detail: "no app found in the database: no template was checked".into(),
                    fix: Some(
                        "run the doctor where the server's database is (or give --database-url), after \
                         `waotp app create`"
                            .into(),
                    ),
                });
            }
            // What Meta said of each template is the sender's health too: a server on this
            // database fails over from a template the doctor found not APPROVED (and back).
            if let Some(store) = &store {
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
                // A status Meta has not documented leaves the template as usable as it was.
                let known = report.template_statuses.iter().filter(|(_, _, status)| {
                    waotp_whatsapp::management_events::template_status_usable(status).is_some()
                });
                for (name, language, status) in known {
                    store.record_template_status(name, language, status, "doctor", now).await?;
                }
            }
            if json {
                println!("{}", report.to_json());
            } else {
                print!("{}", render(&report));
            }
            let failures = report.checks.iter().filter(|c| c.outcome == Outcome::Failure).count();
            if failures > 0 {
                bail!("{failures} check(s) failed: sends (or their webhooks) would fail until they are fixed");
            }
            Ok(())
        }
        WhatsAppCommand::Template(MetaTemplateCommand::List { name, json }) => {
            let meta = Meta::new(settings)?;
            let mut list = meta.client.templates(meta.waba()?, name.as_deref()).await?;
            if let Some(name) = &name {
                list.retain(|t| &t.name == name);
            }
            if json {
                println!("{}", serde_json::to_string(&list)?);
            } else if list.is_empty() {
                println!("No templates.");
            } else {
                println!("{:<32} {:<8} {:<10} {:<15} quality", "name", "language", "status", "category");
                for t in list {
                    println!("{:<32} {:<8} {:<10} {:<15} {}", t.name, t.language, t.status, t.category, t.quality());
                }
            }
            Ok(())
        }
        WhatsAppCommand::Template(MetaTemplateCommand::Create {
            name,
            lang,
            button,
            android_app,
            zero_tap_terms_accepted,
            security_recommendation,
            code_expiry_minutes,
            ttl,
            app,
            json,
        }) => {
            let button = OtpButton::parse(&button)?;
            let android_apps = android_app.iter().map(|a| AndroidApp::parse(a)).collect::<Result<Vec<_>, _>>()?;
            let meta = Meta::new(settings)?;
            let waba = meta.waba()?.to_owned();
            let (lifetime, whose) = match open_existing_store(settings).await? {
                Some(store) => code_lifetime(store.as_ref(), app, &name).await?,
                None if app.is_some() => bail!("--app needs the server's database (see the note above)"),
                None => (DEFAULT_CODE_LIFETIME, format!("{DEFAULT_CODE_LIFETIME} s, waotp's default")),
            };
            let ttl_seconds = ttl.unwrap_or_else(|| lifetime.clamp(30, 900));
            let template = AuthTemplate {
                name,
                languages: lang,
                button,
                android_apps,
                zero_tap_terms_accepted,
                security_recommendation,
                code_expiration_minutes: code_expiry_minutes,
                ttl_seconds,
            }
            .validate(lifetime)
            .map_err(|e| anyhow::anyhow!("{e} (code lifetime: {whose})"))?;
            let answer = meta.client.upsert_templates(&waba, &template.upsert_body()).await?;
            if let Some(note) = template.button.android_note() {
                // On standard error: `--json` keeps standard output one JSON document.
                eprintln!("{note}");
            }
            if json {
                println!("{}", serde_json::to_string(&answer)?);
            } else {
                println!(
                    "Template {} ({} button, message TTL {} s) sent to Meta for WhatsApp account {waba}:",
                    template.name,
                    template.button.otp_type().to_ascii_lowercase().replace('_', "-"),
                    template.ttl_seconds
                );
                for t in &answer {
                    let id = if t.id.is_empty() { "(none: refused)" } else { t.id.as_str() };
                    println!("  {:<8} id {:<20} {}", t.language, id, t.status);
                }
                if answer.iter().any(|t| t.status != "APPROVED") {
                    println!("Sends need APPROVED: follow Meta's review with `waotp whatsapp template list`.");
                }
            }
            Ok(())
        }
    }
}

/// The doctor's text: one line per check, the fix under each that is not ok.
fn render(report: &Report) -> String {
    let mut out = String::new();
    for c in &report.checks {
        let mark = match c.outcome {
            Outcome::Ok => "ok     ",
            Outcome::Warning => "warning",
            Outcome::Failure => "FAILURE",
        };
        let subject = c.subject.as_deref().map(|s| format!(" {s}")).unwrap_or_default();
        out.push_str(&format!("{mark} {}{subject}: {}\n", c.check, c.detail));
        if let Some(fix) = &c.fix {
            out.push_str(&format!("        fix: {fix}\n"));
        }
    }
    let (warnings, failures) = report.checks.iter().fold((0, 0), |(w, f), c| match c.outcome {
        Outcome::Ok => (w, f),
        Outcome::Warning => (w + 1, f),
        Outcome::Failure => (w, f + 1),
    });
    out.push_str(&format!("{} checks: {failures} failure(s), {warnings} warning(s)\n", report.checks.len()));
    out
}

/// Each (template, language) an app on the server's number can send: its default and its
/// registered templates. Apps with their own sender (another number, maybe another account)
/// are left out, said on stderr.
async fn expected_templates(store: &dyn Store) -> anyhow::Result<Vec<ExpectedTemplate>> {
    let mut pairs: BTreeMap<(String, String), ExpectedTemplate> = BTreeMap::new();
    let apps = store.list_apps().await?;
    let mut add = |name: &str, language: &str, authentication: bool, app: &str| {
        let key = (name.to_owned(), waotp_whatsapp::management::normalise_language(language));
        let e = pairs.entry(key).or_insert_with(|| ExpectedTemplate {
            name: name.to_owned(),
            language: language.to_owned(),
            authentication,
            apps: vec![],
        });
        // Any app sending it as an authentication template needs it in that category.
        e.authentication |= authentication;
        if !e.apps.iter().any(|a| a == app) {
            e.apps.push(app.to_owned());
        }
    };
    for app in &apps {
        if app.sender.is_some() {
            eprintln!(
                "note: app {} ({}) sends from its own number: its templates are not checked",
                app.name, app.app_id
            );
            continue;
        }
        let registered = store.list_templates(app.app_id).await?;
        let s = &app.settings;
        let default_auth = registered
            .iter()
            .find(|t| t.name == s.template_name && t.language == s.lang_code)
            .is_none_or(|t| t.category == Category::Authentication);
        add(&s.template_name, &s.lang_code, default_auth, &app.name);
        for t in &registered {
            add(&t.name, &t.language, t.category == Category::Authentication, &app.name);
        }
    }
    Ok(pairs.into_values().collect())
}

/// The code lifetime a template's messages must not outlive, and whose it is.
async fn code_lifetime(store: &dyn Store, app: Option<Uuid>, name: &str) -> anyhow::Result<(u32, String)> {
    if let Some(id) = app {
        let app = super::apps::existing(store, id).await?;
        return Ok((app.settings.time_limit, format!("{} s, app {}", app.settings.time_limit, app.name)));
    }
    let apps = store.list_apps().await?;
    let mut users = Vec::new();
    for a in &apps {
        let sends =
            a.settings.template_name == name || store.list_templates(a.app_id).await?.iter().any(|t| t.name == name);
        if sends {
            users.push(a);
        }
    }
    let pool = if users.is_empty() { apps.iter().collect() } else { users };
    Ok(match pool.iter().min_by_key(|a| a.settings.time_limit) {
        Some(a) => (a.settings.time_limit, format!("{} s, app {}", a.settings.time_limit, a.name)),
        None => (DEFAULT_CODE_LIFETIME, format!("{DEFAULT_CODE_LIFETIME} s, waotp's default")),
    })
}
