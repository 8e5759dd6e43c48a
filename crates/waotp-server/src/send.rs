//! `POST /v1|v2/whatsapp/otp/send`: validate, store durably, answer 201, deliver later.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use uuid::Uuid;
use waotp_core::code::{CodeError, GENERATED_CODE_LEN};
use waotp_core::{Msisdn, OtpCode, RenderedMessage};
use waotp_store::{IdempotencyKey, NewSession, Refusal, SendGuards, SendOutcome};

use crate::auth::{AuthedApp, CachedApp};
use crate::body::Fields;
use crate::channel::OutboundMessage;
use crate::{guards, ApiError, AppState};

/// Longest `challenge` (api.md section 2).
pub const MAX_CHALLENGE_CHARS: usize = 64;
/// Longest `callback_url`.
pub const MAX_CALLBACK_URL_CHARS: usize = 2048;
/// Most `content` values, and the longest one.
pub const MAX_CONTENT_VALUES: usize = 20;
pub const MAX_CONTENT_CHARS: usize = 1024;
/// Validity bounds in seconds.
pub const TIME_LIMIT: std::ops::RangeInclusive<u64> = 1..=86_400;

#[derive(Serialize)]
pub struct SendResponse {
    pub message: &'static str,
    pub msisdn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otp: Option<String>,
    pub session_id: Uuid,
    pub try_count: u32,
    /// A reverse verification's link and text (`"method": "reverse"`; see [`crate::reverse`]).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub reverse: Option<crate::reverse::Link>,
}

/// A send request after validation.
pub struct SendRequest {
    pub msisdn: Msisdn,
    pub code: OtpCode,
    pub challenge: String,
    pub time_limit_s: u64,
    pub message: RenderedMessage,
    pub content: Vec<String>,
    pub callback_url: Option<String>,
    /// A reverse verification: nothing is delivered; the user sends the code.
    pub reverse: Option<crate::reverse::Start>,
}

impl SendRequest {
    /// Parses and checks every field against the contract and the app's settings and
    /// templates. Nothing is written before this succeeds.
    pub fn parse(body: &Fields, app: &CachedApp, deny_private: bool) -> Result<SendRequest, ApiError> {
        let msisdn =
            Msisdn::parse(body.required_str("msisdn")?).map_err(|e| ApiError::validation(format!("msisdn: {e}")))?;
        Self::parse_for(msisdn, body, app, deny_private)
    }

    /// Parses everything but the msisdn, which the caller has already settled.
    pub fn parse_for(
        msisdn: Msisdn,
        body: &Fields,
        app: &CachedApp,
        deny_private: bool,
    ) -> Result<SendRequest, ApiError> {
        Self::parse_fields(msisdn, body, app, deny_private, true)
    }

    /// A reverse verification's fields: checked as a send's, but no template is chosen or
    /// rendered (none is sent: an app whose template is not registered in the request's
    /// language may still start one); the message is left for the caller to fill.
    pub fn parse_reverse(body: &Fields, app: &CachedApp, deny_private: bool) -> Result<SendRequest, ApiError> {
        let msisdn =
            Msisdn::parse(body.required_str("msisdn")?).map_err(|e| ApiError::validation(format!("msisdn: {e}")))?;
        Self::parse_fields(msisdn, body, app, deny_private, false)
    }

    /// [`Self::parse_reverse`] with the msisdn settled by the caller.
    pub fn parse_reverse_for(
        msisdn: Msisdn,
        body: &Fields,
        app: &CachedApp,
        deny_private: bool,
    ) -> Result<SendRequest, ApiError> {
        Self::parse_fields(msisdn, body, app, deny_private, false)
    }

