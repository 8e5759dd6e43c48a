//! The OpenAPI 3.1 document of the whole HTTP API, generated from these declarations with
//! `utoipa` and served at `/openapi.json`. The committed `openapi.json` must equal it (a test
//! checks; `waotp openapi > openapi.json` regenerates it).
//!
//! The paths, their answers and their parameters are declared here; the schemas they name are
//! written in [`schemas`] from the rules the server applies, since JSON Schema can say more
//! than the derive can. The public routes' document is exact: `scripts/api-fuzz` runs a
//! property-based tester (schemathesis) against the served document with all its checks.

mod costs;
pub mod msisdn_pattern;
mod schemas;

use self::costs::{__path_admin_costs, __path_costs_v1};

use std::sync::LazyLock;

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// Names for the schemas of [`schemas`], which replace these placeholders in the document.
macro_rules! placeholders {
    ($($name:ident),*) => {
        $(
            #[derive(ToSchema)]
            #[allow(dead_code)]
            struct $name;
        )*
        /// Their names: [`schemas::all`] gives each exactly one schema.
        const PLACEHOLDERS: &[&str] = &[$(stringify!($name)),*];
    };
}

placeholders!(
    Msisdn,
    SendBody,
    VerifyBody,
    SandboxSendBody,
    SandboxVerifyBody,
    IdempotencyKey,
    InboxLimit,
    SessionId,
    CallbackStatus,
    ErrorBody,
    SendAnswer,
    VerifyAnswer,
    InboxAnswer,
    QuotaAnswer,
    CallbacksAnswer,
    ReplayAnswer,
    SessionAnswer,
    InboundBody,
    InboundAnswer,
    Liveness,
    Readiness,
    OpenApiDocument,
    CostDate,
    CostDays,
    CostsAnswer
);

/// Any JSON object (the admin API's app, session and callback records; see docs/src/operations/admin-api.md).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Record {}

/// Every route that reads the database (all authenticated ones: credentials are looked up)
/// answers 503 when it cannot be reached.
pub(super) const UNAVAILABLE: &str =
    "Service unavailable: the database cannot be reached (`store_unavailable`); retry after `Retry-After` seconds";

/// The routes that may name a reverse verification's business number (a reverse start, the
/// sandbox's reverse scenario, a QR code) also answer 503 when the Graph API cannot give it.
const NUMBER_UNAVAILABLE: &str = "Service unavailable: the database cannot be reached (`store_unavailable`), or a \
    reverse verification's business number cannot be read from WhatsApp's Graph API (`business_number_unavailable`: \
    waotp asks again once `Retry-After` has passed); retry after `Retry-After` seconds";

#[utoipa::path(post, path = "/v1/whatsapp/otp/send", tag = "OTP", request_body = SendBody,
    security(("AppId" = [], "ApiKey" = [])),
    params(("Idempotency-Key" = Option<IdempotencyKey>, Header,
        description = "The same key and body within 24 hours answer the first send's answer again, without a second message; the same key with another body is a 422.")),
    responses(
        (status = 201, description = "OTP sent successfully: stored durably; delivery follows", body = SendAnswer),
        (status = 400, description = "Validation error (`reason` says what)", body = ErrorBody),
        (status = 401, description = "Authorization failed: missing or wrong `App-ID` / `API-Key`", body = ErrorBody),
        (status = 403, description = "Quota insufficient (`quota_exhausted`), or the app's monthly ceiling of billable messages reached (`billable_ceiling_reached`: production sends, and the reverse starts of an app with a text reply)", body = ErrorBody),
        (status = 409, description = "Msisdn invalid: msisdn has been blocked (a blocklist, or the app's allowed countries)", body = ErrorBody),
        (status = 422, description = "The `Idempotency-Key` was already used with a different body", body = ErrorBody),
        (status = 429, description = "Too many request in the allowed time frame: a rate limit (5 sends per number per 10 minutes by default) or a pumping rule", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until a send may succeed"))),
        (status = 503, description = NUMBER_UNAVAILABLE, body = ErrorBody, headers(("Retry-After" = u64))),
    ))]
