//! The doctor's checks of the WhatsApp account, the number, the app's subscription and its
//! webhook fields.

use super::{fatal, Report, Setup};
use crate::management::{HealthStatus, ManagementClient, ManagementError};

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

pub(super) async fn check_waba(
    client: &ManagementClient,
    setup: &Setup,
    r: &mut Report,
) -> Result<(), ManagementError> {
    let Some(waba) = setup.waba_id.as_deref() else {
        r.warn(
            "waba",
            "not checked: whatsapp_waba_id is not set; without it the server ignores Meta's management webhooks \
             (template status, the number's quality, the account, the messaging limit)",
            "set whatsapp_waba_id (WAOTP_WHATSAPP_WABA_ID) to the number's WhatsApp Business Account (WhatsApp \
             Manager → API setup) to check it and to follow the sender's health",
        );
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
pub(super) async fn check_number(
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
        (_, None) if setup.messaging_limit_from_meta => r.ok(
            "number.messaging_limit",
            format!("messaging limit {tier}; waotp follows the limit Meta announces by webhook"),
        ),
        (Some(meta), ours) if ours.is_none_or(|o| o > meta) => r.warn(
            "number.messaging_limit",
            format!(
                "Meta's limit is {tier} ({meta} unique recipients per 24 h) but waotp counts to {}: sends beyond \
                 {meta} reach Meta, which refuses them",
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

pub(super) async fn check_subscription(
    client: &ManagementClient,
    setup: &Setup,
    r: &mut Report,
) -> Result<(), ManagementError> {
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
pub(super) async fn check_app_fields(
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
    let missing: Vec<&str> = crate::management::webhook_fields().filter(|f| !have.iter().any(|h| h == f)).collect();
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
