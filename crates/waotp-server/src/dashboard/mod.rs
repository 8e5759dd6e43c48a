//! The operator's dashboard at `/dashboard`: sessions and their timelines, the conversion
//! funnel, what verifications cost, the local inbox, failed callbacks with replay, app
//! management and a try-it form.
//!
//! Server-rendered HTML (maud), one request per page: the style sheet is inline, there is no
//! script and nothing is fetched from elsewhere, so it works with no internet. Every answer
//! carries a Content-Security-Policy that allows exactly that (the style sheet by its hash) and
//! forbids framing, with `nosniff`, `Referrer-Policy: same-origin` and `X-Frame-Options: DENY`
//! (`layout::security_headers`). Login is the admin token; each login is recorded in the store
//! and the cookie carries its id, signed with the token (HMAC-SHA256, 12 hours), so any node of
//! a cluster accepts it, logging out ends it on every node, and rotating the token logs
//! everyone out. Wrong tokens are throttled per client address (`token_guesses`). Forms post
//! back with a `SameSite=Strict` cookie, and a cross-site `Origin` is refused. After a change a
//! page shows a fixed notice named by a code (`?msg=template_saved`), never text from the
//! address. On a first start the banner prints a one-time login link instead of the token
//! (`login_link`).

mod auth;
mod costs;
mod funnel;
mod layout;
mod login_link;
mod manage;
mod sessions;
mod try_it;
mod whatsapp;

use std::collections::HashMap;

use axum::routing::{get, post};
use axum::Router;
use uuid::Uuid;
use waotp_store::{AppRecord, DAY_MS};

use crate::{ApiError, AppState};

pub use login_link::{LoginLinks, LINK_LIFETIME};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/dashboard", get(auth::home))
        .route("/dashboard/", get(auth::home))
        .route("/dashboard/login", get(auth::login_form).post(auth::login))
        .route("/dashboard/login/link", get(login_link::follow))
        .route("/dashboard/logout", post(auth::logout))
        .route("/dashboard/sessions", get(sessions::list))
        .route("/dashboard/sessions/{session_id}", get(sessions::show))
        .route("/dashboard/inbox", get(sessions::inbox))
        .route("/dashboard/callbacks", get(sessions::failed_callbacks))
        .route("/dashboard/callbacks/replay", post(sessions::replay))
        .route("/dashboard/funnel", get(funnel::show))
        .route("/dashboard/costs", get(costs::show))
        .route("/dashboard/manage", get(manage::show))
        .route("/dashboard/manage/apps", post(manage::create_app))
        .route("/dashboard/manage/apps/{app_id}/api-key", post(manage::rotate_key))
        .route("/dashboard/manage/quota", post(manage::set_quota))
        .route("/dashboard/manage/templates", post(manage::put_template))
        .route("/dashboard/manage/templates/delete", post(manage::delete_template))
        .route("/dashboard/manage/blocklist", post(manage::block))
        .route("/dashboard/manage/blocklist/delete", post(manage::unblock))
        .route("/dashboard/whatsapp", get(whatsapp::show))
        .route("/dashboard/try", get(try_it::show))
        .route("/dashboard/try/send", post(try_it::send))
        .route("/dashboard/try/verify", post(try_it::verify))
        .layer(axum::middleware::map_response(layout::security_headers))
}

/// Apps by id, for showing names.
pub(crate) struct AppNames(HashMap<Uuid, String>);

impl AppNames {
    fn new(apps: &[AppRecord]) -> Self {
        AppNames(apps.iter().map(|a| (a.app_id, a.name.clone())).collect())
    }

    fn name(&self, id: &Uuid) -> String {
        self.0.get(id).cloned().unwrap_or_else(|| format!("(deleted app {id})"))
    }
}

/// `2026-11-26 23:41:05` (UTC).
pub(crate) fn time(ms: i64) -> String {
    let t = crate::clock::rfc3339(ms);
    t.get(..19).unwrap_or(&t).replace('T', " ")
}

/// `2026-11-26` for a day number (days since 1970-01-01, UTC).
pub(crate) fn day(day: i64) -> String {
    let t = crate::clock::rfc3339(day * DAY_MS);
    t.get(..10).unwrap_or(&t).to_owned()
}

/// A form field: trimmed, `None` when empty.
pub(crate) fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// An optional app id field.
pub(crate) fn app_field(v: &Option<String>) -> Result<Option<Uuid>, ApiError> {
    given(v).map(|s| Uuid::parse_str(s).map_err(|_| ApiError::validation("app must be an app id"))).transpose()
}

/// A page's query string (`Err` when it cannot be read: the defaults apply).
pub(crate) type Q<T> = Result<axum::extract::Query<T>, axum::extract::rejection::QueryRejection>;
/// A posted form.
pub(crate) type F<T> = Result<axum::Form<T>, axum::extract::rejection::FormRejection>;
