//! `waotp whatsapp doctor`: checks, in the order a send needs them, what Meta knows about the
//! setup, and says for each check ok, warning or failure, with the fix. A failure means a send
//! would fail (or no webhook would arrive at all); a warning means sends work but something is
//! off or could not be checked.

use serde::Serialize;

use crate::management::{normalise_language, HealthStatus, ManagementClient, ManagementError, MetaTemplate};

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

/// What waotp is configured with.
#[derive(Debug, Clone, Default)]
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
    /// waotp's `whatsapp_messaging_limit`; `None`: unlimited.
    pub messaging_limit: Option<usize>,
    pub templates: Vec<ExpectedTemplate>,
}

/// The report: the checks in order.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub checks: Vec<Check>,
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

/// Unique recipients per 24 h for Meta's tier names; `None`: unlimited or unknown.
fn tier_limit(tier: &str) -> Option<usize> {
    match tier {
        "TIER_50" => Some(50),
        "TIER_250" => Some(250),
        "TIER_1K" => Some(1_000),
        "TIER_2K" => Some(2_000),
        "TIER_10K" => Some(10_000),
        "TIER_100K" => Some(100_000),
        _ => None,
    }
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

fn health_line(r: &mut Report, check: &'static str, what: &str, h: Option<&HealthStatus>, fix: &str) {
    match h.map(|h| h.can_send_message.as_str()) {
        Some("BLOCKED") => {
            let reasons = h.map(HealthStatus::reasons).unwrap_or_default();
            r.fail(check, format!("{what} cannot send messages (BLOCKED): {reasons}"), fix);
        }
        Some("LIMITED") => {
            let reasons = h.map(HealthStatus::reasons).unwrap_or_default();
            r.warn(check, format!("{what} can send, LIMITED: {reasons}"), fix);
        }
        Some(other) if !other.is_empty() => r.ok(check, format!("{what} can send ({other})")),
        _ => r.ok(check, format!("{what}: no health status reported")),
    }
}

async fn check_waba(client: &ManagementClient, setup: &Setup, r: &mut Report) -> Result<(), ManagementError> {
    let Some(waba) = setup.waba_id.as_deref() else {
        r.skipped("waba", "whatsapp_waba_id");
        r.skipped("number.in_waba", "whatsapp_waba_id");
        return Ok(());
    };
    match client.waba(waba).await {
        Ok(info) => {
            let name = info.name.clone().unwrap_or_default();
            health_line(
                r,
                "waba",
                &format!("WhatsApp account {waba} ({name})"),
                info.health_status.as_ref(),
                "see WhatsApp Manager → Account quality and Business settings → Payment methods",
            );
        }
        Err(e) if fatal(&e) => return Err(e),
        Err(e) => r.call_failed("waba", &format!("WhatsApp account {waba}"), &e),
    }
    match client.phone_numbers(waba).await {
        Ok(numbers) if numbers.iter().any(|n| n.id == setup.phone_number_id) => {
            r.ok("number.in_waba", format!("phone number {} belongs to WhatsApp account {waba}", setup.phone_number_id))
        }
        Ok(numbers) => r.fail(
            "number.in_waba",
            format!(
                "phone number id {} is not in WhatsApp account {waba} (it has: {})",
                setup.phone_number_id,
                numbers.iter().map(|n| n.id.as_str()).collect::<Vec<_>>().join(", ")
            ),
            "set whatsapp_phone_number_id to a number of this account (WhatsApp Manager → API setup), or \
             whatsapp_waba_id to the number's account",
        ),
        Err(e) if fatal(&e) => return Err(e),
        Err(e) => r.call_failed("number.in_waba", "listing the account's numbers", &e),
    }
    Ok(())
}

/// The number's checks; the URL Meta calls for its `messages` webhooks.
async fn check_number(
    client: &ManagementClient,
    setup: &Setup,
    r: &mut Report,
) -> Result<Option<String>, ManagementError> {
    let pnid = &setup.phone_number_id;
    let n = match client.phone_number(pnid).await {
        Ok(n) => n,
        Err(e) if fatal(&e) => return Err(e),
        Err(e) => {
            r.call_failed("number.status", &format!("phone number {pnid}"), &e);
            return Ok(None);
        }
    };
    let shown = n.display_phone_number.clone().unwrap_or_else(|| pnid.clone());
    match n.status.as_deref() {
        Some("CONNECTED") => r.ok("number.status", format!("{shown} is CONNECTED")),
        other => r.fail(
            "number.status",
            format!("{shown} is {}, not CONNECTED: sends fail", other.unwrap_or("of unknown status")),
            format!(
                "register the number for the Cloud API (POST {} with messaging_product=whatsapp and its two-step \
                 PIN), or finish its setup in WhatsApp Manager → Phone numbers",
                client.url(&format!("{pnid}/register"))
            ),
        ),
    }
    match n.platform_type.as_deref() {
        Some("CLOUD_API") => r.ok("number.platform", "on the Cloud API"),
        other => r.fail(
            "number.platform",
            format!("platform {}, not CLOUD_API", other.unwrap_or("unknown")),
            "migrate or register the number on the Cloud API (it cannot be on the WhatsApp Business app or the \
             On-Premises API at the same time)",
        ),
    }
    health_line(
        r,
        "number.health",
        &shown,
        n.health_status.as_ref(),
        "see WhatsApp Manager → Phone numbers → the number's status and Account quality",
    );
    let quality_fix = "improve message quality (users blocking or reporting the number); Meta may lower the messaging \
                       limit";
    match n.quality_rating.as_deref().unwrap_or("UNKNOWN") {
        "RED" => r.warn("number.quality", "quality rating RED: Meta may restrict the number", quality_fix),
        "YELLOW" => r.warn("number.quality", "quality rating YELLOW", quality_fix),
        q => r.ok("number.quality", format!("quality rating {q}")),
    }
    let tier = n.whatsapp_business_manager_messaging_limit.clone().unwrap_or_else(|| "unknown".into());
    match (tier_limit(&tier), setup.messaging_limit) {
        (Some(meta), ours) if ours.is_none_or(|o| o > meta) => r.warn(
            "number.messaging_limit",
            format!(
                "Meta's limit is {tier} ({meta} unique recipients per 24 h) but waotp counts to {}: sends beyond \
                 {meta} reach Meta and fail with 131064",
                ours.map_or("unlimited".into(), |o| o.to_string())
            ),
            format!("set whatsapp_messaging_limit = \"{meta}\" (WAOTP_WHATSAPP_MESSAGING_LIMIT)"),
        ),
        _ => r.ok("number.messaging_limit", format!("messaging limit {tier}")),
    }
    let level = n.throughput.as_ref().map_or("unknown", |t| t.level.as_str());
    let allowed = if level == "HIGH" { 1000 } else { 80 };
    if setup.messages_per_second > allowed {
        r.warn(
            "number.throughput",
            format!(
                "throughput {level} allows about {allowed} messages/s but whatsapp_rate is {}: Meta answers 130429",
                setup.messages_per_second
            ),
            format!("set whatsapp_rate = {allowed} (WAOTP_WHATSAPP_RATE)"),
        );
    } else {
        r.ok("number.throughput", format!("throughput {level}"));
    }
    Ok(n.webhook_configuration.as_ref().and_then(|w| w.effective()).map(str::to_owned))
}

async fn check_subscription(client: &ManagementClient, setup: &Setup, r: &mut Report) -> Result<(), ManagementError> {
    let Some(waba) = setup.waba_id.as_deref() else {
        r.skipped("subscription", "whatsapp_waba_id");
        return Ok(());
    };
    let fix = format!(
        "subscribe the app to the WhatsApp account: curl -X POST -H \"Authorization: Bearer $TOKEN\" {}",
        client.url(&format!("{waba}/subscribed_apps"))
    );
    let apps = match client.subscribed_apps(waba).await {
        Ok(apps) => apps,
        Err(e) if fatal(&e) => return Err(e),
        Err(e) => {
            r.call_failed("subscription", "reading the subscribed apps", &e);
            return Ok(());
        }
    };
    let ids: Vec<&str> =
        apps.iter().filter_map(|a| a.whatsapp_business_api_data.as_ref()).map(|d| d.id.as_str()).collect();
    match setup.app_id.as_deref() {
        None if ids.is_empty() => {
            r.fail("subscription", "no app is subscribed to the account: no webhooks arrive", fix)
        }
        None => r.warn(
            "subscription",
            format!(
                "apps {} are subscribed; whatsapp_app_id is not set, so waotp cannot tell whether one is its own",
                ids.join(", ")
            ),
            "set whatsapp_app_id (WAOTP_WHATSAPP_APP_ID)",
        ),
        Some(app) if ids.contains(&app) => {
            let over = apps
                .iter()
                .find(|a| a.whatsapp_business_api_data.as_ref().is_some_and(|d| d.id == app))
                .and_then(|a| a.override_callback_uri.as_deref())
                .map(|u| format!(", with the callback override {u}"))
                .unwrap_or_default();
            r.ok("subscription", format!("app {app} is subscribed to the account{over}"));
        }
        Some(app) => r.fail(
            "subscription",
            format!("app {app} is not subscribed to WhatsApp account {waba}: no webhook (status or template) arrives"),
            fix,
        ),
    }
    Ok(())
}

/// The app's webhook fields; the app's callback URL.
async fn check_app_fields(
    client: &ManagementClient,
    setup: &Setup,
    r: &mut Report,
) -> Result<Option<String>, ManagementError> {
    let (Some(app), Some(secret)) = (setup.app_id.as_deref(), setup.app_secret.as_deref()) else {
        let missing = if setup.app_id.is_none() { "whatsapp_app_id" } else { "whatsapp_app_secret" };
        r.skipped("app.webhook_fields", missing);
        return Ok(None);
    };
    let subs = match client.app_subscriptions(app, secret).await {
        Ok(s) => s,
        Err(e) if matches!(e, ManagementError::Transport(_)) => return Err(e),
        Err(e) => {
            r.call_failed("app.webhook_fields", "reading the app's webhook subscriptions", &e);
            return Ok(None);
        }
    };
    let Some(sub) = subs.iter().find(|s| s.object == "whatsapp_business_account") else {
        r.fail(
            "app.webhook_fields",
            "the app has no webhook for whatsapp_business_account: no status reaches waotp",
            "in the Meta app's WhatsApp → Configuration, set the callback URL to https://YOUR-WAOTP/webhooks/whatsapp \
             and subscribe the fields",
        );
        return Ok(None);
    };
    let have = sub.field_names();
    let missing: Vec<&str> =
        crate::management::WEBHOOK_FIELDS.iter().copied().filter(|f| !have.iter().any(|h| h == f)).collect();
    let fix = format!("in the Meta app's WhatsApp → Configuration → Webhook fields, subscribe {}", missing.join(", "));
    if missing.contains(&"messages") {
        r.warn(
            "app.webhook_fields",
            "not subscribed to messages: no delivery status reaches waotp (sends still go)",
            fix,
        );
    } else if !missing.is_empty() {
        r.warn(
            "app.webhook_fields",
            format!("not subscribed to {}: Meta's template and number events do not reach waotp", missing.join(", ")),
            fix,
        );
    } else {
        r.ok("app.webhook_fields", "messages and every template, number and account field");
    }
    Ok(sub.callback_url.clone())
}

/// Meta's fix for a template in `status`.
fn status_fix(status: &str, name: &str, language: &str, authentication: bool) -> String {
    match status {
        "PENDING" | "IN_APPEAL" => {
            "wait for Meta's review (usually minutes; the doctor shows APPROVED once done)".into()
        }
        "PAUSED" => "Meta paused it for low quality (sends fail with 132015): edit it to improve its quality, or \
                     switch the app to another approved template"
            .into(),
        "DISABLED" => "Meta disabled it after repeated pauses (132016): create a new template with another name".into(),
        "REJECTED" => "edit it as the rejection reason says and submit it again, or appeal in WhatsApp Manager".into(),
        "ARCHIVED" => "unarchive it in WhatsApp Manager, or create it again".into(),
        "LIMIT_EXCEEDED" => "the account is at its template limit: delete unused templates".into(),
        _ if authentication => format!("recreate it: waotp whatsapp template create --name {name} --lang {language}"),
        _ => "create it again in WhatsApp Manager".into(),
    }
}

async fn check_templates(client: &ManagementClient, setup: &Setup, r: &mut Report) -> Result<(), ManagementError> {
    let Some(waba) = setup.waba_id.as_deref() else {
        r.skipped("template", "whatsapp_waba_id");
        return Ok(());
    };
    let mut by_name: std::collections::HashMap<String, Vec<MetaTemplate>> = Default::default();
    for expected in &setup.templates {
        let subject = format!("{} ({})", expected.name, expected.language);
        let apps =
            if expected.apps.is_empty() { String::new() } else { format!(" (used by {})", expected.apps.join(", ")) };
        if !by_name.contains_key(&expected.name) {
            match client.templates(waba, Some(&expected.name)).await {
                Ok(list) => {
                    by_name
                        .insert(expected.name.clone(), list.into_iter().filter(|t| t.name == expected.name).collect());
                }
                Err(e) if fatal(&e) => return Err(e),
                Err(e) => {
                    r.call_failed("template", &format!("reading template {subject}"), &e);
                    r.checks.last_mut().expect("pushed").subject = Some(subject);
                    continue;
                }
            }
        }
        let versions = &by_name[&expected.name];
        let language = normalise_language(&expected.language);
        let mut line =
            Check { check: "template", subject: Some(subject), outcome: Outcome::Ok, detail: String::new(), fix: None };
        let Some(t) = versions.iter().find(|t| normalise_language(&t.language) == language) else {
            let have: Vec<&str> = versions.iter().map(|t| t.language.as_str()).collect();
            line.outcome = Outcome::Failure;
            line.detail = if have.is_empty() {
                format!("no template {} on WhatsApp account {waba}{apps}: sends fail with 132001", expected.name)
            } else {
                format!(
                    "template {} exists in {} but not in {}{apps}: sends in {} fail with 132001",
                    expected.name,
                    have.join(", "),
                    expected.language,
                    expected.language
                )
            };
            line.fix = Some(if expected.authentication {
                format!(
                    "create it: waotp whatsapp template create --name {} --lang {}",
                    expected.name, expected.language
                )
            } else {
                format!(
                    "create {} in {} in WhatsApp Manager, or change the app's language",
                    expected.name, expected.language
                )
            });
            r.checks.push(line);
            continue;
        };
        let mut problems: Vec<(Outcome, String, Option<String>)> = Vec::new();
        if t.status != "APPROVED" {
            let reason = t
                .rejected_reason
                .as_deref()
                .filter(|r| *r != "NONE")
                .map(|r| format!(", reason {r}"))
                .unwrap_or_default();
            problems.push((
                Outcome::Failure,
                format!("status {}{reason}, not APPROVED: sends fail", t.status),
                Some(status_fix(&t.status, &expected.name, &expected.language, expected.authentication)),
            ));
        }
        if !t.category.eq_ignore_ascii_case("AUTHENTICATION") {
            if expected.authentication {
                problems.push((
                    Outcome::Failure,
                    format!(
                        "category {}, but waotp sends it as an authentication template (code and copy-code button)",
                        t.category
                    ),
                    Some(format!(
                        "create an authentication template (waotp whatsapp template create), or register this one with \
                         its own body: waotp template add --app ID --name {} --lang {} --category utility --body …",
                        expected.name, expected.language
                    )),
                ));
            } else {
                problems.push((
                    Outcome::Warning,
                    format!(
                        "category {}: not an authentication template (no copy-code button, other pricing)",
                        t.category
                    ),
                    Some("prefer an authentication template for codes: waotp whatsapp template create".into()),
                ));
            }
        }
        if t.status == "APPROVED" {
            match client.template_health(&t.id).await {
                Ok(h) if h.as_ref().is_some_and(|h| h.can_send_message == "BLOCKED") => problems.push((
                    Outcome::Failure,
                    format!("health BLOCKED: {}", h.map(|h| h.reasons()).unwrap_or_default()),
                    Some("see the template in WhatsApp Manager".into()),
                )),
                Ok(h) if h.as_ref().is_some_and(|h| h.can_send_message == "LIMITED") => problems.push((
                    Outcome::Warning,
                    format!("health LIMITED: {}", h.map(|h| h.reasons()).unwrap_or_default()),
                    Some("see the template in WhatsApp Manager".into()),
                )),
                Ok(_) => {}
                Err(e) if fatal(&e) => return Err(e),
                Err(e) => problems.push((Outcome::Warning, format!("health not read: {e}"), None)),
            }
        }
        if matches!(t.quality(), "RED" | "YELLOW") {
            problems.push((
                Outcome::Warning,
                format!("quality {}: Meta may pause it", t.quality()),
                Some("name a backup template, and review why users block or report these messages".into()),
            ));
        }
        if problems.is_empty() {
            line.detail = format!("APPROVED, AUTHENTICATION, quality {}{apps}", t.quality());
        } else {
            line.outcome = problems.iter().map(|p| p.0).max().expect("some");
            line.detail = format!("{}{apps}", problems.iter().map(|p| p.1.as_str()).collect::<Vec<_>>().join("; "));
            line.fix = problems.iter().filter(|p| p.0 == line.outcome).find_map(|p| p.2.clone());
        }
        r.checks.push(line);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers() {
        assert_eq!(tier_limit("TIER_2K"), Some(2000));
        assert_eq!(tier_limit("TIER_UNLIMITED"), None);
        assert_eq!(tier_limit("SOMETHING_NEW"), None);
    }
}
