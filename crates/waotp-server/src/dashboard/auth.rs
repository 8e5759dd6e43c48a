//! Login with the admin token, and the signed cookie that stands for it afterwards.
//!
//! Each login (the form, or a one-time link) gets a random id (256 bits) kept in the store as
//! its SHA-256 until logout or expiry. The cookie is `<expiry>.<login id>.<HMAC(admin token,
//! expiry and id)>`: forging or extending one needs the token, and every dashboard request
//! looks the id up (one lookup by key), so a logout on any node ends the login on all of them.
//! Changing the admin token ends every login at once. Wrong tokens count against the client's
//! address (see `token_guesses`).

use std::net::IpAddr;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use hmac::{Hmac, Mac};
use maud::html;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use waotp_core::code::{hex, random_hex_256};

use super::layout::{bare_page, Flash};
use crate::token_guesses::Refused;
use crate::AppState;

/// The cookie's name.
const COOKIE: &str = "waotp_dashboard";
/// How long a login lasts (unless logged out before).
pub const LIFETIME_MS: i64 = 12 * 3600 * 1000;

fn mac(token: &str, expires_ms: i64, login_id: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(token.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("waotp-dashboard:{expires_ms}:{login_id}").as_bytes());
    mac
}

/// What the store keeps of a login id.
fn login_hash(login_id: &str) -> [u8; 32] {
    Sha256::digest(login_id.as_bytes()).into()
}

/// Starts a login at `now_ms`: records a new login id in the store and returns the
/// `Set-Cookie` value that carries it. `secure`: the browser reached us over HTTPS, so the
/// cookie is never sent in clear.
pub(super) async fn start_login(
    state: &AppState,
    token: &str,
    now_ms: i64,
    secure: bool,
) -> Result<String, waotp_store::StoreError> {
    let login_id = random_hex_256();
    state.store.create_login(login_hash(&login_id), now_ms, now_ms + LIFETIME_MS).await?;
    Ok(format!(
        "{COOKIE}={}; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age={}{}",
        cookie_for(token, &login_id, now_ms),
        LIFETIME_MS / 1000,
        if secure { "; Secure" } else { "" }
    ))
}

/// The cookie value of login `login_id` made at `now_ms` with `token`:
/// `<expiry>.<login id>.<hex HMAC>`.
fn cookie_for(token: &str, login_id: &str, now_ms: i64) -> String {
    let expires = now_ms + LIFETIME_MS;
    format!("{expires}.{login_id}.{}", hex(&mac(token, expires, login_id).finalize().into_bytes()))
}

/// The login id of a cookie signed with `token` and not expired at `now_ms` (whether the
/// login is still live is the store's to say).
fn signed_login<'a>(token: &str, value: &'a str, now_ms: i64) -> Option<&'a str> {
    let mut parts = value.splitn(3, '.');
    let (expires, login_id, sig) = (parts.next()?, parts.next()?, parts.next()?);
    let (expires, sig) = (expires.parse::<i64>().ok()?, waotp_core::code::unhex(sig)?);
    (expires > now_ms && !login_id.is_empty() && mac(token, expires, login_id).verify_slice(&sig).is_ok())
        .then_some(login_id)
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A form post from another site (or another scheme or port of this one).
///
/// A browser that sends `Sec-Fetch-Site` (every current one) has compared the page's origin with
/// the address it posts to, as it saw both, scheme included: only `same-origin` (or `none`, a
/// request the user made, not a page) is ours. That holds behind a TLS-terminating proxy too,
/// where the browser's `https://` address is not the plain HTTP waotp is reached over.
///
/// Without it, the `Origin` must be ours: the scheme and host the request came to. That is
/// plain `http` (waotp speaks no TLS) and the `Host` header; behind a trusted proxy
/// (`trust_forwarded_for`), the `X-Forwarded-Proto` and `X-Forwarded-Host` it sets, if any (the
/// last entry of each, the one the nearest proxy wrote).
fn cross_site(headers: &HeaderMap, trust_proxy: bool) -> bool {
    let header_value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(site) = header_value("sec-fetch-site") {
        return !(site.eq_ignore_ascii_case("same-origin") || site.eq_ignore_ascii_case("none"));
    }
    let Some(origin) = header_value(header::ORIGIN.as_str()) else { return false };
    let forwarded = |name: &str| {
        if trust_proxy {
            header_value(name).and_then(|v| v.rsplit(',').next()).map(str::trim)
        } else {
            None
        }
    };
    let host = forwarded("x-forwarded-host").or_else(|| header_value("host")).unwrap_or("");
    let scheme = forwarded("x-forwarded-proto").unwrap_or("http");
    // `null` (an opaque origin) has no scheme: refused like any other.
    let Some((origin_scheme, origin_host)) = origin.split_once("://") else { return true };
    !(origin_scheme.eq_ignore_ascii_case(scheme) && origin_host.eq_ignore_ascii_case(host))
}

