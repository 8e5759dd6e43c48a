//! The Graph API client: one call, `POST {base}/{version}/{phone-number-id}/messages`.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

/// A template message ready for the Graph API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateMessage {
    /// Digits with country code, no `+`.
    pub to: String,
    pub template: String,
    pub language: String,
    /// Body parameters in order (the code at its place).
    pub body_parameters: Vec<String>,
    /// The code again for the url button at index 0 (authentication templates).
    pub button_parameter: Option<String>,
}

impl TemplateMessage {
    /// The request body Meta documents for an authentication (copy-code) template.
    pub fn to_json(&self) -> Value {
        let text = |t: &String| json!({ "type": "text", "text": t });
        let mut components = vec![json!({
            "type": "body",
            "parameters": self.body_parameters.iter().map(text).collect::<Vec<_>>(),
        })];
        if let Some(code) = &self.button_parameter {
            components.push(json!({
                "type": "button", "sub_type": "url", "index": "0",
                "parameters": [text(code)],
            }));
        }
        json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": self.to,
            "type": "template",
            "template": {
                "name": self.template,
                "language": { "code": self.language },
                "components": components,
            }
        })
    }
}

/// Meta's error envelope, `{"error": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GraphError {
    pub code: i64,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub error_subcode: Option<i64>,
    #[serde(default)]
    pub error_data: Option<ErrorData>,
    #[serde(default)]
    pub fbtrace_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ErrorData {
    #[serde(default)]
    pub details: Option<String>,
}

impl GraphError {
    /// `(#code) Title: details`, for logs and the session's error text.
    pub fn describe(&self) -> String {
        match self.error_data.as_ref().and_then(|d| d.details.as_deref()) {
            Some(details) if !details.is_empty() => format!("{}: {details}", self.message),
            _ => self.message.clone(),
        }
    }
}

/// Why a send did not return a message id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendFailure {
    /// Meta answered with an error envelope.
    Graph { http_status: u16, error: GraphError },
    /// No usable answer: connection refused, timeout, or a body that is not Meta's.
    Transport(String),
}

#[derive(Clone)]
pub struct GraphClient {
    http: reqwest::Client,
    base: String,
    version: String,
}

impl GraphClient {
    pub fn new(base: &str, version: &str, timeout: Duration) -> reqwest::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("waotp/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(GraphClient { http, base: base.trim_end_matches('/').to_owned(), version: version.to_owned() })
    }

    /// Sends a template message; the `wamid` on success.
    pub async fn send(
        &self,
        phone_number_id: &str,
        token: &str,
        message: &TemplateMessage,
    ) -> Result<String, SendFailure> {
        self.send_json(phone_number_id, token, &message.to_json()).await
    }

    /// Sends any message body (a reaction, a text reply: [`reaction_message`],
    /// [`text_message`]); the `wamid` on success.
    pub async fn send_json(&self, phone_number_id: &str, token: &str, message: &Value) -> Result<String, SendFailure> {
        let url = format!("{}/{}/{}/messages", self.base, self.version, phone_number_id);
        let response = self
            .http
            .post(url)
            .bearer_auth(token)
            .json(message)
            .send()
            .await
            .map_err(|e| SendFailure::Transport(transport_text(&e)))?;
        let (status, body) = graph_answer(response).await?;
        body.pointer("/messages/0/id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| SendFailure::Transport(format!("HTTP {status} without a message id")))
    }
}

impl GraphClient {
    /// The number's `display_phone_number` (`GET /{phone-number-id}?fields=display_phone_number`),
    /// as Meta formats it (e.g. `+1 555-0100`).
    pub async fn display_phone_number(&self, phone_number_id: &str, token: &str) -> Result<String, SendFailure> {
        let url = format!("{}/{}/{}", self.base, self.version, phone_number_id);
        let response = self
            .http
            .get(url)
            .query(&[("fields", "display_phone_number")])
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| SendFailure::Transport(transport_text(&e)))?;
        let (status, body) = graph_answer(response).await?;
        body["display_phone_number"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| SendFailure::Transport(format!("HTTP {status} without display_phone_number")))
    }
}

/// A reaction (`emoji`) on the user's message `message_id`: free, and it does not open or use
/// the number's free service messages (`whatsapp-operations.md` section 7).
pub fn reaction_message(to: &str, message_id: &str, emoji: &str) -> Value {
    serde_json::json!({ "messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
        "type": "reaction", "reaction": { "message_id": message_id, "emoji": emoji } })
}

/// A free-form text message (only inside the user's 24 h service window; may be billed).
pub fn text_message(to: &str, body: &str) -> Value {
    serde_json::json!({ "messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
        "type": "text", "text": { "preview_url": false, "body": body } })
}

/// A Graph API answer: its HTTP status and JSON body, or Meta's error (any status).
async fn graph_answer(response: reqwest::Response) -> Result<(u16, Value), SendFailure> {
    let status = response.status().as_u16();
    let body: Value =
        response.json().await.map_err(|e| SendFailure::Transport(format!("HTTP {status}, unreadable body: {e}")))?;
    if let Some(error) = body.get("error") {
        let error: GraphError = serde_json::from_value(error.clone())
            .map_err(|e| SendFailure::Transport(format!("HTTP {status}, unknown error shape: {e}")))?;
        return Err(SendFailure::Graph { http_status: status, error });
    }
    Ok((status, body))
}

fn transport_text(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        format!("timed out{}", error_chain(e))
    } else {
        format!("cannot reach the Graph API{}", error_chain(e))
    }
}

/// `: cause: its cause…` — the sources of an error, for logs and attempt records.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = String::new();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authentication_body_matches_metas_example() {
        let m = TemplateMessage {
            to: "12015553931".into(),
            template: "verification_code".into(),
            language: "en_US".into(),
            body_parameters: vec!["482913".into()],
            button_parameter: Some("482913".into()),
        };
        assert_eq!(
            m.to_json(),
            json!({
              "messaging_product": "whatsapp", "recipient_type": "individual", "to": "12015553931",
              "type": "template",
              "template": { "name": "verification_code", "language": { "code": "en_US" },
                "components": [
                  { "type": "body", "parameters": [ { "type": "text", "text": "482913" } ] },
                  { "type": "button", "sub_type": "url", "index": "0",
                    "parameters": [ { "type": "text", "text": "482913" } ] } ] } })
        );
    }
}
