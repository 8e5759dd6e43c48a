#![forbid(unsafe_code)]
//! waotp's HTTP server: the Verihubs-compatible send and verify routes, the local inbox, and
//! the delivery worker that hands stored sessions to a channel.
//!
//! The seam for tests and for the binary is [`run`]: give it a config, a bound listener and a
//! shutdown future.

mod address_key;
pub mod admin;
pub mod apps;
mod auth;
mod body;
pub mod callbacks;
pub mod channel;
pub mod clock;
pub mod config;
pub mod connections;
pub mod costs;
pub mod dashboard;
mod dispatch;
mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod guards;
mod health;
mod inbox;
pub mod logging;
pub mod metrics;
pub mod openapi;
mod pattern;
pub mod request_id;
pub mod reverse;
pub mod sandbox;
mod secret;
mod send;
pub mod sender_health;
pub mod token_guesses;
mod verify;
mod webhooks;

use std::future::Future;
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use waotp_core::CodeKey;
use waotp_store::Store;

pub use clock::Clock;
pub use config::Config;
pub use error::{ApiError, StartError};

/// What every handler shares: one `Arc`, so that the clones axum makes for each request (the
/// router's state, each extractor, each middleware) are one reference count each, not one per
/// field (the per-field clones and drops were 4 % of the server's CPU per verify under `perf`).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The fields of [`AppState`].
pub struct Shared {
    pub store: Arc<dyn Store>,
    pub key: Arc<CodeKey>,
    pub clock: Clock,
    /// Callbacks may not target loopback or private addresses either.
    pub deny_private_callbacks: bool,
    /// Take the client IP from the last `X-Forwarded-For` entry (behind a trusted proxy).
    pub trust_forwarded_for: bool,
    /// Refusals by reason code.
    pub refusals: Arc<guards::Counts>,
    /// Refusals by app, day and reason, until they are added to the store (the funnel page).
    pub daily_refusals: Arc<guards::DailyRefusals>,
    /// Pumping signals seen in monitor mode, by rule.
    pub signals: Arc<guards::Counts>,
    /// The WhatsApp configuration (webhook secrets), if WhatsApp is the channel.
    pub whatsapp: Option<Arc<config::WhatsAppConfig>>,
    /// The channel production messages go through.
    pub channel_name: &'static str,
    /// Counters and histograms for `/metrics`.
    pub metrics: Arc<metrics::Metrics>,
    /// What Meta says of the templates, the number and the account (shared through the store).
    pub sender_health: Arc<sender_health::SenderHealth>,
    /// Time limits and the cap on open connections.
    pub http_limits: connections::HttpLimits,
    /// Bearer token of the admin API; `None`: the admin API is off.
    pub admin_token: Option<config::Secret>,
    /// The dashboard's one-time login links not yet followed.
    login_links: Arc<dashboard::LoginLinks>,
    /// Wrong admin tokens by client address (dashboard logins, admin API).
    pub token_guesses: Arc<token_guesses::TokenGuesses>,
    /// The background workers, for the readiness check.
    workers: Arc<Vec<(&'static str, tokio::task::JoinHandle<()>)>>,
    apps: auth::AppCache,
    dispatch: dispatch::Queue,
    /// Reverse verification's business number and acknowledgment.
    reverse: Arc<reverse::Reverse>,
    /// The operator's price table (`whatsapp_price_table`), if any: cost reports show money.
    pub prices: Option<Arc<costs::PriceTable>>,
}

impl AppState {
    /// Forgets the cached copy of an app after a change made in this process (settings,
    /// templates, key), so the next request sees the change at once.
    pub fn invalidate_app(&self, app_id: uuid::Uuid) {
        self.apps.invalidate(app_id);
    }

    /// A one-time dashboard login link (path and query, e.g. for the banner): it logs a
    /// browser in once, within [`dashboard::LINK_LIFETIME`]. `None` when the dashboard is off.
    pub fn issue_login_link(&self) -> Option<String> {
        self.admin_token.as_ref()?;
        Some(format!("/dashboard/login/link?code={}", self.login_links.issue(self.clock.now_ms())))
    }

    /// Logs and counts a refusal, and turns it into the answer. Sandbox refusals stay out of
    /// the funnel's daily counts.
    pub(crate) fn refused(
        &self,
        app: &auth::CachedApp,
        msisdn: &waotp_core::Msisdn,
        refusal: waotp_store::Refusal,
        sandbox: bool,
    ) -> ApiError {
        if !sandbox {
            self.daily_refusals.add(app.record.app_id, self.clock.now_ms(), refusal.reason);
        }
        let code = refusal.reason.code();
        if self.refusals.add(code) {
            tracing::info!(app_id = %app.record.app_id, msisdn = %msisdn, reason = code, "request refused");
        }
        ApiError::Refused(refusal)
    }

