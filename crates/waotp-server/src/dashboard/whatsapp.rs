//! The WhatsApp page: the sender's health as Meta last reported it (each template's status,
//! quality and category per language, the numbers, the account), each app's templates and
//! backups, and the latest management events.

use axum::extract::State;
use axum::http::StatusCode;
use maud::{html, Markup};
use waotp_store::{HealthFact, HealthKind};

use super::auth::Operator;
use super::layout::{page, OnPage, PageResult};
use super::time;
use crate::sender_health::facts::{quality_rank, usable_status};
use crate::AppState;

/// Events shown.
const EVENTS: usize = 50;

fn badge(f: &HealthFact) -> Markup {
    let class = match (f.kind, f.aspect.as_str()) {
        (HealthKind::Template, "status") if usable_status(&f.value) => "badge good",
        (HealthKind::Template, "status") => "badge bad",
        (_, "quality" | "quality_rating") => match quality_rank(&f.value) {
            3 => "badge good",
            2 => "badge wait",
            1 => "badge bad",
            _ => "badge",
        },
        _ => "badge",
    };
    html! { span class=(class) { (f.value) } }
}

pub async fn show(_: Operator, State(state): State<AppState>) -> PageResult {
    // This node's copy is at most a second old; read the store so the page is exact.
    state.sender_health.refresh().await.on("whatsapp")?;
    let snapshot = state.sender_health.snapshot();
    let events = state.store.health_events(EVENTS).await.on("whatsapp")?;
    let apps = state.store.list_apps().await.on("whatsapp")?;
    let of = |kind| snapshot.facts.iter().filter(move |f: &&HealthFact| f.kind == kind);
    let limit = match snapshot_limit(&state) {
        Some(Some(n)) => format!("{n} unique recipients per 24 h"),
        Some(None) => "unlimited".to_owned(),
        None => "not announced by Meta yet".to_owned(),
    };
    // Without the account's id no management webhook is applied: say so where it shows.
    let unfollowed = state.whatsapp.as_ref().is_some_and(|w| w.waba_id.is_none());
    let body = html! {
        h1 { "WhatsApp" }
        @if unfollowed {
            p.flash.error #health-unfollowed { "Meta's management webhooks are ignored: " code { "whatsapp_waba_id" }
                " is not set. Set it to the number's WhatsApp Business Account to follow the templates, the number, \
                 the account and the messaging limit." }
        }
        p { "What Meta's management webhooks (and sends Meta refused) say of the sender. Templates not \
             listed have no news: they are sent as configured. Messaging limit from Meta: " strong #messaging-limit { (limit) } "." }
        h2 { "Templates" }
        div.scroll { table #health-templates {
            thead { tr { th { "Template (language)" } th { "Property" } th { "Value" } th { "Reason" } th { "Since" } th { "Source" } } }
            tbody {
                @for f in of(HealthKind::Template) { tr {
                    td { (f.subject) } td { (f.aspect) } td { (badge(f)) }
                    td { (f.reason.as_deref().unwrap_or("")) } td { (time(f.at_ms)) } td { (f.source) }
                } }
                @if of(HealthKind::Template).next().is_none() { tr { td colspan="6" { "No news of any template yet." } } }
            }
        } }
        h2 { "Numbers and account" }
        div.scroll { table #health-sender {
            thead { tr { th { "Subject" } th { "Property" } th { "Value" } th { "Reason" } th { "Since" } } }
            tbody {
                @for f in of(HealthKind::Number).chain(of(HealthKind::Account)) { tr {
                    td { (f.kind.as_str()) " " (f.subject) } td { (f.aspect) } td { (badge(f)) }
                    td { (f.reason.as_deref().unwrap_or("")) } td { (time(f.at_ms)) }
                } }
                @if of(HealthKind::Number).chain(of(HealthKind::Account)).next().is_none() {
                    tr { td colspan="5" { "No news of the number or the account yet." } }
                }
            }
        } }
        h2 { "Apps and their backup templates" }
        div.scroll { table #health-apps {
            thead { tr { th { "App" } th { "Template" } th { "Language" } th { "Backups, in order" } } }
            tbody { @for a in &apps { tr {
                td { (a.name) } td { (a.settings.template_name) } td { (a.settings.lang_code) }
                td { @if a.settings.backup_templates.is_empty() { "none" } @else { (a.settings.backup_templates.join(", ")) } }
            } } }
        } }
        h2 { "Latest events" }
        div.scroll { table #health-events {
            thead { tr { th { "Received" } th { "Field" } th { "Event" } } }
            tbody {
                @for e in &events { tr { td { (time(e.received_at_ms)) } td { (e.field) } td { (e.summary) } } }
                @if events.is_empty() { tr { td colspan="3" { "No management webhook received yet." } } }
            }
        } }
    };
    Ok(page(StatusCode::OK, "whatsapp", "WhatsApp", None, body))
}

fn snapshot_limit(state: &AppState) -> Option<Option<u64>> {
    state.sender_health.learned_limit()
}
