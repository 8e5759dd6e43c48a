//! Try it: send and verify a code as an app would, against the sandbox or production, and see
//! the API's answer. The requests go through the same code as the HTTP routes (validation,
//! guards, quota, delivery, callbacks), as the chosen app.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::auth::Operator;
use super::layout::{page, OnPage, PageResult};
use super::sessions::app_select;
use super::{given, AppNames};
use crate::body::Fields;
use crate::sandbox::SEND_SCENARIOS;
use crate::{ApiError, AppState};

#[derive(Deserialize, Default, Clone)]
pub struct TryForm {
    app: Option<String>,
    mode: Option<String>,
    msisdn: Option<String>,
    challenge: Option<String>,
    callback_url: Option<String>,
    otp: Option<String>,
    /// `template` (default) or `reverse` (reverse verification: the user sends the code).
    method: Option<String>,
}

impl TryForm {
    /// Sandbox or production: nothing else (a garbled form never makes a real send).
    fn sandbox(&self) -> Result<bool, ApiError> {
        match given(&self.mode) {
            Some("sandbox") => Ok(true),
            Some("production") => Ok(false),
            _ => Err(ApiError::validation("mode must be sandbox or production")),
        }
    }

    /// The JSON body an app would send: the msisdn and challenge, and the callback URL of a
    /// send or the code of a verify (blank fields left out).
    fn body(&self, call: Call) -> Result<Fields, ApiError> {
        let (last, method) = match call {
            Call::Send => (("callback_url", &self.callback_url), ("method", &self.method)),
            Call::Verify => (("otp", &self.otp), ("method", &None)),
        };
        let map: Map<String, Value> = [("msisdn", &self.msisdn), ("challenge", &self.challenge), last, method]
            .into_iter()
            .filter_map(|(name, v)| given(v).map(|v| (name.to_owned(), Value::from(v))))
            .collect();
        let bytes = serde_json::to_vec(&Value::Object(map)).map_err(|e| ApiError::Internal(Box::new(e)))?;
        Fields::parse(&bytes.into())
    }
}

/// What the API answered: its status code and JSON body.
struct Answer {
    route: String,
    status: u16,
    body: Value,
}

async fn answer(route: String, result: Result<axum::response::Response, ApiError>) -> Answer {
    let response = match result {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024).await.unwrap_or_default();
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes)));
    Answer { route, status, body }
}

