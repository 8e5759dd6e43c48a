//! A secret string of the configuration (a token, a key, a signing secret): usable, never
//! printed. The configuration hands it on as `config::Secret`.

use std::fmt;

/// A secret string: usable, never printed.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `given` is this secret, compared in constant time (as API keys are).
    pub fn matches(&self, given: &str) -> bool {
        waotp_core::code::api_key_matches(&waotp_core::hash_api_key(&self.0), given)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}
