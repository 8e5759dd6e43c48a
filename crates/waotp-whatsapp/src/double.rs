//! A Graph API test double: `POST /{version}/{phone-number-id}/messages` validated as Meta
//! validates it, answered with Meta's success and error envelopes, rate-limited like a real
//! number (throughput and pair rate), scriptable to fail with any code, and emitting signed
//! status webhooks (sent → delivered → read, or failed), optionally duplicated, reordered,
//! with `delivered` skipped, or all sent before the send is answered. Used by the tests and runnable for local trials
//! (`waotp graph-double`). What it must do to be faithful: whatsapp-cloud-api.md section 7.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::webhook::sign;

#[cfg(feature = "meta-contract")]
mod contract_guard;
mod management;
mod pricing;
mod webhooks;
pub use management::{ManagementRequest, MetaState, NumberState, TemplateState, TokenState, WabaState};
pub use pricing::DoublePricing;
pub use webhooks::{bsuid_of, change_envelope, inbound_text_value, inbound_text_without_number};

/// A template the double knows, as approved by "Meta".
#[derive(Debug, Clone)]
pub struct KnownTemplate {
    pub name: String,
    pub languages: Vec<String>,
    /// Body parameters it takes.
    pub body_parameters: usize,
    /// Authentication templates need the code again as the url-button parameter.
    pub authentication: bool,
}

/// How the double reports statuses after a 200.
#[derive(Debug, Clone, Default)]
pub struct WebhookBehaviour {
    /// Send every event twice.
    pub duplicate: bool,
    /// Send `read` before `delivered`.
    pub reorder: bool,
    /// Never send `delivered`.
    pub skip_delivered: bool,
    /// Stop after `sent` (never delivered, never read).
    pub only_sent: bool,
    /// Send every status webhook, and have each acknowledged, before answering the send: Meta's
    /// events beating its own answer, so the caller hears of them before it knows the wamid.
    pub before_answer: bool,
}

#[derive(Debug, Clone)]
pub struct DoubleConfig {
    pub token: String,
    pub phone_number_id: String,
    pub app_secret: String,
    /// Where status webhooks go (waotp's `/webhooks/whatsapp`); none: no webhooks.
    pub webhook_url: Option<String>,
    pub templates: Vec<KnownTemplate>,
    /// Messages per second before 130429.
    pub max_per_second: u32,
    /// Pair rate: a burst of this many to one recipient, refilled one per `pair_interval`.
    pub pair_burst: u32,
    pub pair_interval: Duration,
    pub webhooks: WebhookBehaviour,
    /// Pause between the status webhooks of one message.
    pub webhook_gap: Duration,
    /// The WhatsApp Business Account and the Meta app of the management endpoints (see
    /// [`MetaState`]).
    pub waba_id: String,
    pub app_id: String,
    /// What `GET /{version}/{phone-number-id}?fields=display_phone_number` answers.
    pub display_phone_number: String,
}

impl DoubleConfig {
    /// Meta's defaults: 80 messages/s, pair rate 1 per 6 s with a burst of 45, and the
    /// authentication template `verification_code` in `en`, `en_US` and `id`.
    pub fn new(token: &str, phone_number_id: &str, app_secret: &str) -> Self {
        DoubleConfig {
            token: token.into(),
            phone_number_id: phone_number_id.into(),
            app_secret: app_secret.into(),
            webhook_url: None,
            templates: vec![KnownTemplate {
                name: "verification_code".into(),
                languages: vec!["en".into(), "en_US".into(), "id".into()],
                body_parameters: 1,
                authentication: true,
            }],
            max_per_second: 80,
            pair_burst: 45,
            pair_interval: Duration::from_secs(6),
            webhooks: WebhookBehaviour::default(),
            webhook_gap: Duration::from_millis(20),
            waba_id: "102290129340398".into(),
            app_id: "634974688087057".into(),
            display_phone_number: "+1 555-000-0000".into(),
        }
    }
}

