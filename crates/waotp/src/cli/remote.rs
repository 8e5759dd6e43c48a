//! The CLI against a running server's admin API (`--server URL`), instead of the database.
//! Answers are printed as the API returns them (pretty JSON, or one line with `--json`).

use anyhow::{bail, Context};
use reqwest::Method;
use serde_json::{json, Value};

use super::apps::AppCommand;
use super::blocklist::BlocklistCommand;
use super::callbacks::CallbackCommand;
use super::templates::TemplateCommand;

pub struct Remote {
    http: reqwest::Client,
    base: String,
    token: String,
}

fn print(v: &Value, json: bool) {
    if json {
        println!("{v}");
    } else {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    }
}

impl Remote {
    pub fn new(url: &str, token: &str) -> anyhow::Result<Remote> {
        let parsed = url::Url::parse(url).with_context(|| format!("--server {url}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            bail!("--server must be an http:// or https:// URL");
        }
        Ok(Remote { http: reqwest::Client::new(), base: url.trim_end_matches('/').to_owned(), token: token.to_owned() })
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let mut req = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.with_context(|| format!("cannot reach {}", self.base))?;
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        let value: Value =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        if !status.is_success() {
            let why = value.get("reason").or(value.get("message")).and_then(Value::as_str).unwrap_or("");
            bail!("the server answered {status}: {why}");
        }
        Ok(value)
    }

    pub async fn app(&self, cmd: AppCommand) -> anyhow::Result<()> {
        match cmd {
            AppCommand::Create { name, quota, settings, json } => {
                let mut body = serde_json::to_value(settings.patch())?;
                body["name"] = name.into();
                body["quota"] = quota.and_then(|q| q.value()).into();
                print(&self.call(Method::POST, "/admin/apps", Some(body)).await?, json);
            }
            AppCommand::List { json } => print(&self.call(Method::GET, "/admin/apps", None).await?, json),
            AppCommand::Show { app_id, json } => {
                print(&self.call(Method::GET, &format!("/admin/apps/{app_id}"), None).await?, json)
            }
            AppCommand::Update { app_id, quota, quota_add, settings } => {
                let mut body = serde_json::to_value(settings.patch())?;
                if let Some(n) = quota_add {
                    body["quota_add"] = n.into();
                }
                let updated = self.call(Method::PATCH, &format!("/admin/apps/{app_id}"), Some(body)).await?;
                if let Some(q) = quota {
                    self.call(Method::PUT, &format!("/admin/apps/{app_id}/quota"), Some(json!({ "quota": q.value() })))
                        .await?;
                }
                print(&updated, false);
            }
            AppCommand::RotateKey { app_id, json } => {
                print(&self.call(Method::POST, &format!("/admin/apps/{app_id}/api-key"), None).await?, json)
            }
            AppCommand::RotateCallbackSecret { app_id, json } => {
                print(&self.call(Method::POST, &format!("/admin/apps/{app_id}/callback-secret"), None).await?, json)
            }
            AppCommand::SetSender { .. } => {
                bail!("set-sender works on the database only (the token is read from a local file)")
            }
        }
        Ok(())
    }

    pub async fn template(&self, cmd: TemplateCommand) -> anyhow::Result<()> {
        match cmd {
            TemplateCommand::Add { app, name, lang, category, body, code_placeholder, copy_code_button } => {
                let input = json!({
                    "name": name, "language": lang, "category": category, "body": body,
                    "code_placeholder": code_placeholder, "copy_code_button": copy_code_button,
                });
                print(&self.call(Method::PUT, &format!("/admin/apps/{app}/templates"), Some(input)).await?, false);
            }
            TemplateCommand::List { app, json } => {
                print(&self.call(Method::GET, &format!("/admin/apps/{app}/templates"), None).await?, json)
            }
            TemplateCommand::Remove { app, name, lang } => {
                self.call(Method::DELETE, &format!("/admin/apps/{app}/templates/{name}/{lang}"), None).await?;
                println!("Removed template {name} ({lang}) from app {app}.");
            }
        }
        Ok(())
    }

    pub async fn blocklist(&self, cmd: BlocklistCommand) -> anyhow::Result<()> {
        match cmd {
            BlocklistCommand::Add { app, number_or_prefix } => {
                let body = json!({ "entry": number_or_prefix, "app_id": app });
                print(&self.call(Method::POST, "/admin/blocklist", Some(body)).await?, false);
            }
            BlocklistCommand::Remove { app, number_or_prefix } => {
                let mut path = format!("/admin/blocklist?entry={}", urlencode(&number_or_prefix));
                if let Some(app) = app {
                    path.push_str(&format!("&app_id={app}"));
                }
                self.call(Method::DELETE, &path, None).await?;
                println!("Unblocked {number_or_prefix}.");
            }
            BlocklistCommand::List { json } => print(&self.call(Method::GET, "/admin/blocklist", None).await?, json),
        }
        Ok(())
    }

    pub async fn callbacks(&self, cmd: CallbackCommand) -> anyhow::Result<()> {
        match cmd {
            CallbackCommand::List { app, session, json } => print(
                &self.call(Method::GET, &format!("/admin/apps/{app}/sessions/{session}/callbacks"), None).await?,
                json,
            ),
            CallbackCommand::Replay { app, session, status } => {
                let path = format!("/admin/apps/{app}/sessions/{session}/callbacks/{status}/replay");
                print(&self.call(Method::POST, &path, None).await?, false);
            }
        }
        Ok(())
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
