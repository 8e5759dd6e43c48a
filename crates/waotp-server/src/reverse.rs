//! Reverse verification (issue 20): the user sends the code to the business over WhatsApp.
//!
//! - `POST /v1|v2/whatsapp/otp/send` with `"method": "reverse"` runs a send's validation and
//!   guards, stores a session marked reverse and answers 201 with the code's prefilled `text`,
//!   a `wa_link` (`https://wa.me/<business number>?text=…`) and the `business_number`; nothing
//!   is delivered (no template, no inbox message).
//! - An inbound text message (Meta's `messages` webhook, or `POST /v1/inbox/inbound` with the
//!   local inbox channel) that is the prefilled text of a pending reverse session (up to case,
//!   spacing and look-alike characters: [`waotp_core::reverse::normalise`]), from the session's
//!   number, verifies it (status 4, callback). A message that merely contains the code verifies
//!   nothing. From another number it is counted apart ([`waotp_core::reverse::decide_inbound`]):
//!   never as the owner's wrong try, so strangers cannot lock the owner out. A message naming
//!   no session costs one key read and writes nothing.
//! - A sender Meta names only by a business-scoped user id (a username user whose number it
//!   does not share) is the number that id was learned to stand for ([`user_ids`]); with none
//!   learned, the message verifies nothing, counts nothing against the session, and the session
//!   says why (`number_not_shared`), so the app can send a code to the number instead.
//! - On success the user's message gets a ✅ reaction (free), and the app's text reply if it
//!   set one (a service message Meta may bill: its pricing is recorded with the session, see
//!   [`acknowledge`]); nothing on failure.
//! - `GET /v1/sessions/{session_id}`: any session's status, for apps that poll.

mod acknowledge;
mod number;
pub(crate) mod user_ids;

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde::Serialize;
use serde_json::{json, Value};
use uuid::Uuid;
use waotp_core::reverse::InboundDecision;
use waotp_core::{Category, Guess, Msisdn, OtpCode, RenderedMessage, VerifyDecision};
use waotp_store::{InboundAttempt, InboundOutcome, InboundScope, Refusal, SendGuards, StoreError};
use waotp_whatsapp::GraphClient;

use crate::auth::{AuthedApp, CachedApp};
use crate::body::Fields;
use crate::channel::Sender;
use crate::clock::Clock;
use crate::config::{Config, WhatsAppConfig};
use crate::guards::Counts;
use crate::send::{self, SendRequest, SendResponse, Stored};
use crate::{guards, ApiError, AppState};

/// The business number in links when no WhatsApp account is configured (the local inbox
/// channel) and `whatsapp_display_number` is not set: the `555` fictional range.
pub const PLACEHOLDER_NUMBER: &str = "15550000000";

/// The emoji a verified message gets.
pub const ACK_EMOJI: &str = "\u{2705}";

/// A reverse start, as the send stores it.
#[derive(Clone)]
pub struct Start {
    /// [`waotp_core::CodeKey::reverse_lookup`] of the prefilled text.
    pub key: [u8; 32],
    pub business_number: String,
    pub lang_code: String,
    /// The app's own prefilled text for the language (`{code}` once), if it set one.
    pub custom_text: Option<String>,
}

impl Start {
    pub fn link(&self, code: &OtpCode) -> Link {
        let text = waotp_core::reverse::prefilled_text(self.custom_text.as_deref(), &self.lang_code, code);
        let wa_link =
            format!("https://wa.me/{}?text={}", self.business_number, utf8_percent_encode(&text, NON_ALPHANUMERIC));
        Link { method: "reverse", text, wa_link, business_number: self.business_number.clone() }
    }
}

/// What a reverse start's 201 adds to a send's body.
#[derive(Debug, Clone, Serialize)]
pub struct Link {
    pub method: &'static str,
    /// The message the user sends, prefilled.
    pub text: String,
    /// Opens WhatsApp with `text` addressed to the business.
    pub wa_link: String,
    /// The business's number, digits only.
    pub business_number: String,
}

