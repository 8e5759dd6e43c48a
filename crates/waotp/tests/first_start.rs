//! A first start, as a newcomer makes it: the real `waotp` binary in an empty folder with no
//! configuration. On loopback it makes its own admin token (`waotp-data/admin.token`, 0600) and
//! prints a one-time login link that opens the dashboard once, in one click, in headless
//! Chromium too; beyond loopback it makes none and says how to turn the dashboard on; a
//! configured token is never printed. Neither the token nor a link's code reaches the logs.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use waotp_test_support::binary::{Server, Waotp};
use waotp_test_support::browser::Browser;

/// `waotp serve --listen LISTEN` in `dir` with no `WAOTP_*` variable but `env`; its logs, at
/// TRACE, are appended to `dir/serve.log`. Returns once the whole banner is printed.
fn serve_in(dir: &Path, listen: &str, env: &[(&str, &str)]) -> Server {
    let cli = Waotp::new(env!("CARGO_BIN_EXE_waotp")).isolated().current_dir(dir).log_to(&dir.join("serve.log"));
    let mut server = cli.env("WAOTP_LOG", "trace").envs(env).serve(listen);
    // The banner ends with the hint for a store without apps.
    server.line("    waotp app create");
    server
}

/// The one-time login link the banner prints.
fn login_link(server: &mut Server) -> String {
    let line = server.line("  dashboard: ");
    let link = line.trim_start_matches("  dashboard: ").to_owned();
    assert!(link.starts_with(&format!("{}/dashboard/login/link?code=", server.base)), "{line}");
    link
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

fn header(res: &reqwest::Response, name: &str) -> String {
    res.headers().get(name).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
}

fn code_of(link: &str) -> &str {
    link.split_once("code=").unwrap().1
}

fn token_file(dir: &Path) -> std::path::PathBuf {
    dir.join("waotp-data").join("admin.token")
}

#[tokio::test]
async fn a_first_start_prints_a_one_time_link_and_never_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve_in(dir.path(), "127.0.0.1:0", &[]);
    let link = login_link(&mut server);
    let file = token_file(dir.path());
    let token = std::fs::read_to_string(&file).unwrap().trim().to_owned();
    assert!(token.len() >= 32, "a generated token");
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(dir.path().join("waotp-data/server.key").exists(), "admin.token lies beside the server key");
    assert!(!server.printed().contains(&token), "the token is never printed");
    assert!(server.printed().contains("waotp-data/admin.token"), "the banner says where the token is");

    // One click logs in: a 303 to the dashboard with the session cookie, nothing cached or referred.
    let http = http();
    let res = http.get(&link).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(header(&res, "location"), "/dashboard");
    assert_eq!(header(&res, "cache-control"), "no-store");
    assert_eq!(header(&res, "referrer-policy"), "no-referrer");
    let set_cookie = header(&res, "set-cookie");
    assert!(set_cookie.starts_with("waotp_dashboard=") && set_cookie.contains("HttpOnly"), "{set_cookie}");
    let session = set_cookie.split(';').next().unwrap().to_owned();
    let sessions = format!("{}/dashboard/sessions", server.base);
    let page = http.get(&sessions).header("cookie", &session).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Log out"));

    // The same link again, as a copy from the scrollback would be: the login page, no session.
    let again = http.get(&link).send().await.unwrap();
    assert_eq!(again.status(), 401);
    assert!(again.headers().get("set-cookie").is_none());
    assert!(again.text().await.unwrap().contains("used already or has expired"));
    // A made-up code opens nothing.
    let forged = format!("{}/dashboard/login/link?code={}", server.base, "0".repeat(64));
    assert_eq!(http.get(&forged).send().await.unwrap().status(), 401);
    // The token in the file is the admin token: the admin API takes it.
    let admin = http.get(format!("{}/admin/apps", server.base)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(admin.status(), 200);
    let first_code = code_of(&link).to_owned();
    server.stop();

    // A restart keeps the token (the session still holds) and prints a new link; the old one stays dead.
    let mut server = serve_in(dir.path(), "127.0.0.1:0", &[]);
    let link = login_link(&mut server);
    assert_ne!(code_of(&link), first_code);
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), token, "the same token on every start");
    let sessions = format!("{}/dashboard/sessions", server.base);
    assert_eq!(http.get(&sessions).header("cookie", &session).send().await.unwrap().status(), 200);
    let old = format!("{}/dashboard/login/link?code={first_code}", server.base);
    assert_eq!(http.get(&old).send().await.unwrap().status(), 401);
    // A HEAD, what a link previewer sends first, spends nothing.
    assert_eq!(http.head(&link).send().await.unwrap().status(), 200);
    assert_eq!(http.get(&link).send().await.unwrap().status(), 303, "the HEAD did not spend it");
    server.stop();

    let logs = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    assert!(logs.contains("dashboard login by a one-time link"), "the logs were captured: {logs}");
    for secret in [token.as_str(), &first_code, code_of(&link)] {
        assert!(!logs.contains(secret), "a secret in the logs");
    }
}