/// A request from a logged-in operator (its login, as the store names it); anyone else is
/// sent to the login page.
pub struct Operator {
    login: [u8; 32],
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Some(token) = &state.admin_token else { return Err(disabled()) };
        if parts.method == Method::POST && cross_site(&parts.headers, state.trust_forwarded_for) {
            return Err((StatusCode::FORBIDDEN, "cross-site form posts are refused").into_response());
        }
        let now = state.clock.now_ms();
        let to_login = || Redirect::to("/dashboard/login").into_response();
        let Some(login_id) = cookie(&parts.headers, COOKIE).and_then(|v| signed_login(token.expose(), v, now)) else {
            return Err(to_login());
        };
        let login = login_hash(login_id);
        match state.store.login_is_live(login, now).await {
            Ok(true) => Ok(Operator { login }),
            Ok(false) => Err(to_login()),
            Err(e) => Err(unavailable(&e)),
        }
    }
}

/// The client's address (see [`AppState::client_ip`]).
pub(super) struct ClientIp(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(state.client_ip_of(parts)))
    }
}

/// The database could not say whether a login is live (or record one): a page, not a redirect.
pub(super) fn unavailable(e: &waotp_store::StoreError) -> Response {
    tracing::warn!(error = %e, "dashboard: the login store is unavailable");
    bare_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Unavailable",
        html! { h1 { "The database is unavailable" } p { "Try again in a moment." } },
    )
}

pub(super) fn disabled() -> Response {
    bare_page(
        StatusCode::FORBIDDEN,
        "Dashboard disabled",
        html! {
            h1 { "The dashboard is off" }
            p { "Set an admin token (" code { "admin_token" } " in the config file, or "
                code { "WAOTP_ADMIN_TOKEN" } ") and restart waotp; then log in here with it." }
        },
    )
}

pub(super) fn login_page(status: StatusCode, flash: Option<Flash>) -> Response {
    bare_page(
        status,
        "Log in",
        html! {
            h1 { "waotp dashboard" }
            @if let Some(f) = flash { (f) }
            form.card method="post" action="/dashboard/login" {
                label for="token" { "Admin token" }
                input #token type="password" name="token" autocomplete="current-password" required autofocus;
                button type="submit" { "Log in" }
            }
        },
    )
}

pub async fn login_form(State(state): State<AppState>) -> Response {
    if state.admin_token.is_none() {
        return disabled();
    }
    login_page(StatusCode::OK, None)
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    token: String,
}

pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    form: super::F<LoginForm>,
) -> Response {
    let Some(token) = &state.admin_token else { return disabled() };
    if cross_site(&headers, state.trust_forwarded_for) {
        return (StatusCode::FORBIDDEN, "cross-site form posts are refused").into_response();
    }
    let given = form.map(|Form(f)| f.token).unwrap_or_default();
    let now = state.clock.now_ms();
    match state.token_guesses.judge(ip, now, "dashboard login", || !given.is_empty() && token.matches(&given)) {
        Ok(()) => {}
        Err(Refused::Wrong) => {
            return login_page(StatusCode::UNAUTHORIZED, Some(Flash::Error("That is not the admin token.".into())));
        }
        Err(Refused::Throttled { retry_after_s }) => {
            let message = "Too many failed logins from your address. Wait a minute, then try again.";
            let page = login_page(StatusCode::TOO_MANY_REQUESTS, Some(Flash::Error(message.into())));
            return ([(header::RETRY_AFTER, retry_after_s.max(1).to_string())], page).into_response();
        }
    }
    // Over HTTPS (as the browser saw it: the login form's Origin, which `cross_site` found to be
    // the scheme the request came over, or the browser's own same-origin page) the cookie is
    // never sent in clear.
    let secure = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()).is_some_and(|o| o.starts_with("https://"));
    match start_login(&state, token.expose(), now, secure).await {
        Ok(cookie) => ([(header::SET_COOKIE, cookie)], Redirect::to("/dashboard/sessions")).into_response(),
        Err(e) => unavailable(&e),
    }
}