/// Whether a send body asks for a reverse verification (`"method": "reverse"`; absent or
/// `"template"`: a template is delivered, as before).
pub fn requested(body: &Fields) -> Result<bool, ApiError> {
    match body.opt_str("method", 16)? {
        None | Some("template") => Ok(false),
        Some("reverse") => Ok(true),
        Some(_) => Err(ApiError::validation("method must be template or reverse")),
    }
}

/// A reverse start from `ip`: a send's validation and guards, no delivery.
pub(crate) async fn start(
    state: &AppState,
    app: &CachedApp,
    ip: Option<IpAddr>,
    headers: &HeaderMap,
    body: &Fields,
) -> Result<(StatusCode, Json<SendResponse>), ApiError> {
    if body.opt_code("otp")?.is_some() {
        return Err(ApiError::validation("a reverse verification makes its own code: send no otp"));
    }
    // Every field is checked as a send checks it (a malformed template_name or lang_code is
    // refused), but no template is chosen: none is sent; the code and the message are then
    // the reverse ones.
    let req = SendRequest::parse_reverse(body, app, state.deny_private_callbacks)?;
    if !guards::country_allowed(&app.record, &req.msisdn) {
        state.metrics.send(app.record.app_id, "refused");
        return Err(state.refused(app, &req.msisdn, Refusal::new(waotp_core::RefusalReason::CountryNotAllowed), false));
    }
    let idempotency = send::idempotency_key(headers, body)?;
    // A reverse start sends no template (the user writes first; the ✅ reaction is free), but
    // the app's text reply, if it set one, is a service message Meta bills beyond the number's
    // monthly free allowance (since 2026-10-01), recorded with the session: with a reply, the
    // monthly ceiling refuses a start as it refuses a send; without one it does not apply.
    let mut guards = guards::send_guards(&app.record, &req.msisdn, ip, idempotency, state.clock.now_ms());
    if app.record.settings.reverse_reply.is_none() {
        guards.billable_ceiling = None;
    }
    let (req, _) = reverse_request(state, app, req).await?;
    match send::store_session(state, app, req, false, Vec::new(), guards).await? {
        Stored::New(response, _) | Stored::Replayed(response) => Ok((StatusCode::CREATED, Json(response))),
    }
}

/// A validated send turned into a reverse start: a reverse code, its prefilled text in the
/// request's language and the key an inbound message finds it by; the start is returned too,
/// for the link of a session that keeps none (the sandbox's).
async fn reverse_request(
    state: &AppState,
    app: &CachedApp,
    req: SendRequest,
) -> Result<(SendRequest, Start), ApiError> {
    let business_number = state.reverse.business_number(app).await?;
    let code = waotp_core::reverse::generate();
    let lang_code = req.message.language.clone();
    let mut start = Start {
        key: [0; 32],
        business_number,
        custom_text: app.record.settings.reverse_text(&lang_code).map(str::to_owned),
        lang_code: lang_code.clone(),
    };
    let text = start.link(&code).text;
    start.key = state.key.reverse_lookup(&text);
    let req = SendRequest {
        code,
        message: RenderedMessage {
            template_name: String::new(),
            language: lang_code,
            category: Category::Authentication,
            text,
            body_parameters: Vec::new(),
            button_parameter: None,
        },
        content: Vec::new(),
        reverse: Some(start.clone()),
        ..req
    };
    Ok((req, start))
}

