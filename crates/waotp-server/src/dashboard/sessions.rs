//! Sessions (search, one session's timeline and callbacks), the inbox, and failed callbacks.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;
use uuid::Uuid;
use waotp_core::Status;
use waotp_store::{CallbackRecord, CallbackState, SessionQuery, SessionRecord};

use super::auth::Operator;
use super::layout::{page, status_badge, Notice, OnPage, PageError, PageResult};
use super::{app_field, given, time, AppNames};
use crate::{ApiError, AppState};

/// Rows a list shows.
const LIST_LIMIT: usize = 100;

#[derive(Deserialize, Default)]
pub struct Search {
    msisdn: Option<String>,
    challenge: Option<String>,
    session_id: Option<String>,
    app: Option<String>,
    /// Reload the page every few seconds.
    refresh: Option<String>,
}

impl Search {
    fn query(&self) -> Result<SessionQuery, ApiError> {
        let session_id = given(&self.session_id)
            .map(|s| Uuid::parse_str(s).map_err(|_| ApiError::validation("session id must be a UUID")))
            .transpose()?;
        let msisdn = given(&self.msisdn)
            .map(|m| {
                let digits: String = m.chars().filter(|c| !matches!(c, '+' | ' ' | '-')).collect();
                if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    Err(ApiError::validation("msisdn must be digits (country code first)"))
                } else {
                    Ok(digits)
                }
            })
            .transpose()?;
        Ok(SessionQuery {
            app_id: app_field(&self.app)?,
            session_id,
            msisdn,
            challenge: given(&self.challenge).map(str::to_owned),
            limit: LIST_LIMIT,
        })
    }
}

/// An app `<select>` with an "any app" choice (`any`: its label).
pub(super) fn app_select(id: &str, name: &str, apps: &AppNames, chosen: Option<Uuid>, any: Option<&str>) -> Markup {
    let mut sorted: Vec<_> = apps.0.iter().collect();
    sorted.sort_by(|a, b| a.1.cmp(b.1).then(a.0.cmp(b.0)));
    html! {
        select id=(id) name=(name) {
            @if let Some(any) = any { option value="" { (any) } }
            @for (app_id, app_name) in sorted {
                option value=(app_id) selected[chosen == Some(*app_id)] { (app_name) " (" (app_id.to_string()[..8]) "…)" }
            }
        }
    }
}