    fn parse_fields(
        msisdn: Msisdn,
        body: &Fields,
        app: &CachedApp,
        deny_private: bool,
        with_template: bool,
    ) -> Result<SendRequest, ApiError> {
        let settings = &app.record.settings;
        let custom = body.opt_code("otp")?;
        let length = body.opt_uint("otp_length", 0..=u64::MAX)?;
        let code = match (custom, length) {
            (Some(_), Some(_)) => return Err(ApiError::validation("send either otp or otp_length, not both")),
            (Some(code), None) => OtpCode::parse_custom(&code).map_err(|e| ApiError::validation(e.to_string()))?,
            (None, length) => {
                let len = length.unwrap_or(u64::from(settings.code_length));
                if !GENERATED_CODE_LEN.contains(&(len as usize)) {
                    return Err(ApiError::validation(CodeError::GeneratedLength.to_string()));
                }
                OtpCode::generate(len as usize).map_err(|e| ApiError::validation(e.to_string()))?
            }
        };
        let challenge = body.opt_str("challenge", MAX_CHALLENGE_CHARS)?.unwrap_or("").to_owned();
        let time_limit_s = body.opt_uint("time_limit", TIME_LIMIT)?.unwrap_or(u64::from(settings.time_limit));
        let template_name = body.opt_str("template_name", 512)?.unwrap_or(&settings.template_name);
        let lang_code = body.opt_str("lang_code", 15)?.unwrap_or(&settings.lang_code);
        waotp_core::template::validate_name(template_name)
            .map_err(|e| ApiError::validation(format!("template_name: {e}")))?;
        waotp_core::template::validate_language(lang_code)
            .map_err(|e| ApiError::validation(format!("lang_code: {e}")))?;
        let content = body.opt_string_list("content", MAX_CONTENT_VALUES, MAX_CONTENT_CHARS)?;
        let callback_url = body
            .opt_str("callback_url", MAX_CALLBACK_URL_CHARS)?
            .map(|url| parse_callback_url(url, deny_private))
            .transpose()?;
        let message = if with_template {
            let template = app.template(template_name, lang_code).map_err(|e| ApiError::validation(e.to_string()))?;
            template.render(&code, &content).map_err(|e| ApiError::validation(format!("content: {e}")))?
        } else {
            waotp_core::RenderedMessage {
                template_name: String::new(),
                language: lang_code.to_owned(),
                category: waotp_core::Category::Authentication,
                text: String::new(),
                body_parameters: Vec::new(),
                button_parameter: None,
            }
        };
        Ok(SendRequest { msisdn, code, challenge, time_limit_s, message, content, callback_url, reverse: None })
    }
}

/// The `callback_url` to store (see [`crate::callbacks::target`]).
pub fn parse_callback_url(raw: &str, deny_private: bool) -> Result<String, ApiError> {
    crate::callbacks::target::check(raw, deny_private)
        .map_err(|why| ApiError::validation(format!("callback_url: {why}")))
}

pub async fn send(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    AuthedApp(app): AuthedApp,
    body: Fields,
) -> Result<(StatusCode, Json<SendResponse>), ApiError> {
    let ip = state.client_ip(&headers, peer);
    accept(&state, &app, ip, &headers, &body).await
}

/// A production send from `ip` (`None`: no per-IP limit), as the route and the dashboard's
/// try-it form make it.
pub(crate) async fn accept(
    state: &AppState,
    app: &CachedApp,
    ip: Option<std::net::IpAddr>,
    headers: &HeaderMap,
    body: &Fields,
) -> Result<(StatusCode, Json<SendResponse>), ApiError> {
    if crate::reverse::requested(body)? {
        return crate::reverse::start(state, app, ip, headers, body).await;
    }
    let req = SendRequest::parse(body, app, state.deny_private_callbacks)?;
    if !guards::country_allowed(&app.record, &req.msisdn) {
        state.metrics.send(app.record.app_id, "refused");
        return Err(state.refused(app, &req.msisdn, Refusal::new(waotp_core::RefusalReason::CountryNotAllowed), false));
    }
    let idempotency = idempotency_key(headers, body)?;
    let guards = guards::send_guards(&app.record, &req.msisdn, ip, idempotency, state.clock.now_ms());
    match store_session(state, app, req, false, Vec::new(), guards).await? {
        Stored::New(response, message) => {
            if let Some(message) = message {
                state.dispatch.push(*message);
            }
            Ok((StatusCode::CREATED, Json(response)))
        }
        Stored::Replayed(response) => Ok((StatusCode::CREATED, Json(response))),
    }
}

/// The `Idempotency-Key` header, if any, with the body's hash.
pub(crate) fn idempotency_key(headers: &HeaderMap, body: &Fields) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| ApiError::validation("Idempotency-Key must be 1 to 255 visible ASCII characters"))?;
    Ok(Some(IdempotencyKey { key: key.to_owned(), body_hash: body.sha256() }))
}

/// A send once stored: new (with the message to deliver, unless it went to the local inbox
/// with the session), or the answer of an earlier send with the same idempotency key.
pub enum Stored {
    New(SendResponse, Option<Box<OutboundMessage>>),
    Replayed(SendResponse),
}