/// A failure the double will answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptedFailure {
    pub code: i64,
    /// Only for sends to this number; `None`: any.
    pub to: Option<String>,
    /// Answer 200 and report the failure in a `failed` status webhook (as Meta often does
    /// for 131026) instead of an error response.
    pub asynchronous: bool,
}

/// A request the double accepted or refused, for assertions.
#[derive(Debug, Clone)]
pub struct Received {
    pub to: String,
    pub body: Value,
    pub answered: u16,
    pub error_code: Option<i64>,
    pub at: Instant,
}

struct Inner {
    config: DoubleConfig,
    failures: Mutex<VecDeque<ScriptedFailure>>,
    received: Mutex<Vec<Received>>,
    window: Mutex<VecDeque<Instant>>,
    pairs: Mutex<HashMap<String, (f64, Instant)>>,
    /// Status webhooks answered 2xx.
    acknowledged: AtomicUsize,
    /// Phone-number lookups answered.
    lookups: AtomicUsize,
    http: reqwest::Client,
    /// The management side's state (token, WABA, number, subscription, templates).
    meta: Mutex<MetaState>,
    /// Requests and answers outside Meta's OpenAPI document (`contract_guard`).
    #[cfg(feature = "meta-contract")]
    violations: Mutex<Vec<String>>,
    /// The pricing the next template messages' status webhooks carry (`None`: none).
    pricing: Mutex<Option<DoublePricing>>,
    /// The pricing the next text messages' (service messages') status webhooks carry.
    service_pricing: Mutex<Option<DoublePricing>>,
}

/// A running double.
#[derive(Clone)]
pub struct GraphDouble {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    /// Panics when the last handle goes if a violation of the contract was let pass.
    #[cfg(feature = "meta-contract")]
    _verdict: Arc<contract_guard::Verdict>,
}

impl GraphDouble {
    /// Serves on `listener` until the process ends.
    pub fn start(config: DoubleConfig, listener: tokio::net::TcpListener) -> std::io::Result<GraphDouble> {
        let addr = listener.local_addr()?;
        let meta = Mutex::new(MetaState::new(&config));
        let inner = Arc::new(Inner {
            meta,
            config,
            failures: Mutex::default(),
            received: Mutex::default(),
            window: Mutex::default(),
            pairs: Mutex::default(),
            acknowledged: AtomicUsize::new(0),
            lookups: AtomicUsize::new(0),
            http: reqwest::Client::new(),
            #[cfg(feature = "meta-contract")]
            violations: Mutex::default(),
            pricing: Mutex::new(Some(DoublePricing::new("authentication", "regular"))),
            service_pricing: Mutex::new(Some(DoublePricing::new("service", "free_customer_service"))),
        });
        let app = Router::new()
            .route("/{version}/{pnid}/messages", post(messages))
            .route("/{version}/{pnid}", get(management::get_node))
            .route("/{version}/{pnid}/{edge}", get(management::get_edge).post(management::post_edge))
            .with_state(inner.clone());
        // In tests, every request and answer is held to Meta's OpenAPI document.
        #[cfg(feature = "meta-contract")]
        let app = app.layer(axum::middleware::from_fn_with_state(inner.clone(), contract_guard::guard));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(GraphDouble {
            addr,
            #[cfg(feature = "meta-contract")]
            _verdict: Arc::new(contract_guard::Verdict(inner.clone())),
            inner,
        })
    }

    /// The requests and answers so far that Meta's OpenAPI document forbids (each was answered
    /// with a `WaotpContractViolation` error); taken, so that dropping the double does not
    /// panic over them.
    #[cfg(feature = "meta-contract")]
    pub fn take_contract_violations(&self) -> Vec<String> {
        std::mem::take(&mut *self.inner.violations.lock().expect("violations"))
    }

