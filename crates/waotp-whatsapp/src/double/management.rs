//! The double's management side: the token's debug info, the WhatsApp Business Account, its
//! phone number, the app's subscription and webhook fields, and templates with statuses a
//! test can change. Every request is recorded (with its body) for assertions.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::{envelope, DoubleConfig, Inner, KnownTemplate};

/// The token as `debug_token` describes it.
#[derive(Debug, Clone)]
pub struct TokenState {
    /// `false`: revoked or otherwise invalid (190 on every call).
    pub valid: bool,
    /// Unix seconds; 0: never. In the past: expired (190).
    pub expires_at: i64,
    pub scopes: Vec<String>,
    /// `(scope, target_ids)`; empty target ids: the grant covers every asset.
    pub granular_scopes: Vec<(String, Vec<String>)>,
}

impl TokenState {
    /// Why a call with it is refused, as Meta's 190.
    fn refusal(&self) -> Option<&'static str> {
        if !self.valid {
            Some("Error validating access token: The session has been invalidated.")
        } else if self.expires_at != 0 && self.expires_at <= now() {
            Some("Error validating access token: Session has expired.")
        } else {
            None
        }
    }

    fn has(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

#[derive(Debug, Clone)]
pub struct WabaState {
    pub name: String,
    /// `AVAILABLE`, `LIMITED`, `BLOCKED`.
    pub can_send_message: String,
    /// `error_description`s, for `BLOCKED`.
    pub errors: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct NumberState {
    /// Whether `GET /<WABA>/phone_numbers` lists it.
    pub in_waba: bool,
    pub display_phone_number: String,
    pub status: String,
    pub platform_type: String,
    pub quality_rating: String,
    pub messaging_limit: String,
    pub throughput: String,
    pub can_send_message: String,
    pub additional_info: Vec<String>,
    /// `webhook_configuration`: the overrides and the app's URL.
    pub webhook_phone_number: Option<String>,
    pub webhook_waba: Option<String>,
    pub webhook_application: String,
}

/// A template as Meta holds it, per language.
#[derive(Debug, Clone)]
pub struct TemplateState {
    pub id: String,
    pub name: String,
    pub language: String,
    /// `APPROVED`, `PENDING`, `PAUSED`, `DISABLED`, `REJECTED`, …
    pub status: String,
    /// `AUTHENTICATION`, `UTILITY`, `MARKETING`.
    pub category: String,
    /// `GREEN`, `YELLOW`, `RED`, `UNKNOWN`.
    pub quality: String,
    /// The template's `health_status.can_send_message`.
    pub health: String,
    pub ttl_seconds: Option<i64>,
    pub body_parameters: usize,
}

/// A management request the double received.
#[derive(Debug, Clone)]
pub struct ManagementRequest {
    pub method: &'static str,
    /// Without the version: `WABA/upsert_message_templates`.
    pub path: String,
    pub query: HashMap<String, String>,
    pub body: Value,
}

/// Everything "Meta" knows about the setup; tests change it through
/// [`GraphDouble::meta`](super::GraphDouble::meta).
#[derive(Debug, Clone)]
pub struct MetaState {
    pub waba_id: String,
    pub app_id: String,
    pub token: TokenState,
    pub waba: WabaState,
    pub number: NumberState,
    /// App ids subscribed to the WABA.
    pub subscribed_apps: Vec<String>,
    /// The app's webhook subscription (`GET /<APP_ID>/subscriptions`).
    pub app_callback_url: String,
    pub app_fields: Vec<String>,
    pub templates: Vec<TemplateState>,
    /// The status a created template starts in (Meta's review: `PENDING`, often soon
    /// `APPROVED`; the upsert example answers `APPROVED`).
    pub created_status: String,
    pub requests: Vec<ManagementRequest>,
    next_id: u64,
}

pub use crate::management::webhook_fields;

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

impl MetaState {
    /// A correct setup: a valid never-expiring system-user token with both permissions on the
    /// WABA, a healthy WABA and connected Cloud API number, the app subscribed with every
    /// field, and the config's templates approved in each of their languages.
    pub fn new(config: &DoubleConfig) -> Self {
        let webhook = config.webhook_url.clone().unwrap_or_else(|| "https://waotp.example/webhooks/whatsapp".into());
        let scopes = ["whatsapp_business_management", "whatsapp_business_messaging"];
        let mut state = MetaState {
            waba_id: config.waba_id.clone(),
            app_id: config.app_id.clone(),
            token: TokenState {
                valid: true,
                expires_at: 0,
                scopes: scopes.iter().map(|s| s.to_string()).chain(["business_management".into()]).collect(),
                granular_scopes: scopes.iter().map(|s| (s.to_string(), vec![config.waba_id.clone()])).collect(),
            },
            waba: WabaState { name: "waotp double".into(), can_send_message: "AVAILABLE".into(), errors: vec![] },
            number: NumberState {
                in_waba: true,
                display_phone_number: config.display_phone_number.clone(),
                status: "CONNECTED".into(),
                platform_type: "CLOUD_API".into(),
                quality_rating: "GREEN".into(),
                messaging_limit: "TIER_2K".into(),
                throughput: "STANDARD".into(),
                can_send_message: "AVAILABLE".into(),
                additional_info: vec![],
                webhook_phone_number: None,
                webhook_waba: None,
                webhook_application: webhook.clone(),
            },
            subscribed_apps: vec![config.app_id.clone()],
            app_callback_url: webhook,
            app_fields: webhook_fields().map(str::to_owned).collect(),
            templates: vec![],
            created_status: "APPROVED".into(),
            requests: vec![],
            next_id: 1_192_339_204_654_487,
        };
        for t in &config.templates {
            for lang in &t.languages {
                let category = if t.authentication { "AUTHENTICATION" } else { "UTILITY" };
                state.add_template(&t.name, lang, "APPROVED", category);
                state.templates.last_mut().expect("added").body_parameters = t.body_parameters;
            }
        }
        state
    }

    fn new_id(&mut self) -> String {
        self.next_id += 1;
        self.next_id.to_string()
    }

    /// Adds (or replaces) a template in one language; its id.
    pub fn add_template(&mut self, name: &str, language: &str, status: &str, category: &str) -> String {
        self.remove_template(name, language);
        let id = self.new_id();
        self.templates.push(TemplateState {
            id: id.clone(),
            name: name.into(),
            language: language.into(),
            status: status.into(),
            category: category.into(),
            quality: "UNKNOWN".into(),
            health: "AVAILABLE".into(),
            ttl_seconds: None,
            body_parameters: 1,
        });
        id
    }

    pub fn remove_template(&mut self, name: &str, language: &str) {
        self.templates.retain(|t| !(t.name == name && t.language == language));
    }

    pub fn template_mut(&mut self, name: &str, language: &str) -> Option<&mut TemplateState> {
        self.templates.iter_mut().find(|t| t.name == name && t.language == language)
    }

    /// Sets a template's status (`PAUSED`, `APPROVED`, …); panics if it is unknown (a test bug).
    pub fn set_template_status(&mut self, name: &str, language: &str, status: &str) {
        self.template_mut(name, language).unwrap_or_else(|| panic!("no template {name} ({language})")).status =
            status.into();
    }

    fn template_json(t: &TemplateState) -> Value {
        json!({
            "id": t.id, "name": t.name, "language": t.language, "status": t.status, "category": t.category,
            "quality_score": { "score": t.quality, "date": now() },
            "rejected_reason": if t.status == "REJECTED" { "INVALID_FORMAT" } else { "NONE" },
            "message_send_ttl_seconds": t.ttl_seconds,
            "components": [ { "type": "BODY", "text": "*{{1}}* is your verification code." } ],
        })
    }

    fn health(can: &str, entity: &str, id: &str, info: &[String], errors: &[String]) -> Value {
        let mut e = json!({ "entity_type": entity, "id": id, "can_send_message": can });
        if !info.is_empty() {
            e["additional_info"] = json!(info);
        }
        if !errors.is_empty() {
            e["errors"] = errors
                .iter()
                .map(
                    |d| json!({ "error_code": 141000, "error_description": d, "possible_solution": "Contact support" }),
                )
                .collect();
        }
        json!({ "can_send_message": can, "entities": [e] })
    }
}

/// The double's answer for a send of `name`/`lang` Meta holds in a state other than approved
/// (or a token that is expired or lacks the messaging permission): Meta's code and details.
pub(super) fn send_refusal(meta: &MetaState, name: &str, lang: &str) -> Option<(i64, String)> {
    if let Some(why) = meta.token.refusal() {
        return Some((190, why.into()));
    }
    if !meta.token.has("whatsapp_business_messaging") {
        return Some((10, "Application does not have permission for this action".into()));
    }
    let t = meta.templates.iter().find(|t| t.name == name && t.language == lang)?;
    match t.status.as_str() {
        "APPROVED" => None,
        "PAUSED" => Some((132015, format!("template {name} ({lang}) is paused due to low quality"))),
        "DISABLED" => {
            Some((132016, format!("template {name} ({lang}) has been paused too many times and is disabled")))
        }
        other => {
            Some((132001, format!("template name ({name}) does not exist in {lang} or is not approved ({other})")))
        }
    }
}

/// An approved template Meta holds that the config does not list (created through the API).
pub(super) fn known_from_meta(meta: &MetaState, name: &str, lang: &str) -> Option<KnownTemplate> {
    let t = meta.templates.iter().find(|t| t.name == name && t.language == lang && t.status == "APPROVED")?;
    Some(KnownTemplate {
        name: t.name.clone(),
        languages: vec![t.language.clone()],
        body_parameters: t.body_parameters,
        authentication: t.category == "AUTHENTICATION",
    })
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "))
}

/// The system-user token checks every management call makes: 190, then the management scope.
fn check_token(inner: &Inner, meta: &MetaState, headers: &HeaderMap) -> Option<Response> {
    if bearer(headers) != Some(inner.config.token.as_str()) {
        return Some(envelope(190, "Invalid OAuth access token - Cannot parse access token"));
    }
    if let Some(why) = meta.token.refusal() {
        return Some(envelope(190, why));
    }
    if !meta.token.has("whatsapp_business_management") {
        return Some(envelope(200, "Requires whatsapp_business_management permission to manage the object"));
    }
    None
}

fn no_such(node: &str) -> Response {
    envelope(
        100,
        &format!("Unsupported request. Object with ID '{node}' does not exist, cannot be loaded due to missing permissions, or does not support this operation"),
    )
}

fn record(meta: &mut MetaState, method: &'static str, path: String, query: &HashMap<String, String>, body: &Value) {
    meta.requests.push(ManagementRequest { method, path, query: query.clone(), body: body.clone() });
}

/// `GET /{version}/{node}`: `debug_token`, the WABA, the phone number or a template.
pub(super) async fn get_node(
    State(inner): State<Arc<Inner>>,
    Path((_version, node)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let mut meta = inner.meta.lock().expect("meta");
    record(&mut meta, "GET", node.clone(), &query, &Value::Null);
    if node == "debug_token" {
        return debug_token(&inner, &meta, &headers, &query);
    }
    if let Some(refused) = check_token(&inner, &meta, &headers) {
        return refused;
    }
    if node == meta.waba_id {
        let w = &meta.waba;
        return Json(json!({
            "id": meta.waba_id, "name": w.name, "account_review_status": "APPROVED",
            "business_verification_status": "verified",
            "whatsapp_business_manager_messaging_limit": meta.number.messaging_limit,
            "health_status": MetaState::health(&w.can_send_message, "WABA", &meta.waba_id, &[], &w.errors),
        }))
        .into_response();
    }
    if node == inner.config.phone_number_id {
        inner.lookups.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let n = &meta.number;
        let mut hooks = json!({ "application": n.webhook_application });
        if let Some(u) = &n.webhook_waba {
            hooks["whatsapp_business_account"] = json!(u);
        }
        if let Some(u) = &n.webhook_phone_number {
            hooks["phone_number"] = json!(u);
        }
        return Json(json!({
            "id": node, "display_phone_number": n.display_phone_number, "verified_name": "waotp double",
            "status": n.status, "platform_type": n.platform_type, "code_verification_status": "VERIFIED",
            "name_status": "APPROVED", "quality_rating": n.quality_rating,
            "throughput": { "level": n.throughput },
            "whatsapp_business_manager_messaging_limit": n.messaging_limit,
            "health_status": MetaState::health(&n.can_send_message, "PHONE_NUMBER", &node, &n.additional_info, &[]),
            "webhook_configuration": hooks,
        }))
        .into_response();
    }
    if let Some(t) = meta.templates.iter().find(|t| t.id == node) {
        let errors = if t.health == "BLOCKED" {
            vec!["Message templates can only be sent out if they are approved.".to_owned()]
        } else {
            vec![]
        };
        return Json(json!({ "id": t.id,
            "health_status": MetaState::health(&t.health, "MESSAGE_TEMPLATE", &t.id, &[], &errors) }))
        .into_response();
    }
    no_such(&node)
}

fn debug_token(inner: &Inner, meta: &MetaState, headers: &HeaderMap, query: &HashMap<String, String>) -> Response {
    // Meta takes the app token in the query (`access_token=`) or as a Bearer header.
    let app_token = format!("{}|{}", meta.app_id, inner.config.app_secret);
    if query.get("access_token") != Some(&app_token) && bearer(headers) != Some(app_token.as_str()) {
        return envelope(190, "Invalid OAuth access token signature.");
    }
    if query.get("input_token") != Some(&inner.config.token) {
        return Json(json!({ "data": { "is_valid": false, "scopes": [],
            "error": { "code": 190, "message": "Invalid OAuth access token.", "subcode": 0 } } }))
        .into_response();
    }
    let t = &meta.token;
    let mut data = json!({
        "app_id": meta.app_id, "type": "SYSTEM_USER", "application": "waotp double",
        "expires_at": t.expires_at, "is_valid": t.refusal().is_none(), "issued_at": now() - 86_400,
        "scopes": t.scopes,
        "granular_scopes": t.granular_scopes.iter().map(|(scope, ids)| {
            if ids.is_empty() { json!({ "scope": scope }) } else { json!({ "scope": scope, "target_ids": ids }) }
        }).collect::<Vec<_>>(),
        "user_id": "1000000000001",
    });
    if let Some(why) = t.refusal() {
        data["error"] = json!({ "code": 190, "message": why, "subcode": 463 });
    }
    Json(json!({ "data": data })).into_response()
}

/// `GET /{version}/{node}/{edge}`.
pub(super) async fn get_edge(
    State(inner): State<Arc<Inner>>,
    Path((_version, node, edge)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let mut meta = inner.meta.lock().expect("meta");
    record(&mut meta, "GET", format!("{node}/{edge}"), &query, &Value::Null);
    if node == meta.app_id && edge == "subscriptions" {
        let app_token = format!("{}|{}", meta.app_id, inner.config.app_secret);
        if bearer(&headers) != Some(app_token.as_str()) {
            return envelope(190, "Invalid OAuth access token signature.");
        }
        let fields: Vec<Value> = meta.app_fields.iter().map(|f| json!({ "name": f, "version": "v24.0" })).collect();
        return Json(json!({ "data": [ { "object": "whatsapp_business_account",
            "callback_url": meta.app_callback_url, "active": true, "fields": fields } ] }))
        .into_response();
    }
    if let Some(refused) = check_token(&inner, &meta, &headers) {
        return refused;
    }
    if node != meta.waba_id {
        return no_such(&node);
    }
    let data: Vec<Value> = match edge.as_str() {
        "phone_numbers" if meta.number.in_waba => vec![json!({ "id": inner.config.phone_number_id,
            "display_phone_number": meta.number.display_phone_number, "verified_name": "waotp double",
            "quality_rating": meta.number.quality_rating })],
        "phone_numbers" => vec![],
        "subscribed_apps" => meta
            .subscribed_apps
            .iter()
            .map(|id| json!({ "whatsapp_business_api_data": { "id": id, "name": "waotp double app" } }))
            .collect(),
        "message_templates" => meta
            .templates
            .iter()
            .filter(|t| query.get("name").is_none_or(|n| t.name.contains(n.as_str())))
            .map(MetaState::template_json)
            .collect(),
        _ => return no_such(&format!("{node}/{edge}")),
    };
    Json(json!({ "data": data, "paging": { "cursors": { "before": "MAZDZD", "after": "MjQZD" } } })).into_response()
}

/// `POST /{version}/{node}/{edge}`: subscribe the app, create or upsert templates.
pub(super) async fn post_edge(
    State(inner): State<Arc<Inner>>,
    Path((_version, node, edge)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).unwrap_or(Value::String("<not JSON>".into()))
    };
    let mut meta = inner.meta.lock().expect("meta");
    record(&mut meta, "POST", format!("{node}/{edge}"), &query, &body);
    if let Some(refused) = check_token(&inner, &meta, &headers) {
        return refused;
    }
    if node != meta.waba_id {
        return no_such(&node);
    }
    match edge.as_str() {
        "subscribed_apps" => {
            let app = meta.app_id.clone();
            if !meta.subscribed_apps.contains(&app) {
                meta.subscribed_apps.push(app);
            }
            Json(json!({ "success": true })).into_response()
        }
        "message_templates" => {
            let (Some(name), Some(lang)) = (body["name"].as_str(), body["language"].as_str()) else {
                return envelope(100, "Invalid parameter: name and language are required");
            };
            let category = body["category"].as_str().unwrap_or("").to_ascii_uppercase();
            let status = meta.created_status.clone();
            let id = meta.add_template(name, lang, &status, &category);
            Json(json!({ "id": id, "status": status, "category": category })).into_response()
        }
        "upsert_message_templates" => upsert(&mut meta, &body),
        _ => no_such(&format!("{node}/{edge}")),
    }
}

fn upsert(meta: &mut MetaState, body: &Value) -> Response {
    if !body["category"].as_str().is_some_and(|c| c.eq_ignore_ascii_case("AUTHENTICATION")) {
        return envelope(100, "Invalid parameter: only AUTHENTICATION templates can be upserted");
    }
    let Some(name) = body["name"].as_str().filter(|n| !n.is_empty()) else {
        return envelope(100, "Invalid parameter: name is required");
    };
    let languages: Vec<&str> = body["languages"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    if languages.is_empty() {
        return envelope(100, "Invalid parameter: languages is required");
    }
    let buttons = body["components"].as_array().into_iter().flatten().find(|c| c["type"] == "BUTTONS");
    let button = buttons.and_then(|b| b["buttons"].get(0));
    let Some(button) = button.filter(|b| b["type"] == "OTP") else {
        return envelope(100, "Invalid parameter: an OTP button is required");
    };
    if button.get("text").is_some() || button.get("autofill_text").is_some() {
        return envelope(100, "Invalid parameter: text and autofill_text are not supported by the upsert");
    }
    if button["otp_type"] == "ZERO_TAP" && button["zero_tap_terms_accepted"] != true {
        return envelope(100, "Invalid parameter: zero_tap_terms_accepted must be true");
    }
    let ttl = body["message_send_ttl_seconds"].as_i64();
    let mut data = Vec::new();
    for lang in languages {
        let status = meta.created_status.clone();
        let id = match meta.template_mut(name, lang) {
            Some(t) => {
                t.ttl_seconds = ttl;
                t.id.clone()
            }
            None => {
                let id = meta.add_template(name, lang, &status, "AUTHENTICATION");
                meta.template_mut(name, lang).expect("added").ttl_seconds = ttl;
                id
            }
        };
        let status = meta.template_mut(name, lang).expect("there").status.clone();
        data.push(json!({ "id": id, "status": status, "language": lang }));
    }
    Json(json!({ "data": data })).into_response()
}
