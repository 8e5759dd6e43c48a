//! The Graph API's management side, as the doctor and the template commands need it: the
//! token's debug info, the WhatsApp Business Account (WABA), its phone numbers, the app's
//! subscription, and authentication templates (read, bulk upsert).
//!
//! Every enum Meta documents is kept as an open string: Meta adds values without notice.

use std::fmt;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use crate::client::{error_chain, GraphError};

/// Why a management call gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManagementError {
    /// Meta answered with its error envelope.
    #[error("{}{} (HTTP {http_status}, code {})", token_problem(.error.code), .error.describe(), .error.code)]
    Graph { http_status: u16, error: GraphError },
    /// No usable answer: connection refused, timeout, or a body that is not Meta's.
    #[error("{0}")]
    Transport(String),
    /// Meta answered, but not in the shape expected (a field of another type, say): only this
    /// call's check fails, later calls may still work.
    #[error("{0}")]
    Decode(String),
}

/// What is wrong with the token, for the error codes that say.
fn token_problem(code: i64) -> &'static str {
    match code {
        190 => "the access token is invalid or has expired: ",
        10 | 200 | 3 => "the access token lacks a permission: ",
        _ => "",
    }
}

impl ManagementError {
    /// Meta's error code, if Meta answered.
    pub fn code(&self) -> Option<i64> {
        match self {
            ManagementError::Graph { error, .. } => Some(error.code),
            ManagementError::Transport(_) | ManagementError::Decode(_) => None,
        }
    }

    /// What to do about it, for the codes an operator can fix.
    pub fn fix(&self) -> Option<&'static str> {
        match self.code()? {
            190 => Some(
                "generate a new permanent system-user token (Business settings → System users) and set \
                 whatsapp_access_token",
            ),
            10 | 200 | 3 => Some(
                "give the system user the whatsapp_business_management and whatsapp_business_messaging \
                 permissions on this WhatsApp account, then generate a new token",
            ),
            100 => Some("check the id in waotp's configuration (whatsapp_waba_id, whatsapp_phone_number_id)"),
            4 | 80007 => Some("Meta's rate limit for management calls (200/h per WABA): try again later"),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, ManagementError>;

/// `GET /debug_token`'s `data`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TokenInfo {
    #[serde(default)]
    pub is_valid: bool,
    #[serde(default)]
    pub app_id: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Unix seconds; 0: never.
    #[serde(default)]
    pub expires_at: i64,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub granular_scopes: Vec<GranularScope>,
    #[serde(default)]
    pub error: Option<TokenError>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct GranularScope {
    pub scope: String,
    /// Absent or empty: the grant covers every asset.
    #[serde(default)]
    pub target_ids: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct TokenError {
    #[serde(default)]
    pub code: i64,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub subcode: Option<i64>,
}

/// `health_status` of a number, WABA or template.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HealthStatus {
    /// `AVAILABLE`, `LIMITED`, `BLOCKED` (the worst of the entities).
    #[serde(default)]
    pub can_send_message: String,
    #[serde(default)]
    pub entities: Vec<HealthEntity>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct HealthEntity {
    #[serde(default)]
    pub entity_type: String,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub can_send_message: String,
    #[serde(default)]
    pub additional_info: Vec<String>,
    #[serde(default)]
    pub errors: Vec<HealthIssue>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct HealthIssue {
    #[serde(default)]
    pub error_code: Option<i64>,
    #[serde(default)]
    pub error_description: String,
    #[serde(default)]
    pub possible_solution: Option<String>,
}

impl HealthStatus {
    /// Every entity's explanation (additional info, errors and their solutions), one text.
    pub fn reasons(&self) -> String {
        let mut parts = Vec::new();
        for e in &self.entities {
            for info in &e.additional_info {
                parts.push(format!("{}: {info}", e.entity_type));
            }
            for err in &e.errors {
                let solution = err.possible_solution.as_deref().map(|s| format!(" ({s})")).unwrap_or_default();
                parts.push(format!("{}: {}{solution}", e.entity_type, err.error_description));
            }
        }
        parts.join("; ")
    }
}

/// `GET /<WABA_ID>`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct WabaInfo {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub account_review_status: Option<String>,
    #[serde(default)]
    pub business_verification_status: Option<String>,
    #[serde(default)]
    pub whatsapp_business_manager_messaging_limit: Option<String>,
    #[serde(default)]
    pub health_status: Option<HealthStatus>,
}

/// One entry of `GET /<WABA_ID>/phone_numbers`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListedNumber {
    pub id: String,
    #[serde(default)]
    pub display_phone_number: Option<String>,
}

/// `GET /<PHONE_NUMBER_ID>` with the fields the doctor reads.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PhoneNumber {
    pub id: String,
    #[serde(default)]
    pub display_phone_number: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub platform_type: Option<String>,
    #[serde(default)]
    pub code_verification_status: Option<String>,
    #[serde(default)]
    pub name_status: Option<String>,
    #[serde(default)]
    pub quality_rating: Option<String>,
    #[serde(default)]
    pub throughput: Option<Throughput>,
    #[serde(default)]
    pub whatsapp_business_manager_messaging_limit: Option<String>,
    #[serde(default)]
    pub health_status: Option<HealthStatus>,
    #[serde(default)]
    pub webhook_configuration: Option<WebhookConfiguration>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Throughput {
    #[serde(default)]
    pub level: String,
}

/// Where Meta sends this number's `messages` webhooks: the most specific one set wins.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct WebhookConfiguration {
    #[serde(default)]
    pub phone_number: Option<String>,
    #[serde(default)]
    pub whatsapp_business_account: Option<String>,
    #[serde(default)]
    pub application: Option<String>,
}

impl WebhookConfiguration {
    /// The URL Meta calls: `phone_number` ▸ `whatsapp_business_account` ▸ `application`.
    pub fn effective(&self) -> Option<&str> {
        [&self.phone_number, &self.whatsapp_business_account, &self.application]
            .into_iter()
            .filter_map(|u| u.as_deref())
            .find(|u| !u.is_empty())
    }
}

/// One entry of `GET /<WABA_ID>/subscribed_apps`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SubscribedApp {
    #[serde(default)]
    pub whatsapp_business_api_data: Option<AppData>,
    #[serde(default)]
    pub override_callback_uri: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct AppData {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
}

/// One entry of `GET /<APP_ID>/subscriptions` (the app's webhook fields per object).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AppSubscription {
    #[serde(default)]
    pub object: String,
    #[serde(default)]
    pub callback_url: Option<String>,
    #[serde(default)]
    pub active: Option<bool>,
    /// Meta lists `{name, version}` objects; plain strings are accepted too.
    #[serde(default)]
    pub fields: Vec<Value>,
}