#[allow(dead_code)]
fn send_v1() {}

#[utoipa::path(post, path = "/v1/whatsapp/otp/verify", tag = "OTP", request_body = VerifyBody,
    security(("AppId" = [], "ApiKey" = [])),
    responses(
        (status = 200, description = "OTP has been verified: the code is used up", body = VerifyAnswer),
        (status = 400, description = "Validation error (`reason` says what)", body = ErrorBody),
        (status = 401, description = "Authorization failed", body = ErrorBody),
        (status = 404, description = "OTP not found: a wrong code, none pending, another challenge, or already used", body = ErrorBody),
        (status = 422, description = "OTP cannot be verified because Time limit exceeded: the newest code of the number and challenge has expired", body = ErrorBody),
        (status = 429, description = "Too many request in the allowed time frame: the code is locked after 5 wrong tries, or a rate limit (10 verifies per number per 10 minutes by default)", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = UNAVAILABLE, body = ErrorBody, headers(("Retry-After" = u64))),
    ))]
#[allow(dead_code)]
fn verify_v1() {}

#[utoipa::path(post, path = "/v1/whatsapp/otp/send/sandbox", tag = "Sandbox", request_body = SandboxSendBody,
    security(("AppId" = [], "ApiKey" = [])),
    responses(
        (status = 201, description = "A scenario that stores a sandbox session (never delivered, no quota, no rate limit)", body = SendAnswer),
        (status = 400, description = "Validation error, or Invalid Scenario (a number without a scenario)", body = ErrorBody),
        (status = 401, description = "Authorization failed (also the scenario 6282123060003)", body = ErrorBody),
        (status = 403, description = "Quota insufficient (the scenario 6282123060004)", body = ErrorBody),
        (status = 409, description = "Msisdn invalid: msisdn has been blocked (the scenario 6282123060005)", body = ErrorBody),
        (status = 429, description = "Too many request in the allowed time frame (the scenario 6282123060006)", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = NUMBER_UNAVAILABLE, body = ErrorBody, headers(("Retry-After" = u64))),
    ))]
#[allow(dead_code)]
fn send_sandbox_v1() {}

#[utoipa::path(post, path = "/v1/whatsapp/otp/verify/sandbox", tag = "Sandbox", request_body = SandboxVerifyBody,
    security(("AppId" = [], "ApiKey" = [])),
    responses(
        (status = 200, description = "OTP has been verified (the scenario 6282123060007, or a right code)", body = VerifyAnswer),
        (status = 400, description = "Validation error, or Invalid Scenario (a number without a scenario)", body = ErrorBody),
        (status = 401, description = "Authorization failed", body = ErrorBody),
        (status = 404, description = "OTP not found (the scenario 6282123060008, or a wrong code)", body = ErrorBody),
        (status = 422, description = "OTP cannot be verified because Time limit exceeded (the scenario 6282123060009, or an expired code)", body = ErrorBody),
        (status = 429, description = "Too many request in the allowed time frame: the code is locked after 5 wrong tries", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = UNAVAILABLE, body = ErrorBody, headers(("Retry-After" = u64))),
    ))]
#[allow(dead_code)]
fn verify_sandbox_v1() {}

#[utoipa::path(get, path = "/v1/inbox", tag = "Extensions", security(("AppId" = [], "ApiKey" = [])),
    params(
        ("msisdn" = Msisdn, Query, description = "The number whose messages to read (a leading `+` written `%2B`)"),
        ("limit" = Option<InboxLimit>, Query),
    ),
    responses(
        (status = 200, description = "The local inbox of the number, newest first (reading marks them read: status 3)", body = InboxAnswer),
        (status = 400, description = "Validation error", body = ErrorBody),
        (status = 401, description = "Authorization failed", body = ErrorBody),
        (status = 503, description = UNAVAILABLE, body = ErrorBody, headers(("Retry-After" = u64))),
    ))]
#[allow(dead_code)]
fn inbox_v1() {}

