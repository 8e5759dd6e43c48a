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
use super::layout::{page, Flash, Notice, OnPage, PageResult};
use super::sessions::app_select;
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
    let notice = q.ok().and_then(|Query(q)| Notice::from_query(&q.msg));
    render(&state, notice.map(Into::into), StatusCode::OK).await
}

/// After a change: back to the page with its notice (post, redirect, get).
fn done(notice: Notice) -> Response {
    Redirect::to(&format!("/dashboard/manage?msg={}", notice.code())).into_response()
}

/// Why a change was not made: a reason to show on the page again (as a 400), or a failure.
enum Change {
    Refused(String),
    Failed(super::layout::PageError),
}

impl From<String> for Change {
    fn from(reason: String) -> Self {
        Change::Refused(reason)
    }
}

impl From<&str> for Change {
    fn from(reason: &str) -> Self {
        Change::Refused(reason.to_owned())
    }
}

impl From<super::layout::PageError> for Change {
    fn from(e: super::layout::PageError) -> Self {
        Change::Failed(e)
    }
}

/// The answer to a change: its page, or the Manage page again with the reason, as a 400.
async fn answer(state: &AppState, result: Result<Response, Change>) -> PageResult {
    match result {
        Ok(r) => Ok(r),
        Err(Change::Failed(e)) => Err(e),
        Err(Change::Refused(reason)) => {
            render(state, Some(Flash::Error(format!("Validation error: {reason}"))), StatusCode::BAD_REQUEST).await
        }
    }
}

/// The posted form, or why it cannot be read.
fn form<T>(f: super::F<T>) -> Result<T, Change> {
    f.map(|Form(f)| f).map_err(|e| Change::Refused(e.body_text()))
}

fn app_id(v: &Option<String>) -> Result<Uuid, Change> {
    given(v).and_then(|s| Uuid::parse_str(s).ok()).ok_or_else(|| "choose an app".into())
}

/// An optional quota field: blank is unlimited.
fn quota(v: &Option<String>) -> Result<Option<i64>, Change> {
    given(v)
        .map(|q| {
            q.parse::<i64>()
                .ok()
                .filter(|q| *q >= 0)
                .ok_or_else(|| "quota must be a whole number, 0 or more, or blank".into())
        })
        .transpose()
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

pub async fn create_app(_: Operator, State(state): State<AppState>, f: super::F<NewApp>) -> PageResult {
    let result = async {
        let f = form(f)?;
        let quota = quota(&f.quota)?;
        let now = state.clock.now_ms();
        let name = f.name.unwrap_or_default();
        let new = crate::apps::create_app(state.store.as_ref(), &state.key, &name, AppSettings::default(), quota, now)
            .await
            .map_err(|e| match e {
                crate::apps::CreateAppError::Invalid(reason) => Change::Refused(reason),
                store => Change::Failed(super::layout::PageError("manage", store.into())),
            })?;
        tracing::info!(app_id = %new.app.app_id, "app created from the dashboard");
        Ok(key_page("App created", &new.app.name, new.app.app_id, &new.api_key, Some(&new.callback_secret)))
    };
    answer(&state, result.await).await
}

pub async fn rotate_key(_: Operator, State(state): State<AppState>, Path(id): Path<String>) -> PageResult {
    let app_id = Uuid::parse_str(&id).map_err(|_| ApiError::validation("app id must be a UUID")).on("manage")?;
    let app = state.store.get_app(app_id).await.on("manage")?.ok_or(ApiError::AppNotFound).on("manage")?;
    let key = crate::apps::rotate_api_key(state.store.as_ref(), app_id)
        .await
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

pub async fn set_quota(_: Operator, State(state): State<AppState>, f: super::F<QuotaForm>) -> PageResult {
    let result = async {
        let f = form(f)?;
        let (app_id, quota) = (app_id(&f.app)?, quota(&f.quota)?);
        if !state.store.set_quota(app_id, quota).await.on("manage")? {
            return Err("no such app".into());
        }
        Ok(done(if quota.is_some() { Notice::QuotaSet } else { Notice::QuotaRemoved }))
    };
    answer(&state, result.await).await
}

#[derive(Deserialize)]
pub struct TemplateForm {
    app: Option<String>,
    name: Option<String>,
    language: Option<String>,
    category: Option<String>,
    body: Option<String>,
}

pub async fn put_template(_: Operator, State(state): State<AppState>, f: super::F<TemplateForm>) -> PageResult {
    let result = async {
        let f = form(f)?;
        let app_id = app_id(&f.app)?;
        let template = TemplateInput {
            name: given(&f.name).unwrap_or_default().to_owned(),
            language: given(&f.language).unwrap_or_default().to_owned(),
            category: given(&f.category).unwrap_or("utility").to_owned(),
            body: given(&f.body).map(|b| b.replace("\r\n", "\n")),
            code_placeholder: 1,
            copy_code_button: None,
        }
        .into_template()?;
        if !state.store.put_template(app_id, template.clone()).await.on("manage")? {
            return Err("no such app".into());
        }
        state.invalidate_app(app_id);
        Ok(done(Notice::TemplateSaved))
    };
    answer(&state, result.await).await
}

#[derive(Deserialize)]
pub struct TemplateKey {
    app: Option<String>,
    name: Option<String>,
    language: Option<String>,
}

pub async fn delete_template(_: Operator, State(state): State<AppState>, f: super::F<TemplateKey>) -> PageResult {
    let result = async {
        let f = form(f)?;
        let app_id = app_id(&f.app)?;
        let (name, language) = (given(&f.name).unwrap_or_default(), given(&f.language).unwrap_or_default());
        if !state.store.delete_template(app_id, name, language).await.on("manage")? {
            return Err("no such template".into());
        }
        state.invalidate_app(app_id);
        Ok(done(Notice::TemplateDeleted))
    };
    answer(&state, result.await).await
}

#[derive(Deserialize)]
pub struct BlockForm {
    entry: Option<String>,
    app: Option<String>,
}

/// A blocklist form's entry (`62812*` is a prefix) and scope (no app: every app).
fn block_entry(f: &BlockForm) -> Result<(String, bool, Option<Uuid>), Change> {
    let (entry, is_prefix) = parse_block_entry(given(&f.entry).unwrap_or_default())?;
    let scope = given(&f.app).map(|_| app_id(&f.app)).transpose()?;
    Ok((entry, is_prefix, scope))
}

pub async fn block(_: Operator, State(state): State<AppState>, f: super::F<BlockForm>) -> PageResult {
    let result = async {
        let (entry, is_prefix, scope) = block_entry(&form(f)?)?;
        if let Some(id) = scope {
            state.store.get_app(id).await.on("manage")?.ok_or("no such app")?;
        }
        let e = BlockEntry { app_id: scope, entry, is_prefix, created_at_ms: state.clock.now_ms() };
        let added = state.store.block(e).await.on("manage")?;
        Ok(done(if added { Notice::Blocked } else { Notice::AlreadyBlocked }))
    };
    answer(&state, result.await).await
}

pub async fn unblock(_: Operator, State(state): State<AppState>, f: super::F<BlockForm>) -> PageResult {
    let result = async {
        let (entry, is_prefix, scope) = block_entry(&form(f)?)?;
        if !state.store.unblock(scope, &entry, is_prefix).await.on("manage")? {
            return Err("that entry is not blocked".into());
        }
        Ok(done(Notice::Unblocked))
    };
    answer(&state, result.await).await
}
