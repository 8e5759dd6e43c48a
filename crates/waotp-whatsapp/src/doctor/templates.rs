//! The doctor's template checks: each template an app sends, in each of its languages.

use super::{fatal, Check, Outcome, Report, Setup};
use crate::management::{normalise_language, ManagementClient, ManagementError, MetaTemplate};

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

pub(super) async fn check_templates(
    client: &ManagementClient,
    setup: &Setup,
    r: &mut Report,
) -> Result<(), ManagementError> {
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
        r.template_statuses.push((expected.name.clone(), t.language.clone(), t.status.clone()));
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
