//! What the fuzz targets (`fuzz/`) call: the request-body readers of the send and verify
//! routes, reachable without a server, a store or a request. Not an API: it re-exports private
//! parts as they are, so the fuzzers run exactly the code the routes run.

use waotp_core::Template;
use waotp_store::{AppRecord, AppSettings};

pub use crate::auth::CachedApp;
pub use crate::body::{Fields, MAX_BODY_BYTES, MAX_WHOLE_NUMBER};
pub use crate::send::{
    SendRequest, MAX_CALLBACK_URL_CHARS, MAX_CHALLENGE_CHARS, MAX_CONTENT_CHARS, MAX_CONTENT_VALUES, TIME_LIMIT,
};
pub use crate::verify::{read_guess, MAX_GUESS_CHARS};

/// A body as the send and verify routes read it (what [`Fields`]'s extractor does once the
/// bytes are in).
pub fn fields(bytes: &[u8]) -> Result<Fields, crate::ApiError> {
    Fields::parse(&axum::body::Bytes::copy_from_slice(bytes))
}

/// An app with default settings and these templates, as the app cache would hold it.
pub fn app(templates: Vec<Template>) -> CachedApp {
    let record = AppRecord {
        app_id: uuid::Uuid::nil(),
        name: "fuzz".into(),
        api_key_hash: [0; 32],
        callback_secret: String::new(),
        settings: AppSettings::default(),
        quota: None,
        sender: None,
        created_at_ms: 0,
    };
    CachedApp::new(record, templates, &waotp_core::CodeKey::from_secret(b"fuzz"))
}
