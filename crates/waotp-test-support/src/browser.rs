//! Debian's headless Chromium, driven through `chromedriver` (installed by `scripts/test` when
//! missing) with the `fantoccini` WebDriver client. Ours is only the driver's start (a free
//! loopback port, Chromium kept off the network, a throwaway profile) and the few steps the
//! dashboard tests take: navigate, find, click, type, run a script, resize, screenshot.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{error::CmdError, Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

use crate::eventually;

pub struct Browser {
    client: Client,
    driver: std::process::Child,
    _profile: tempfile::TempDir,
}

fn find_program(env: &str, candidates: &[&str]) -> PathBuf {
    if let Ok(p) = std::env::var(env) {
        return PathBuf::from(p);
    }
    for c in candidates {
        let p = Path::new(c);
        if p.exists() {
            return p.to_path_buf();
        }
    }
    panic!(
        "{} not found (looked at {candidates:?}; set {env}). scripts/test installs Debian's chromium and \
         chromium-driver when they are missing; by hand: apt-get install -y chromium chromium-driver",
        candidates[0]
    );
}

/// A WebDriver command's answer, or a panic that says which command failed (or hung for a minute).
async fn run<T>(what: &str, command: impl Future<Output = Result<T, CmdError>>) -> T {
    match tokio::time::timeout(Duration::from_secs(60), command).await {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => panic!("WebDriver {what}: {e}"),
        Err(_) => panic!("WebDriver {what}: no answer in 60 s"),
    }
}

impl Browser {
    /// Starts chromedriver on a free loopback port and a headless Chromium session with a
    /// window of `width` × `height` CSS pixels.
    pub async fn start(width: u32, height: u32) -> Browser {
        let driver_path =
            find_program("WAOTP_CHROMEDRIVER", &["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]);
        let chromium = find_program("WAOTP_CHROMIUM", &["/usr/bin/chromium", "/usr/bin/chromium-browser"]);
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = std::process::Command::new(&driver_path)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", driver_path.display()));
        // chromedriver listens once it can take a session.
        eventually(&format!("chromedriver listening on port {port}"), Duration::from_secs(20), || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.map(drop)
        })
        .await;
        let profile = tempfile::tempdir().unwrap();
        // The flags keep Chromium off the network entirely (the machine has none), as root.
        let args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-extensions".to_owned(),
            "--hide-scrollbars".to_owned(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium, "args": args },
        });
        // chromedriver is on loopback: plain HTTP, no TLS connector.
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps.as_object().unwrap().clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|e| panic!("no WebDriver session: {e}"));
        let browser = Browser { client, driver, _profile: profile };
        browser.resize(width, height).await;
        browser
    }

    pub async fn goto(&self, url: &str) {
        run(&format!("goto {url}"), self.client.goto(url)).await;
    }

    pub async fn url(&self) -> String {
        run("current url", self.client.current_url()).await.into()
    }

    /// Resizes the viewport to `width` × `height` CSS pixels (the window is made larger by
    /// whatever its frame takes).
    pub async fn resize(&self, width: u32, height: u32) {
        for _ in 0..3 {
            let inner = self.execute("return [window.innerWidth, window.innerHeight]", json!([])).await;
            let (iw, ih) = (inner[0].as_u64().unwrap_or(0), inner[1].as_u64().unwrap_or(0));
            if iw == u64::from(width) && ih == u64::from(height) {
                return;
            }
            let (_, _, ow, oh) = run("window rect", self.client.get_window_rect()).await;
            let (w, h) = (u64::from(width) + ow.saturating_sub(iw), u64::from(height) + oh.saturating_sub(ih));
            let (w, h) = (u32::try_from(w).unwrap(), u32::try_from(h).unwrap());
            run(&format!("resize to {w}×{h}"), self.client.set_window_size(w, h)).await;
        }
    }

    /// Runs `script` with `args` (a JSON array) and returns what it returns.
    pub async fn execute(&self, script: &str, args: Value) -> Value {
        let Value::Array(args) = args else { panic!("script arguments are an array: {args}") };
        run(&format!("script {script}"), self.client.execute(script, args)).await
    }

    async fn element(&self, css: &str) -> fantoccini::elements::Element {
        run(&format!("find {css}"), self.client.find(Locator::Css(css))).await
    }

    /// Whether `css` matches anything now.
    pub async fn exists(&self, css: &str) -> bool {
        !run(&format!("find all {css}"), self.client.find_all(Locator::Css(css))).await.is_empty()
    }

    pub async fn click(&self, css: &str) {
        run(&format!("click {css}"), self.element(css).await.click()).await;
    }

    /// Clicks something that loads a new page (a submit button, a link), and waits until the
    /// new page has loaded.
    pub async fn click_through(&self, css: &str) {
        self.execute("window.__waotpOldPage = true", json!([])).await;
        self.click(css).await;
        eventually(&format!("a new page loaded by clicking {css}"), Duration::from_secs(20), || async {
            let loaded = self
                .execute("return window.__waotpOldPage === undefined && document.readyState === 'complete'", json!([]))
                .await;
            if loaded == json!(true) {
                Ok(())
            } else {
                Err(loaded)
            }
        })
        .await;
    }

    /// Clears a field and types `text` into it.
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.element(css).await;
        run(&format!("clear {css}"), field.clear()).await;
        run(&format!("type into {css}"), field.send_keys(text)).await;
    }

    /// Chooses the `<option>` of a `<select>` with this value.
    pub async fn choose(&self, css: &str, value: &str) {
        let option = format!("{css} option[value=\"{value}\"]");
        self.click(&option).await;
    }

    pub async fn text(&self, css: &str) -> String {
        run(&format!("text of {css}"), self.element(css).await.text()).await
    }

    /// Reloads `url` until `css` matches (the dashboard's pages have no script to poll).
    pub async fn wait_for(&self, url: &str, css: &str) {
        eventually(&format!("{css} on {url}"), Duration::from_secs(20), || async {
            self.goto(url).await;
            if self.exists(css).await {
                Ok(())
            } else {
                Err("not there yet")
            }
        })
        .await;
    }

    pub async fn screenshot(&self, path: &Path) {
        let png = run("screenshot", self.client.screenshot()).await;
        std::fs::write(path, png).unwrap();
    }

    /// Ends the browser session (Chromium exits) and then the driver.
    pub async fn quit(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