    /// The client's address: the connection's peer, or the last `X-Forwarded-For` entry when
    /// a trusted proxy sets it. Only the last entry is the proxy's word: when it is not an
    /// address, the peer is used, never an earlier entry the client could have written.
    pub(crate) fn client_ip(
        &self,
        headers: &axum::http::HeaderMap,
        peer: std::net::SocketAddr,
    ) -> Option<std::net::IpAddr> {
        if self.trust_forwarded_for {
            let forwarded = headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .next_back()
                .and_then(|ip| ip.trim().parse().ok());
            if forwarded.is_some() {
                return forwarded;
            }
        }
        Some(peer.ip())
    }

    /// [`AppState::client_ip`] of a request's parts (`None` without a peer address: a
    /// request not served by [`serve`]).
    pub(crate) fn client_ip_of(&self, parts: &axum::http::request::Parts) -> Option<std::net::IpAddr> {
        let peer = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()?.0;
        self.client_ip(&parts.headers, peer)
    }
}

/// The routes, on a ready state.
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/v1/whatsapp/otp/send", post(send::send))
        .route("/v2/whatsapp/otp/send", post(send::send))
        .route("/v1/whatsapp/otp/verify", post(verify::verify))
        .route("/v2/whatsapp/otp/verify", post(verify::verify))
        .route("/v1/whatsapp/otp/send/sandbox", post(sandbox::send))
        .route("/v2/whatsapp/otp/send/sandbox", post(sandbox::send))
        .route("/v1/whatsapp/otp/verify/sandbox", post(sandbox::verify))
        .route("/v2/whatsapp/otp/verify/sandbox", post(sandbox::verify))
        .route("/v1/inbox", get(inbox::inbox))
        .route("/v2/inbox", get(inbox::inbox))
        .route("/openapi.json", get(openapi::serve))
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .route("/v1/quota", get(quota))
        .route("/v2/quota", get(quota))
        .route("/v1/costs", get(costs::app_costs))
        .route("/admin/costs", get(costs::admin_costs))
        .route("/v1/sessions/{session_id}", get(reverse::session))
        .route("/v1/sessions/{session_id}/qr.svg", get(reverse::qr_svg))
        .route("/v1/inbox/inbound", post(reverse::inbox_inbound))
        .route("/v1/sessions/{session_id}/callbacks", get(callbacks::routes::list))
        .route("/v1/sessions/{session_id}/callbacks/{status}/replay", post(callbacks::routes::replay))
        .route("/webhooks/whatsapp", get(webhooks::handshake).post(webhooks::events))
        .layer(axum::extract::DefaultBodyLimit::max(4 * 1024 * 1024))
        .merge(admin::router())
        .merge(dashboard::router())
        .fallback(error::not_found)
        .layer(axum::middleware::from_fn(error::json_errors));
    request_id::layers(routes).with_state(state)
}

/// A running server's handles, for tests that need to reach inside.
pub struct Running {
    pub state: AppState,
    pub local_addr: std::net::SocketAddr,
}

/// Builds the state (store, key, channel, workers) from a config.
pub async fn build(config: &Config, clock: Clock) -> Result<AppState, StartError> {
    // A malformed price table refuses the start before anything else is opened.
    let prices = match &config.whatsapp_price_table {
        Some(path) => Some(Arc::new(costs::PriceTable::load(path).map_err(StartError::Config)?)),
        None => None,
    };
    let store = config.open_store().await?;
    let key = Arc::new(config.code_key()?);
    let sealed = apps::seal_stored_secrets(store.as_ref(), &key)
        .await
        .map_err(StartError::store("sealing the app secrets stored as given"))?;
    if sealed.access_tokens + sealed.callback_secrets > 0 {
        tracing::info!(
            access_tokens = sealed.access_tokens,
            callback_secrets = sealed.callback_secrets,
            "sealed the app secrets (WhatsApp access tokens, callback signing secrets) an older waotp stored as given"
        );
    }
    if sealed.unopenable > 0 {
        tracing::warn!(
            secrets = sealed.unopenable,
            "app secrets in the database do not open with this server secret: their callbacks are not sent and \
             their own numbers do not send (were they made by a node or a CLI given another secret? give every \
             node and the CLI the same WAOTP_SERVER_SECRET, or rotate the apps' callback secrets)"
        );
    }
    let apps = auth::AppCache::new(store.clone(), key.clone());
    let (refusals, signals) = (Arc::default(), Arc::default());
    let metrics = Arc::new(metrics::Metrics::new(Arc::clone(&refusals), Arc::clone(&signals)));
    let mut health_workers = Vec::new();
    let alerts = match &config.alert {
        Some(alert) => {
            let (alerts, task) = sender_health::alerts::Alerts::start(
                alert.clone(),
                config.callbacks.deny_private,
                config.callbacks.lookup.clone(),
                config.callbacks.timeout,
            )
            .map_err(|source| StartError::HttpClient { what: "building the alert client", source })?;
            health_workers.push(("operator alerts", task));
            Some(alerts)
        }
        None => None,
    };
    let followed = sender_health::account::Followed {
        account: config.whatsapp.as_ref().and_then(|w| w.waba_id.clone()),
        number: config.whatsapp_display_number.clone(),
    };
    let sender_health =
        sender_health::SenderHealth::new(store.clone(), clock.clone(), metrics.clone(), alerts, followed);
    if let Err(e) = sender_health.refresh().await {
        tracing::warn!(error = %e, "cannot read the sender's health yet; will retry");
    }
    health_workers.push(("sender health", sender_health.start()));
    let route = match &config.whatsapp {
        Some(w) => {
            let channel = channel::WhatsAppChannel::new(w, clock.clone(), sender_health.clone())
                .map_err(|source| StartError::HttpClient { what: "building the WhatsApp client", source })?;
            dispatch::Route::Channel(Arc::new(channel))
        }
        None => dispatch::Route::Inbox,
    };
    let channel_name = route.name();
    let (dispatch, dispatchers) = dispatch::start(
        store.clone(),
        key.clone(),
        apps.clone(),
        route,
        clock.clone(),
        metrics.clone(),
        config.delivery_queue,
    )
    .await;
    let mut workers = callbacks::start(
        store.clone(),
        apps.clone(),
        clock.clone(),
        config.callbacks.clone(),
        config.sweep_every,
        config.retention,
        metrics.clone(),
    )
    .await?;
    workers.extend(dispatchers);
    workers.extend(health_workers);
    let reverse = Arc::new(
        reverse::Reverse::new(config, clock.clone())
            .map_err(|source| StartError::HttpClient { what: "building the WhatsApp client", source })?,
    );
    let daily_refusals = Arc::new(guards::DailyRefusals::default());
    workers.push(("refusal counts", tokio::spawn(flush_refusals(daily_refusals.clone(), store.clone()))));
    Ok(AppState(Arc::new(Shared {
        store,
        key,
        clock,
        deny_private_callbacks: config.callbacks.deny_private,
        trust_forwarded_for: config.trust_forwarded_for,
        refusals,
        daily_refusals,
        signals,
        whatsapp: config.whatsapp.clone().map(Arc::new),
        channel_name,
        workers: Arc::new(workers),
        http_limits: config.http.applied(config.trust_forwarded_for),
        admin_token: config.admin_token.clone(),
        login_links: Arc::default(),
        token_guesses: Arc::default(),
        metrics,
        sender_health,
        apps,
        dispatch,
        reverse,
        prices,
    })))
}

