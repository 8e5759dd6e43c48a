//! Running waotp as a service: `waotp healthcheck` (a container's health probe), `waotp
//! dashboard link` (a fresh one-time login link from the running server) and `public_url` (a
//! container's published address: a first start beyond loopback still reaches the dashboard).

use waotp_test_support::binary::{Server, Waotp};

fn sqlite(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("data").join("waotp.db").display())
}

/// `waotp`, with no admin token but the one a test gives.
fn waotp() -> Waotp {
    Waotp::new(env!("CARGO_BIN_EXE_waotp")).env_remove("WAOTP_ADMIN_TOKEN")
}

/// The status and `Set-Cookie` of following a login link (not the redirect).
async fn follow(link: &str) -> (u16, bool) {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let answer = http.get(link).send().await.expect("the server answers");
    (answer.status().as_u16(), answer.headers().contains_key("set-cookie"))
}

#[tokio::test]
async fn healthcheck_exits_0_when_ready_and_1_when_not() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite(&dir);
    let server = waotp().db(&db).serve("127.0.0.1:0");
    let base = server.base.clone();
    let ready = waotp().run(&["healthcheck", "--url", &base]);
    assert!(ready.success(), "{}", ready.stderr);
    assert_eq!(ready.stdout.trim(), "ready");
    server.stop();
    let stopped = waotp().run(&["healthcheck", "--url", &base, "--timeout", "1s"]);
    assert!(!stopped.success(), "a stopped server is not healthy");
    assert!(stopped.stderr.contains("cannot reach"), "{}", stopped.stderr);
}

#[tokio::test]
async fn dashboard_link_asks_the_running_server_for_a_one_time_link() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite(&dir);
    let server = waotp().db(&db).serve("127.0.0.1:0");
    let base = server.base.clone();
    // The server made its own admin token beside the database; the command reads it there.
    let out = waotp().db(&db).ok(&["dashboard", "link", "--url", &base]);
    let link = out.trim();
    assert!(link.starts_with(&format!("{base}/dashboard/login/link?code=")), "{link}");
    assert_eq!(follow(link).await, (303, true), "the link logs in");
    assert_ne!(follow(link).await.0, 303, "and only once");
    // With public_url, the link names the published address.
    let out =
        waotp().db(&db).env("WAOTP_PUBLIC_URL", "https://otp.example.com/").ok(&["dashboard", "link", "--url", &base]);
    assert!(out.trim().starts_with("https://otp.example.com/dashboard/login/link?code="), "{out}");
    // A wrong token is refused by the server, and said so.
    let refused =
        waotp().env("WAOTP_ADMIN_TOKEN", "not-the-token-0123456789").run(&["dashboard", "link", "--url", &base]);
    assert!(!refused.success());
    assert!(refused.stderr.contains("401"), "{}", refused.stderr);
    drop(server);
}

/// Starts `waotp serve` beyond loopback; returns it and its banner's dashboard line.
fn banner_beyond_loopback(db: &str, public_url: Option<&str>) -> (Server, String) {
    let cli = waotp().db(db).env_remove("WAOTP_PUBLIC_URL");
    let cli = match public_url {
        Some(url) => cli.env("WAOTP_PUBLIC_URL", url),
        None => cli,
    };
    let mut server = cli.serve("0.0.0.0:0");
    let dashboard = server.line("  dashboard: ");
    (server, dashboard)
}

#[tokio::test]
async fn public_url_gives_a_server_beyond_loopback_its_dashboard_link() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite(&dir);
    // Without public_url: no token of waotp's own, no dashboard.
    let (server, dashboard) = banner_beyond_loopback(&db, None);
    server.stop();
    assert!(dashboard.starts_with("  dashboard: off"), "{dashboard}");
    assert!(!dir.path().join("data").join("admin.token").exists());
    // With it (as the container image sets it): a token is made, and the link names the address.
    let (server, dashboard) = banner_beyond_loopback(&db, Some("http://localhost:18080"));
    let port = server.base.rsplit(':').next().unwrap().to_owned();
    let link = dashboard
        .strip_prefix("  dashboard: http://localhost:18080")
        .unwrap_or_else(|| panic!("no dashboard link in {}", server.printed()))
        .to_owned();
    assert!(link.starts_with("/dashboard/login/link?code="), "{link}");
    assert!(dir.path().join("data").join("admin.token").exists());
    assert_eq!(follow(&format!("http://127.0.0.1:{port}{link}")).await, (303, true));
    server.stop();
    // A malformed public_url is refused at start, naming the key.
    let refused =
        waotp().db(&db).env("WAOTP_PUBLIC_URL", "ftp://otp.example.com").run(&["serve", "--listen", "127.0.0.1:0"]);
    assert!(!refused.success());
    assert!(refused.stderr.contains("public_url"), "{}", refused.stderr);
}
