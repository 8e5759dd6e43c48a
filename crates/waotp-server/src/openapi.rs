//! The OpenAPI 3.1 document of the whole HTTP API, generated from these declarations with
//! `utoipa` and served at `/openapi.json`. The committed `openapi.json` must equal it (a test
//! checks; `waotp openapi > openapi.json` regenerates it).

use serde::Serialize;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// A send. Numbers may come as JSON numbers or strings; `""` and `null` mean absent; unknown
/// fields are ignored.
#[derive(Serialize, ToSchema)]
pub struct SendBody {
    /// International digits, a leading `+` is dropped; a valid number (libphonenumber).
    #[schema(example = "6281234567890")]
    pub msisdn: String,
    /// Your own code: 4–15 of `[0-9A-Za-z]` (string or integer). Not with `otp_length`.
    pub otp: Option<String>,
    /// Length of a generated numeric code, 4–10 (integer or string). Default: the app's.
    pub otp_length: Option<u32>,
    /// A category such as `login`, ≤ 64 characters; a code verifies only under it.
    pub challenge: Option<String>,
    /// Validity in seconds, 1–86400 (integer or string). Default: the app's (300).
    pub time_limit: Option<u32>,
    pub template_name: Option<String>,
    pub lang_code: Option<String>,
    /// Values of the template's non-code placeholders, in order.
    pub content: Option<Vec<String>>,
    /// Absolute http(s) URL, ≤ 2048 characters, for status callbacks.
    pub callback_url: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SendAnswer {
    #[schema(example = "OTP sent successfully")]
    pub message: String,
    pub msisdn: String,
    /// The code (unless the app switched this off).
    pub otp: Option<String>,
    pub session_id: uuid::Uuid,
    pub try_count: u32,
}

#[derive(Serialize, ToSchema)]
pub struct VerifyBody {
    pub msisdn: String,
    /// String or integer.
    pub otp: String,
    pub challenge: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct VerifyAnswer {
    #[schema(example = "OTP has been verified")]
    pub message: String,
    pub msisdn: String,
}

/// Every error: the contract's `message`, a machine-readable `error_code`, and for 400 a
/// `reason`. Never a key named `code` (public clients decode that as an integer).
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub message: String,
    pub error_code: String,
    pub reason: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct InboxEntry {
    pub session_id: uuid::Uuid,
    pub msisdn: String,
    pub text: String,
    pub created_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct InboxAnswer {
    pub messages: Vec<InboxEntry>,
}

#[derive(Serialize, ToSchema)]
pub struct QuotaAnswer {
    pub app_id: uuid::Uuid,
    /// Sends left; `null`: unlimited.
    pub quota: Option<i64>,
    pub unlimited: bool,
}

/// Any JSON object (the admin API's app, session and callback records; see the README).
#[derive(Serialize, ToSchema)]
pub struct Record {}

macro_rules! send_route {
    ($name:ident, $path:literal, $tag:literal) => {
        #[utoipa::path(post, path = $path, tag = $tag, request_body = SendBody, security(("app" = [])),
            responses(
                (status = 201, description = "Stored durably; delivery follows", body = SendAnswer),
                (status = 400, description = "Validation error (or, in the sandbox, Invalid Scenario)", body = ErrorBody),
                (status = 401, description = "Authorization failed", body = ErrorBody),
                (status = 403, description = "Quota insufficient", body = ErrorBody),
                (status = 409, description = "Msisdn invalid: msisdn has been blocked", body = ErrorBody),
                (status = 422, description = "Idempotency-Key used with another body", body = ErrorBody),
                (status = 429, description = "Too many request in the allowed time frame", body = ErrorBody),
            ))]
        #[allow(dead_code)]
        fn $name() {}
    };
}

macro_rules! verify_route {
    ($name:ident, $path:literal, $tag:literal) => {
        #[utoipa::path(post, path = $path, tag = $tag, request_body = VerifyBody, security(("app" = [])),
            responses(
                (status = 200, description = "OTP has been verified", body = VerifyAnswer),
                (status = 400, description = "Validation error (or, in the sandbox, Invalid Scenario)", body = ErrorBody),
                (status = 401, description = "Authorization failed", body = ErrorBody),
                (status = 404, description = "OTP not found", body = ErrorBody),
                (status = 422, description = "OTP cannot be verified because Time limit exceeded", body = ErrorBody),
                (status = 429, description = "Too many wrong tries, or a rate limit", body = ErrorBody),
            ))]
        #[allow(dead_code)]
        fn $name() {}
    };
}

send_route!(send_v1, "/v1/whatsapp/otp/send", "OTP");
send_route!(send_v2, "/v2/whatsapp/otp/send", "OTP");
verify_route!(verify_v1, "/v1/whatsapp/otp/verify", "OTP");
verify_route!(verify_v2, "/v2/whatsapp/otp/verify", "OTP");
send_route!(send_sandbox_v1, "/v1/whatsapp/otp/send/sandbox", "Sandbox");
send_route!(send_sandbox_v2, "/v2/whatsapp/otp/send/sandbox", "Sandbox");
verify_route!(verify_sandbox_v1, "/v1/whatsapp/otp/verify/sandbox", "Sandbox");
verify_route!(verify_sandbox_v2, "/v2/whatsapp/otp/verify/sandbox", "Sandbox");

