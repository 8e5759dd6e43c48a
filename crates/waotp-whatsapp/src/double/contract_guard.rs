//! The double held to Meta's OpenAPI document (the `meta-contract` feature, in tests): every
//! request it receives and every answer it gives is checked against the document
//! ([`crate::contract`]). A violation is recorded, logged, and answered with a distinctive
//! error (`"type": "WaotpContractViolation"`) instead of the double's answer, so that the test
//! sees it at once; the last [`GraphDouble`](super::GraphDouble) handle panics on drop listing
//! every violation it saw, unless a test took them
//! ([`take_contract_violations`](super::GraphDouble::take_contract_violations)). An endpoint
//! neither in the document nor in its named omissions ([`crate::contract::OMITTED`]) is refused
//! the same way.

use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::Inner;
use crate::contract::{Contract, Route};

/// Bodies larger than this are not Graph requests or answers.
const MAX_BODY: usize = 4 << 20;

/// Checks the request, lets the double answer, checks the answer.
pub(super) async fn guard(State(inner): State<Arc<Inner>>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let method = parts.method.as_str().to_owned();
    let path = parts.uri.path().to_owned();
    let endpoint = format!("{method} {path}");
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return refuse(&inner, &endpoint, "request", vec!["the body could not be read".into()]);
    };
    let query = match query_pairs(parts.uri.query().unwrap_or("")) {
        Ok(q) => q,
        Err(e) => return refuse(&inner, &endpoint, "request", vec![format!("the query string: {e}")]),
    };
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let body: Option<Value> = match bytes.is_empty() {
        true => None,
        false => match serde_json::from_slice(&bytes) {
            Ok(v) => Some(v),
            Err(e) => return refuse(&inner, &endpoint, "request", vec![format!("the body is not JSON: {e}")]),
        },
    };
    let contract = Contract::meta();
    let candidates = match contract.route(&method, &path) {
        Route::Omitted(_) => return next.run(Request::from_parts(parts, Body::from(bytes))).await,
        Route::Unknown => {
            let why = "neither an operation of Meta's OpenAPI document nor one of the endpoints it omits that the \
                       client uses (contract::OMITTED)";
            return refuse(&inner, &endpoint, "endpoint", vec![why.into()]);
        }
        Route::Documented(templates) => narrow(&inner, &path, templates),
    };
    let request = crate::contract::Request { method: &method, query: &query, headers: &headers, body: body.as_ref() };
    let mut first_errors = None;
    let accepted: Vec<String> = candidates
        .into_iter()
        .filter(|t| {
            let errors = contract.check_request(t, &request);
            let ok = errors.is_empty();
            first_errors.get_or_insert_with(|| (t.clone(), errors));
            ok
        })
        .collect();
    if accepted.is_empty() {
        let (template, errors) = first_errors.unwrap_or_default();
        return refuse(&inner, &format!("{endpoint} ({template})"), "request", errors);
    }

    let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    let (parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return refuse(&inner, &endpoint, "answer", vec!["the double's answer could not be read".into()]);
    };
    let answer: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => return refuse(&inner, &endpoint, "answer", vec![format!("the double's answer is not JSON: {e}")]),
    };
    let status = parts.status.as_u16();
    let fields = query.iter().find(|(k, _)| k == "fields").map(|(_, v)| v.as_str());
    let mut errors = Vec::new();
    for template in &accepted {
        let wrong = contract.check_answer(&method, template, status, &answer, fields);
        if wrong.is_empty() {
            return Response::from_parts(parts, Body::from(bytes));
        }
        errors.extend(wrong.into_iter().map(|e| format!("{template}: {e}")));
    }
    refuse(&inner, &format!("{endpoint} → HTTP {status}"), "answer", errors)
}

/// The query string's pairs, decoded (`+` a space, `%XX` a byte): a `%` without two hex digits
/// after it, or bytes that are not UTF-8 once decoded, are an error, not a pair read some other
/// way (a lenient reader would pass a broken query as an empty or a different one).
fn query_pairs(query: &str) -> Result<Vec<(String, String)>, String> {
    let decode = |part: &str| -> Result<String, String> {
        let bytes = part.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' => {
                    let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
                    let byte = hex.filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
                    let byte = byte.and_then(|h| u8::from_str_radix(h, 16).ok());
                    out.push(byte.ok_or_else(|| format!("{part:?}: a % not followed by two hex digits"))?);
                    i += 2;
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8(out).map_err(|_| format!("{part:?} is not UTF-8 once decoded"))
    };
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((decode(k)?, decode(v)?))
        })
        .collect()
}

/// Of the templates a path matches, those for what the double knows its node to be (`/{id}`
/// is a phone number, a WABA or a template); all of them for an id it does not know.
fn narrow(inner: &Inner, path: &str, templates: Vec<String>) -> Vec<String> {
    let node = path.split('/').nth(2).unwrap_or("");
    let kind = {
        let meta = inner.meta.lock().expect("meta");
        if node == inner.config.phone_number_id {
            Some("{Phone-Number-ID}")
        } else if node == meta.waba_id {
            Some("{WABA-ID}")
        } else if meta.templates.iter().any(|t| t.id == node) {
            Some("{TEMPLATE_ID}")
        } else {
            None
        }
    };
    let narrowed: Vec<String> =
        templates.iter().filter(|t| kind.is_some_and(|k| t.split('/').nth(2) == Some(k))).cloned().collect();
    if narrowed.is_empty() {
        templates
    } else {
        narrowed
    }
}

/// Records the violation and answers with the distinctive error.
fn refuse(inner: &Inner, endpoint: &str, what: &str, errors: Vec<String>) -> Response {
    let text = format!("{endpoint}: the {what} is not what Meta's OpenAPI document describes: {}", errors.join("; "));
    tracing::error!(violation = %text, "Graph double: contract violation");
    inner.violations.lock().expect("violations").push(text.clone());
    let body = json!({ "error": {
        "message": format!("(#100) waotp's Graph double: {text}"),
        "type": "WaotpContractViolation",
        "code": 100,
        "fbtrace_id": "WAOTP-CONTRACT",
    }});
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

/// Held by every [`GraphDouble`](super::GraphDouble) handle: when the last one goes, a test
/// that let violations pass fails.
pub(super) struct Verdict(pub(super) Arc<Inner>);

impl Drop for Verdict {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let violations = std::mem::take(&mut *self.0.violations.lock().expect("violations"));
        if !violations.is_empty() {
            panic!(
                "the Graph double saw {} request(s) or answer(s) that Meta's OpenAPI document forbids \
                 (crates/waotp-whatsapp/contract/meta/README.md):\n- {}",
                violations.len(),
                violations.join("\n- ")
            );
        }
    }
}
