//! Running waotp as a service: `waotp healthcheck` (a container's health probe), `waotp
//! dashboard link` (a fresh one-time login link from the running server) and `public_url` (a
//! container's published address: a first start beyond loopback still reaches the dashboard).

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use support::BIN;

fn sqlite(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("data").join("waotp.db").display())
}

fn run(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut command = Command::new(BIN);
    command.args(args).env_remove("WAOTP_ADMIN_TOKEN");
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().expect("run waotp");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
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
    let mut server = support::serve(&db, &[]);
    let base = server.base.clone();
    let (ok, out, err) = run(&["healthcheck", "--url", &base], &[]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "ready");
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let (ok, _, err) = run(&["healthcheck", "--url", &base, "--timeout", "1s"], &[]);
    assert!(!ok, "a stopped server is not healthy");
    assert!(err.contains("cannot reach"), "{err}");
}

#[tokio::test]
async fn dashboard_link_asks_the_running_server_for_a_one_time_link() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite(&dir);
    let server = support::serve(&db, &[]);
    let base = server.base.clone();
    // The server made its own admin token beside the database; the command reads it there.
    let (ok, out, err) = run(&["dashboard", "link", "--url", &base], &[("WAOTP_DATABASE_URL", &db)]);
    assert!(ok, "{err}");
    let link = out.trim();
    assert!(link.starts_with(&format!("{base}/dashboard/login/link?code=")), "{link}");
    assert_eq!(follow(link).await, (303, true), "the link logs in");
    assert_ne!(follow(link).await.0, 303, "and only once");
    // With public_url, the link names the published address.
    let (ok, out, err) = run(
        &["dashboard", "link", "--url", &base],
        &[("WAOTP_DATABASE_URL", &db), ("WAOTP_PUBLIC_URL", "https://otp.example.com/")],
    );
    assert!(ok, "{err}");
    assert!(out.trim().starts_with("https://otp.example.com/dashboard/login/link?code="), "{out}");
    // A wrong token is refused by the server, and said so.
    let (ok, _, err) =
        run(&["dashboard", "link", "--url", &base], &[("WAOTP_ADMIN_TOKEN", "not-the-token-0123456789")]);
    assert!(!ok);
    assert!(err.contains("401"), "{err}");
    drop(server);
}

/// Starts `waotp serve` beyond loopback and returns its banner lines up to the dashboard's.
fn banner_beyond_loopback(db: &str, public_url: Option<&str>) -> (std::process::Child, Vec<String>) {
    let mut command = Command::new(BIN);
    command
        .args(["serve", "--listen", "0.0.0.0:0"])
        .env("WAOTP_DATABASE_URL", db)
        .env("WAOTP_LOG", "warn")
        .env_remove("WAOTP_ADMIN_TOKEN")
        .env_remove("WAOTP_PUBLIC_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(url) = public_url {
        command.env("WAOTP_PUBLIC_URL", url);
    }
    let mut child = command.spawn().expect("start waotp serve");
    let mut all = BufReader::new(child.stdout.take().expect("stdout")).lines().map_while(Result::ok);
    let lines: Vec<String> = all.by_ref().take_while(|l| !l.is_empty()).collect();
    // The rest of the banner is read too: a closed pipe would end the server at its next line.
    std::thread::spawn(move || all.for_each(drop));
    (child, lines)
}

#[tokio::test]
async fn public_url_gives_a_server_beyond_loopback_its_dashboard_link() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite(&dir);
    // Without public_url: no token of waotp's own, no dashboard.
    let (mut child, lines) = banner_beyond_loopback(&db, None);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(lines.iter().any(|l| l.starts_with("  dashboard: off")), "{lines:?}");
    assert!(!dir.path().join("data").join("admin.token").exists());
    // With it (as the container image sets it): a token is made, and the link names the address.
    let (mut child, lines) = banner_beyond_loopback(&db, Some("http://localhost:18080"));
    let port = lines[0].rsplit(':').next().unwrap().to_owned();
    let link = lines
        .iter()
        .find_map(|l| l.strip_prefix("  dashboard: http://localhost:18080"))
        .unwrap_or_else(|| panic!("no dashboard link in {lines:?}"))
        .to_owned();
    assert!(link.starts_with("/dashboard/login/link?code="), "{link}");
    assert!(dir.path().join("data").join("admin.token").exists());
    assert_eq!(follow(&format!("http://127.0.0.1:{port}{link}")).await, (303, true));
    child.kill().unwrap();
    child.wait().unwrap();
    // A malformed public_url is refused at start, naming the key.
    let (ok, _, err) = run(
        &["serve", "--listen", "127.0.0.1:0"],
        &[("WAOTP_DATABASE_URL", &db), ("WAOTP_PUBLIC_URL", "ftp://otp.example.com")],
    );
    assert!(!ok);
    assert!(err.contains("public_url"), "{err}");
}
