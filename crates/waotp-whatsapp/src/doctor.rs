//! `waotp whatsapp doctor`: checks, in the order a send needs them, what Meta knows about the
//! setup, and says for each check ok, warning or failure, with the fix. A failure means a send
//! would fail (or no webhook would arrive at all); a warning means sends work but something is
//! off or could not be checked.

use serde::Serialize;

mod account;
mod templates;

use account::{check_app_fields, check_number, check_subscription, check_waba};
use templates::check_templates;

use crate::management::{ManagementClient, ManagementError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    Warning,
    Failure,
}

/// One line of the doctor's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable id: `token`, `token.permissions`, `number.status`, `template`, …
    pub check: &'static str,
    /// What it is about when the id alone does not say (a template's name and language).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub outcome: Outcome,
    pub detail: String,
    /// What to do, for a warning or failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// A template an app sends, in one language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedTemplate {
    pub name: String,
    pub language: String,
    /// Sent as an authentication template (no local record, or registered as one); `false`: a
    /// registered utility template.
    pub authentication: bool,
    /// The apps that send it (names, for the report).
    pub apps: Vec<String>,
}

/// What waotp is configured with (`Debug` leaves the app secret out).
#[derive(Clone, Default)]
pub struct Setup {
    pub phone_number_id: String,
    pub waba_id: Option<String>,
    pub app_id: Option<String>,
    /// For `debug_token` and the app's subscriptions (the app token is `APP_ID|APP_SECRET`).
    pub app_secret: Option<String>,
    /// The URL Meta should call (waotp's public `/webhooks/whatsapp`); `None`: not compared.
    pub webhook_url: Option<String>,
    /// waotp's `whatsapp_rate`.
    pub messages_per_second: u32,
    /// waotp's `whatsapp_messaging_limit` override; `None`: none (see `messaging_limit_from_meta`).
    pub messaging_limit: Option<usize>,
    /// Without an override, waotp follows the limit Meta's webhooks announce
    /// (`whatsapp_messaging_limit = "meta"`, the default); `false`: unlimited.
    pub messaging_limit_from_meta: bool,
    pub templates: Vec<ExpectedTemplate>,
}

impl std::fmt::Debug for Setup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Setup")
            .field("phone_number_id", &self.phone_number_id)
            .field("waba_id", &self.waba_id)
            .field("app_id", &self.app_id)
            .field("app_secret", &self.app_secret.as_ref().map(|_| "<redacted>"))
            .field("webhook_url", &self.webhook_url)
            .field("templates", &self.templates)
            .finish_non_exhaustive()
    }
}

/// The report: the checks in order.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub checks: Vec<Check>,
    /// Each template found at Meta for an expected (name, language): `(name, language, status)`,
    /// for waotp to record as the sender's health (a template not `APPROVED` fails over).
    #[serde(skip)]
    pub template_statuses: Vec<(String, String, String)>,
}

impl Report {
    /// Whether a send would fail: any failure.
    pub fn send_would_fail(&self) -> bool {
        self.checks.iter().any(|c| c.outcome == Outcome::Failure)
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "ok": !self.send_would_fail(), "checks": self.checks })
    }

    /// The first check with this id (and subject, if given).
    pub fn find(&self, check: &str, subject: Option<&str>) -> Option<&Check> {
        self.checks.iter().find(|c| c.check == check && (subject.is_none() || c.subject.as_deref() == subject))
    }

    fn push(&mut self, check: &'static str, outcome: Outcome, detail: impl Into<String>, fix: Option<String>) {
        self.checks.push(Check { check, subject: None, outcome, detail: detail.into(), fix });
    }

    fn ok(&mut self, check: &'static str, detail: impl Into<String>) {
        self.push(check, Outcome::Ok, detail, None);
    }

    fn warn(&mut self, check: &'static str, detail: impl Into<String>, fix: impl Into<String>) {
        self.push(check, Outcome::Warning, detail, Some(fix.into()));
    }

    fn fail(&mut self, check: &'static str, detail: impl Into<String>, fix: impl Into<String>) {
        self.push(check, Outcome::Failure, detail, Some(fix.into()));
    }

    /// A call that failed: a failure with Meta's message and the fix its code calls for.
    fn call_failed(&mut self, check: &'static str, what: &str, e: &ManagementError) {
        let fix = e.fix().unwrap_or("check the ids in waotp's configuration and Meta's status page");
        self.fail(check, format!("{what}: {e}"), fix);
    }

    fn skipped(&mut self, check: &'static str, missing: &str) {
        self.warn(
            check,
            format!("not checked: {missing} is not set"),
            format!("set {missing} (WAOTP_{}) to check it", missing.to_ascii_uppercase()),
        );
    }
}

