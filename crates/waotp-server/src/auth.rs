//! `App-ID` / `API-Key` authentication, and a short-lived cache of apps and their templates
//! so the hot path does not read them from the database on every request.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use uuid::Uuid;
use waotp_core::code::{api_key_matches, CodeKey, OpenSecretError};
use waotp_core::{template, Template, TemplateError};
use waotp_store::{AppRecord, Store, WhatsAppSender};

use crate::channel::Sender;
use crate::{ApiError, AppState};

/// How long a cached app is trusted. Changes made by the CLI in another process (a rotated
/// key, a new template) take effect within this time.
const TTL: Duration = Duration::from_secs(2);

/// An app with its templates and sender, as the hot path needs it.
pub struct CachedApp {
    pub record: AppRecord,
    pub(crate) templates: HashMap<String, Vec<Template>>,
    /// Who its messages go out from, its own access token opened once per cache entry.
    pub(crate) sender: Sender,
    /// The secret its callbacks are signed with, opened once per cache entry; why it does not
    /// open (sealed under another server secret) otherwise.
    pub(crate) callback_secret: Result<String, OpenSecretError>,
}

impl CachedApp {
    pub(crate) fn new(record: AppRecord, templates: Vec<Template>, key: &CodeKey) -> CachedApp {
        let mut by_name: HashMap<String, Vec<Template>> = HashMap::new();
        for t in templates {
            by_name.entry(t.name.clone()).or_default().push(t);
        }
        let sender = match &record.sender {
            None => Sender::Configured,
            Some(own) => match key.open_secret(&record.app_id, &own.access_token) {
                Ok(token) => Sender::App(Arc::new(WhatsAppSender {
                    phone_number_id: own.phone_number_id.clone(),
                    access_token: token,
                })),
                // Stored as given by an older waotp and not sealed yet (that happens at start).
                Err(OpenSecretError::NotSealed) => Sender::App(Arc::new(own.clone())),
                Err(e @ OpenSecretError::Refused) => {
                    Sender::Unusable(format!("the app's WhatsApp access token: {e}").into())
                }
            },
        };
        let callback_secret = crate::apps::callback_secret(key, &record);
        CachedApp { record, templates: by_name, sender, callback_secret }
    }

    /// The template a message named `name` in `language` goes out as ([`template::select`]).
    pub fn template(&self, name: &str, language: &str) -> Result<Cow<'_, Template>, TemplateError> {
        template::select(self.templates.get(name).map_or(&[], Vec::as_slice), name, language)
    }
}

/// When an entry was read, and the app (or its absence).
type Entry = (Instant, Option<Arc<CachedApp>>);

#[derive(Clone)]
pub struct AppCache {
    store: Arc<dyn Store>,
    /// Opens the apps' own access tokens, sealed in the database.
    key: Arc<CodeKey>,
    entries: Arc<RwLock<HashMap<Uuid, Entry>>>,
}

impl AppCache {
    pub fn new(store: Arc<dyn Store>, key: Arc<CodeKey>) -> Self {
        AppCache { store, key, entries: Arc::default() }
    }

    /// The app, from cache when fresh. Unknown ids are cached too, briefly, so a flood of
    /// bad credentials does not become a flood of reads.
    pub async fn get(&self, app_id: Uuid) -> Result<Option<Arc<CachedApp>>, ApiError> {
        if let Some((at, app)) = self.entries.read().expect("app cache").get(&app_id) {
            if at.elapsed() < TTL {
                return Ok(app.clone());
            }
        }
        let app = match self.store.get_app(app_id).await? {
            None => None,
            Some(record) => {
                let templates = self.store.list_templates(app_id).await?;
                Some(Arc::new(CachedApp::new(record, templates, &self.key)))
            }
        };
        let mut entries = self.entries.write().expect("app cache");
        if entries.len() > 100_000 {
            entries.retain(|_, (at, _)| at.elapsed() < TTL);
        }
        entries.insert(app_id, (Instant::now(), app.clone()));
        Ok(app)
    }

    /// Forgets an app so the next request reads it again (after a change made in-process).
    pub fn invalidate(&self, app_id: Uuid) {
        self.entries.write().expect("app cache").remove(&app_id);
    }
}

/// The authenticated app of a request.
pub struct AuthedApp(pub Arc<CachedApp>);

impl FromRequestParts<AppState> for AuthedApp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
        let (Some(app_id), Some(key)) = (header("app-id"), header("api-key")) else {
            return Err(ApiError::Unauthorized);
        };
        let app_id = Uuid::parse_str(app_id).map_err(|_| ApiError::Unauthorized)?;
        let app = state.apps.get(app_id).await?.ok_or(ApiError::Unauthorized)?;
        if !api_key_matches(&app.record.api_key_hash, key) {
            return Err(ApiError::Unauthorized);
        }
        Ok(AuthedApp(app))
    }
}