macro_rules! get_route {
    ($name:ident, $path:literal, $tag:literal, $security:literal, $body:ty, $what:literal $(, $param:literal)*) => {
        #[utoipa::path(get, path = $path, tag = $tag, security(($security = [])), params($(($param = String, Path),)*),
            responses((status = 200, description = $what, body = $body),
                      (status = 401, description = "Authorization failed", body = ErrorBody)))]
        #[allow(dead_code)]
        fn $name() {}
    };
}

macro_rules! post_route {
    ($name:ident, $method:ident, $path:literal, $tag:literal, $security:literal, $status:literal, $what:literal $(, $param:literal)*) => {
        #[utoipa::path($method, path = $path, tag = $tag, security(($security = [])), params($(($param = String, Path),)*),
            request_body(content = Record, description = "See the README", content_type = "application/json"),
            responses((status = $status, description = $what, body = Record),
                      (status = 400, description = "Validation error", body = ErrorBody),
                      (status = 401, description = "Authorization failed", body = ErrorBody),
                      (status = 404, description = "Not found", body = ErrorBody)))]
        #[allow(dead_code)]
        fn $name() {}
    };
}

get_route!(inbox_v1, "/v1/inbox", "Extensions", "app", InboxAnswer, "The local inbox of ?msisdn=, newest first");
get_route!(inbox_v2, "/v2/inbox", "Extensions", "app", InboxAnswer, "The local inbox of ?msisdn=, newest first");
get_route!(quota_v1, "/v1/quota", "Extensions", "app", QuotaAnswer, "The app's remaining production sends");
get_route!(quota_v2, "/v2/quota", "Extensions", "app", QuotaAnswer, "The app's remaining production sends");
get_route!(
    callbacks_list,
    "/v1/sessions/{session_id}/callbacks",
    "Extensions",
    "app",
    Record,
    "A session's callbacks and attempts",
    "session_id"
);
post_route!(
    callbacks_replay,
    post,
    "/v1/sessions/{session_id}/callbacks/{status}/replay",
    "Extensions",
    "app",
    202,
    "Queued again",
    "session_id",
    "status"
);

#[utoipa::path(get, path = "/webhooks/whatsapp", tag = "WhatsApp",
    responses((status = 200, description = "hub.challenge echoed for the right hub.verify_token", body = String),
              (status = 403, description = "Verification failed", body = String)))]
#[allow(dead_code)]
fn webhook_handshake() {}

#[utoipa::path(post, path = "/webhooks/whatsapp", tag = "WhatsApp",
    request_body(content = Record, description = "Meta's webhook payload, signed with X-Hub-Signature-256"),
    responses((status = 200, description = "Applied"), (status = 401, description = "Bad signature: nothing processed")))]
#[allow(dead_code)]
fn webhook_events() {}

#[utoipa::path(get, path = "/healthz", tag = "Operations", responses((status = 200, description = "The process answers", body = Record)))]
#[allow(dead_code)]
fn healthz() {}

#[utoipa::path(get, path = "/readyz", tag = "Operations",
    responses((status = 200, description = "Database reachable, migrations applied, workers running", body = Record),
              (status = 503, description = "Not ready, with the reason", body = Record)))]
#[allow(dead_code)]
fn readyz() {}

#[utoipa::path(get, path = "/openapi.json", tag = "Operations", responses((status = 200, description = "This document", body = Record)))]
#[allow(dead_code)]
fn openapi_json() {}

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

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "app",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "API-Key",
                "With the App-ID header: the app's credentials (header names are case-insensitive)",
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
        send_v1, send_v2, verify_v1, verify_v2, send_sandbox_v1, send_sandbox_v2, verify_sandbox_v1, verify_sandbox_v2,
        inbox_v1, inbox_v2, quota_v1, quota_v2, callbacks_list, callbacks_replay, webhook_handshake, webhook_events,
        healthz, readyz, openapi_json, admin_apps, admin_create_app, admin_app, admin_update_app, admin_rotate_key,
        admin_rotate_secret, admin_quota, admin_templates, admin_put_template, admin_delete_template, admin_session,
        admin_session_callbacks, admin_replay, admin_blocklist, admin_block, admin_unblock,
    ),
    components(schemas(SendBody, SendAnswer, VerifyBody, VerifyAnswer, ErrorBody, InboxEntry, InboxAnswer, QuotaAnswer, Record)),
    modifiers(&Security),
)]
pub struct ApiDoc;

/// The document as served and committed.
pub fn document() -> String {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc.info.license = None;
    let mut text = doc.to_pretty_json().expect("serializable");
    text.push('\n');
    text
}

pub async fn serve() -> impl axum::response::IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], document())
}
