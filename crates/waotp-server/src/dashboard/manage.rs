//! Manage: apps (create; rotate the API key, shown once), quotas, templates, blocklists. The
//! same rules as the admin API: `crate::apps` and `crate::admin`'s parsers.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::html;
use serde::Deserialize;
use uuid::Uuid;
use waotp_store::{AppSettings, BlockEntry};

use super::auth::Operator;
use super::layout::{page, Flash, OnPage, PageResult};
use super::sessions::{app_select, encode};
use super::{given, time, AppNames};
use crate::admin::{parse_block_entry, TemplateInput};
use crate::{ApiError, AppState};

#[derive(Deserialize, Default)]
pub struct FlashQuery {
    msg: Option<String>,
}

pub async fn render(state: &AppState, flash: Option<Flash>, status: StatusCode) -> PageResult {
    let apps = state.store.list_apps().await.on("manage")?;
    let names = AppNames::new(&apps);
    let mut templates = Vec::new();
    for app in &apps {
        for t in state.store.list_templates(app.app_id).await.on("manage")? {
            templates.push((app.app_id, t));
        }
    }
    let blocked = state.store.blocklist().await.on("manage")?;
    let body = html! {
        h1 { "Manage" }
        @if let Some(f) = flash { (f) }
        h2 { "Apps" }
        div.scroll { table #apps {
            thead { tr { th { "Name" } th { "App id" } th.num { "Quota" } th { "Created (UTC)" } th { "API key" } } }
            tbody { @for a in &apps { tr data-app=(a.app_id) {
                td { (a.name) }
                td { code { (a.app_id) } }
                td.num { @match a.quota { Some(q) => { (q) }, None => { "unlimited" } } }
                td { (time(a.created_at_ms)) }
                td { form.inline method="post" action={ "/dashboard/manage/apps/" (a.app_id) "/api-key" } {
                    button.secondary type="submit" aria-label={ "Rotate the API key of " (a.name) } { "Rotate key" } } }
            } } }
        } }
        div.card {
            h2 { "New app" }
            form method="post" action="/dashboard/manage/apps" { div.fields {
                div.field { label for="new-name" { "Name" } input #new-name name="name" required maxlength="200"; }
                div.field { label for="new-quota" { "Quota (blank: unlimited)" }
                    input #new-quota name="quota" type="number" min="0"; }
                div.field { button type="submit" { "Create app" } }
            } }
        }
        div.card {
            h2 { "Quota" }
            form method="post" action="/dashboard/manage/quota" { div.fields {
                div.field { label for="quota-app" { "App" } (app_select("quota-app", "app", &names, None, None)) }
                div.field { label for="quota" { "Production sends left (blank: unlimited)" }
                    input #quota name="quota" type="number" min="0"; }
                div.field { button type="submit" { "Set quota" } }
            } }
        }
        h2 { "Templates" }
        div.scroll { table #templates {
            thead { tr { th { "App" } th { "Name" } th { "Language" } th { "Category" } th { "Body" } th { "" } } }
            tbody { @for (app_id, t) in &templates { tr {
                td { (names.name(app_id)) } td { code { (t.name) } } td { (t.language) }
                td { (format!("{:?}", t.category).to_lowercase()) } td { (t.body) }
                td { form.inline method="post" action="/dashboard/manage/templates/delete" {
                    input type="hidden" name="app" value=(app_id);
                    input type="hidden" name="name" value=(t.name);
                    input type="hidden" name="language" value=(t.language);
                    button.secondary type="submit" aria-label={ "Delete template " (t.name) " " (t.language) } { "Delete" }
                } }
            } } }
        } }
        div.card {
            h2 { "Add or replace a template" }
            form method="post" action="/dashboard/manage/templates" { div.fields {
                div.field { label for="tpl-app" { "App" } (app_select("tpl-app", "app", &names, None, None)) }
                div.field { label for="tpl-name" { "Name" } input #tpl-name name="name" required; }
                div.field { label for="tpl-language" { "Language" } input #tpl-language name="language" value="en" required; }
                div.field { label for="tpl-category" { "Category" }
                    select #tpl-category name="category" {
                        option value="authentication" { "authentication (Meta's fixed text)" }
                        option value="utility" { "utility (your text)" }
                    } }
            }
            div.field { label for="tpl-body" { "Body (utility: the code goes in {{1}})" }
                textarea #tpl-body name="body" {} }
            p { button type="submit" { "Save template" } } }
        }
        h2 { "Blocklist" }
        div.scroll { table #blocklist {
            thead { tr { th { "Entry" } th { "Applies to" } th { "" } } }
            tbody { @for e in &blocked {
                @let shown = if e.is_prefix { format!("{}*", e.entry) } else { e.entry.clone() };
                tr {
                    td.mono { (shown) }
                    td { @match &e.app_id { Some(id) => { (names.name(id)) }, None => { "every app" } } }
                    td { form.inline method="post" action="/dashboard/manage/blocklist/delete" {
                        input type="hidden" name="entry" value=(shown);
                        @if let Some(id) = &e.app_id { input type="hidden" name="app" value=(id); }
                        button.secondary type="submit" aria-label={ "Unblock " (shown) } { "Unblock" }
                    } }
                }
            } }
        } }
        div.card {
            h2 { "Block a number or prefix" }
            form method="post" action="/dashboard/manage/blocklist" { div.fields {
                div.field { label for="block-entry" { "Number, or prefix ending in *" }
                    input #block-entry name="entry" required placeholder="62812*"; }
                div.field { label for="block-app" { "Applies to" } (app_select("block-app", "app", &names, None, Some("Every app"))) }
                div.field { button type="submit" { "Block" } }
            } }
        }
    };
    Ok(page(status, "manage", "Manage", None, body))
}

pub async fn show(_: Operator, State(state): State<AppState>, q: super::Q<FlashQuery>) -> PageResult {
    let flash = q.ok().and_then(|Query(q)| given(&q.msg).map(|m| Flash::Ok(m.to_owned())));
    render(&state, flash, StatusCode::OK).await
}

/// After a change: back to the page with a message (post, redirect, get).
fn done(msg: &str) -> Response {
    Redirect::to(&format!("/dashboard/manage?msg={}", encode(msg))).into_response()
}

/// A refused change: the page again, with the reason, as a 400.
async fn refused(state: &AppState, reason: impl Into<String>) -> PageResult {
    render(state, Some(Flash::Error(format!("Validation error: {}", reason.into()))), StatusCode::BAD_REQUEST).await
}

fn app_id(v: &Option<String>) -> Result<Uuid, String> {
    given(v).and_then(|s| Uuid::parse_str(s).ok()).ok_or_else(|| "choose an app".to_owned())
}

/// A page showing a new API key, the only time it is ever shown.
fn key_page(title: &str, app_name: &str, app_id: Uuid, key: &str, secret: Option<&str>) -> Response {
    page(
        StatusCode::OK,
        "manage",
        title,
        None,
        html! {
            h1 { (title) }
            (Flash::Ok(format!("{app_name}: copy the API key now — it is stored only as a hash and will not be shown again.")))
            div.card {
                dl.facts {
                    dt { "App-ID" } dd { code #app-id { (app_id) } }
                    dt { "API-Key" } dd { code.secret #api-key { (key) } }
                    @if let Some(s) = secret { dt { "Callback signing secret" } dd { code #callback-secret { (s) } } }
                }
            }
            p { a href="/dashboard/manage" { "Back to Manage" } }
        },
    )
}

#[derive(Deserialize)]
pub struct NewApp {
    name: Option<String>,
    quota: Option<String>,
}

pub async fn create_app(_: Operator, State(state): State<AppState>, form: super::F<NewApp>) -> PageResult {
    let Ok(Form(f)) = form else { return refused(&state, "name is required").await };
    let quota = match given(&f.quota).map(|q| q.parse::<i64>().ok().filter(|q| *q >= 0)) {
        None => None,
        Some(Some(q)) => Some(q),
        Some(None) => return refused(&state, "quota must be a whole number, 0 or more").await,
    };
    let name = f.name.unwrap_or_default();
    match crate::apps::create_app(state.store.as_ref(), &name, AppSettings::default(), quota, state.clock.now_ms())
        .await
    {
        Ok((app, key)) => {
            tracing::info!(app_id = %app.app_id, "app created from the dashboard");
            Ok(key_page("App created", &app.name, app.app_id, &key, Some(&app.callback_secret)))
        }
        Err(e) => refused(&state, e.to_string()).await,
    }
}

pub async fn rotate_key(_: Operator, State(state): State<AppState>, Path(id): Path<String>) -> PageResult {
    let app_id = Uuid::parse_str(&id).map_err(|_| ApiError::validation("app id must be a UUID")).on("manage")?;
    let app = state.store.get_app(app_id).await.on("manage")?.ok_or(ApiError::AppNotFound).on("manage")?;
    let key = crate::apps::rotate_api_key(state.store.as_ref(), app_id)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))
        .on("manage")?
        .ok_or(ApiError::AppNotFound)
        .on("manage")?;
    state.invalidate_app(app_id);
    tracing::info!(%app_id, "API key rotated from the dashboard");
    Ok(key_page("API key rotated", &app.name, app_id, &key, None))
}

#[derive(Deserialize)]
pub struct QuotaForm {
    app: Option<String>,
    quota: Option<String>,
}

pub async fn set_quota(_: Operator, State(state): State<AppState>, form: super::F<QuotaForm>) -> PageResult {
    let Ok(Form(f)) = form else { return refused(&state, "choose an app").await };
    let app_id = match app_id(&f.app) {
        Ok(id) => id,
        Err(e) => return refused(&state, e).await,
    };
    let quota = match given(&f.quota).map(|q| q.parse::<i64>().ok().filter(|q| *q >= 0)) {
        None => None,
        Some(Some(q)) => Some(q),
        Some(None) => return refused(&state, "quota must be a whole number, 0 or more, or blank").await,
    };
    if !state.store.set_quota(app_id, quota).await.on("manage")? {
        return refused(&state, "no such app").await;
    }
    Ok(done(&match quota {
        Some(q) => format!("Quota set to {q}."),
        None => "Quota removed: unlimited.".to_owned(),
    }))
}

#[derive(Deserialize)]
pub struct TemplateForm {
    app: Option<String>,
    name: Option<String>,
    language: Option<String>,
    category: Option<String>,
    body: Option<String>,
}

pub async fn put_template(_: Operator, State(state): State<AppState>, form: super::F<TemplateForm>) -> PageResult {
    let Ok(Form(f)) = form else { return refused(&state, "choose an app").await };
    let app_id = match app_id(&f.app) {
        Ok(id) => id,
        Err(e) => return refused(&state, e).await,
    };
    let input = TemplateInput {
        name: given(&f.name).unwrap_or_default().to_owned(),
        language: given(&f.language).unwrap_or_default().to_owned(),
        category: given(&f.category).unwrap_or("utility").to_owned(),
        body: given(&f.body).map(|b| b.replace("\r\n", "\n")),
        code_placeholder: 1,
        copy_code_button: None,
    };
    let template = match input.into_template() {
        Ok(t) => t,
        Err(e) => return refused(&state, e).await,
    };
    if !state.store.put_template(app_id, template.clone()).await.on("manage")? {
        return refused(&state, "no such app").await;
    }
    state.invalidate_app(app_id);
    Ok(done(&format!("Template {} ({}) saved.", template.name, template.language)))
}

#[derive(Deserialize)]
pub struct TemplateKey {
    app: Option<String>,
    name: Option<String>,
    language: Option<String>,
}

pub async fn delete_template(_: Operator, State(state): State<AppState>, form: super::F<TemplateKey>) -> PageResult {
    let Ok(Form(f)) = form else { return refused(&state, "choose a template").await };
    let app_id = match app_id(&f.app) {
        Ok(id) => id,
        Err(e) => return refused(&state, e).await,
    };
    let (name, language) = (given(&f.name).unwrap_or_default(), given(&f.language).unwrap_or_default());
    if !state.store.delete_template(app_id, name, language).await.on("manage")? {
        return refused(&state, "no such template").await;
    }
    state.invalidate_app(app_id);
    Ok(done(&format!("Template {name} ({language}) deleted.")))
}

#[derive(Deserialize)]
pub struct BlockForm {
    entry: Option<String>,
    app: Option<String>,
}

pub async fn block(_: Operator, State(state): State<AppState>, form: super::F<BlockForm>) -> PageResult {
    let Ok(Form(f)) = form else { return refused(&state, "entry is required").await };
    let (entry, is_prefix) = match parse_block_entry(given(&f.entry).unwrap_or_default()) {
        Ok(e) => e,
        Err(e) => return refused(&state, e).await,
    };
    let scope = match given(&f.app) {
        None => None,
        Some(_) => match app_id(&f.app) {
            Ok(id) if state.store.get_app(id).await.on("manage")?.is_some() => Some(id),
            _ => return refused(&state, "no such app").await,
        },
    };
    let e = BlockEntry { app_id: scope, entry, is_prefix, created_at_ms: state.clock.now_ms() };
    let added = state.store.block(e).await.on("manage")?;
    Ok(done(if added { "Blocked." } else { "It was already blocked." }))
}

pub async fn unblock(_: Operator, State(state): State<AppState>, form: super::F<BlockForm>) -> PageResult {
    let Ok(Form(f)) = form else { return refused(&state, "entry is required").await };
    let (entry, is_prefix) = match parse_block_entry(given(&f.entry).unwrap_or_default()) {
        Ok(e) => e,
        Err(e) => return refused(&state, e).await,
    };
    let scope = match given(&f.app) {
        None => None,
        Some(_) => match app_id(&f.app) {
            Ok(id) => Some(id),
            Err(e) => return refused(&state, e).await,
        },
    };
    if !state.store.unblock(scope, &entry, is_prefix).await.on("manage")? {
        return refused(&state, "that entry is not blocked").await;
    }
    Ok(done("Unblocked."))
}
