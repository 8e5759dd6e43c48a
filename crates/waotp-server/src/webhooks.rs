//! Meta's webhooks: `GET /webhooks/whatsapp` answers the subscription handshake;
//! `POST /webhooks/whatsapp` takes signed status batches. A bad signature is a 401 and
//! nothing is processed; duplicates and out-of-order events never move a session backwards
//! or report a status twice; unknown fields are ignored. An event for a message id no session
//! has recorded yet (it beat the send's own answer) is kept by the store and applied when the
//! send records the id (see `waotp_store::ProviderReport`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use waotp_core::Status;
use waotp_store::{InboundScope, ProviderReport};
use waotp_whatsapp::webhook::{events_of, read, signature_valid, DeliveryStatus, Event};

use crate::body::Unread;
use crate::guards::Counts;
use crate::reverse::{user_ids, InboundSender};
use crate::AppState;

pub async fn handshake(
    State(state): State<AppState>,
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return (StatusCode::FORBIDDEN, "verification failed").into_response();
    };
    let expected = state.whatsapp.as_ref().and_then(|w| w.verify_token.as_ref());
    let ok = q.get("hub.mode").map(String::as_str) == Some("subscribe")
        && expected.is_some_and(|t| {
            q.get("hub.verify_token").is_some_and(|given| subtle_eq(given.as_bytes(), t.expose().as_bytes()))
        });
    match (ok, q.get("hub.challenge")) {
        (true, Some(challenge)) => (StatusCode::OK, challenge.clone()).into_response(),
        _ => (StatusCode::FORBIDDEN, "verification failed").into_response(),
    }
}

fn subtle_eq(a: &[u8], b: &[u8]) -> bool {
    use sha2::Digest;
    // Compare digests so the comparison does not leak the length either.
    sha2::Sha256::digest(a) == sha2::Sha256::digest(b)
}

/// The largest webhook body read. Meta's payloads are a few KB (a batch of statuses, a
/// management event); the endpoint is unauthenticated until the signature is checked, so what
/// it buffers and hashes stays small.
pub const BODY_LIMIT: usize = 256 * 1024;