/// How long the sandbox's reverse scenario waits before its "user" sends the code.
pub const SANDBOX_ANSWER_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// The sandbox's reverse scenario (`6282123060017`): a sandbox session with its link, which its
/// simulated user answers [`SANDBOX_ANSWER_AFTER`] later (status 4, callback). Nothing counts,
/// nothing is delivered; the verify route's sandbox answers it as any sandbox session.
pub(crate) async fn sandbox(
    state: &AppState,
    app: &CachedApp,
    msisdn: Msisdn,
    body: &Fields,
) -> Result<(StatusCode, Json<SendResponse>), ApiError> {
    // A client testing its ordinary send against the sandbox may give its own `otp` to any
    // sandbox number: this one makes its own code, so a well-formed `otp` is ignored here (a
    // production reverse start refuses it, where it would be a client's mistake).
    body.opt_code("otp")?;
    let req = SendRequest::parse_reverse_for(msisdn, body, app, state.deny_private_callbacks)?;
    // A sandbox session keeps no code to seal and no key: it is answered here, not by a message.
    let (mut req, start) = reverse_request(state, app, req).await?;
    req.reverse = None;
    let link = start.link(&req.code);
    let (msisdn, challenge, code) = (req.msisdn.clone(), req.challenge.clone(), req.code.clone());
    let (Stored::New(mut response, _) | Stored::Replayed(mut response)) =
        send::store_session(state, app, req, true, Vec::new(), SendGuards::default()).await?;
    response.reverse = Some(link);
    let (state, app_id) = (state.clone(), app.record.app_id);
    tokio::spawn(async move {
        tokio::time::sleep(SANDBOX_ANSWER_AFTER).await;
        let attempt = waotp_store::VerifyAttempt {
            app_id,
            sandbox: true,
            msisdn,
            challenge,
            guess: Guess::new(code, state.key.clone()),
            now_ms: state.clock.now_ms(),
            limit: None,
            on_verified: Vec::new(),
        };
        if let Err(e) = state.store.verify(attempt).await {
            tracing::warn!(error = %e, "the sandbox's reverse scenario could not verify its session");
        }
    });
    Ok((StatusCode::CREATED, Json(response)))
}

/// The business number and the acknowledgment: what reverse verification needs of WhatsApp.
pub struct Reverse {
    /// `whatsapp_display_number`, digits.
    configured: Option<String>,
    /// The Graph API and the server's own number, when a WhatsApp account is configured.
    graph: Option<(GraphClient, Arc<WhatsAppConfig>)>,
    /// Display numbers looked up, and lookups that failed lately, by phone-number id.
    numbers: number::Numbers,
    /// The business-scoped user id pairs this node wrote lately.
    pub(crate) user_ids: user_ids::Remembered,
}

impl Reverse {
    pub fn new(config: &Config, clock: Clock) -> reqwest::Result<Reverse> {
        let graph = match &config.whatsapp {
            Some(w) => Some((
                GraphClient::new(&w.api_base, &w.api_version, std::time::Duration::from_secs(10))?,
                Arc::new(w.clone()),
            )),
            None => None,
        };
        Ok(Reverse {
            configured: config.whatsapp_display_number.clone(),
            graph,
            numbers: number::Numbers::new(clock),
            user_ids: user_ids::Remembered::default(),
        })
    }

    /// The number the user writes to: the app's own sender's (looked up), else the
    /// configured `whatsapp_display_number`, else the server's number (looked up), else (the
    /// local inbox channel) [`PLACEHOLDER_NUMBER`].
    pub async fn business_number(&self, app: &CachedApp) -> Result<String, ApiError> {
        let Some((client, w)) = &self.graph else {
            return Ok(self.configured.clone().unwrap_or_else(|| PLACEHOLDER_NUMBER.to_owned()));
        };
        let (pnid, token) = match &app.sender {
            Sender::App(own) => (own.phone_number_id.as_str(), own.access_token.as_str()),
            Sender::Unusable(why) => return Err(ApiError::Internal(why.to_string().into())),
            Sender::Configured => match &self.configured {
                Some(number) => return Ok(number.clone()),
                None => (w.phone_number_id.as_str(), w.access_token.expose()),
            },
        };
        let cached = || match self.numbers.cached(pnid) {
            number::Cached::Known(number) => Some(Ok(number)),
            number::Cached::BackingOff(left) => Some(Err(number_unavailable(left))),
            number::Cached::Unknown => None,
        };
        if let Some(answer) = cached() {
            return answer;
        }
        // One read at a time: a start that waited for another's read takes its outcome.
        let reading = self.numbers.reading(pnid);
        let _reading = reading.lock().await;
        if let Some(answer) = cached() {
            return answer;
        }
        match client.display_phone_number(pnid, token).await {
            Ok(shown) => {
                let digits: String = shown.chars().filter(char::is_ascii_digit).collect();
                self.numbers.read(pnid, digits.clone());
                Ok(digits)
            }
            Err(e) => {
                let backoff = self.numbers.failed(pnid);
                tracing::warn!(error = %describe(&e), retry_in_s = backoff.as_secs(),
                    "cannot read the business number from the Graph API; reverse starts are refused until \
                     it is read (set whatsapp_display_number to need no lookup)");
                Err(number_unavailable(backoff))
            }
        }
    }
}