#[utoipa::path(get, path = "/v1/quota", tag = "Extensions", security(("AppId" = [], "ApiKey" = [])),
    responses(
        (status = 200, description = "The app's remaining production sends", body = QuotaAnswer),
        (status = 401, description = "Authorization failed", body = ErrorBody),
        (status = 503, description = UNAVAILABLE, body = ErrorBody, headers(("Retry-After" = u64))),
    ))]
#[allow(dead_code)]
fn quota_v1() {}

#[utoipa::path(get, path = "/v1/sessions/{session_id}/callbacks", tag = "Extensions",
    security(("AppId" = [], "ApiKey" = [])), params(("session_id" = SessionId, Path)),
    responses(
        (status = 200, description = "The session's callbacks and every delivery attempt", body = CallbacksAnswer),
        (status = 400, description = "Validation error: not a session id", body = ErrorBody),
        (status = 401, description = "Authorization failed", body = ErrorBody),
        (status = 404, description = "Session not found (or another app's)", body = ErrorBody),
        (status = 503, description = UNAVAILABLE, body = ErrorBody, headers(("Retry-After" = u64))),
    ))]
#[allow(dead_code)]
fn callbacks_list() {}

#[utoipa::path(post, path = "/v1/sessions/{session_id}/callbacks/{status}/replay", tag = "Extensions",
    security(("AppId" = [], "ApiKey" = [])),
    params(("session_id" = SessionId, Path), ("status" = CallbackStatus, Path)),
    responses(
        (status = 202, description = "Callback queued: sent again at once", body = ReplayAnswer),
        (status = 400, description = "Validation error: not a session id or a status", body = ErrorBody),
        (status = 401, description = "Authorization failed", body = ErrorBody),
        (status = 404, description = "Session not found, or it has no callback of that status", body = ErrorBody),
        (status = 503, description = UNAVAILABLE, body = ErrorBody, headers(("Retry-After" = u64))),
    ))]
#[allow(dead_code)]
fn callbacks_replay() {}

#[utoipa::path(get, path = "/v1/sessions/{session_id}", tag = "Extensions",
    security(("AppId" = [], "ApiKey" = [])), params(("session_id" = SessionId, Path)),
    responses(
        (status = 200, description = "Any session of the app (template, reverse or sandbox): its status, status name and timestamps", body = SessionAnswer),
        (status = 400, description = "Validation error: not a session id", body = ErrorBody),
        (status = 401, description = "Authorization failed", body = ErrorBody),
        (status = 404, description = "Session not found (or another app's)", body = ErrorBody),
        (status = 503, description = UNAVAILABLE, body = ErrorBody, headers(("Retry-After" = u64))),
    ))]
#[allow(dead_code)]
fn session_get() {}

#[utoipa::path(get, path = "/v1/sessions/{session_id}/qr.svg", tag = "Extensions",
    security(("AppId" = [], "ApiKey" = [])), params(("session_id" = SessionId, Path)),
    responses(
        (status = 200, description = "A QR code (SVG) of a reverse verification's `wa_link`, for desktop flows", content_type = "image/svg+xml", body = String),
        (status = 400, description = "Validation error: not a session id", body = ErrorBody),
        (status = 401, description = "Authorization failed", body = ErrorBody),
        (status = 404, description = "No reverse session of the app with this id", body = ErrorBody),
        (status = 503, description = NUMBER_UNAVAILABLE, body = ErrorBody, headers(("Retry-After" = u64))),
    ))]
#[allow(dead_code)]
fn session_qr() {}

#[utoipa::path(post, path = "/v1/inbox/inbound", tag = "Extensions", request_body = InboundBody,
    security(("AppId" = [], "ApiKey" = [])),
    responses(
        (status = 200, description = "The user's simulated message was applied as an inbound WhatsApp message is (reverse verification), to the calling app's sessions only", body = InboundAnswer),
        (status = 400, description = "Validation error (also: a WhatsApp account is configured, so messages are not simulated)", body = ErrorBody),
        (status = 401, description = "Authorization failed", body = ErrorBody),
        (status = 503, description = UNAVAILABLE, body = ErrorBody, headers(("Retry-After" = u64))),
    ))]