pub async fn events(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let Some(secret) = state.whatsapp.as_ref().and_then(|w| w.app_secret.as_ref()) else {
        return (StatusCode::UNAUTHORIZED, "webhooks need WAOTP_WHATSAPP_APP_SECRET").into_response();
    };
    // Refused before the body is read: an unsigned request costs a header parse.
    let Some(signature) = headers.get("x-hub-signature-256").and_then(|v| v.to_str().ok()) else {
        refused(&state, "unsigned");
        return (StatusCode::UNAUTHORIZED, "missing X-Hub-Signature-256").into_response();
    };
    let body: Bytes = match crate::body::read(body, BODY_LIMIT).await {
        Ok(body) => body,
        Err(Unread::TooLarge) => {
            refused(&state, "too_large");
            return (StatusCode::PAYLOAD_TOO_LARGE, format!("a webhook body is at most {BODY_LIMIT} bytes"))
                .into_response();
        }
        Err(Unread::Failed(why)) => return (StatusCode::BAD_REQUEST, why).into_response(),
    };
    if !signature_valid(secret.expose().as_bytes(), &body, Some(signature)) {
        refused(&state, "bad_signature");
        return (StatusCode::UNAUTHORIZED, "bad signature").into_response();
    }
    // Read once: the management changes and the messages' events both come from it.
    let payload = match read(&body) {
        Ok(payload) => payload,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    // Management changes (templates, the number, the account): the sender's health.
    if let Err(e) = state.sender_health.apply_webhook(&payload).await {
        tracing::error!(error = %e, "cannot apply a WhatsApp management webhook");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let events = events_of(&payload);
    let now = state.clock.now_ms();
    // What the payload teaches about business-scoped user ids, in payload order: written before
    // the next inbound message is decided, and at the end.
    let mut learned = Vec::new();
    for event in events {
        let (wamid, report) = match event {
            Event::Status { wamid, status, error, pricing } => {
                let steps = match status {
                    DeliveryStatus::Sent => vec![Status::Sent],
                    // A read with no delivered first reports 2 then 3.
                    DeliveryStatus::Delivered => vec![Status::Sent, Status::Delivered],
                    DeliveryStatus::Read => vec![Status::Sent, Status::Delivered, Status::Read],
                    // An asynchronous failure maps by Meta's code, as a synchronous one does:
                    // 131026 → 6 Failed, 131049 → 8 Rejected, 131064 → 10, others → 7.
                    DeliveryStatus::Failed => vec![failed_status(error.as_ref().map(|(code, _)| *code))],
                };
                if let Some((code, text)) = &error {
                    tracing::warn!(%wamid, code, error = %text, "WhatsApp reports a failed delivery");
                }
                // Meta bills a delivered message: its pricing is recorded from a delivered or
                // read status (the one on `sent` may belong to a message never delivered), with
                // the status, in one transaction.
                let pricing = pricing.filter(|_| matches!(status, DeliveryStatus::Delivered | DeliveryStatus::Read));
                let report = state.store.report_provider_status(&wamid, steps, error, pricing, now).await;
                (wamid, report)
            }
            Event::Identified(pair) => {
                learned.extend(user_ids::facts_of_identified(&pair));
                continue;
            }
            Event::UserIdChanged(change) => {
                learned.extend(user_ids::facts_of_change(&change));
                state.metrics.whatsapp_event("user_id_changed");
                continue;
            }
            Event::Inbound(message) => {
                if let Err(response) = learn(&state, std::mem::take(&mut learned), now).await {
                    return response;
                }
                // The user's message to the business: reverse verification reads its code.
                // Only sessions of the apps that send from the number it was sent to.
                let configured =
                    state.whatsapp.as_ref().is_some_and(|w| w.phone_number_id == message.to_phone_number_id);
                let scope = InboundScope::Number { phone_number_id: message.to_phone_number_id.clone(), configured };
                let sender = InboundSender { user_ids: user_ids::sender_keys(&message.user), number: message.from };
                match crate::reverse::apply(&state, sender, &message.body, &message.message_id, scope, true).await {
                    Ok(_) => continue,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot apply an inbound WhatsApp message");
                        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
                    }
                }
            }
            Event::NoPhoneNumber => {
                // A username user whose number Meta does not share: nothing to refuse.
                state.metrics.whatsapp_event("no_phone_number");
                continue;
            }
            Event::NotRequested { wamid } => {
                tracing::warn!(%wamid, "user says they did not request this code");
                let report = state.store.flag_not_requested(&wamid, now).await;
                (wamid, report)
            }
        };
        match report {
            Ok(ProviderReport::Applied) => {
                state.metrics.whatsapp_event("applied");
            }
            Ok(ProviderReport::Priced(cost)) => {
                state.metrics.whatsapp_event("applied");
                if cost.pricing.billable {
                    state.metrics.billable_message(&cost.pricing.category, cost.country);
                }
            }
            Ok(ProviderReport::Kept { evicted }) => {
                tracing::debug!(%wamid, "kept a WhatsApp event for a message id not recorded yet");
                state.metrics.whatsapp_event("kept");
                if evicted > 0 {
                    state.metrics.whatsapp_early_events_evicted(evicted);
                    warn_evicted(now);
                }
            }
            Err(e) => {
                // Meta retries a non-200: let it.
                tracing::error!(error = %e, "cannot apply a WhatsApp webhook");
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
        }
    }
    if let Err(response) = learn(&state, learned, now).await {
        return response;
    }
    StatusCode::OK.into_response()
}

/// Writes what a webhook taught about business-scoped user ids (the pairs this node wrote in the
/// last hour left out); a failure is a 500, so that Meta sends the webhook again.
async fn learn(state: &AppState, facts: Vec<waotp_store::UserIdFact>, now: i64) -> Result<(), Response> {
    if facts.is_empty() {
        // Nothing taught (management changes, failed statuses, a flush with nothing pending):
        // no lock taken.
        return Ok(());
    }
    let facts = state.reverse.user_ids.unwritten(facts, now);
    if facts.is_empty() {
        return Ok(());
    }
    match state.store.learn_user_ids(facts.clone(), now).await {
        Ok(()) => {
            state.reverse.user_ids.written(&facts, now);
            Ok(())
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot store what a WhatsApp webhook says of business-scoped user ids");
            Err(StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
    }
}

/// Counts a refused webhook and logs it, a few lines a second at most: the endpoint is open to
/// anyone, so a flood of forged requests must not flood the log.
fn refused(state: &AppState, reason: &'static str) {
    static LOGGED: Counts = Counts::new();
    state.metrics.whatsapp_webhook_refused(reason);
    if LOGGED.add(reason) {
        tracing::warn!(reason, "WhatsApp webhook refused (see waotp_whatsapp_webhooks_refused_total)");
    }
}

/// Warns (at most once a minute: a flood of events for messages that are not waotp's would
/// otherwise warn once per event) that kept early events are being dropped.
fn warn_evicted(now_ms: i64) {
    static LAST_MS: AtomicI64 = AtomicI64::new(i64::MIN);
    let last = LAST_MS.load(Ordering::Relaxed);
    if now_ms.saturating_sub(last) >= 60_000
        && LAST_MS.compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    {
        tracing::warn!(
            kept_at_most = waotp_store::EARLY_EVENTS_MAX,
            "WhatsApp events for message ids not recorded yet are over the bound: the oldest are dropped \
             (is this phone number also used by another system?); see waotp_whatsapp_early_events_evicted_total"
        );
    }
}

/// The status a `failed` webhook reports, by Meta's error code (no code: 6 Failed). Codes that
/// would be retried on a synchronous answer report what their retries would end in.
fn failed_status(code: Option<i64>) -> Status {
    code.map_or(Status::Failed, |code| waotp_whatsapp::classify(code, 0).final_status())
}