fn number_unavailable(left: std::time::Duration) -> ApiError {
    ApiError::BusinessNumberUnavailable { retry_after_s: left.as_millis().div_ceil(1000).max(1) as u64 }
}

/// A Graph API failure in one line (the code and Meta's words; never the token).
fn describe(e: &waotp_whatsapp::SendFailure) -> String {
    match e {
        waotp_whatsapp::SendFailure::Graph { http_status, error } => {
            format!("HTTP {http_status}: {}", error.describe())
        }
        waotp_whatsapp::SendFailure::Transport(why) => why.clone(),
    }
}

/// What an inbound message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// It verified this session.
    Verified { session_id: Uuid },
    /// It named a session but did not verify it (another sender, counted apart; or the
    /// session is used, expired or locked).
    Refused,
    /// It named no pending reverse session.
    Ignored,
    /// The same message id was applied before.
    Replayed,
}

impl Applied {
    pub fn name(self) -> &'static str {
        match self {
            Applied::Verified { .. } => "verified",
            Applied::Refused => "refused",
            Applied::Ignored => "ignored",
            Applied::Replayed => "replayed",
        }
    }
}

/// Who sent an inbound message: its number as the provider gave it (digits; `None`: not
/// shared), and the business-scoped user ids to look its number up by when it is not.
#[derive(Clone, Default)]
pub struct InboundSender {
    pub number: Option<String>,
    pub user_ids: Vec<waotp_store::UserKey>,
}

impl std::fmt::Debug for InboundSender {
    /// Masked: the number as a msisdn is, the ids as [`waotp_store::UserKey`]'s `Debug`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundSender")
            .field("number", &self.number.as_deref().map(waotp_core::msisdn::mask))
            .field("user_ids", &self.user_ids)
            .finish()
    }
}

impl InboundSender {
    pub fn number(digits: &str) -> InboundSender {
        InboundSender { number: Some(digits.to_owned()), user_ids: Vec::new() }
    }
}

/// Applies an inbound text message: the session whose prefilled text it is (one key read)
/// decides. With `react`, a verified message gets its ✅ (in the background).
pub async fn apply(
    state: &AppState,
    sender: InboundSender,
    text: &str,
    message_id: &str,
    scope: InboundScope,
    react: bool,
) -> Result<Applied, StoreError> {
    static LOGGED: Counts = Counts::new();
    let now_ms = state.clock.now_ms();
    let sender_id = sender.user_ids.first().map(|k| waotp_core::msisdn::mask_user_id(&k.user_id));
    let outcome = decide(state.store.as_ref(), &state.key, sender, text, message_id, &scope, now_ms).await?;
    let (app_id, session_id, msisdn, decision, number) = match outcome {
        InboundOutcome::NoSession => {
            state.metrics.whatsapp_event("inbound_ignored");
            log_ignored(now_ms);
            return Ok(Applied::Ignored);
        }
        InboundOutcome::Replayed => {
            state.metrics.whatsapp_event("inbound_replayed");
            return Ok(Applied::Replayed);
        }
        InboundOutcome::Decided { app_id, session_id, msisdn, decision, sender_number } => {
            (app_id, session_id, msisdn, decision, sender_number)
        }
    };
    let label = decision.label();
    state.metrics.verify(app_id, label);
    let from = number.as_ref().map_or_else(|| "not shared".to_owned(), Msisdn::masked);
    if decision != InboundDecision::Owner(VerifyDecision::Verified) {
        if LOGGED.add(label) {
            tracing::info!(%session_id, msisdn = %msisdn, %from, sender_id = sender_id.as_deref().unwrap_or("none"),
                outcome = label, "an inbound reverse verification message did not verify its session");
        }
        return Ok(Applied::Refused);
    }
    tracing::info!(%session_id, %app_id, msisdn = %msisdn, "reverse verification: verified by the user's message");
    if let (true, true, Some(to)) = (react, state.reverse.graph.is_some(), number.map(|n| n.as_str().to_owned())) {
        acknowledge::spawn(state, app_id, session_id, to, message_id);
    }
    Ok(Applied::Verified { session_id })
}