pub async fn list(_: Operator, State(state): State<AppState>, search: super::Q<Search>) -> PageResult {
    let Query(search) = search.unwrap_or_default();
    let apps = AppNames::new(&state.store.list_apps().await.on("sessions")?);
    let query = search.query().on("sessions")?;
    let (app, searching) = (query.app_id, query != SessionQuery { limit: LIST_LIMIT, ..SessionQuery::default() });
    let rows = state.store.search_sessions(query).await.on("sessions")?;
    let refresh = given(&search.refresh).is_some();
    let body = html! {
        h1 { "Sessions" }
        form.card method="get" action="/dashboard/sessions" role="search" {
            div.fields {
                div.field { label for="msisdn" { "Msisdn" }
                    input #msisdn name="msisdn" inputmode="tel" placeholder="6281234567890" value=[given(&search.msisdn)]; }
                div.field { label for="challenge" { "Challenge" }
                    input #challenge name="challenge" value=[given(&search.challenge)]; }
                div.field { label for="session_id" { "Session id" }
                    input #session_id name="session_id" value=[given(&search.session_id)]; }
                div.field { label for="app" { "App" } (app_select("app", "app", &apps, app, Some("Any app"))) }
                div.field.check { input #refresh type="checkbox" name="refresh" value="1" checked[refresh];
                    label for="refresh" { "Refresh every 2 s" } }
                div.field { button type="submit" { "Search" } }
            }
        }
        p { @if searching { (rows.len()) " matching sessions (newest first, at most " (LIST_LIMIT) ")." }
            @else { "The newest " (rows.len()) " sessions." } }
        (session_table(&rows, &apps))
    };
    Ok(page(StatusCode::OK, "sessions", "Sessions", refresh.then_some(2), body))
}

fn session_table(rows: &[SessionRecord], apps: &AppNames) -> Markup {
    html! {
        div.scroll { table #sessions {
            thead { tr { th { "Created (UTC)" } th { "App" } th { "Msisdn" } th { "Challenge" } th { "Status" }
                th.num { "Try" } th { "Session" } } }
            tbody {
                @for s in rows {
                    tr data-session=(s.session_id) {
                        td { (time(s.created_at_ms)) }
                        td { (apps.name(&s.app_id)) @if s.sandbox { " " span.badge { "sandbox" } } }
                        td.mono { (s.msisdn.as_str()) }
                        td { (s.challenge) }
                        td { (status_badge(s.status)) }
                        td.num { (s.try_count) }
                        td { a href={ "/dashboard/sessions/" (s.session_id) } { code { (s.session_id) } } }
                    }
                }
            }
        } }
    }
}

#[derive(Deserialize, Default)]
pub struct ShowQuery {
    msg: Option<String>,
    refresh: Option<String>,
}

pub async fn show(
    _: Operator,
    State(state): State<AppState>,
    Path(id): Path<String>,
    q: super::Q<ShowQuery>,
) -> PageResult {
    let Query(q) = q.unwrap_or_default();
    let session_id =
        Uuid::parse_str(&id).map_err(|_| ApiError::validation("session id must be a UUID")).on("sessions")?;
    let found = state
        .store
        .search_sessions(SessionQuery { session_id: Some(session_id), limit: 1, ..SessionQuery::default() })
        .await
        .on("sessions")?;
    let Some(s) = found.into_iter().next() else {
        return Err(PageError("sessions", ApiError::SessionNotFound));
    };
    let callbacks = state.store.list_callbacks(s.app_id, s.session_id).await.on("sessions")?.unwrap_or_default();
    let app = state.store.get_app(s.app_id).await.on("sessions")?;
    let others = if s.sandbox { None } else { state.store.reverse_other_senders(s.session_id).await.on("sessions")? };
    let refresh = given(&q.refresh).is_some();
    let body = html! {
        h1 { "Session " code { (s.session_id) } }
        @if let Some(n) = Notice::from_query(&q.msg) { (n) }
        p { a href={ "/dashboard/sessions/" (s.session_id) @if !refresh { "?refresh=1" } } {
            @if refresh { "Stop refreshing" } @else { "Refresh every 2 s" } } }
        div.card {
            dl.facts {
                dt { "App" } dd { (app.as_ref().map_or_else(|| s.app_id.to_string(), |a| a.name.clone())) " " code { (s.app_id) } }
                dt { "Msisdn" } dd.mono { (s.msisdn.as_str()) }
                dt { "Challenge" } dd { @if s.challenge.is_empty() { "(none)" } @else { (s.challenge) } }
                dt { "Status" } dd #status { (status_badge(s.status)) @if s.sandbox { " " span.badge { "sandbox" } } }
                dt { "Code" } dd { (state_text(&s)) }
                dt { "Try" } dd { (s.try_count) }
                dt { "Template" } dd { (s.template_name) " (" (s.lang_code) ")" }
                dt { "Expires (UTC)" } dd { (time(s.expires_at_ms)) }
                @if let Some(p) = &s.provider_id { dt { "WhatsApp message id" } dd.mono { (p) } }
                dt { "Callback URL" } dd.mono { (s.callback_url.as_deref().unwrap_or("(none)")) }
                @if let Some(o) = others {
                    dt { "Reverse verification" }
                    dd #reverse-senders {
                        (o.wrong) " message(s) from other numbers"
                        @if o.number_not_shared > 0 {
                            " " span.badge.bad #number-not-shared {
                                "sender's number not shared: " (o.number_not_shared) " message(s) from a WhatsApp user \
                                named only by a business-scoped user id waotp has not learned (a username user); \
                                send a code to the number instead" }
                        }
                    }
                }
                @if s.not_requested { dt { "Fraud signal" } dd { span.badge.bad { "the user said they did not request this code" } } }
            }
        }
        h2 { "Timeline" }
        div.card { (timeline(&s)) }
        h2 { "Callbacks" }
        @if callbacks.is_empty() {
            p { @if s.callback_url.is_none() { "This send had no callback URL." } @else { "No callback yet." } }
        }
        @for c in &callbacks { (callback_card(&s, c)) }
    };
    Ok(page(StatusCode::OK, "sessions", "Session", refresh.then_some(2), body))
}

fn state_text(s: &SessionRecord) -> String {
    let state = match s.state {
        waotp_core::SessionState::Pending => "pending",
        waotp_core::SessionState::Verified => "verified",
        waotp_core::SessionState::Superseded => "superseded by a newer code",
        waotp_core::SessionState::Locked => "locked after too many wrong tries",
    };
    format!("{state}; {} wrong tries", s.wrong_attempts)
}

