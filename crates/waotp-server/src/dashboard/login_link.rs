//! One-time login links: what the banner prints on a first start, so the dashboard opens with
//! one click (as Jupyter's token link does) while the admin token never appears in a URL.
//!
//! A link carries a random code (256 bits) that this process holds only as its SHA-256, for
//! [`LINK_LIFETIME`], and forgets at first use: a copy left in a terminal's scrollback, a log
//! or a browser's history opens nothing later. Following it sets the same signed cookie as
//! logging in with the token (a login recorded in the store). Codes live in memory: a restart forgets them (and prints a new
//! link), and another node never knows them.

use std::sync::Mutex;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use waotp_core::code::{api_key_matches, hash_api_key, random_hex_256};

use super::auth::{disabled, login_page, start_login, unavailable};
use super::layout::Flash;
use crate::AppState;

/// How long a login link works, unless used before.
pub const LINK_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// Links waiting to be followed; issuing one more forgets the oldest.
const MAX_PENDING: usize = 8;

/// The codes of the links issued and not yet followed.
#[derive(Default)]
pub struct LoginLinks(Mutex<Vec<Pending>>);

struct Pending {
    /// SHA-256 of the code: 256 random bits need no slow hash (as API keys).
    hash: [u8; 32],
    expires_ms: i64,
}

impl LoginLinks {
    /// A new code, valid from `now_ms` for [`LINK_LIFETIME`].
    pub fn issue(&self, now_ms: i64) -> String {
        let code = random_hex_256();
        let mut pending = self.0.lock().unwrap_or_else(|e| e.into_inner());
        pending.retain(|p| p.expires_ms > now_ms);
        if pending.len() >= MAX_PENDING {
            pending.remove(0);
        }
        pending.push(Pending { hash: hash_api_key(&code), expires_ms: now_ms + LINK_LIFETIME.as_millis() as i64 });
        code
    }

    /// Whether `code` is a live code; it is spent by this call.
    pub fn redeem(&self, code: &str, now_ms: i64) -> bool {
        let mut pending = self.0.lock().unwrap_or_else(|e| e.into_inner());
        pending.retain(|p| p.expires_ms > now_ms);
        // Each code is compared in constant time, and every one is compared.
        let matches: Vec<bool> = pending.iter().map(|p| api_key_matches(&p.hash, code)).collect();
        let Some(at) = matches.iter().position(|m| *m) else { return false };
        pending.remove(at);
        true
    }
}

#[derive(Deserialize)]
pub struct LinkQuery {
    #[serde(default)]
    code: String,
}

/// `GET /dashboard/login/link?code=…`: logs the browser in and sends it to the dashboard (303).
///
/// A GET spends the code, so a link previewer that fetches it first uses it up: the person
/// then sees the login page, and logs in with the token from `admin.token` or restarts waotp
/// for a new link. That is the accepted price of one click (a page asking to confirm with a
/// POST would cost a second one); the link is printed to a local terminal, not sent in a chat.
/// A HEAD request, what many previewers send first, spends nothing.
pub async fn follow(State(state): State<AppState>, method: Method, query: super::Q<LinkQuery>) -> Response {
    let Some(token) = &state.admin_token else { return disabled() };
    // The address bar holds the code until the redirect: it is never sent on as a Referer,
    // and no answer here is cached. (The login page shown for a spent code has the dashboard's
    // `same-origin` policy instead: under `no-referrer` its form would post with `Origin: null`
    // and be refused as cross-site; a spent code opens nothing.)
    let private = [(header::CACHE_CONTROL, "no-store"), (header::REFERRER_POLICY, "no-referrer")];
    if method == Method::HEAD {
        return (StatusCode::OK, private).into_response();
    }
    let code = query.map(|Query(q)| q.code).unwrap_or_default();
    let now = state.clock.now_ms();
    if code.is_empty() || !state.login_links.redeem(&code, now) {
        // A few lines a second at most: anyone may ask for links.
        static REFUSED: crate::guards::Counts = crate::guards::Counts::new();
        if REFUSED.add("login_link") {
            tracing::info!("dashboard login link refused (used, expired or unknown)");
        }
        let message = "This login link was used already or has expired. Log in with the admin token \
                       (waotp keeps it in admin.token beside its database), or restart waotp for a new link.";
        let page = login_page(StatusCode::UNAUTHORIZED, Some(Flash::Error(message.into())));
        return ([(header::CACHE_CONTROL, "no-store")], page).into_response();
    }
    let cookie = match start_login(&state, token.expose(), now, false).await {
        Ok(cookie) => cookie,
        Err(e) => return (private, unavailable(&e)).into_response(),
    };
    tracing::info!("dashboard login by a one-time link");
    (StatusCode::SEE_OTHER, private, [(header::SET_COOKIE, cookie), (header::LOCATION, "/dashboard".to_owned())])
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_works_once_and_only_for_a_while() {
        let links = LoginLinks::default();
        let code = links.issue(1_000);
        assert_eq!(code.len(), 64);
        assert!(!links.redeem("not-a-code", 1_000));
        assert!(!links.redeem("", 1_000));
        assert!(links.redeem(&code, 1_000 + LINK_LIFETIME.as_millis() as i64 - 1));
        assert!(!links.redeem(&code, 2_000), "spent");

        let late = links.issue(1_000);
        assert!(!links.redeem(&late, 1_000 + LINK_LIFETIME.as_millis() as i64), "expired");

        let codes: Vec<String> = (0..=MAX_PENDING).map(|_| links.issue(5_000)).collect();
        assert!(!links.redeem(&codes[0], 5_000), "the oldest is forgotten beyond {MAX_PENDING}");
        for c in &codes[1..] {
            assert!(links.redeem(c, 5_000));
        }
    }
}
