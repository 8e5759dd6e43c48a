//! Login with the admin token, and the signed cookie that stands for it afterwards.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use hmac::{Hmac, Mac};
use maud::html;
use serde::Deserialize;
use sha2::Sha256;

use super::layout::{bare_page, Flash};
use crate::AppState;

/// The cookie's name.
const COOKIE: &str = "waotp_dashboard";
/// How long a login lasts.
const LIFETIME_MS: i64 = 12 * 3600 * 1000;

fn mac(token: &str, expires_ms: i64) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(token.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("waotp-dashboard:{expires_ms}").as_bytes());
    mac
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// The `Set-Cookie` value of a login made at `now_ms` with `token`. `secure`: the browser
/// reached us over HTTPS, so the cookie is never sent in clear.
pub(super) fn session_cookie(token: &str, now_ms: i64, secure: bool) -> String {
    format!(
        "{COOKIE}={}; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age={}{}",
        cookie_for(token, now_ms),
        LIFETIME_MS / 1000,
        if secure { "; Secure" } else { "" }
    )
}

/// The cookie value of a login made at `now_ms` with `token`: `<expiry>.<hex HMAC>`.
fn cookie_for(token: &str, now_ms: i64) -> String {
    let expires = now_ms + LIFETIME_MS;
    format!("{expires}.{}", waotp_core::code::hex(&mac(token, expires).finalize().into_bytes()))
}

fn cookie_valid(token: &str, value: &str, now_ms: i64) -> bool {
    let Some((expires, sig)) = value.split_once('.') else { return false };
    let (Ok(expires), Some(sig)) = (expires.parse::<i64>(), unhex(sig)) else { return false };
    expires > now_ms && mac(token, expires).verify_slice(&sig).is_ok()
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

/// A form post from another site: its `Origin` names a host other than ours. Behind a
/// trusted proxy (`trust_forwarded_for`) ours is the `X-Forwarded-Host` it sets, if any.
fn cross_site(headers: &HeaderMap, trust_proxy: bool) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return false };
    let header_value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let forwarded = if trust_proxy { header_value("x-forwarded-host") } else { None };
    let host = forwarded.or_else(|| header_value("host")).unwrap_or("");
    let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    origin == "null" || !origin_host.eq_ignore_ascii_case(host.trim())
}

/// A request from a logged-in operator; anyone else is sent to the login page.
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Some(token) = &state.admin_token else { return Err(disabled()) };
        if parts.method == Method::POST && cross_site(&parts.headers, state.trust_forwarded_for) {
            return Err((StatusCode::FORBIDDEN, "cross-site form posts are refused").into_response());
        }
        match cookie(&parts.headers, COOKIE) {
            Some(v) if cookie_valid(token.expose(), v, state.clock.now_ms()) => Ok(Operator),
            _ => Err(Redirect::to("/dashboard/login").into_response()),
        }
    }
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

pub async fn login(State(state): State<AppState>, headers: HeaderMap, form: super::F<LoginForm>) -> Response {
    let Some(token) = &state.admin_token else { return disabled() };
    if cross_site(&headers, state.trust_forwarded_for) {
        return (StatusCode::FORBIDDEN, "cross-site form posts are refused").into_response();
    }
    let given = form.map(|Form(f)| f.token).unwrap_or_default();
    if given.is_empty() || !token.matches(&given) {
        tracing::info!("dashboard login refused");
        return login_page(StatusCode::UNAUTHORIZED, Some(Flash::Error("That is not the admin token.".into())));
    }
    // Over HTTPS (as the browser saw it: the login form's Origin) the cookie is never sent in clear.
    let secure = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()).is_some_and(|o| o.starts_with("https://"));
    let cookie = session_cookie(token.expose(), state.clock.now_ms(), secure);
    ([(header::SET_COOKIE, cookie)], Redirect::to("/dashboard/sessions")).into_response()
}

pub async fn logout(_: Operator) -> Response {
    let cookie = format!("{COOKIE}=; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age=0");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/dashboard/login")).into_response()
}

pub async fn home(_: Operator) -> Redirect {
    Redirect::to("/dashboard/sessions")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_must_be_ours() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, v.parse().unwrap());
            }
            h
        };
        let ours = headers(&[("host", "otp.local:8080"), ("origin", "http://otp.local:8080")]);
        assert!(!cross_site(&ours, false));
        assert!(!cross_site(&headers(&[("host", "otp.local")]), false), "no Origin: not a browser form post");
        assert!(cross_site(&headers(&[("host", "otp.local"), ("origin", "https://evil.example")]), false));
        assert!(cross_site(&headers(&[("host", "otp.local"), ("origin", "null")]), false));
        let proxied = headers(&[
            ("host", "127.0.0.1:8080"),
            ("x-forwarded-host", "otp.example"),
            ("origin", "https://otp.example"),
        ]);
        assert!(!cross_site(&proxied, true), "behind a trusted proxy");
        assert!(cross_site(&proxied, false), "X-Forwarded-Host is ignored unless the proxy is trusted");
    }

    #[test]
    fn cookie_round_trip_and_tamper() {
        let v = cookie_for("tok", 1_000);
        assert!(cookie_valid("tok", &v, 2_000));
        assert!(!cookie_valid("other", &v, 2_000), "another token");
        assert!(!cookie_valid("tok", &v, 1_000 + LIFETIME_MS), "expired");
        let (exp, sig) = v.split_once('.').unwrap();
        let later = exp.parse::<i64>().unwrap() + 1;
        assert!(!cookie_valid("tok", &format!("{later}.{sig}"), 2_000), "extended expiry");
        assert!(!cookie_valid("tok", "garbage", 2_000));
        assert!(!cookie_valid("tok", "1.zz", 0));
    }
}