const MESSAGING: &str = "whatsapp_business_messaging";
const MANAGEMENT: &str = "whatsapp_business_management";
const TOKEN_FIX: &str = "in Meta's Business settings → System users, generate a new permanent token (expiry: never) \
                         for the system user and set whatsapp_access_token";

/// Warn when the token expires within this many days.
const EXPIRY_WARNING_DAYS: i64 = 14;

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// Runs every check in order. A token Meta refuses (190) or an unreachable Graph API stops
/// the run: every later check would fail the same way.
pub async fn run(client: &ManagementClient, setup: &Setup) -> Report {
    let mut r = Report::default();
    if let Err(e) = check_token(client, setup, &mut r).await {
        stop(&mut r, &e.to_string());
        return r;
    }
    let mut app_callback = None;
    let steps: [Step; 5] = [Step::Waba, Step::Number, Step::Subscription, Step::AppFields, Step::Templates];
    let mut effective_url = None;
    for step in steps {
        let result = match step {
            Step::Waba => check_waba(client, setup, &mut r).await,
            Step::Number => check_number(client, setup, &mut r).await.map(|url| effective_url = url),
            Step::Subscription => check_subscription(client, setup, &mut r).await,
            Step::AppFields => check_app_fields(client, setup, &mut r).await.map(|url| app_callback = url),
            Step::Templates => check_templates(client, setup, &mut r).await,
        };
        if let Err(e) = result {
            let check = if e.code() == Some(190) { "token" } else { "graph_api" };
            r.call_failed(check, "Meta refused the call", &e);
            stop(&mut r, "every later call would fail the same way");
            return r;
        }
    }
    check_webhook_url(setup, effective_url.or(app_callback), &mut r);
    r
}

enum Step {
    Waba,
    Number,
    Subscription,
    AppFields,
    Templates,
}

fn stop(r: &mut Report, why: &str) {
    r.warn("stopped", format!("later checks skipped: {why}"), "fix the failure above and run the doctor again");
}

/// `Err` for the errors that end the run (190, unreachable); others become a failed check.
fn fatal(e: &ManagementError) -> bool {
    matches!(e, ManagementError::Transport(_)) || e.code() == Some(190)
}