#[allow(dead_code)]
fn inbox_inbound() {}

#[utoipa::path(get, path = "/webhooks/whatsapp", tag = "WhatsApp",
    responses((status = 200, description = "hub.challenge echoed for the right hub.verify_token", body = String),
              (status = 403, description = "Verification failed", body = String)))]
#[allow(dead_code)]
fn webhook_handshake() {}

#[utoipa::path(post, path = "/webhooks/whatsapp", tag = "WhatsApp",
    request_body(content = Record, description = "Meta's webhook payload, signed with X-Hub-Signature-256: `messages` \
        (statuses, the \"I didn't request a code\" button) and the management fields that keep the sender's health \
        (message_template_status_update, message_template_quality_update, template_category_update, \
        phone_number_quality_update, business_capability_update, account_update, account_alerts). Unknown fields are \
        acknowledged and ignored; a replayed management event changes nothing."),
    responses((status = 200, description = "Applied"), (status = 401, description = "Bad signature: nothing processed"),
              (status = 500, description = "Could not be stored now: Meta sends it again")))]
#[allow(dead_code)]
fn webhook_events() {}

#[utoipa::path(get, path = "/healthz", tag = "Operations",
    responses((status = 200, description = "The process answers", body = Liveness)))]
#[allow(dead_code)]
fn healthz() {}

#[utoipa::path(get, path = "/readyz", tag = "Operations",
    responses((status = 200, description = "Database reachable, migrations applied, workers running", body = Readiness),
              (status = 503, description = "Not ready, with the reason", body = Readiness)))]
#[allow(dead_code)]
fn readyz() {}

#[utoipa::path(get, path = "/openapi.json", tag = "Operations",
    responses((status = 200, description = "This document", body = OpenApiDocument)))]
#[allow(dead_code)]
fn openapi_json() {}

/// The admin routes' answer to an address that sent too many wrong tokens.
pub(super) const TOO_MANY_FAILURES: &str =
    "Too many failed authentications from this address (`too_many_failures`): after 5 wrong \
     admin tokens within a minute, every attempt from the address (even with the right token) is refused until \
     that minute is over";

/// Admin routes (bearer admin token; not part of the property-based test's scope).
macro_rules! get_route {
    ($name:ident, $path:literal, $tag:literal, $security:literal, $body:ty, $what:literal $(, $param:literal)*) => {
        #[utoipa::path(get, path = $path, tag = $tag, security(($security = [])), params($(($param = String, Path),)*),
            responses((status = 200, description = $what, body = $body),
                      (status = 401, description = "Authorization failed", body = ErrorBody),
                      (status = 429, description = TOO_MANY_FAILURES, body = ErrorBody,
                          headers(("Retry-After" = u64, description = "Seconds until this address may try again")))))]
        #[allow(dead_code)]
        fn $name() {}
    };
}

macro_rules! post_route {
    ($name:ident, $method:ident, $path:literal, $tag:literal, $security:literal, $status:literal, $what:literal $(, $param:literal)*) => {
        #[utoipa::path($method, path = $path, tag = $tag, security(($security = [])), params($(($param = String, Path),)*),
            request_body(content = Record, description = "See docs/src/operations/admin-api.md", content_type = "application/json"),
            responses((status = $status, description = $what, body = Record),
                      (status = 400, description = "Validation error", body = ErrorBody),
                      (status = 401, description = "Authorization failed", body = ErrorBody),
                      (status = 404, description = "Not found", body = ErrorBody),
                      (status = 429, description = TOO_MANY_FAILURES, body = ErrorBody,
                          headers(("Retry-After" = u64, description = "Seconds until this address may try again")))))]
        #[allow(dead_code)]
        fn $name() {}
    };
}