#[tokio::test]
async fn beyond_loopback_a_first_start_leaves_the_dashboard_off() {
    let dir = tempfile::tempdir().unwrap();
    // Bound on every address; the test talks to it over 127.0.0.1 only.
    let mut server = serve_in(dir.path(), "0.0.0.0:0", &[]);
    let line = server.line("  dashboard: ");
    assert!(line.contains("off") && line.contains("beyond loopback"), "{line}");
    assert!(server.printed().contains("WAOTP_ADMIN_TOKEN"), "how to turn it on: {}", server.printed());
    assert!(!server.printed().contains("code="));
    assert!(!token_file(dir.path()).exists(), "no token is made");
    let local = server.base.replace("0.0.0.0", "127.0.0.1");
    let res = http().get(format!("{local}/dashboard/login")).send().await.unwrap();
    assert_eq!(res.status(), 403);
    assert!(res.text().await.unwrap().contains("The dashboard is off"));
    let link = http().get(format!("{local}/dashboard/login/link?code=x")).send().await.unwrap();
    assert_eq!(link.status(), 403);
    server.stop();

    // A token made by an earlier start on loopback is not used silently, but named.
    serve_in(dir.path(), "127.0.0.1:0", &[]).stop();
    assert!(token_file(dir.path()).exists());
    let mut server = serve_in(dir.path(), "0.0.0.0:0", &[]);
    assert!(server.line("  dashboard: ").contains("off"));
    let token = std::fs::read_to_string(token_file(dir.path())).unwrap().trim().to_owned();
    assert!(server.printed().contains("WAOTP_ADMIN_TOKEN_FILE=waotp-data/admin.token"), "{}", server.printed());
    assert!(!server.printed().contains(&token) && !server.printed().contains("code="));
    server.stop();
}

#[tokio::test]
async fn a_configured_admin_token_is_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let token = "configured-admin-token-0123456789";
    let mut server = serve_in(dir.path(), "127.0.0.1:0", &[("WAOTP_ADMIN_TOKEN", token)]);
    let line = server.line("  dashboard: ");
    assert_eq!(line, format!("  dashboard: {}/dashboard (log in with the configured admin token)", server.base));
    assert!(!server.printed().contains(token) && !server.printed().contains("code="));
    assert!(!token_file(dir.path()).exists(), "nothing is generated");
    let res = http().get(format!("{}/admin/apps", server.base)).bearer_auth(token).send().await.unwrap();
    assert_eq!(res.status(), 200);
    server.stop();
    assert!(!std::fs::read_to_string(dir.path().join("serve.log")).unwrap().contains(token));
}

/// The newcomer's path in a real browser: the banner's link opens the dashboard, logged in;
/// after logging out, the same link opens only the login page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_start_opens_the_dashboard_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve_in(dir.path(), "127.0.0.1:0", &[]);
    let link = login_link(&mut server);
    let b = Browser::start(1280, 900).await;

    b.goto(&link).await;
    let url = b.url().await;
    assert_eq!(url, format!("{}/dashboard/sessions", server.base), "{}", b.text("body").await);
    assert!(b.exists("form[action='/dashboard/logout'] button").await, "logged in");
    assert!(b.exists("nav a[href='/dashboard/manage']").await);

    b.click_through("form[action='/dashboard/logout'] button").await;
    assert!(b.url().await.ends_with("/dashboard/login"));
    b.goto(&link).await;
    assert!(b.text("main").await.contains("used already or has expired"), "{}", b.text("body").await);
    assert!(!b.exists("form[action='/dashboard/logout']").await, "not logged in");
    assert!(b.exists("input#token").await, "the login form is offered");
    b.goto(&format!("{}/dashboard/sessions", server.base)).await;
    assert!(b.url().await.ends_with("/dashboard/login"), "no session: {}", b.url().await);

    b.quit().await;
    server.stop();
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

/// The data folder and every file in it are the service user's alone: made so on a first
/// start, and tightened (with a warning) when an older start left them open to others.
#[tokio::test]
async fn the_data_folder_and_its_files_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("waotp-data");
    let server = serve_in(dir.path(), "127.0.0.1:0", &[]);
    // (Killed: the -wal and -shm files stay behind.)
    let own = ["waotp.db", "waotp.db-wal", "waotp.db-shm", "server.key", "admin.token"];
    server.stop();
    assert_eq!(mode(&data), 0o700);
    for name in own {
        assert_eq!(mode(&data.join(name)), 0o600, "{name}");
    }
    // As an older waotp (or a copy) would have left them.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    for name in own {
        std::fs::set_permissions(data.join(name), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let server = serve_in(dir.path(), "127.0.0.1:0", &[]);
    server.stop();
    assert_eq!(mode(&data), 0o700);
    for name in own {
        assert_eq!(mode(&data.join(name)), 0o600, "{name}");
    }
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    assert!(log.contains("the data folder was open to other users: tightened to 0700"), "{log}");
    assert!(log.contains("a database file was open to other users: tightened to 0600"), "{log}");
}
