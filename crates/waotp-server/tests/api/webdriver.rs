//! A small W3C WebDriver client over reqwest, driving Debian's headless Chromium through
//! `chromedriver` (installed by `scripts/test` when missing). Only what the dashboard tests
//! need: navigate, find, click, type, run a script, resize, screenshot.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};
use waotp_store::testing::eventually;

/// The element reference key of the W3C protocol.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT/session/ID`
    session: String,
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
        let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(60)).build().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        eventually(&format!("chromedriver ready on port {port}"), Duration::from_secs(20), || async {
            let r = http.get(format!("{base}/status")).send().await.map_err(|e| e.to_string())?;
            let v: Value = r.json().await.unwrap_or_default();
            if v["value"]["ready"] == json!(true) {
                Ok(())
            } else {
                Err(v.to_string())
            }
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
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium, "args": args },
        } } });
        let res: Value = http.post(format!("{base}/session")).json(&caps).send().await.unwrap().json().await.unwrap();
        let id = res["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no WebDriver session: {res}")).to_owned();
        let browser = Browser { http, session: format!("{base}/session/{id}"), driver, _profile: profile };
        browser.resize(width, height).await;
        browser
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method.clone(), format!("{}{path}", self.session));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        let status = res.status();
        let v: Value = res.json().await.unwrap_or_default();
        assert!(status.is_success(), "WebDriver {method} {path} answered {status}: {v}");
        v["value"].clone()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    pub async fn url(&self) -> String {
        self.get("/url").await.as_str().unwrap_or_default().to_owned()
    }

    /// Resizes the viewport to `width` × `height` CSS pixels (the window is made larger by
    /// whatever its frame takes).
    pub async fn resize(&self, width: u32, height: u32) {
        for _ in 0..3 {
            let inner = self.execute("return [window.innerWidth, window.innerHeight]", json!([])).await;
            let (iw, ih) = (inner[0].as_i64().unwrap_or(0), inner[1].as_i64().unwrap_or(0));
            if iw == i64::from(width) && ih == i64::from(height) {
                return;
            }
            let rect = self.get("/window/rect").await;
            let (ow, oh) = (rect["width"].as_i64().unwrap_or(0), rect["height"].as_i64().unwrap_or(0));
            let (w, h) = (i64::from(width) + (ow - iw).max(0), i64::from(height) + (oh - ih).max(0));
            self.post("/window/rect", json!({ "width": w, "height": h })).await;
        }
    }

    pub async fn execute(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": args })).await
    }

    async fn element(&self, css: &str) -> String {
        let v = self.post("/element", json!({ "using": "css selector", "value": css })).await;
        v[ELEMENT].as_str().unwrap_or_else(|| panic!("no element {css}: {v}")).to_owned()
    }

    /// Whether `css` matches anything now.
    pub async fn exists(&self, css: &str) -> bool {
        let v = self.post("/elements", json!({ "using": "css selector", "value": css })).await;
        v.as_array().is_some_and(|a| !a.is_empty())
    }

    pub async fn click(&self, css: &str) {
        let id = self.element(css).await;
        self.post(&format!("/element/{id}/click"), json!({})).await;
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
        let id = self.element(css).await;
        self.post(&format!("/element/{id}/clear"), json!({})).await;
        self.post(&format!("/element/{id}/value"), json!({ "text": text })).await;
    }

    /// Chooses the `<option>` of a `<select>` with this value.
    pub async fn choose(&self, css: &str, value: &str) {
        let option = format!("{css} option[value=\"{value}\"]");
        self.click(&option).await;
    }

    pub async fn text(&self, css: &str) -> String {
        let id = self.element(css).await;
        self.get(&format!("/element/{id}/text")).await.as_str().unwrap_or_default().to_owned()
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
        let b64 = self.get("/screenshot").await;
        let png = base64::engine::general_purpose::STANDARD.decode(b64.as_str().unwrap_or_default()).unwrap();
        std::fs::write(path, png).unwrap();
    }

    /// Ends the browser session (Chromium exits) and then the driver.
    pub async fn quit(self) {
        let _ = self.http.delete(&self.session).send().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