get_route!(admin_apps, "/admin/apps", "Admin", "admin", Vec<Record>, "Every app (never keys)");
post_route!(
    admin_create_app,
    post,
    "/admin/apps",
    "Admin",
    "admin",
    201,
    "The app, with its API key and callback secret (shown once)"
);
get_route!(admin_app, "/admin/apps/{app_id}", "Admin", "admin", Record, "An app with its templates", "app_id");
post_route!(admin_update_app, patch, "/admin/apps/{app_id}", "Admin", "admin", 200, "The updated app", "app_id");
post_route!(
    admin_rotate_key,
    post,
    "/admin/apps/{app_id}/api-key",
    "Admin",
    "admin",
    200,
    "A new API key (shown once)",
    "app_id"
);
post_route!(
    admin_rotate_secret,
    post,
    "/admin/apps/{app_id}/callback-secret",
    "Admin",
    "admin",
    200,
    "A new callback secret",
    "app_id"
);
post_route!(
    admin_quota,
    put,
    "/admin/apps/{app_id}/quota",
    "Admin",
    "admin",
    200,
    "The quota (null: unlimited)",
    "app_id"
);
get_route!(
    admin_templates,
    "/admin/apps/{app_id}/templates",
    "Admin",
    "admin",
    Vec<Record>,
    "The app's templates",
    "app_id"
);
post_route!(
    admin_put_template,
    put,
    "/admin/apps/{app_id}/templates",
    "Admin",
    "admin",
    200,
    "The stored template",
    "app_id"
);
post_route!(
    admin_delete_template,
    delete,
    "/admin/apps/{app_id}/templates/{name}/{language}",
    "Admin",
    "admin",
    204,
    "Removed",
    "app_id",
    "name",
    "language"
);
get_route!(
    admin_session,
    "/admin/apps/{app_id}/sessions/{session_id}",
    "Admin",
    "admin",
    Record,
    "A session (never its code)",
    "app_id",
    "session_id"
);
get_route!(
    admin_session_callbacks,
    "/admin/apps/{app_id}/sessions/{session_id}/callbacks",
    "Admin",
    "admin",
    Vec<Record>,
    "Its callbacks and attempts",
    "app_id",
    "session_id"
);
post_route!(
    admin_replay,
    post,
    "/admin/apps/{app_id}/sessions/{session_id}/callbacks/{status}/replay",
    "Admin",
    "admin",
    202,
    "Queued again",
    "app_id",
    "session_id",
    "status"
);
get_route!(admin_blocklist, "/admin/blocklist", "Admin", "admin", Vec<Record>, "Blocked numbers and prefixes");
post_route!(admin_block, post, "/admin/blocklist", "Admin", "admin", 201, "Blocked");
post_route!(admin_unblock, delete, "/admin/blocklist", "Admin", "admin", 204, "Unblocked (?entry=&app_id=)");
post_route!(
    admin_login_link,
    post,
    "/admin/dashboard/login-link",
    "Admin",
    "admin",
    201,
    "A one-time dashboard login link of this node: {path, expires_in_seconds} (waotp dashboard link)"
);

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "AppId",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "App-ID",
                "The app's id; sent together with API-Key (header names are case-insensitive)",
            ))),
        );
        components.add_security_scheme(
            "ApiKey",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "API-Key",
                "The app's API key; sent together with App-ID",
            ))),
        );
        components.add_security_scheme(
            "admin",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "waotp", description = "Self-hosted WhatsApp OTP verification, wire-compatible with Verihubs' WhatsApp OTP API."),
    paths(
        send_v1, verify_v1, send_sandbox_v1, verify_sandbox_v1, inbox_v1, quota_v1, callbacks_list, callbacks_replay,
        session_get, session_qr, inbox_inbound,
        webhook_handshake, webhook_events, healthz, readyz, openapi_json, admin_apps, admin_create_app, admin_app,
        admin_update_app, admin_rotate_key, admin_rotate_secret, admin_quota, admin_templates, admin_put_template,
        admin_delete_template, admin_session, admin_session_callbacks, admin_replay, admin_blocklist, admin_block,
        admin_unblock, admin_login_link, costs_v1, admin_costs,
    ),
    modifiers(&Security),
)]
pub struct ApiDoc;