impl AppSubscription {
    pub fn field_names(&self) -> Vec<String> {
        self.fields.iter().filter_map(|f| f.as_str().or_else(|| f["name"].as_str()).map(str::to_owned)).collect()
    }
}

/// A template as `GET /<WABA_ID>/message_templates` lists it.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
pub struct MetaTemplate {
    pub id: String,
    pub name: String,
    pub language: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub quality_score: Option<QualityScore>,
    #[serde(default)]
    pub rejected_reason: Option<String>,
    #[serde(default)]
    pub message_send_ttl_seconds: Option<i64>,
}

impl MetaTemplate {
    /// `GREEN`, `YELLOW`, `RED`, `UNKNOWN`; `UNKNOWN` when Meta gave none.
    pub fn quality(&self) -> &str {
        self.quality_score.as_ref().map_or("UNKNOWN", |q| q.score.as_str())
    }
}

#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
pub struct QualityScore {
    #[serde(default)]
    pub score: String,
    #[serde(default)]
    pub date: Option<i64>,
}

/// One language's answer to a bulk upsert.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
pub struct UpsertedTemplate {
    /// Absent on a language Meta refused (the entry then says why in its other fields).
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub language: String,
}

/// Every webhook field waotp wants the app subscribed to: statuses and inbound messages, and
/// Meta's template, number and account events (the management fields it reads).
pub fn webhook_fields() -> impl Iterator<Item = &'static str> {
    std::iter::once("messages").chain(crate::management_events::FIELDS)
}

/// Locale codes compared as Meta's webhooks and API mix them: `en-US` ≡ `en_US`.
pub fn normalise_language(code: &str) -> String {
    code.trim().replace('-', "_")
}

#[derive(Deserialize)]
struct DataList<T> {
    #[serde(default = "Vec::new")]
    data: Vec<T>,
    #[serde(default)]
    paging: Option<Paging>,
}

#[derive(Deserialize)]
struct Paging {
    #[serde(default)]
    next: Option<String>,
}

/// The management client: Bearer-token calls under `{base}/{version}`.
#[derive(Clone)]
pub struct ManagementClient {
    http: reqwest::Client,
    base: String,
    version: String,
    token: String,
}

impl fmt::Debug for ManagementClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagementClient").field("base", &self.base).field("version", &self.version).finish()
    }
}

