//! The admin API for operators (`/admin/…`, `Authorization: Bearer <admin token>`): apps, keys,
//! templates, quotas, blocklists, sessions and their callback logs. The CLI uses it when given
//! a server URL; the same JSON shapes come out of the CLI when it works on the database.

use axum::extract::FromRequestParts;
use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;
use waotp_core::{AttemptFailure, CallbackMode, Category, RuleMode, Status, Template};
use waotp_store::{AppRecord, AppSettings, BlockEntry, SessionRecord, Store};

use crate::clock::rfc3339;
use crate::token_guesses::Refused;
use crate::{ApiError, AppState};

/// Changes to an app's settings; absent fields stay as they are.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_length: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_limit: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lang_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub return_code: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_mode: Option<CallbackMode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_signing: Option<bool>,
    /// `null` removes the limit.
    #[serde(default, deserialize_with = "nullable")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rps_limit: Option<Option<u32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msisdn_send_limit: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msisdn_send_window: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msisdn_verify_limit: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msisdn_verify_window: Option<u32>,
    #[serde(default, deserialize_with = "nullable")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_send_limit: Option<Option<u32>>,
    /// Calling codes; empty: every country.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_countries: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequential_mode: Option<RuleMode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversion_mode: Option<RuleMode>,
    /// Template names tried in order when the app's template is unusable; empty: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_templates: Option<Vec<String>>,
    /// Reverse verification's prefilled texts by language (`{code}` once in each); they
    /// replace the app's; `{}`: waotp's defaults.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reverse_texts: Option<std::collections::BTreeMap<String, String>>,
    /// The text reply after a reverse verification; `null`: none (the reaction only).
    #[serde(default, deserialize_with = "nullable")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reverse_reply: Option<Option<String>>,
    /// Billable messages per calendar month (UTC) before sends (and, with a `reverse_reply`,
    /// reverse starts) are refused (`billable_ceiling_reached`); `null`: no ceiling.
    #[serde(default, deserialize_with = "nullable")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub billable_ceiling: Option<Option<u64>>,
}

/// Tells a field set to `null` (`Some(None)`) from an absent one (`None`).
fn nullable<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

impl SettingsPatch {
    pub fn apply(&self, mut s: AppSettings) -> AppSettings {
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = &self.$field { s.$field = v.clone(); } )* };
        }
        set!(
            code_length,
            time_limit,
            template_name,
            lang_code,
            return_code,
            callback_mode,
            callback_signing,
            rps_limit,
            msisdn_send_limit,
            msisdn_send_window,
            msisdn_verify_limit,
            msisdn_verify_window,
            ip_send_limit,
            allowed_countries,
            sequential_mode,
            conversion_mode,
            backup_templates,
            reverse_reply,
            billable_ceiling
        );
        if let Some(texts) = &self.reverse_texts {
            s.reverse_texts = texts.iter().map(|(lang, text)| (lang.clone(), text.clone())).collect();
        }
        s
    }
}

/// An app as operators see it (never its key or secrets).
pub fn app_json(app: &AppRecord) -> Value {
    let s = &app.settings;
    json!({
        "app_id": app.app_id,
        "name": app.name,
        "code_length": s.code_length,
        "time_limit": s.time_limit,
        "template_name": s.template_name,
        "lang_code": s.lang_code,
        "return_code": s.return_code,
        "callback_mode": s.callback_mode.as_str(),
        "callback_signing": s.callback_signing,
        "quota": app.quota,
        "rps_limit": s.rps_limit,
        "msisdn_send_limit": s.msisdn_send_limit,
        "msisdn_send_window": s.msisdn_send_window,
        "msisdn_verify_limit": s.msisdn_verify_limit,
        "msisdn_verify_window": s.msisdn_verify_window,
        "ip_send_limit": s.ip_send_limit,
        "allowed_countries": s.allowed_countries,
        "sequential_mode": s.sequential_mode.as_str(),
        "conversion_mode": s.conversion_mode.as_str(),
        "backup_templates": s.backup_templates,
        "reverse_texts": s.reverse_texts.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
        "reverse_reply": s.reverse_reply,
        "billable_ceiling": s.billable_ceiling,
        "whatsapp_phone_number_id": app.sender.as_ref().map(|w| w.phone_number_id.clone()),
        "created_at": rfc3339(app.created_at_ms),
    })
}