/// Serves until `shutdown` resolves, then stops accepting and finishes in-flight requests.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let state = build(&config, Clock::system()).await?;
    serve(state, listener, shutdown).await.map_err(StartError::io("serving"))
}

/// A server built from a config with its listeners bound, not serving yet: the binary prints
/// its banner from it, then calls [`Server::serve`].
pub struct Server {
    pub state: AppState,
    api: TcpListener,
    metrics: Option<TcpListener>,
}

impl Server {
    /// Builds the state and binds the API's listener (`config.listen`) and, if configured,
    /// the metrics listener (`config.metrics_listen`).
    pub async fn bind(config: &Config, clock: Clock) -> Result<Server, StartError> {
        let state = build(config, clock).await?;
        let api = TcpListener::bind(config.listen)
            .await
            .map_err(StartError::io(format!("cannot listen on {}", config.listen)))?;
        let metrics = match config.metrics_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(StartError::io(format!("cannot listen on {addr} for metrics")))?,
            ),
            None => None,
        };
        Ok(Server { state, api, metrics })
    }

    /// The API's address (the real port when the config asked for port 0).
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.api.local_addr()
    }

    /// The metrics listener's address, when metrics are on.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Serves until `shutdown` resolves (see [`serve`]); the metrics listener, with the same
    /// time limits and cap, stops with it.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let metrics = self.metrics.map(|listener| {
            let router = metrics::router(self.state.clone());
            let limits = self.state.http_limits;
            tokio::spawn(connections::serve(
                listener,
                router,
                limits,
                self.state.metrics.clone(),
                std::future::pending(),
            ))
        });
        let served = serve(self.state, self.api, shutdown).await;
        if let Some(task) = metrics {
            task.abort();
        }
        served
    }
}

/// Serves an already-built state.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    connections::serve(listener, router(state.clone()), state.http_limits, state.metrics.clone(), shutdown).await?;
    if let Err(e) = state.daily_refusals.flush(state.store.as_ref()).await {
        tracing::warn!(error = %e, "could not save the last refusal counts");
    }
    Ok(())
}

/// Adds each node's refusal tally to the store every few seconds.
async fn flush_refusals(tally: Arc<guards::DailyRefusals>, store: Arc<dyn Store>) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(2));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if let Err(e) = tally.flush(store.as_ref()).await {
            tracing::warn!(error = %e, "could not save refusal counts; will retry");
        }
    }
}

/// `GET /v1/quota`: the app's remaining production sends (`null`: unlimited).
async fn quota(
    axum::extract::State(state): axum::extract::State<AppState>,
    auth::AuthedApp(app): auth::AuthedApp,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    // Read fresh: the cached app may be a second old.
    let record = state.store.get_app(app.record.app_id).await?.ok_or(ApiError::Unauthorized)?;
    Ok(axum::Json(serde_json::json!({
        "app_id": record.app_id,
        "quota": record.quota,
        "unlimited": record.quota.is_none(),
    })))
}