/// Requested, sent, delivered, read, a delivery failure, the outcome: each with its time, or
/// greyed out when not reached.
fn timeline(s: &SessionRecord) -> Markup {
    let t = &s.timeline;
    let failure = (s.status.code() >= 6).then_some(s.status);
    let outcome = matches!(s.status, Status::Verified | Status::Unverified).then_some(s.status);
    let error = match (&s.error_code, &s.error_text) {
        (Some(code), Some(text)) => Some(format!("error {code}: {text}")),
        (Some(code), None) => Some(format!("error {code}")),
        (None, Some(text)) => Some(text.clone()),
        (None, None) => None,
    };
    let step = |key: &str, name: String, at: Option<i64>, failed: bool, note: Option<String>| {
        let class = match (at, failed) {
            (None, _) => "todo",
            (Some(_), true) => "failed",
            (Some(_), false) => "done",
        };
        html! {
            li class=(class) data-step=(key) {
                strong { (name) } " "
                @match at { Some(at) => { span.mono { (time(at)) } }, None => { span { "—" } } }
                @if let Some(n) = note { br; span { (n) } }
            }
        }
    };
    html! {
        ol.timeline #timeline {
            (step("requested", "0 Requested".into(), Some(s.created_at_ms), false, None))
            (step("sent", "1 Sent".into(), t.sent_at_ms, false, None))
            (step("delivered", "2 Delivered".into(), t.delivered_at_ms, false, None))
            (step("read", "3 Read".into(), t.read_at_ms, false, None))
            @if t.failed_at_ms.is_some() || failure.is_some() {
                (step("failed", failure.map_or("Failed".into(), |f| format!("{} {}", f.code(), f.name())),
                    t.failed_at_ms, true, error.clone()))
            }
            (step("outcome", outcome.map_or("4 Verified / 5 Unverified".into(), |o| format!("{} {}", o.code(), o.name())),
                t.closed_at_ms, outcome == Some(Status::Unverified), None))
        }
        @if t.failed_at_ms.is_none() && failure.is_none() {
            @if let Some(e) = error { p { "Note: " (e) } }
        }
    }
}

fn callback_card(s: &SessionRecord, c: &CallbackRecord) -> Markup {
    html! {
        div.card data-callback=(c.status.code()) {
            p {
                strong { "Status " (status_badge(c.status)) } " — "
                span data-state=(c.shown_state()) class={ "badge " (match c.state { CallbackState::Delivered => "good", CallbackState::Failed => "bad", CallbackState::Pending => "wait" }) } { (c.shown_state()) }
                @if c.due_at_ms().is_none() && c.state == CallbackState::Pending {
                    " behind an earlier status of this session"
                } @else {
                    " after " (c.attempts) " attempts"
                    @if let Some(due) = c.due_at_ms() { ", next " (time(due)) }
                }
                "; happened " (time(c.happened_at_ms))
            }
            p.mono { (c.url) }
            @if !c.log.is_empty() {
                div.scroll { table {
                    thead { tr { th { "Attempt (UTC)" } th { "HTTP" } th { "Error" } th.num { "Latency" } } }
                    tbody { @for a in &c.log { tr {
                        td { (time(a.at_ms)) }
                        td { (a.http_status.map_or("—".to_owned(), |h| h.to_string())) }
                        td { (a.error.as_deref().unwrap_or("")) }
                        td.num { (a.latency_ms) " ms" }
                    } } }
                } }
            }
            (replay_form(s.app_id, s.session_id, c.status, "session"))
        }
    }
}

fn replay_form(app_id: Uuid, session_id: Uuid, status: Status, back: &str) -> Markup {
    html! {
        form.inline method="post" action="/dashboard/callbacks/replay" {
            input type="hidden" name="app_id" value=(app_id);
            input type="hidden" name="session_id" value=(session_id);
            input type="hidden" name="status" value=(status.code());
            input type="hidden" name="back" value=(back);
            button.secondary type="submit" aria-label={ "Replay the status " (status.code()) " callback of session " (session_id) } { "Replay" }
        }
    }
}