/// A session as operators see it (never the code), msisdn in full: the operator's tool.
pub fn session_json(s: &SessionRecord) -> Value {
    json!({
        "session_id": s.session_id,
        "app_id": s.app_id,
        "msisdn": s.msisdn.as_str(),
        "challenge": s.challenge,
        "state": s.state.as_str(),
        "status": s.status.code(),
        "status_name": s.status.name(),
        "wrong_attempts": s.wrong_attempts,
        "try_count": s.try_count,
        "template_name": s.template_name,
        "lang_code": s.lang_code,
        "callback_url": s.callback_url,
        "provider_id": s.provider_id,
        "error_code": s.error_code,
        "error_text": s.error_text,
        "not_requested": s.not_requested,
        "created_at": rfc3339(s.created_at_ms),
        "expires_at": rfc3339(s.expires_at_ms),
    })
}

/// A template from the admin API or the CLI: the authentication body by default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateInput {
    pub name: String,
    pub language: String,
    #[serde(default = "utility")]
    pub category: String,
    pub body: Option<String>,
    #[serde(default = "one")]
    pub code_placeholder: u32,
    pub copy_code_button: Option<bool>,
}

fn utility() -> String {
    "utility".into()
}

fn one() -> u32 {
    1
}

impl TemplateInput {
    pub fn into_template(self) -> Result<Template, String> {
        let category = Category::parse(&self.category)
            .ok_or_else(|| format!("category must be authentication or utility, not {:?}", self.category))?;
        let body = match (self.body, category) {
            (Some(b), _) => b,
            (None, Category::Authentication) => waotp_core::template::AUTHENTICATION_BODY.to_owned(),
            (None, Category::Utility) => return Err("a utility template needs a body".into()),
        };
        let t = Template {
            name: self.name,
            language: self.language,
            category,
            body,
            code_placeholder: self.code_placeholder,
            copy_code_button: self.copy_code_button.unwrap_or(category == Category::Authentication),
        };
        t.validate().map_err(|e| e.to_string())?;
        Ok(t)
    }
}

/// `6281234567890` (a valid number) or `62812*` (a prefix).
pub fn parse_block_entry(raw: &str) -> Result<(String, bool), String> {
    let raw = raw.trim().trim_start_matches('+');
    if let Some(prefix) = raw.strip_suffix('*') {
        if prefix.is_empty() || prefix.len() > 15 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err("a prefix is 1 to 15 digits followed by *, e.g. 62812*".into());
        }
        return Ok((prefix.to_owned(), true));
    }
    let number = waotp_core::Msisdn::parse(raw).map_err(|e| format!("{raw}: {e} (end a prefix with *)"))?;
    Ok((number.as_str().to_owned(), false))
}

pub fn block_json(e: &BlockEntry) -> Value {
    json!({ "app_id": e.app_id, "entry": e.entry, "prefix": e.is_prefix })
}

/// Who reads a callback log: an app sees coarse attempt outcomes (the HTTP status its receiver
/// answered, or an [`AttemptFailure`] word), the operator the detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogReader {
    App,
    Operator,
}