/// Pages read at most when listing (Meta's pages are 25 long by default).
const MAX_PAGES: usize = 40;

impl ManagementClient {
    pub fn new(base: &str, version: &str, token: &str, timeout: Duration) -> reqwest::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("waotp/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(ManagementClient {
            http,
            base: base.trim_end_matches('/').to_owned(),
            version: version.to_owned(),
            token: token.to_owned(),
        })
    }

    /// The full URL of a Graph path (`WABA_ID/subscribed_apps`), for fix texts.
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}/{}", self.base, self.version, path)
    }

    /// Meta's text with this client's secrets cut out: some of Meta's messages quote the token
    /// they refuse, and the doctor prints them.
    fn scrub(&self, text: &str, app_secret: Option<&str>) -> String {
        let mut text = text.replace(&self.token, "<access token>");
        if let Some(secret) = app_secret.filter(|s| !s.is_empty()) {
            text = text.replace(secret, "<app secret>");
        }
        text
    }

    async fn answer<T: DeserializeOwned>(
        &self,
        response: reqwest::Result<reqwest::Response>,
        app_secret: Option<&str>,
    ) -> Result<T> {
        // Without the URL: debug_token's carries the token and the app secret.
        let response = response.map_err(|e| {
            let e = e.without_url();
            let what = if e.is_timeout() { "timed out" } else { "cannot reach the Graph API" };
            ManagementError::Transport(format!("{what}{}", error_chain(&e)))
        })?;
        let status = response.status().as_u16();
        let body: Value = response
            .json()
            .await
            .map_err(|e| ManagementError::Transport(format!("HTTP {status}, unreadable body: {}", e.without_url())))?;
        if let Some(error) = body.get("error") {
            let mut error: GraphError = serde_json::from_value(error.clone())
                .map_err(|e| ManagementError::Transport(format!("HTTP {status}, unknown error shape: {e}")))?;
            error.message = self.scrub(&error.message, app_secret);
            if let Some(details) = error.error_data.as_mut().and_then(|d| d.details.as_mut()) {
                *details = self.scrub(details, app_secret);
            }
            return Err(ManagementError::Graph { http_status: status, error });
        }
        serde_json::from_value(body)
            .map_err(|e| ManagementError::Decode(format!("HTTP {status}, unexpected answer: {e}")))
    }

    async fn get<T: DeserializeOwned>(&self, path: &str, query: &[(&str, &str)]) -> Result<T> {
        self.answer(self.http.get(self.url(path)).bearer_auth(&self.token).query(query).send().await, None).await
    }

    async fn post<T: DeserializeOwned>(&self, path: &str, body: &Value) -> Result<T> {
        self.answer(self.http.post(self.url(path)).bearer_auth(&self.token).json(body).send().await, None).await
    }

    /// Every entry of a listing, following `paging.next`.
    async fn list<T: DeserializeOwned>(&self, path: &str, query: &[(&str, &str)]) -> Result<Vec<T>> {
        let mut page: DataList<T> = self.get(path, query).await?;
        let mut all = std::mem::take(&mut page.data);
        for _ in 1..MAX_PAGES {
            let Some(next) = page.paging.and_then(|p| p.next) else { break };
            // The token goes only where the configured base is: a `next` elsewhere is not followed.
            if !next.starts_with(&format!("{}/", self.base)) {
                return Err(ManagementError::Decode(format!(
                    "Meta's next page is not under the configured API base {}: not followed",
                    self.base
                )));
            }
            page = self.answer(self.http.get(next).bearer_auth(&self.token).send().await, None).await?;
            all.append(&mut page.data);
        }
        Ok(all)
    }

    /// `GET /debug_token` about this client's token, asked with the app token
    /// `APP_ID|APP_SECRET`.
    pub async fn debug_token(&self, app_id: &str, app_secret: &str) -> Result<TokenInfo> {
        #[derive(Deserialize)]
        struct Wrapped {
            data: TokenInfo,
        }
        // The app token goes in the Authorization header, not the query: a URL is logged by
        // proxies, and the app secret is in it.
        let app_token = format!("{app_id}|{app_secret}");
        let request =
            self.http.get(self.url("debug_token")).bearer_auth(app_token).query(&[("input_token", &self.token)]);
        let w: Wrapped = self.answer(request.send().await, Some(app_secret)).await?;
        Ok(w.data)
    }

    pub async fn waba(&self, waba_id: &str) -> Result<WabaInfo> {
        let fields = "id,name,account_review_status,business_verification_status,\
                      whatsapp_business_manager_messaging_limit,health_status";
        self.get(waba_id, &[("fields", fields)]).await
    }

    pub async fn phone_numbers(&self, waba_id: &str) -> Result<Vec<ListedNumber>> {
        self.list(&format!("{waba_id}/phone_numbers"), &[("fields", "id,display_phone_number")]).await
    }

    pub async fn phone_number(&self, phone_number_id: &str) -> Result<PhoneNumber> {
        let fields = "id,display_phone_number,status,platform_type,code_verification_status,name_status,\
                      quality_rating,throughput,whatsapp_business_manager_messaging_limit,health_status,\
                      webhook_configuration";
        self.get(phone_number_id, &[("fields", fields)]).await
    }

    pub async fn subscribed_apps(&self, waba_id: &str) -> Result<Vec<SubscribedApp>> {
        self.list(&format!("{waba_id}/subscribed_apps"), &[]).await
    }

    /// The app's webhook subscriptions, asked with the app token `APP_ID|APP_SECRET`.
    pub async fn app_subscriptions(&self, app_id: &str, app_secret: &str) -> Result<Vec<AppSubscription>> {
        let app_token = format!("{app_id}|{app_secret}");
        let request = self.http.get(self.url(&format!("{app_id}/subscriptions"))).bearer_auth(app_token);
        let list: DataList<AppSubscription> = self.answer(request.send().await, Some(app_secret)).await?;
        Ok(list.data)
    }

    /// The WABA's templates (all, or those Meta matches to `name`; filter exactly yourself).
    pub async fn templates(&self, waba_id: &str, name: Option<&str>) -> Result<Vec<MetaTemplate>> {
        let fields = "id,name,language,status,category,quality_score,rejected_reason,message_send_ttl_seconds";
        let mut query = vec![("fields", fields), ("limit", "100")];
        if let Some(name) = name {
            query.push(("name", name));
        }
        self.list(&format!("{waba_id}/message_templates"), &query).await
    }

    /// `GET /<TEMPLATE_ID>?fields=health_status`.
    pub async fn template_health(&self, template_id: &str) -> Result<Option<HealthStatus>> {
        #[derive(Deserialize)]
        struct Health {
            #[serde(default)]
            health_status: Option<HealthStatus>,
        }
        let h: Health = self.get(template_id, &[("fields", "health_status")]).await?;
        Ok(h.health_status)
    }

    /// `POST /<WABA_ID>/upsert_message_templates`: one entry per language.
    pub async fn upsert_templates(&self, waba_id: &str, body: &Value) -> Result<Vec<UpsertedTemplate>> {
        let list: DataList<UpsertedTemplate> = self.post(&format!("{waba_id}/upsert_message_templates"), body).await?;
        Ok(list.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_effective_webhook_url_is_the_most_specific() {
        let c = WebhookConfiguration {
            phone_number: None,
            whatsapp_business_account: Some("https://waba".into()),
            application: Some("https://app".into()),
        };
        assert_eq!(c.effective(), Some("https://waba"));
        let c = WebhookConfiguration { application: Some("https://app".into()), ..Default::default() };
        assert_eq!(c.effective(), Some("https://app"));
    }

    /// What an operator reads: the token's problem first where Meta's code says, then Meta's
    /// words, the HTTP status and the code.
    #[test]
    fn an_error_says_what_went_wrong() {
        let graph = |code| ManagementError::Graph {
            http_status: 401,
            error: GraphError {
                code,
                message: "Invalid OAuth access token".into(),
                error_subcode: None,
                error_data: Some(crate::client::ErrorData { details: Some("expired".into()) }),
                fbtrace_id: None,
            },
        };
        assert_eq!(
            graph(190).to_string(),
            "the access token is invalid or has expired: Invalid OAuth access token: expired (HTTP 401, code 190)"
        );
        assert_eq!(
            graph(200).to_string(),
            "the access token lacks a permission: Invalid OAuth access token: expired (HTTP 401, code 200)"
        );
        assert_eq!(graph(100).to_string(), "Invalid OAuth access token: expired (HTTP 401, code 100)");
        assert_eq!(ManagementError::Transport("connection refused".into()).to_string(), "connection refused");
        assert_eq!(
            ManagementError::Decode("HTTP 200, unexpected answer".into()).to_string(),
            "HTTP 200, unexpected answer"
        );
    }

    #[test]
    fn languages_compare_with_either_separator() {
        assert_eq!(normalise_language("en-US"), normalise_language("en_US"));
    }
}