    /// `http://ADDR`, the value for `WAOTP_WHATSAPP_API_BASE`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next matching sends fail with `failure`, `times` times.
    pub fn fail(&self, failure: ScriptedFailure, times: usize) {
        let mut q = self.inner.failures.lock().expect("failures");
        for _ in 0..times {
            q.push_back(failure.clone());
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.received.lock().expect("received").clone()
    }

    /// Reads or changes what "Meta" knows (token, WABA, number, subscription, templates).
    pub fn meta<R>(&self, change: impl FnOnce(&mut MetaState) -> R) -> R {
        change(&mut self.inner.meta.lock().expect("meta"))
    }

    /// Sets a template's status in one language (`PAUSED`, `APPROVED`, …): sends of it are
    /// answered as Meta answers them (132015 paused, 132016 disabled, 132001 otherwise).
    pub fn set_template_status(&self, name: &str, language: &str, status: &str) {
        self.meta(|m| m.set_template_status(name, language, status));
    }

    /// The pricing the status webhooks of the messages sent from now on carry (default: a
    /// billable `authentication` message; `None`: no `pricing` object).
    pub fn set_pricing(&self, pricing: Option<DoublePricing>) {
        *self.inner.pricing.lock().expect("pricing") = pricing;
    }

    /// Sets the pricing of the next text messages' status webhooks (a service message: free
    /// within the number's monthly allowance, `service`/`free_customer_service` by default;
    /// billed, `regular`, beyond it).
    pub fn set_service_pricing(&self, pricing: Option<DoublePricing>) {
        *self.inner.service_pricing.lock().expect("pricing") = pricing;
    }

    /// The management requests received so far (`debug_token`, WABA, templates…), in order.
    pub fn management_requests(&self) -> Vec<ManagementRequest> {
        self.meta(|m| m.requests.clone())
    }

    /// How many phone-number lookups (`display_phone_number`) the double has answered.
    pub fn phone_number_lookups(&self) -> usize {
        self.inner.lookups.load(Ordering::SeqCst)
    }

    /// How many status webhooks the receiver has acknowledged (answered 2xx) so far.
    pub fn webhooks_acknowledged(&self) -> usize {
        self.inner.acknowledged.load(Ordering::SeqCst)
    }

    /// Posts one signed webhook with a single change, `{"field": field, "value": value}`, in
    /// Meta's `whatsapp_business_account` envelope (entry id `waba_id`), once, and returns the
    /// HTTP status the receiver answered (tests script management events and inbound messages
    /// with it). Panics if no webhook URL is configured or the receiver cannot be reached.
    pub async fn send_change(&self, waba_id: &str, field: &str, value: Value) -> u16 {
        let payload = change_envelope(waba_id, field, value).to_string();
        self.post_signed(&payload).await
    }

    /// Posts `payload` as is, signed with the app secret, once; the receiver's HTTP status.
    pub async fn post_signed(&self, payload: &str) -> u16 {
        let url = self.inner.config.webhook_url.as_deref().expect("the double has no webhook_url");
        let signature = sign(self.inner.config.app_secret.as_bytes(), payload.as_bytes());
        let response = self
            .inner
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("x-hub-signature-256", signature)
            .body(payload.to_owned())
            .send()
            .await
            .expect("the webhook receiver is reachable");
        response.status().as_u16()
    }
}

/// Meta's titles for the codes the double produces.
fn title(code: i64) -> &'static str {
    match code {
        0 => "AuthException",
        10 => "Application does not have permission for this action",
        200 => "Permissions error",
        132015 => "Template is paused",
        132016 => "Template is disabled",
        2 => "Service temporarily unavailable",
        4 => "Too many calls",
        100 => "Invalid parameter",
        190 => "Access token has expired",
        368 => "Temporarily blocked for policies violations",
        80007 => "Rate limit issues",
        130429 => "Rate limit hit",
        131000 => "Something went wrong",
        131008 => "Required parameter is missing",
        131009 => "Parameter value is not valid",
        131016 => "Service unavailable",
        131026 => "Message undeliverable",
        131048 => "Spam rate limit hit",
        131056 => "(Business Account, Consumer Account) pair rate limit hit",
        131057 => "Account in maintenance mode",
        131064 => "Messaging limit reached",
        132000 => "Number of parameters does not match the expected number of params",
        132001 => "Template name does not exist in the translation",
        _ => "Error",
    }
}