/// The `/v1` routes whose `/v2` twin answers the same.
const TWINS: &[&str] = &[
    "/v1/whatsapp/otp/send",
    "/v1/whatsapp/otp/verify",
    "/v1/whatsapp/otp/send/sandbox",
    "/v1/whatsapp/otp/verify/sandbox",
    "/v1/inbox",
    "/v1/quota",
];

/// The document of a server configured with `deny_private` (callback URLs it refuses).
fn build(deny_private: bool) -> String {
    let mut api = ApiDoc::openapi();
    api.info.version = env!("CARGO_PKG_VERSION").to_owned();
    api.info.license = None;
    let mut doc = serde_json::to_value(&api).expect("serializable");
    let paths = doc["paths"].as_object_mut().expect("paths");
    paths["/v1/whatsapp/otp/send"]["post"]["responses"]["201"]["links"] = links(true);
    // A sandbox send's number need not be one a sandbox verify knows (6282123060001 is not).
    paths["/v1/whatsapp/otp/send/sandbox"]["post"]["responses"]["201"]["links"] = links(false);
    for v1 in TWINS {
        let mut twin = paths[*v1].clone();
        rename_v1_operations(&mut twin);
        paths.insert(v1.replacen("/v1/", "/v2/", 1), twin);
    }
    // An optional parameter is absent, never `null`: its schema is the type's alone.
    for operation in paths.values_mut().flat_map(|item| item.as_object_mut().expect("path item").values_mut()) {
        for parameter in operation.get_mut("parameters").and_then(|p| p.as_array_mut()).into_iter().flatten() {
            if let Some([null, schema]) = parameter["schema"]["oneOf"].as_array().map(Vec::as_slice) {
                if null["type"] == "null" {
                    parameter["schema"] = schema.clone();
                }
            }
        }
    }
    paths.sort_keys();
    let components = doc["components"]["schemas"].as_object_mut().expect("schemas");
    let schemas = schemas::all(deny_private);
    let mut named: Vec<&str> = schemas.iter().map(|(name, _)| *name).collect();
    named.sort_unstable();
    let mut placeholders = PLACEHOLDERS.to_vec();
    placeholders.sort_unstable();
    assert_eq!(named, placeholders, "schemas::all names each placeholder once");
    for (name, schema) in schemas {
        components.insert(name.to_owned(), schema);
    }
    let mut text = serde_json::to_string_pretty(&doc).expect("serializable");
    text.push('\n');
    text
}

/// What a send's answer leads to: its session's callbacks, and verifying its code.
fn links(verify: bool) -> serde_json::Value {
    let mut links = serde_json::json!({
        "ListTheCallbacks": {
            "operationId": "callbacks_list",
            "description": "The session's status callbacks.",
            "parameters": {"session_id": "$response.body#/session_id"},
        },
        "ReplayACallback": {
            "operationId": "callbacks_replay",
            "description": "Send one of the session's callbacks again.",
            "parameters": {"session_id": "$response.body#/session_id"},
        },
    });
    if verify {
        links["VerifyTheCode"] = serde_json::json!({
            "operationId": "verify_v1",
            "description": "Verify the code just sent (the answer carries it unless the app switched that off).",
            "requestBody": {"msisdn": "$response.body#/msisdn", "otp": "$response.body#/otp"},
        });
    }
    links
}

/// Points a copied `/v1` path item, and the links in it, at the `/v2` operations.
fn rename_v1_operations(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                match inner {
                    serde_json::Value::String(id) if key == "operationId" && id.ends_with("_v1") => {
                        *id = id.replace("_v1", "_v2");
                    }
                    other => rename_v1_operations(other),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(rename_v1_operations),
        _ => {}
    }
}

/// The document as committed: a server with the default configuration.
pub fn document() -> String {
    document_for(false).to_owned()
}

/// The document as served by a server configured with `deny_private`.
pub fn document_for(deny_private: bool) -> &'static str {
    static DOCUMENTS: LazyLock<[String; 2]> = LazyLock::new(|| [build(false), build(true)]);
    &DOCUMENTS[usize::from(deny_private)]
}

pub async fn serve(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
) -> impl axum::response::IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], document_for(state.deny_private_callbacks))
}