pub async fn inbox(_: Operator, State(state): State<AppState>) -> PageResult {
    let apps = AppNames::new(&state.store.list_apps().await.on("inbox")?);
    let messages = state.store.recent_inbox(LIST_LIMIT).await.on("inbox")?;
    let body = html! {
        h1 { "Inbox" }
        p { "Messages the local inbox channel delivered (when no WhatsApp account is configured), newest first. \
             Apps read a number's messages with " code { "GET /v1/inbox?msisdn=…" } ", which also marks them read." }
        div.scroll { table #inbox {
            thead { tr { th { "Delivered (UTC)" } th { "App" } th { "Msisdn" } th { "Message" } th { "Session" } } }
            tbody { @for m in &messages { tr {
                td { (time(m.created_at_ms)) }
                td { (apps.name(&m.app_id)) }
                td.mono { (m.msisdn.as_str()) }
                td { (m.text) }
                td { a href={ "/dashboard/sessions/" (m.session_id) } { "Open" } }
            } } }
        } }
        @if messages.is_empty() { p { "The inbox is empty." } }
    };
    Ok(page(StatusCode::OK, "inbox", "Inbox", None, body))
}

#[derive(Deserialize, Default)]
pub struct FlashQuery {
    msg: Option<String>,
}

pub async fn failed_callbacks(_: Operator, State(state): State<AppState>, q: super::Q<FlashQuery>) -> PageResult {
    let Query(q) = q.unwrap_or_default();
    let apps = AppNames::new(&state.store.list_apps().await.on("callbacks")?);
    let failed = state.store.failed_callbacks(LIST_LIMIT).await.on("callbacks")?;
    let body = html! {
        h1 { "Failed callbacks" }
        @if let Some(n) = Notice::from_query(&q.msg) { (n) }
        p { "Callbacks given up on after every retry, newest first. Replay queues one again: it is delivered \
             with its original webhook id, in order with the session's other callbacks." }
        div.scroll { table #failed-callbacks {
            thead { tr { th { "Happened (UTC)" } th { "App" } th { "Msisdn" } th { "Status" } th { "URL" }
                th.num { "Attempts" } th { "Last error" } th { "" } } }
            tbody { @for f in &failed { tr data-session=(f.session_id) {
                td { (time(f.callback.happened_at_ms)) }
                td { (apps.name(&f.app_id)) }
                td.mono { a href={ "/dashboard/sessions/" (f.session_id) } { (f.msisdn.as_str()) } }
                td { (status_badge(f.callback.status)) }
                td.mono { (f.callback.url) }
                td.num { (f.callback.attempts) }
                td { (f.callback.log.last().map(|a| match (&a.http_status, &a.error) {
                        (_, Some(e)) => e.clone(),
                        (Some(h), None) => format!("HTTP {h}"),
                        (None, None) => String::new(),
                    }).unwrap_or_default()) }
                td { (replay_form(f.app_id, f.session_id, f.callback.status, "callbacks")) }
            } } }
        } }
        @if failed.is_empty() { p { "No failed callbacks." } }
    };
    Ok(page(StatusCode::OK, "callbacks", "Callbacks", None, body))
}

#[derive(Deserialize)]
pub struct ReplayForm {
    app_id: String,
    session_id: String,
    status: String,
    back: Option<String>,
}

pub async fn replay(_: Operator, State(state): State<AppState>, form: super::F<ReplayForm>) -> PageResult {
    let Ok(Form(f)) = form else {
        return Err(PageError("callbacks", ApiError::validation("app_id, session_id and status are required")));
    };
    let bad = |what: &str| PageError("callbacks", ApiError::validation(format!("{what} is not valid")));
    let app_id = Uuid::parse_str(f.app_id.trim()).map_err(|_| bad("app_id"))?;
    let session_id = Uuid::parse_str(f.session_id.trim()).map_err(|_| bad("session_id"))?;
    let status = f.status.trim().parse::<i64>().ok().and_then(Status::from_code).ok_or_else(|| bad("status"))?;
    if !state.store.replay_callback(app_id, session_id, status, state.clock.now_ms()).await.on("callbacks")? {
        return Err(PageError("callbacks", ApiError::SessionNotFound));
    }
    tracing::info!(%session_id, status = status.code(), "callback replay queued from the dashboard");
    let msg = Notice::ReplayQueued.code();
    let to = match f.back.as_deref() {
        Some("session") => format!("/dashboard/sessions/{session_id}?msg={msg}"),
        _ => format!("/dashboard/callbacks?msg={msg}"),
    };
    Ok(Redirect::to(&to).into_response())
}