fn http_status(code: i64) -> StatusCode {
    match code {
        0 | 190 => StatusCode::UNAUTHORIZED,
        132001 => StatusCode::NOT_FOUND,
        368 | 131031 | 130497 | 10 | 200 => StatusCode::FORBIDDEN,
        131000 | 131016 | 131057 | 131045 => StatusCode::INTERNAL_SERVER_ERROR,
        2 => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// Meta's error envelope.
fn envelope(code: i64, details: &str) -> Response {
    let trace: String = (0..23).map(|_| char::from(b'A' + rand::random_range(0..26u8))).collect();
    let body = json!({ "error": {
        "message": format!("(#{code}) {}", title(code)),
        "type": "OAuthException",
        "code": code,
        "error_data": { "messaging_product": "whatsapp", "details": details },
        "fbtrace_id": trace,
    }});
    (http_status(code), Json(body)).into_response()
}

impl Inner {
    fn record(&self, to: &str, body: &Value, answered: u16, error_code: Option<i64>) {
        self.received.lock().expect("received").push(Received {
            to: to.to_owned(),
            body: body.clone(),
            answered,
            error_code,
            at: Instant::now(),
        });
    }

    /// Throughput: at most `max_per_second` in any second.
    fn throughput_ok(&self) -> bool {
        let now = Instant::now();
        let mut w = self.window.lock().expect("window");
        while w.front().is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1)) {
            w.pop_front();
        }
        if w.len() >= self.config.max_per_second as usize {
            return false;
        }
        w.push_back(now);
        true
    }

    /// Pair rate: a token bucket per recipient.
    fn pair_ok(&self, to: &str) -> bool {
        let now = Instant::now();
        let burst = f64::from(self.config.pair_burst);
        let mut pairs = self.pairs.lock().expect("pairs");
        let (tokens, at) = pairs.entry(to.to_owned()).or_insert((burst, now));
        let refill = now.duration_since(*at).as_secs_f64() / self.config.pair_interval.as_secs_f64();
        *tokens = (*tokens + refill).min(burst);
        *at = now;
        if *tokens < 1.0 {
            return false;
        }
        *tokens -= 1.0;
        true
    }

    fn next_failure(&self, to: &str) -> Option<ScriptedFailure> {
        let mut q = self.failures.lock().expect("failures");
        let i = q.iter().position(|f| f.to.as_deref().is_none_or(|t| t == to))?;
        q.remove(i)
    }

    /// Checks the body as Meta does; the error code and details if it is wrong.
    fn validate(&self, body: &Value) -> Result<String, (i64, String)> {
        let bad = |code, details: &str| Err((code, details.to_owned()));
        if body["messaging_product"] != "whatsapp" {
            return bad(100, "messaging_product must be whatsapp");
        }
        let to = body["to"].as_str().unwrap_or("").trim_start_matches('+');
        if to.is_empty() || !to.bytes().all(|b| b.is_ascii_digit()) {
            return bad(100, "Invalid parameter: to");
        }
        match body["type"].as_str() {
            Some("template") => {}
            // A reaction to a message the user sent (reverse verification's acknowledgment).
            Some("reaction") => {
                let r = &body["reaction"];
                return match (r["message_id"].as_str(), r["emoji"].as_str()) {
                    (Some(id), Some(_)) if !id.is_empty() => Ok(to.to_owned()),
                    _ => bad(100, "reaction.message_id and reaction.emoji are required"),
                };
            }
            // A free-form reply (only inside the user's service window at Meta).
            Some("text") => {
                return match body["text"]["body"].as_str() {
                    Some(text) if !text.is_empty() && text.chars().count() <= 4096 => Ok(to.to_owned()),
                    _ => bad(100, "text.body is required, at most 4096 characters"),
                };
            }
            _ => return bad(100, "this double takes template, reaction and text messages"),
        }
        let t = &body["template"];
        let (Some(name), Some(lang)) = (t["name"].as_str(), t["language"]["code"].as_str()) else {
            return bad(131008, "template name and language.code are required");
        };
        if let Some(refusal) = management::send_refusal(&self.meta.lock().expect("meta"), name, lang) {
            return Err(refusal);
        }
        let from_meta;
        let known = match self.config.templates.iter().find(|k| k.name == name && k.languages.iter().any(|l| l == lang))
        {
            Some(known) => known,
            None => match management::known_from_meta(&self.meta.lock().expect("meta"), name, lang) {
                Some(known) => {
                    from_meta = known;
                    &from_meta
                }
                None => return bad(132001, &format!("template name ({name}) does not exist in {lang}")),
            },
        };
        let components = t["components"].as_array().cloned().unwrap_or_default();
        let body_params: Vec<&Value> = components
            .iter()
            .filter(|c| c["type"] == "body")
            .flat_map(|c| c["parameters"].as_array().into_iter().flatten())
            .collect();
        if body_params.len() != known.body_parameters {
            return bad(
                132000,
                &format!("expected {} body parameters, got {}", known.body_parameters, body_params.len()),
            );
        }
        if known.authentication {
            let code = body_params[0]["text"].as_str().unwrap_or("");
            if code.chars().count() > 15 {
                return bad(131009, "the authentication code is longer than 15 characters");
            }
            let button = components.iter().find(|c| {
                c["type"] == "button"
                    && c["sub_type"].as_str().is_some_and(|s| s.eq_ignore_ascii_case("url"))
                    && (c["index"] == "0" || c["index"] == 0)
            });
            let button_param = button.and_then(|b| b["parameters"][0]["text"].as_str());
            if button_param.is_none() {
                return bad(131008, "buttons: Button at index 0 of type Url requires a parameter");
            }
        }
        Ok(to.to_owned())
    }
}

