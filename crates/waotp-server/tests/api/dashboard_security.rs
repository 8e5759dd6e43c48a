//! The dashboard's defences over HTTP: a logout ends the login on every node, logins expire,
//! wrong admin tokens are throttled per client address (dashboard and admin API), every answer
//! carries the security headers, `?msg=` names a fixed notice, never free text, and a form
//! posted from another origin (another scheme of the same host included) is refused.

use std::time::Duration;

use serde_json::Value;
use waotp_server::config::Secret;
use waotp_server::Config;

use waotp_test_support::app::{spawn_app_on, spawn_app_with, TestApp};

const TOKEN: &str = "dashboard-admin-token-0123456789";

async fn spawn_dashboard(trust_forwarded_for: bool) -> TestApp {
    spawn_app_with(|c| {
        c.admin_token = Some(Secret::new(TOKEN));
        c.trust_forwarded_for = trust_forwarded_for;
    })
    .await
}

/// A second server (node) on `app`'s database, with the same admin token.
async fn second_node(app: &TestApp) -> TestApp {
    let mut config = Config::new(app.database_url.clone());
    config.node_timeout = Duration::from_secs(1);
    config.database_wait = Duration::from_secs(30);
    spawn_app_on(tempfile::tempdir().unwrap(), config, |c| c.admin_token = Some(Secret::new(TOKEN))).await
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// Logs in to `app` with `token` from `from` (an `X-Forwarded-For` address, if any).
async fn log_in_from(app: &TestApp, token: &str, from: Option<&str>) -> reqwest::Response {
    let mut req = no_redirects().post(format!("{}/dashboard/login", app.base)).form(&[("token", token)]);
    if let Some(ip) = from {
        req = req.header("x-forwarded-for", ip);
    }
    req.send().await.unwrap()
}

/// Logs in; the `name=value` of the cookie.
async fn log_in(app: &TestApp) -> String {
    let r = log_in_from(app, TOKEN, None).await;
    assert_eq!(r.status().as_u16(), 303);
    r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned()
}

/// GET `path` of the dashboard with `cookie`: the answer, not followed.
async fn get(app: &TestApp, path: &str, cookie: &str) -> reqwest::Response {
    no_redirects().get(format!("{}/dashboard{path}", app.base)).header("cookie", cookie).send().await.unwrap()
}

async fn logged_in(app: &TestApp, cookie: &str) -> bool {
    let r = get(app, "/sessions", cookie).await;
    match r.status().as_u16() {
        200 => true,
        303 => {
            assert_eq!(r.headers()["location"], "/dashboard/login");
            false
        }
        other => panic!("unexpected {other}"),
    }
}

async fn log_out(app: &TestApp, cookie: &str) {
    let r =
        no_redirects().post(format!("{}/dashboard/logout", app.base)).header("cookie", cookie).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert!(r.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
}

/// Log in, copy the cookie, log out: the copy opens nothing any more, on this node or another
/// on the same database; and a login made on the other node ends there for this one too.
#[tokio::test]
async fn logout_ends_the_login_on_every_node() {
    let a = spawn_dashboard(false).await;
    let b = second_node(&a).await;
    let cookie = log_in(&a).await;
    let copy = cookie.clone();
    assert!(logged_in(&a, &cookie).await);
    assert!(logged_in(&b, &copy).await, "any node accepts a login");
    log_out(&a, &cookie).await;
    assert!(!logged_in(&a, &copy).await, "the copied cookie is refused after logout");
    assert!(!logged_in(&b, &copy).await, "and on the other node at once");

    let on_b = log_in(&b).await;
    assert!(logged_in(&a, &on_b).await);
    log_out(&b, &on_b).await;
    assert!(!logged_in(&a, &on_b).await);
    // Another login is not touched by a logout.
    let other = log_in(&a).await;
    let ended = log_in(&a).await;
    log_out(&b, &ended).await;
    assert!(logged_in(&a, &other).await && logged_in(&b, &other).await);
}

/// A login lasts 12 hours, then its cookie opens nothing, even if the browser keeps sending it;
/// the one-time link makes a login of the same kind.
#[tokio::test]
async fn logins_expire_after_12_hours() {
    let app = spawn_dashboard(false).await;
    let cookie = log_in(&app).await;
    app.clock.advance(Duration::from_secs(12 * 3600 - 60));
    assert!(logged_in(&app, &cookie).await);
    app.clock.advance(Duration::from_secs(61));
    assert!(!logged_in(&app, &cookie).await);

    let link = app.state.issue_login_link().unwrap();
    let r = no_redirects().get(format!("{}{link}", app.base)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let from_link = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    assert!(logged_in(&app, &from_link).await);
    log_out(&app, &from_link).await;
    assert!(!logged_in(&app, &from_link).await, "a link's login ends at logout too");
}

/// Five wrong logins within a minute from one address: the sixth attempt is answered 429 with
/// `Retry-After` and a fixed message, even with the right token, until the minute is over;
/// another address logs in meanwhile.
#[tokio::test]
async fn failed_logins_are_throttled_per_address() {
    let app = spawn_dashboard(true).await;
    let guesser = Some("203.0.113.5");
    for n in 0..5 {
        let r = log_in_from(&app, &format!("guess-{n}"), guesser).await;
        assert_eq!(r.status().as_u16(), 401, "failure {n}");
    }
    let r = log_in_from(&app, TOKEN, guesser).await;
    assert_eq!(r.status().as_u16(), 429, "the sixth attempt in the minute, even with the right token");
    let retry_after: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert!(r.headers().get("set-cookie").is_none());
    assert!(r.text().await.unwrap().contains("Too many failed logins from your address"));

    let r = log_in_from(&app, TOKEN, Some("203.0.113.6")).await;
    assert_eq!(r.status().as_u16(), 303, "another address is not affected");
    let r = log_in_from(&app, TOKEN, Some("2001:db8::1")).await;
    assert_eq!(r.status().as_u16(), 303);

    app.clock.advance(Duration::from_secs(61));
    let r = log_in_from(&app, TOKEN, guesser).await;
    assert_eq!(r.status().as_u16(), 303, "the window is over");
}

/// Wrong admin bearer tokens count the same way: the sixth attempt gets the API's JSON 429
/// (`too_many_failures`, `Retry-After`), another address is served; the two doors share one
/// count per address.
#[tokio::test]
async fn admin_bearer_failures_are_throttled_per_address() {
    let app = spawn_dashboard(true).await;
    let admin = |token: &str, from: &str| {
        app.http.get(format!("{}/admin/apps", app.base)).bearer_auth(token).header("x-forwarded-for", from).send()
    };
    for n in 0..5 {
        let r = admin(&format!("guess-{n}"), "198.51.100.9").await.unwrap();
        assert_eq!(r.status().as_u16(), 401, "failure {n}");
    }
    let r = admin(TOKEN, "198.51.100.9").await.unwrap();
    assert_eq!(r.status().as_u16(), 429);
    let retry_after: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error_code"], "too_many_failures", "{body}");
    assert_eq!(body["message"], "Too many failed authentications from this address: try again later");
    assert!(body.get("code").is_none(), "never a `code` key: {body}");

    assert_eq!(admin(TOKEN, "198.51.100.10").await.unwrap().status().as_u16(), 200, "another address");
    let r = log_in_from(&app, TOKEN, Some("198.51.100.9")).await;
    assert_eq!(r.status().as_u16(), 429, "the dashboard's door counts the same failures");

    app.clock.advance(Duration::from_secs(60));
    assert_eq!(admin(TOKEN, "198.51.100.9").await.unwrap().status().as_u16(), 200, "the window is over");
}

fn assert_security_headers(what: &str, r: &reqwest::Response) {
    let h = r.headers();
    let csp = h.get("content-security-policy").unwrap_or_else(|| panic!("{what}: no CSP")).to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(h["referrer-policy"], "same-origin", "{what}");
    assert_eq!(h["x-frame-options"], "DENY", "{what}");
}

/// Every dashboard answer carries the security headers: the login page, each page after
/// login, redirects, refusals and error pages.
#[tokio::test]
async fn every_dashboard_answer_carries_the_security_headers() {
    let app = spawn_dashboard(false).await;
    let client = no_redirects();
    let base = format!("{}/dashboard", app.base);
    let r = client.get(format!("{base}/login")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_security_headers("login page", &r);
    let r = log_in_from(&app, "wrong", None).await;
    assert_eq!(r.status().as_u16(), 401);
    assert_security_headers("wrong token", &r);
    let r = client.get(format!("{base}/login/link?code=nope")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_security_headers("spent link", &r);
    let r = client.get(format!("{base}/sessions")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_security_headers("redirect to login", &r);

    let cookie = log_in(&app).await;
    for path in ["/sessions", "/funnel", "/inbox", "/callbacks", "/manage", "/try"] {
        let r = get(&app, path, &cookie).await;
        assert_eq!(r.status().as_u16(), 200, "{path}");
        assert_security_headers(path, &r);
    }
    let unknown = uuid::Uuid::new_v4();
    let r = get(&app, &format!("/sessions/{unknown}"), &cookie).await;
    assert_eq!(r.status().as_u16(), 404);
    assert_security_headers("unknown session", &r);
    let r = get(&app, "/sessions?session_id=nope", &cookie).await;
    assert_eq!(r.status().as_u16(), 400);
    assert_security_headers("bad search", &r);
    let r = client
        .post(format!("{base}/manage/apps"))
        .header("cookie", &cookie)
        .header("origin", "http://evil.example")
        .form(&[("name", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_security_headers("cross-site post", &r);
    let r = client.get(&base).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_security_headers("home", &r);
}

/// `?msg=` shows a known code's fixed text, and nothing for anything else.
#[tokio::test]
async fn notices_are_fixed_codes_never_free_text() {
    let app = spawn_dashboard(false).await;
    let cookie = log_in(&app).await;
    let free = "Your+account+is+locked%3A+call+%2B1+555+0100";
    for path in ["/manage", "/callbacks"] {
        let page = get(&app, &format!("{path}?msg={free}"), &cookie).await.text().await.unwrap();
        assert!(!page.contains("account is locked") && !page.contains("class=\"flash"), "{path}: {page}");
        let page = get(&app, &format!("{path}?msg=blocked"), &cookie).await.text().await.unwrap();
        assert!(page.contains("class=\"flash ok\"") && page.contains("Blocked."), "{path}");
    }
    // The forms redirect with a code.
    let r = no_redirects()
        .post(format!("{}/dashboard/manage/quota", app.base))
        .header("cookie", &cookie)
        .form(&[("app", app.app_id.to_string()), ("quota", "42".into())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/dashboard/manage?msg=quota_set");
    let page = get(&app, "/manage?msg=quota_set", &cookie).await.text().await.unwrap();
    assert!(page.contains("Quota set."));
}

/// The scheme is part of the origin: on waotp's plain HTTP, a login form or a change posted
/// from an `https://` page of the same host is another site's and refused; the matching
/// origin is accepted. Behind a trusted TLS proxy (`X-Forwarded-Proto: https`) it is the other
/// way round, and a browser's own `Sec-Fetch-Site: same-origin` is believed (it saw the scheme).
#[tokio::test]
async fn a_form_post_from_another_scheme_is_refused() {
    let post = |app: &TestApp, path: &str, headers: &[(&str, String)], form: &[(&str, &str)]| {
        let mut req = no_redirects().post(format!("{}/dashboard{path}", app.base)).form(form);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        req.send()
    };
    let app = spawn_dashboard(false).await;
    let host = app.base.trim_start_matches("http://").to_owned();
    let https = ("origin", format!("https://{host}"));
    let r = post(&app, "/login", std::slice::from_ref(&https), &[("token", TOKEN)]).await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert!(r.headers().get("set-cookie").is_none(), "no login");
    let r = post(&app, "/login", &[("origin", format!("http://{host}"))], &[("token", TOKEN)]).await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let apps = app.state.store.list_apps().await.unwrap().len();
    let r = post(&app, "/manage/apps", &[("cookie", cookie.clone()), https.clone()], &[("name", "x")]).await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(app.state.store.list_apps().await.unwrap().len(), apps, "nothing made");
    // The browser says the https page posting is of another origin than the page it posts to.
    let cross = [("cookie", cookie.clone()), https.clone(), ("sec-fetch-site", "cross-site".into())];
    assert_eq!(post(&app, "/manage/apps", &cross, &[("name", "x")]).await.unwrap().status().as_u16(), 403);

    // Behind a trusted TLS-terminating proxy: https is ours (and the cookie Secure), http not.
    let proxied = spawn_dashboard(true).await;
    let name = ("x-forwarded-host", "otp.example".to_owned());
    let proto = ("x-forwarded-proto", "https".to_owned());
    let https_proxied = ("origin", "https://otp.example".to_owned());
    let r = post(&proxied, "/login", &[https_proxied, name.clone(), proto.clone()], &[("token", TOKEN)]).await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert!(r.headers()["set-cookie"].to_str().unwrap().contains("; Secure"));
    let http = ("origin", "http://otp.example".to_owned());
    let r = post(&proxied, "/login", &[http, name, proto], &[("token", TOKEN)]).await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    // A proxy that keeps Host and says nothing of TLS: the browser's Sec-Fetch-Site vouches.
    let browser = [https, ("sec-fetch-site", "same-origin".into())];
    let r = post(&app, "/login", &browser, &[("token", TOKEN)]).await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert!(r.headers()["set-cookie"].to_str().unwrap().contains("; Secure"));
}