async fn view(state: &AppState, form: &TryForm, answer: Option<Answer>) -> PageResult {
    let apps = AppNames::new(&state.store.list_apps().await.on("try")?);
    let chosen = given(&form.app).and_then(|a| a.parse().ok());
    let sandbox = form.sandbox().unwrap_or(true);
    let mode_select = |id: &str| {
        html! {
            select id=(id) name="mode" {
                option value="sandbox" selected[sandbox] { "Sandbox (simulated)" }
                option value="production" selected[!sandbox] { "Production (delivered)" }
            }
        }
    };
    let body = html! {
        h1 { "Try it" }
        p { "Sends and verifies a code as the chosen app, through the same checks as the API. Production sends \
             use the app's quota and are delivered (to the local inbox when no WhatsApp account is configured)." }
        @if let Some(a) = &answer { (answer_card(a)) }
        div.card {
            h2 { "Send a code" }
            form method="post" action="/dashboard/try/send" {
                div.fields {
                    div.field { label for="send-app" { "App" } (app_select("send-app", "app", &apps, chosen, None)) }
                    div.field { label for="send-mode" { "Mode" } (mode_select("send-mode")) }
                    div.field { label for="send-msisdn" { "Msisdn" }
                        input #send-msisdn name="msisdn" inputmode="tel" required list="sandbox-numbers"
                            placeholder="6281234567890" value=[given(&form.msisdn)]; }
                    div.field { label for="send-challenge" { "Challenge (optional)" }
                        input #send-challenge name="challenge" value=[given(&form.challenge)]; }
                    div.field { label for="send-callback" { "Callback URL (optional)" }
                        input #send-callback name="callback_url" type="url" value=[given(&form.callback_url)]; }
                    div.field { label for="send-method" { "Method" }
                        select #send-method name="method" {
                            option value="template" selected[given(&form.method) != Some("reverse")] { "Template (waotp sends the code)" }
                            option value="reverse" selected[given(&form.method) == Some("reverse")] { "Reverse (the user sends the code: free)" }
                        } }
                    div.field { button type="submit" { "Send code" } }
                }
            }
        }
        div.card {
            h2 { "Verify a code" }
            form method="post" action="/dashboard/try/verify" {
                div.fields {
                    div.field { label for="verify-app" { "App" } (app_select("verify-app", "app", &apps, chosen, None)) }
                    div.field { label for="verify-mode" { "Mode" } (mode_select("verify-mode")) }
                    div.field { label for="verify-msisdn" { "Msisdn" }
                        input #verify-msisdn name="msisdn" inputmode="tel" required list="sandbox-numbers" value=[given(&form.msisdn)]; }
                    div.field { label for="verify-challenge" { "Challenge (optional)" }
                        input #verify-challenge name="challenge" value=[given(&form.challenge)]; }
                    div.field { label for="verify-otp" { "Code" }
                        input #verify-otp name="otp" inputmode="numeric" autocomplete="one-time-code" required; }
                    div.field { button type="submit" { "Verify code" } }
                }
            }
        }
        datalist #sandbox-numbers { @for (m, _, what) in SEND_SCENARIOS { option value=(m) { (what) } } }
        h2 { "Sandbox numbers" }
        div.scroll { table {
            thead { tr { th { "Msisdn" } th { "What a sandbox send does" } } }
            tbody { @for (m, _, what) in SEND_SCENARIOS { tr { td.mono { (m) } td { (what) } } } }
        } }
    };
    Ok(page(StatusCode::OK, "try", "Try it", None, body))
}

fn answer_card(a: &Answer) -> Markup {
    let pretty = serde_json::to_string_pretty(&a.body).unwrap_or_default();
    let session = a.body.get("session_id").and_then(Value::as_str);
    html! {
        div.card #answer data-status=(a.status) {
            h2 { code { (a.route) } " answered " span class={ "badge " (if a.status < 300 { "good" } else { "bad" }) } { (a.status) } }
            pre.mono { (pretty) }
            @if let Some(s) = session { p { a #answer-session href={ "/dashboard/sessions/" (s) } { "Follow this session" } } }
            @if let Some(link) = a.body.get("wa_link").and_then(Value::as_str) {
                p { "Reverse verification: the user opens " a #answer-wa-link href=(link) rel="noreferrer" { "this WhatsApp link" }
                    " (or scans the code) and sends the prefilled text from the number being verified." }
                // Inline, without the XML declaration a standalone file starts with.
                @if let Ok(svg) = crate::reverse::qr_of(link) {
                    div #answer-qr { (maud::PreEscaped(svg.find("<svg").map_or(svg.as_str(), |at| &svg[at..]))) }
                }
            }
        }
    }
}

pub async fn show(_: Operator, State(state): State<AppState>) -> PageResult {
    view(&state, &TryForm { mode: Some("sandbox".into()), ..TryForm::default() }, None).await
}

/// The chosen app, as the API would load it after authentication.
async fn chosen_app(state: &AppState, form: &TryForm) -> Result<std::sync::Arc<crate::auth::CachedApp>, ApiError> {
    let id = given(&form.app).and_then(|a| a.parse().ok()).ok_or_else(|| ApiError::validation("choose an app"))?;
    state.apps.get(id).await?.ok_or(ApiError::AppNotFound)
}

#[derive(Clone, Copy, PartialEq)]
enum Call {
    Send,
    Verify,
}

/// Makes the call the form asks for, as its app, and shows the page with the API's answer.
async fn call(state: &AppState, form: TryForm, call: Call) -> PageResult {
    let mode = form.sandbox();
    let route = format!(
        "POST /v1/whatsapp/otp/{}{}",
        if call == Call::Send { "send" } else { "verify" },
        if mode.as_ref().is_ok_and(|s| *s) { "/sandbox" } else { "" }
    );
    let result = async {
        let sandbox = mode?;
        let app = chosen_app(state, &form).await?;
        let body = form.body(call)?;
        Ok(match (call, sandbox) {
            (Call::Send, true) => crate::sandbox::accept(state, &app, &body).await?.into_response(),
            (Call::Send, false) => {
                let answer = crate::send::accept(state, &app, None, &HeaderMap::new(), &body).await?;
                tracing::info!(app_id = %app.record.app_id, "production send from the dashboard's try-it form");
                answer.into_response()
            }
            (Call::Verify, true) => crate::sandbox::check(state, &app, &body).await?.into_response(),
            (Call::Verify, false) => crate::verify::production(state, &app, &body).await?.into_response(),
        })
    }
    .await;
    let answer = answer(route, result).await;
    // A verify's code is not put back into the form.
    view(state, &TryForm { otp: None, ..form }, Some(answer)).await
}

pub async fn send(_: Operator, State(state): State<AppState>, form: super::F<TryForm>) -> PageResult {
    call(&state, form.map(|Form(f)| f).unwrap_or_default(), Call::Send).await
}

pub async fn verify(_: Operator, State(state): State<AppState>, form: super::F<TryForm>) -> PageResult {
    call(&state, form.map(|Form(f)| f).unwrap_or_default(), Call::Verify).await
}
