//! A request id for every request: taken from `X-Request-Id` when the client (or a proxy)
//! sends a sane one, made up otherwise; echoed in the response and carried by every log line
//! of the request (with the matched route, never the raw path).
//!
//! `tower-http` does the work: `SetRequestId` makes an id when there is none,
//! `PropagateRequestId` echoes it, and `TraceLayer` opens the request's span and logs, at
//! DEBUG, each response's status and latency. The one rule of ours is what "sane" means:
//! `SetRequestId` keeps any incoming id, so an insane one (too long, or characters a log
//! reader should not have to trust) is dropped before it, and one is made instead.

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::Router;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

pub const HEADER: &str = "x-request-id";

/// Wraps `router` (every route, and the fallback) in the request id and the request's span.
pub fn layers<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    let trace = TraceLayer::new_for_http()
        .make_span_with(span)
        .on_request(())
        .on_response(DefaultOnResponse::new().level(tracing::Level::DEBUG))
        // A 5xx is logged once, with its cause, where it is answered (`error.rs`).
        .on_failure(());
    router
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(trace)
        .layer(SetRequestIdLayer::x_request_id(MadeUp))
        .layer(axum::middleware::map_request(drop_insane))
}

fn sane(id: &HeaderValue) -> bool {
    let id = id.as_bytes();
    !id.is_empty() && id.len() <= 64 && id.iter().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(b))
}

/// Removes an incoming id that is not sane, so that one is made up for the request.
async fn drop_insane(mut request: Request) -> Request {
    if request.headers().get(HEADER).is_some_and(|id| !sane(id)) {
        request.headers_mut().remove(HEADER);
    }
    request
}

/// A made-up id: a random UUID in its 32 hex digits.
#[derive(Clone, Copy)]
struct MadeUp;

impl MakeRequestId for MadeUp {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        Some(RequestId::new(HeaderValue::from_str(&id).expect("hex digits")))
    }
}

fn span<B>(request: &axum::http::Request<B>) -> tracing::Span {
    let id = request.headers().get(HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str());
    tracing::info_span!("request", request_id = %id, method = %request.method(), route = %route)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_ids_are_short_and_plain() {
        for id in ["lb-7f3a.42", "a", "A_b-c.d", &"x".repeat(64)] {
            assert!(sane(&HeaderValue::from_str(id).unwrap()), "{id}");
        }
        for id in ["", "bad id", "tab\there", "quote\"", &"x".repeat(65)] {
            assert!(!sane(&HeaderValue::from_str(id).unwrap()), "{id}");
        }
        assert!(!sane(&HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap()));
    }
}