/// Checks the guards and stores a validated send; builds its 201 body and the message for
/// the channel. Sandbox sessions keep no sealed code (nothing is delivered) and report
/// `scripted` statuses in the same transaction.
pub async fn store_session(
    state: &AppState,
    app: &CachedApp,
    req: SendRequest,
    sandbox: bool,
    scripted: Vec<waotp_core::Status>,
    guards: SendGuards,
) -> Result<Stored, ApiError> {
    let app_id = app.record.app_id;
    // Time-ordered (UUIDv7: a millisecond timestamp, then 74 random bits), so each new id goes
    // to the right edge of the session-id index instead of a random page of it.
    let session_id = Uuid::now_v7();
    let now = state.clock.now_ms();
    let expires_at_ms = now + (req.time_limit_s as i64) * 1000;
    // To the local inbox, the message is stored with the session, in the send's own write:
    // its last look is this send's own (the guards looked at the blocklist, and the code is
    // new), so nothing is left for the dispatcher.
    let inbox_text =
        (!sandbox && req.reverse.is_none() && guards.check_blocklist && state.dispatch.delivers_to_inbox())
            .then(|| req.message.text.clone());
    let to_inbox = inbox_text.is_some();
    // Rendered now, while the code is at hand (nothing when the app names no backups).
    let backups = if sandbox || to_inbox {
        Vec::new()
    } else {
        crate::sender_health::failover::render_backups(
            app,
            &req.message.template_name,
            &req.message.language,
            &req.code,
            &req.content,
        )
    };
    let outcome = state
        .store
        .create_session(
            NewSession {
                session_id,
                app_id,
                msisdn: req.msisdn.clone(),
                challenge: req.challenge,
                code_hash: state.key.hash(&session_id, &req.code),
                sealed_code: (!sandbox).then(|| state.key.seal(&session_id, &req.code)),
                sandbox,
                scripted,
                template_name: req.message.template_name.clone(),
                lang_code: req.message.language.clone(),
                content: req.content,
                callback_url: req.callback_url,
                created_at_ms: now,
                expires_at_ms,
                inbox_text,
                reverse_key: req.reverse.as_ref().map(|r| r.key),
                reverse_text: req.reverse.as_ref().and_then(|r| r.custom_text.clone()),
            },
            guards,
        )
        .await?;
    let return_code = app.record.settings.return_code;
    if !sandbox {
        let label = match &outcome {
            SendOutcome::Created { .. } => "accepted",
            SendOutcome::Replayed(_) => "replayed",
            SendOutcome::Refused(_) => "refused",
        };
        state.metrics.send(app_id, label);
    }
    match outcome {
        SendOutcome::Created { try_count, signals } => {
            for signal in signals {
                if state.signals.add(signal.code()) {
                    tracing::warn!(app_id = %app_id, msisdn = %req.msisdn, rule = signal.code(), "pumping signal (monitor mode)");
                }
            }

            tracing::debug!(%session_id, msisdn = %req.msisdn, try_count, sandbox, "otp stored");
            let response = SendResponse {
                message: "OTP sent successfully",
                msisdn: req.msisdn.as_str().to_owned(),
                otp: return_code.then(|| req.code.as_str().to_owned()),
                session_id,
                try_count,
                reverse: req.reverse.as_ref().map(|r| r.link(&req.code)),
            };
            if response.reverse.is_some() {
                // Nothing to deliver: the user sends the code to the business.
                return Ok(Stored::New(response, None));
            }
            if to_inbox {
                state.metrics.delivery(state.channel_name, "delivered", std::time::Duration::ZERO);
                return Ok(Stored::New(response, None));
            }
            let message = Box::new(OutboundMessage {
                session_id,
                app_id,
                msisdn: req.msisdn,
                message: req.message,
                backups,
                expires_at_ms,
                sender: app.sender.clone(),
            });
            Ok(Stored::New(response, Some(message)))
        }
        SendOutcome::Replayed(earlier) => {
            tracing::debug!(session_id = %earlier.session_id, "idempotent replay");
            let code = state.key.unseal(&earlier.session_id, &earlier.sealed_code);
            let reverse = match (&req.reverse, &code) {
                // The earlier session's own text (the app's, as it was then): its key was made of it.
                (Some(r), Some(c)) => {
                    let parts = state.store.reverse_link_parts(app_id, earlier.session_id).await?;
                    let custom_text = parts.and_then(|p| p.custom_text);
                    Some(crate::reverse::Start { custom_text, ..r.clone() }.link(c))
                }
                _ => None,
            };
            Ok(Stored::Replayed(SendResponse {
                reverse,
                message: "OTP sent successfully",
                msisdn: earlier.msisdn.as_str().to_owned(),
                otp: if return_code { code.map(|c| c.as_str().to_owned()) } else { None },
                session_id: earlier.session_id,
                try_count: earlier.try_count,
            }))
        }
        SendOutcome::Refused(refusal) => Err(state.refused(app, &req.msisdn, refusal, sandbox)),
    }
}