pub fn callbacks_json(list: &[waotp_store::CallbackRecord], reader: LogReader) -> Value {
    Value::Array(
        list.iter()
            .map(|c| {
                json!({
                    "status": c.status.code(),
                    "status_name": c.status.name(),
                    "url": c.url,
                    "webhook_id": c.webhook_id,
                    "state": c.shown_state(),
                    "attempts": c.attempts,
                    "happened_at": rfc3339(c.happened_at_ms),
                    // `null` once settled, and while held behind an earlier status of the session.
                    "next_attempt_at": c.due_at_ms().map(rfc3339),
                    "log": c.log.iter().map(|a| attempt_json(a, reader)).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

fn attempt_json(a: &waotp_store::AttemptRecord, reader: LogReader) -> Value {
    let (error, latency_ms) = match (reader, a.http_status) {
        (LogReader::Operator, _) => (a.error.clone(), Some(a.latency_ms)),
        (LogReader::App, Some(_)) => (None, Some(a.latency_ms)),
        // How long a failed connection took would tell a closed port from a missing host.
        (LogReader::App, None) => (a.error.as_deref().map(|e| AttemptFailure::of_logged(e).as_str().to_owned()), None),
    };
    json!({ "at": rfc3339(a.at_ms), "http_status": a.http_status, "error": error, "latency_ms": latency_ms })
}

// ---- HTTP ----------------------------------------------------------------------------------

/// An admin answer or error.
type Answer = Result<Response, ApiError>;

fn ok(value: Value) -> Answer {
    Ok(Json(value).into_response())
}

fn created(value: Value) -> Answer {
    Ok((StatusCode::CREATED, Json(value)).into_response())
}

/// A request that carried the admin token (`Authorization: Bearer …`). Wrong tokens count
/// against the client's address, which is answered 429 after a few (see `token_guesses`).
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(token) = &state.admin_token else { return Err(ApiError::AdminDisabled) };
        let given = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        let ip = state.client_ip_of(parts);
        match state.token_guesses.judge(ip, state.clock.now_ms(), "admin API", || token.matches(given)) {
            Ok(()) => Ok(Admin),
            Err(Refused::Wrong) => Err(ApiError::Unauthorized),
            Err(Refused::Throttled { retry_after_s }) => Err(ApiError::TooManyFailures { retry_after_s }),
        }
    }
}

fn uuid(raw: &str, what: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::validation(format!("{what} must be a UUID")))
}

fn body<T: serde::de::DeserializeOwned>(raw: &axum::body::Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(raw).map_err(|e| ApiError::validation(e.to_string()))
}

async fn existing(store: &dyn Store, app_id: Uuid) -> Result<AppRecord, ApiError> {
    store.get_app(app_id).await?.ok_or(ApiError::AppNotFound)
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/apps", get(list_apps).post(create_app))
        .route("/admin/apps/{app_id}", get(show_app).patch(update_app))
        .route("/admin/apps/{app_id}/api-key", post(rotate_key))
        .route("/admin/apps/{app_id}/callback-secret", post(rotate_secret))
        .route("/admin/apps/{app_id}/templates", get(list_templates).put(put_template))
        .route("/admin/apps/{app_id}/templates/{name}/{language}", axum::routing::delete(delete_template))
        .route("/admin/apps/{app_id}/sessions/{session_id}", get(show_session))
        .route("/admin/apps/{app_id}/sessions/{session_id}/callbacks", get(session_callbacks))
        .route("/admin/apps/{app_id}/sessions/{session_id}/callbacks/{status}/replay", post(replay))
        .route("/admin/blocklist", get(list_blocked).post(block).delete(unblock))
        .route("/admin/apps/{app_id}/quota", put(set_quota))
        .route("/admin/dashboard/login-link", post(login_link))
}

/// `POST /admin/dashboard/login-link`: a one-time dashboard login link of this node (what
/// the banner prints on a first start; `waotp dashboard link` asks for one, e.g. inside a
/// container whose banner scrolled away). Its code lives in this node's memory only.
async fn login_link(State(state): State<AppState>, _: Admin) -> Answer {
    let path = state.issue_login_link().ok_or(ApiError::AdminDisabled)?;
    let expires_in = crate::dashboard::LINK_LIFETIME.as_secs();
    created(json!({ "path": path, "expires_in_seconds": expires_in }))
}

async fn list_apps(State(state): State<AppState>, _: Admin) -> Answer {
    let apps = state.store.list_apps().await?;
    ok(Value::Array(apps.iter().map(app_json).collect()))
}

async fn create_app(State(state): State<AppState>, _: Admin, raw: axum::body::Bytes) -> Answer {
    let mut input: Value = body(&raw)?;
    let name = input.get("name").and_then(Value::as_str).unwrap_or("").to_owned();
    let quota = match input.get("quota") {
        None | Some(Value::Null) => None,
        Some(q) => Some(q.as_i64().filter(|q| *q >= 0).ok_or_else(|| ApiError::validation("quota must be 0 or more"))?),
    };
    if let Some(map) = input.as_object_mut() {
        map.remove("name");
        map.remove("quota");
    }
    let patch: SettingsPatch = serde_json::from_value(input).map_err(|e| ApiError::validation(e.to_string()))?;
    let settings = patch.apply(AppSettings::default());
    let new =
        crate::apps::create_app(state.store.as_ref(), &state.key, &name, settings, quota, state.clock.now_ms()).await?;
    let mut v = app_json(&new.app);
    v["api_key"] = new.api_key.into();
    v["callback_secret"] = new.callback_secret.into();
    created(v)
}

async fn show_app(State(state): State<AppState>, _: Admin, Path(id): Path<String>) -> Answer {
    let app = existing(state.store.as_ref(), uuid(&id, "app_id")?).await?;
    let mut v = app_json(&app);
    v["templates"] = serde_json::to_value(state.store.list_templates(app.app_id).await?).unwrap_or_default();
    ok(v)
}

async fn update_app(State(state): State<AppState>, _: Admin, Path(id): Path<String>, raw: axum::body::Bytes) -> Answer {
    let app_id = uuid(&id, "app_id")?;
    let mut input: Value = body(&raw)?;
    let quota_add = match input.as_object_mut().and_then(|map| map.remove("quota_add")) {
        Some(n) => Some(n.as_i64().ok_or_else(|| ApiError::validation("quota_add must be a whole number"))?),
        None => None,
    };
    let settings: SettingsPatch = serde_json::from_value(input).map_err(|e| ApiError::validation(e.to_string()))?;
    let update = crate::apps::AppUpdate { settings, quota: None, quota_add };
    let app = crate::apps::update_app(state.store.as_ref(), app_id, update).await?;
    state.invalidate_app(app_id);
    ok(app_json(&app))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuotaInput {
    /// `null`: unlimited.
    quota: Option<i64>,
}

async fn set_quota(State(state): State<AppState>, _: Admin, Path(id): Path<String>, raw: axum::body::Bytes) -> Answer {
    let app_id = uuid(&id, "app_id")?;
    let input: QuotaInput = body(&raw)?;
    if input.quota.is_some_and(|q| q < 0) {
        return Err(ApiError::validation("quota must be 0 or more, or null for unlimited"));
    }
    if !state.store.set_quota(app_id, input.quota).await? {
        return Err(ApiError::AppNotFound);
    }
    ok(json!({ "app_id": app_id, "quota": input.quota }))
}

async fn rotate_key(State(state): State<AppState>, _: Admin, Path(id): Path<String>) -> Answer {
    let app_id = uuid(&id, "app_id")?;
    let key = crate::apps::rotate_api_key(state.store.as_ref(), app_id).await?.ok_or(ApiError::AppNotFound)?;
    state.invalidate_app(app_id);
    ok(json!({ "app_id": app_id, "api_key": key }))
}

async fn rotate_secret(State(state): State<AppState>, _: Admin, Path(id): Path<String>) -> Answer {
    let app_id = uuid(&id, "app_id")?;
    let secret = crate::apps::rotate_callback_secret(state.store.as_ref(), &state.key, app_id)
        .await?
        .ok_or(ApiError::AppNotFound)?;
    state.invalidate_app(app_id);
    ok(json!({ "app_id": app_id, "callback_secret": secret }))
}

async fn list_templates(State(state): State<AppState>, _: Admin, Path(id): Path<String>) -> Answer {
    let app = existing(state.store.as_ref(), uuid(&id, "app_id")?).await?;
    ok(serde_json::to_value(state.store.list_templates(app.app_id).await?).unwrap_or_default())
}

async fn put_template(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
    raw: axum::body::Bytes,
) -> Answer {
    let app_id = uuid(&id, "app_id")?;
    let input: TemplateInput = body(&raw)?;
    let template = input.into_template().map_err(ApiError::validation)?;
    if !state.store.put_template(app_id, template.clone()).await? {
        return Err(ApiError::AppNotFound);
    }
    state.invalidate_app(app_id);
    ok(serde_json::to_value(template).unwrap_or_default())
}

async fn delete_template(
    State(state): State<AppState>,
    _: Admin,
    Path((id, name, language)): Path<(String, String, String)>,
) -> Answer {
    let app_id = uuid(&id, "app_id")?;
    if !state.store.delete_template(app_id, &name, &language).await? {
        return Err(ApiError::NotFound("no such template"));
    }
    state.invalidate_app(app_id);
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn show_session(State(state): State<AppState>, _: Admin, Path((id, sid)): Path<(String, String)>) -> Answer {
    let session = state
        .store
        .get_session(uuid(&id, "app_id")?, uuid(&sid, "session_id")?)
        .await?
        .ok_or(ApiError::SessionNotFound)?;
    ok(session_json(&session))
}

async fn session_callbacks(State(state): State<AppState>, _: Admin, Path((id, sid)): Path<(String, String)>) -> Answer {
    let list = state
        .store
        .list_callbacks(uuid(&id, "app_id")?, uuid(&sid, "session_id")?)
        .await?
        .ok_or(ApiError::SessionNotFound)?;
    ok(callbacks_json(&list, LogReader::Operator))
}

async fn replay(
    State(state): State<AppState>,
    _: Admin,
    Path((id, sid, status)): Path<(String, String, String)>,
) -> Answer {
    let status = status
        .parse::<i64>()
        .ok()
        .and_then(Status::from_code)
        .ok_or_else(|| ApiError::validation("status must be 0 to 10"))?;
    let (app_id, session_id) = (uuid(&id, "app_id")?, uuid(&sid, "session_id")?);
    if !state.store.replay_callback(app_id, session_id, status, state.clock.now_ms()).await? {
        return Err(ApiError::SessionNotFound);
    }
    Ok((StatusCode::ACCEPTED, Json(json!({ "message": "Callback queued", "status": status.code() }))).into_response())
}

async fn list_blocked(State(state): State<AppState>, _: Admin) -> Answer {
    ok(Value::Array(state.store.blocklist().await?.iter().map(block_json).collect()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BlockInput {
    entry: String,
    app_id: Option<Uuid>,
}

async fn block(State(state): State<AppState>, _: Admin, raw: axum::body::Bytes) -> Answer {
    let input: BlockInput = body(&raw)?;
    if let Some(app_id) = input.app_id {
        existing(state.store.as_ref(), app_id).await?;
    }
    let (entry, is_prefix) = parse_block_entry(&input.entry).map_err(ApiError::validation)?;
    let e = BlockEntry { app_id: input.app_id, entry, is_prefix, created_at_ms: state.clock.now_ms() };
    let added = state.store.block(e.clone()).await?;
    let mut v = block_json(&e);
    v["added"] = added.into();
    created(v)
}

async fn unblock(
    State(state): State<AppState>,
    _: Admin,
    query: Result<Query<BlockInput>, axum::extract::rejection::QueryRejection>,
) -> Answer {
    let Query(input) = query.map_err(|e| ApiError::validation(e.body_text()))?;
    let (entry, is_prefix) = parse_block_entry(&input.entry).map_err(ApiError::validation)?;
    if !state.store.unblock(input.app_id, &entry, is_prefix).await? {
        return Err(ApiError::NotFound("not blocked"));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