/// Decides on the session whose prefilled text `text` is (one key read): what the server's
/// webhook and inbox route, and the CLI's `waotp inbox inbound`, apply.
pub async fn decide(
    store: &dyn waotp_store::Store,
    key: &Arc<waotp_core::CodeKey>,
    sender: InboundSender,
    text: &str,
    message_id: &str,
    scope: &InboundScope,
    now_ms: i64,
) -> Result<InboundOutcome, StoreError> {
    let attempt = InboundAttempt {
        reverse_key: key.reverse_lookup(text),
        from: sender.number.map(|n| n.chars().filter(char::is_ascii_digit).take(20).collect()),
        sender_ids: sender.user_ids,
        message_id: message_id.to_owned(),
        now_ms,
        scope: scope.clone(),
    };
    store.verify_inbound(attempt).await
}

/// Logs the messages that named no session as one line a minute at most, with their count:
/// a flood from random numbers cannot grow the log faster than that.
fn log_ignored(now_ms: i64) {
    use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
    static SINCE: AtomicU64 = AtomicU64::new(0);
    static LAST_MS: AtomicI64 = AtomicI64::new(i64::MIN);
    SINCE.fetch_add(1, Ordering::Relaxed);
    let last = LAST_MS.load(Ordering::Relaxed);
    if now_ms.saturating_sub(last) >= 60_000
        && LAST_MS.compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    {
        let ignored = SINCE.swap(0, Ordering::Relaxed);
        tracing::info!(
            ignored,
            "inbound messages that name no pending reverse verification were ignored (see \
            waotp_whatsapp_events_total, outcome inbound_ignored)"
        );
    }
}

/// `POST /v1/inbox/inbound` (app credentials, the local inbox channel only):
/// `{"from": "…", "text": "…"}` as if the user had sent `text` from `from` to the business.
pub async fn inbox_inbound(
    State(state): State<AppState>,
    AuthedApp(app): AuthedApp,
    body: Fields,
) -> Result<Json<Value>, ApiError> {
    if state.whatsapp.is_some() {
        return Err(ApiError::validation(
            "inbound messages are simulated only with the local inbox channel (WhatsApp is configured)",
        ));
    }
    // `from_user_id` alone: a sender whose number WhatsApp does not share (a username user), to
    // try the app's fallback; no business-scoped user id is learned with the local inbox.
    let sender = match (body.opt_str("from", 64)?, body.opt_str("from_user_id", 140)?) {
        (Some(raw), _) => {
            let from = raw.strip_prefix('+').unwrap_or(raw);
            if !(6..=15).contains(&from.len()) || !from.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ApiError::validation("from must be a phone number: 6 to 15 digits, an optional +"));
            }
            InboundSender::number(from)
        }
        (None, Some(user_id)) => {
            if user_id.is_empty() || !user_id.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(ApiError::validation(
                    "from_user_id must be a business-scoped user id: 1 to 140 printable characters, no spaces",
                ));
            }
            InboundSender { number: None, user_ids: vec![waotp_store::UserKey::new("inbox", user_id)] }
        }
        _ => return Err(ApiError::validation("from (a phone number) or from_user_id is required")),
    };
    let text = body
        .opt_str("text", waotp_whatsapp::webhook::MAX_INBOUND_TEXT)?
        .ok_or_else(|| ApiError::validation("text is required"))?;
    let message_id = format!("inbox.{}", Uuid::new_v4().simple());
    // The caller's sessions only: an app's credentials simulate its own users.
    let applied = apply(&state, sender, text, &message_id, InboundScope::App(app.record.app_id), false).await?;
    let mut answer = json!({ "message": "Inbound message received", "outcome": applied.name() });
    if let Applied::Verified { session_id } = applied {
        answer["session_id"] = json!(session_id);
    }
    Ok(Json(answer))
}