/// `GET /{version}/{phone-number-id}?fields=display_phone_number`: the number's display form.
async fn messages(
    State(inner): State<Arc<Inner>>,
    Path((_version, pnid)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let to = body["to"].as_str().unwrap_or("").trim_start_matches('+').to_owned();
    let refuse = |code: i64, details: &str| {
        inner.record(&to, &body, http_status(code).as_u16(), Some(code));
        envelope(code, details)
    };
    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    if bearer != Some(inner.config.token.as_str()) {
        return refuse(190, "Error validating access token");
    }
    if pnid != inner.config.phone_number_id {
        return refuse(100, "Unsupported post request. Object with ID does not exist (subcode 33)");
    }
    let to = match inner.validate(&body) {
        Ok(to) => to,
        Err((code, details)) => return refuse(code, &details),
    };
    if !inner.throughput_ok() {
        return refuse(130429, "Cloud API message throughput has been reached.");
    }
    let scripted = inner.next_failure(&to);
    if let Some(f) = scripted.as_ref().filter(|f| !f.asynchronous) {
        return refuse(f.code, "scripted failure");
    }
    if !inner.pair_ok(&to) {
        return refuse(131056, "Message failed to send because there were too many messages sent from this phone number to the same phone number in a short period of time.");
    }
    let wamid = format!("wamid.{}", uuid::Uuid::new_v4().simple());
    inner.record(&to, &body, 200, None);
    let pricing = match body["type"].as_str() {
        Some("template") => &inner.pricing,
        _ => &inner.service_pricing,
    };
    let pricing = pricing.lock().expect("pricing").clone();
    let report = inner.clone().report(to.clone(), wamid.clone(), scripted.map(|f| f.code), pricing);
    if body["type"] == "reaction" {
        // Reactions: recorded, answered, no status webhooks (waotp does not track them).
        drop(report);
    } else if inner.config.webhooks.before_answer {
        report.await;
    } else {
        tokio::spawn(report);
    }
    Json(json!({
        "messaging_product": "whatsapp",
        "contacts": [{ "input": body["to"], "wa_id": to }],
        "messages": [{ "id": wamid }],
    }))
    .into_response()
}
