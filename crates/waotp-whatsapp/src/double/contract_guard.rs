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
    let (candidates, known) = candidates;
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
    let errors = answer_errors(contract, &method, &accepted, known, status, &answer, fields);
    if errors.is_empty() {
        return Response::from_parts(parts, Body::from(bytes));
    }
    refuse(&inner, &format!("{endpoint} → HTTP {status}"), "answer", errors)
}

/// What is wrong with the double's answer to a request that the operations `accepted` took (the
/// request passed each): nothing if one of them gives that answer. The request and the answer
/// are held to the same operation. Where several remain because the double does not know what
/// the id is (`known` false), it can only answer an error (the id does not exist to it): a
/// success would be held to whichever operation it happens to fit.
fn answer_errors(
    contract: &Contract,
    method: &str,
    accepted: &[String],
    known: bool,
    status: u16,
    answer: &Value,
    fields: Option<&str>,
) -> Vec<String> {
    if !known && accepted.len() > 1 && (200..300).contains(&status) {
        return vec![format!(
            "a success for an id the double does not know, which could be any of {}: it cannot be held to one",
            accepted.join(", ")
        )];
    }
    let mut errors = Vec::new();
    for template in accepted {
        let wrong = contract.check_answer(method, template, status, answer, fields);
        if wrong.is_empty() {
            return vec![];
        }
        errors.extend(wrong.into_iter().map(|e| format!("{template}: {e}")));
    }
    errors
}

/// Why a query string was not read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
enum QueryError {
    #[error("{0:?}: a % not followed by two hex digits")]
    BadEscape(String),
    #[error("{0:?} is not UTF-8 once decoded")]
    NotUtf8(String),
}

/// The query string's pairs, decoded (`+` a space, `%XX` a byte): a `%` without two hex digits
/// after it, or bytes that are not UTF-8 once decoded, are an error, not a pair read some other
/// way (a lenient reader would pass a broken query as an empty or a different one).
fn query_pairs(query: &str) -> Result<Vec<(String, String)>, QueryError> {
    let decode = |part: &str| -> Result<String, QueryError> {
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
                    out.push(byte.ok_or_else(|| QueryError::BadEscape(part.to_owned()))?);
                    i += 2;
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8(out).map_err(|_| QueryError::NotUtf8(part.to_owned()))
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
/// is a phone number, a WABA or a template), and `true`; all of them for an id it does not know,
/// and `false` (unless only one matches anyway).
fn narrow(inner: &Inner, path: &str, templates: Vec<String>) -> (Vec<String>, bool) {
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
    match narrowed.is_empty() {
        true => (templates.clone(), templates.len() == 1),
        false => (narrowed, true),
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_query_string_is_read_strictly() {
        let pairs = query_pairs("fields=id%2Cname&limit=100&name=a+b&flag").unwrap();
        let want = [("fields", "id,name"), ("limit", "100"), ("name", "a b"), ("flag", "")];
        assert_eq!(pairs, want.map(|(k, v)| (k.to_owned(), v.to_owned())));
        assert_eq!(query_pairs("").unwrap(), []);
        let bad_escape = |part: &str| Err(QueryError::BadEscape(part.into()));
        let not_utf8 = |part: &str| Err(QueryError::NotUtf8(part.into()));
        assert_eq!(query_pairs("fields=%FF"), not_utf8("%FF"));
        assert_eq!(query_pairs("fields=id%2"), bad_escape("id%2"));
        assert_eq!(query_pairs("fields=%zz"), bad_escape("%zz"));
        assert_eq!(query_pairs("%C3=1"), not_utf8("%C3"));
        assert_eq!(not_utf8("%C3").unwrap_err().to_string(), "\"%C3\" is not UTF-8 once decoded");
    }

    /// `GET /{id}` of an id the double does not know: the WABA's answer would pass the WABA's
    /// operation, but nothing says the id is a WABA. Known, it passes; unknown, only an error does.
    #[test]
    fn a_success_for_an_unknown_id_is_not_held_to_whichever_operation_fits() {
        let contract = Contract::meta();
        let accepted = ["/{Version}/{WABA-ID}".to_owned(), "/{Version}/{Phone-Number-ID}".to_owned()];
        let waba = json!({ "id": "5", "name": "waotp", "business_verification_status": "verified" });
        let fields = Some("id,name,business_verification_status");
        assert_eq!(answer_errors(contract, "GET", &accepted[..1], true, 200, &waba, fields), Vec::<String>::new());
        assert_eq!(answer_errors(contract, "GET", &accepted, true, 200, &waba, fields), Vec::<String>::new());
        let unknown = answer_errors(contract, "GET", &accepted, false, 200, &waba, fields);
        assert!(unknown.len() == 1 && unknown[0].contains("does not know"), "{unknown:?}");
        let missing = json!({ "error": { "message": "Unsupported get request.", "type": "GraphMethodException",
            "code": 100, "error_subcode": 33, "fbtrace_id": "A" } });
        assert_eq!(answer_errors(contract, "GET", &accepted, false, 400, &missing, None), Vec::<String>::new());
    }
}