async fn check_token(client: &ManagementClient, setup: &Setup, r: &mut Report) -> Result<(), ManagementError> {
    let (Some(app_id), Some(secret)) = (setup.app_id.as_deref(), setup.app_secret.as_deref()) else {
        let missing = if setup.app_id.is_none() { "whatsapp_app_id" } else { "whatsapp_app_secret" };
        r.warn(
            "token",
            format!(
                "not checked (validity, expiry, permissions, WhatsApp accounts): {missing} is not set; debug_token \
                 needs the app token APP_ID|APP_SECRET"
            ),
            format!("set {missing} (WAOTP_{})", missing.to_ascii_uppercase()),
        );
        return Ok(());
    };
    let info = match client.debug_token(app_id, secret).await {
        Ok(info) => info,
        Err(e) => {
            let fix = if e.code() == Some(190) {
                "check whatsapp_app_id and whatsapp_app_secret (App settings → Basic): Meta refused the app token \
                 APP_ID|APP_SECRET"
            } else {
                e.fix().unwrap_or("check whatsapp_app_id and whatsapp_app_secret")
            };
            r.fail("token", format!("debug_token: {e}"), fix);
            return if fatal(&e) && e.code() != Some(190) { Err(e) } else { Ok(()) };
        }
    };
    let now = now();
    if !info.is_valid {
        let expired = info.expires_at != 0 && info.expires_at <= now;
        let why = info.error.as_ref().map(|e| e.message.clone()).unwrap_or_default();
        let detail = if expired {
            format!("the access token expired {} hours ago ({why})", (now - info.expires_at) / 3600)
        } else {
            format!("the access token is not valid ({why})")
        };
        r.fail("token", detail, TOKEN_FIX);
        return Err(ManagementError::Transport("the access token is not valid".into()));
    }
    let kind = info.kind.as_deref().unwrap_or("unknown type");
    match info.expires_at {
        0 => r.ok("token", format!("valid {kind} token, never expires")),
        at if at - now < EXPIRY_WARNING_DAYS * 86_400 => {
            r.warn("token", format!("valid {kind} token, but it expires in {} hours", (at - now) / 3600), TOKEN_FIX)
        }
        at => r.ok("token", format!("valid {kind} token, expires in {} days", (at - now) / 86_400)),
    }
    let missing: Vec<&str> =
        [MESSAGING, MANAGEMENT].into_iter().filter(|s| !info.scopes.iter().any(|g| g == s)).collect();
    if missing.is_empty() {
        r.ok("token.permissions", format!("{MESSAGING} and {MANAGEMENT}"));
    } else {
        let consequence = if missing.contains(&MESSAGING) {
            "sends fail"
        } else {
            "templates and the number cannot be read or managed"
        };
        r.fail(
            "token.permissions",
            format!("the token lacks {}: {consequence}", missing.join(" and ")),
            format!(
                "in Business settings → System users, assign the WhatsApp account to the system user with {} and \
                 generate a new token with those permissions",
                missing.join(" and ")
            ),
        );
    }
    match setup.waba_id.as_deref() {
        None => r.skipped("token.waba", "whatsapp_waba_id"),
        Some(waba) => {
            let without: Vec<&str> = info
                .granular_scopes
                .iter()
                .filter(|g| g.scope == MESSAGING || g.scope == MANAGEMENT)
                .filter(|g| !g.target_ids.is_empty() && !g.target_ids.iter().any(|t| t == waba))
                .map(|g| g.scope.as_str())
                .collect();
            if without.is_empty() {
                r.ok("token.waba", format!("the token covers WhatsApp account {waba}"));
            } else {
                r.fail(
                    "token.waba",
                    format!("the token's {} grant does not include WhatsApp account {waba}", without.join(" and ")),
                    "in Business settings → System users → Assign assets, give the system user this WhatsApp account, \
                     then generate a new token",
                );
            }
        }
    }
    Ok(())
}

fn check_webhook_url(setup: &Setup, effective: Option<String>, r: &mut Report) {
    let same = |a: &str, b: &str| a.trim_end_matches('/') == b.trim_end_matches('/');
    let fix =
        "in the Meta app's WhatsApp → Configuration, set the callback URL to waotp's https://…/webhooks/whatsapp \
               (and clear WABA or number overrides that point elsewhere)";
    match (effective, setup.webhook_url.as_deref()) {
        (None, _) => r.warn("webhook_url", "Meta reported no webhook URL for the number", fix),
        (Some(url), Some(ours)) if same(&url, ours) => r.ok("webhook_url", format!("Meta calls {url}")),
        (Some(url), Some(ours)) => r.warn(
            "webhook_url",
            format!("Meta calls {url}, not {ours}: delivery statuses do not reach this waotp"),
            fix,
        ),
        (Some(url), None) if url.trim_end_matches('/').ends_with("/webhooks/whatsapp") => {
            r.ok("webhook_url", format!("Meta calls {url} (give --webhook-url to compare it with waotp's address)"))
        }
        (Some(url), None) => {
            r.warn("webhook_url", format!("Meta calls {url}, which is not a waotp /webhooks/whatsapp"), fix)
        }
    }
}