/// `GET /v1/sessions/{session_id}/qr.svg` (app credentials): a QR code of a reverse
/// session's `wa_link`, for desktop flows (the user scans it with the phone). 404 for a
/// session that is not the app's, or not reverse.
pub async fn qr_svg(
    State(state): State<AppState>,
    AuthedApp(app): AuthedApp,
    raw: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let Path(raw) = raw.map_err(|e| ApiError::validation(e.body_text()))?;
    let id = Uuid::parse_str(&raw).map_err(|_| ApiError::validation("session_id must be a UUID"))?;
    let parts = state.store.reverse_link_parts(app.record.app_id, id).await?.ok_or(ApiError::SessionNotFound)?;
    let s = state.store.get_session(app.record.app_id, id).await?.ok_or(ApiError::SessionNotFound)?;
    let code = state.key.unseal(&id, &parts.sealed_code).ok_or_else(|| {
        ApiError::Internal("a reverse session's code does not open (was the server secret changed?)".into())
    })?;
    let start = Start {
        key: [0; 32],
        business_number: state.reverse.business_number(&app).await?,
        // The text the session's key was made of: the app's as it was when it started.
        custom_text: parts.custom_text,
        lang_code: s.lang_code,
    };
    let svg = qr_of(&start.link(&code).wa_link)?;
    Ok(([(axum::http::header::CONTENT_TYPE, "image/svg+xml"), (axum::http::header::CACHE_CONTROL, "no-store")], svg)
        .into_response())
}

/// An SVG QR code of `link` (error correction M, a quiet zone, 4 px modules at least).
pub fn qr_of(link: &str) -> Result<String, ApiError> {
    let qr = qrcode::QrCode::with_error_correction_level(link.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| ApiError::Internal(format!("QR code: {e}").into()))?;
    Ok(qr.render::<qrcode::render::svg::Color<'_>>().min_dimensions(200, 200).build())
}

/// `GET /v1/sessions/{session_id}` (app credentials): any session of the app, reverse or not.
pub async fn session(
    State(state): State<AppState>,
    AuthedApp(app): AuthedApp,
    raw: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(raw) = raw.map_err(|e| ApiError::validation(e.body_text()))?;
    let id = Uuid::parse_str(&raw).map_err(|_| ApiError::validation("session_id must be a UUID"))?;
    let s = state.store.get_session(app.record.app_id, id).await?.ok_or(ApiError::SessionNotFound)?;
    let others = if s.sandbox { None } else { state.store.reverse_other_senders(id).await? };
    let method = match (s.sandbox, others) {
        (true, _) => "sandbox",
        (false, Some(_)) => "reverse",
        (false, None) => "template",
    };
    let at = |ms: Option<i64>| ms.map(crate::clock::rfc3339);
    Ok(Json(json!({
        "session_id": s.session_id,
        "msisdn": s.msisdn.as_str(),
        "challenge": s.challenge,
        "method": method,
        "status": s.status.code(),
        "status_name": s.status.name(),
        "state": s.state.as_str(),
        "try_count": s.try_count,
        "wrong_attempts": s.wrong_attempts,
        "wrong_senders": others.map(|o| o.wrong),
        "number_not_shared": others.map(|o| o.number_not_shared),
        "created_at": crate::clock::rfc3339(s.created_at_ms),
        "expires_at": crate::clock::rfc3339(s.expires_at_ms),
        "sent_at": at(s.timeline.sent_at_ms),
        "delivered_at": at(s.timeline.delivered_at_ms),
        "read_at": at(s.timeline.read_at_ms),
        "failed_at": at(s.timeline.failed_at_ms),
        "closed_at": at(s.timeline.closed_at_ms),
    })))
}