/// Ends the login in the store (so its cookie opens nothing on any node), then in the browser.
pub async fn logout(operator: Operator, State(state): State<AppState>) -> Response {
    if let Err(e) = state.store.end_login(operator.login).await {
        return unavailable(&e);
    }
    let cookie = format!("{COOKIE}=; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age=0");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/dashboard/login")).into_response()
}

pub async fn home(_: Operator) -> Redirect {
    Redirect::to("/dashboard/sessions")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn origin_must_be_ours() {
        let ours = headers(&[("host", "otp.local:8080"), ("origin", "http://otp.local:8080")]);
        assert!(!cross_site(&ours, false));
        assert!(!cross_site(&headers(&[("host", "otp.local")]), false), "no Origin: not a browser form post");
        assert!(cross_site(&headers(&[("host", "otp.local"), ("origin", "https://evil.example")]), false));
        assert!(cross_site(&headers(&[("host", "otp.local"), ("origin", "null")]), false));
        let proxied = headers(&[
            ("host", "127.0.0.1:8080"),
            ("x-forwarded-host", "otp.example"),
            ("x-forwarded-proto", "https"),
            ("origin", "https://otp.example"),
        ]);
        assert!(!cross_site(&proxied, true), "behind a trusted proxy");
        assert!(cross_site(&proxied, false), "X-Forwarded-Host is ignored unless the proxy is trusted");
    }

    /// The scheme is part of the origin: another scheme on the same host is another site.
    #[test]
    fn origin_scheme_must_be_the_one_the_request_came_over() {
        // waotp speaks plain HTTP: an https:// page (another server on the same name) is not ours.
        assert!(cross_site(&headers(&[("host", "otp.local:8080"), ("origin", "https://otp.local:8080")]), false));
        assert!(cross_site(&headers(&[("host", "otp.local"), ("origin", "https://otp.local")]), false));
        assert!(cross_site(&headers(&[("host", "otp.local"), ("origin", "otp.local")]), false), "no scheme");
        // Behind a trusted TLS proxy: https is ours, http is not; its header is ignored untrusted.
        let via_tls = |origin: &'static str| {
            headers(&[("host", "otp.example"), ("x-forwarded-proto", "https"), ("origin", origin)])
        };
        assert!(!cross_site(&via_tls("https://otp.example"), true));
        assert!(cross_site(&via_tls("http://otp.example"), true));
        assert!(cross_site(&via_tls("https://otp.example"), false), "X-Forwarded-Proto is ignored untrusted");
        let chained = headers(&[
            ("host", "otp.example"),
            ("x-forwarded-proto", "http, https"),
            ("origin", "https://otp.example"),
        ]);
        assert!(!cross_site(&chained, true), "the nearest proxy's entry");
    }

    /// A browser's own `Sec-Fetch-Site` decides when it is there: it saw the scheme the user did.
    #[test]
    fn sec_fetch_site_decides_when_the_browser_sends_it() {
        // Behind a TLS proxy that keeps Host and sends no X-Forwarded-Proto: the browser vouches.
        let same =
            headers(&[("host", "otp.example"), ("origin", "https://otp.example"), ("sec-fetch-site", "same-origin")]);
        assert!(!cross_site(&same, false));
        assert!(!cross_site(&headers(&[("host", "otp.example"), ("sec-fetch-site", "none")]), false));
        for site in ["cross-site", "same-site", "bogus"] {
            let h = headers(&[("host", "otp.local"), ("origin", "http://otp.local"), ("sec-fetch-site", site)]);
            assert!(cross_site(&h, false), "{site}");
        }
    }

    #[test]
    fn cookie_round_trip_and_tamper() {
        let v = cookie_for("tok", "id1", 1_000);
        assert_eq!(signed_login("tok", &v, 2_000), Some("id1"));
        assert_eq!(signed_login("other", &v, 2_000), None, "another token");
        assert_eq!(signed_login("tok", &v, 1_000 + LIFETIME_MS), None, "expired");
        let mut parts = v.split('.');
        let (exp, id, sig) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
        let later = exp.parse::<i64>().unwrap() + 1;
        assert_eq!(signed_login("tok", &format!("{later}.{id}.{sig}"), 2_000), None, "extended expiry");
        assert_eq!(signed_login("tok", &format!("{exp}.id2.{sig}"), 2_000), None, "another login id");
        assert_eq!(signed_login("tok", &format!("{exp}.{sig}"), 2_000), None, "the old form, without an id");
        assert_eq!(signed_login("tok", "garbage", 2_000), None);
        assert_eq!(signed_login("tok", "1.x.zz", 0), None);
    }
}
