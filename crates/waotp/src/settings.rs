//! Layered configuration: the documented defaults built into the binary
//! (`config.example.toml`) → a TOML file → `WAOTP_*` environment variables → command-line
//! flags. Every value remembers where it came from, so an error names the key and its source.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{bail, Context};

/// The documented defaults, embedded.
pub const DEFAULTS: &str = include_str!("../../../config.example.toml");

/// Every key, and whether it is a secret (redacted, and readable from `KEY_FILE`).
pub const KEYS: &[(&str, bool)] = &[
    ("listen", false),
    ("public_url", false),
    ("database_url", true),
    ("database_wait", false),
    ("http_header_timeout", false),
    ("http_idle_timeout", false),
    ("http_body_timeout", false),
    ("http_max_connections", false),
    ("http_max_connections_per_address", false),
    ("http_shutdown_grace", false),
    ("metrics_listen", false),
    ("log", false),
    ("log_format", false),
    ("sqlite_synchronous", false),
    ("retention", false),
    ("delivery_queue", false),
    ("node_timeout", false),
    ("trust_forwarded_for", false),
    ("server_secret", true),
    ("callback_schedule", false),
    ("callback_timeout", false),
    ("callback_deny_private", false),
    ("whatsapp_api_base", false),
    ("whatsapp_api_version", false),
    ("whatsapp_phone_number_id", false),
    ("whatsapp_access_token", true),
    ("whatsapp_app_secret", true),
    ("whatsapp_verify_token", true),
    ("whatsapp_rate", false),
    ("whatsapp_messaging_limit", false),
    ("whatsapp_waba_id", false),
    ("whatsapp_app_id", false),
    ("whatsapp_price_table", false),
    ("alert_url", false),
    ("alert_secret", true),
    ("whatsapp_display_number", false),
    ("admin_token", true),
    ("server_url", false),
];

/// Environment variables that are not settings keys but are known.
pub const OTHER_ENV: &[&str] = &["WAOTP_CONFIG", "WAOTP_APP_ACCESS_TOKEN_FILE"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    File(PathBuf),
    Env(String),
    Flag(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File(p) => write!(f, "file {}", p.display()),
            Source::Env(v) => write!(f, "env {v}"),
            Source::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

pub struct Settings {
    values: BTreeMap<&'static str, (String, Source)>,
}

/// A key's environment variable: `WAOTP_` and the key in capitals.
pub fn env_name(key: &str) -> String {
    format!("WAOTP_{}", key.to_ascii_uppercase())
}

/// A secret key's variable naming a file that holds it.
pub fn secret_file_env(key: &str) -> String {
    format!("{}_FILE", env_name(key))
}

fn flag_name(key: &str) -> String {
    format!("--{}", key.replace('_', "-"))
}

fn known(key: &str) -> Option<(&'static str, bool)> {
    KEYS.iter().copied().find(|(k, _)| *k == key)
}

fn toml_text(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        _ => None,
    }
}

fn read_secret_file(path: &str, what: &str) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{what}: cannot read {path}"))?;
    Ok(text.trim().to_owned())
}

impl Settings {
    /// Loads every layer. `file`: an explicit config file (it must exist); otherwise
    /// `./waotp.toml` if present. `flags`: (key, value) given on the command line.
    pub fn load(file: Option<&Path>, flags: &[(&'static str, String)]) -> anyhow::Result<Settings> {
        let mut s = Settings { values: BTreeMap::new() };
        s.merge_toml(DEFAULTS, Source::Default)?;
        let file = match file {
            Some(f) => Some(f.to_path_buf()),
            None => Some(PathBuf::from("waotp.toml")).filter(|p| p.exists()),
        };
        if let Some(path) = file {
            let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
            s.merge_toml(&text, Source::File(path))?;
        }
        for (key, secret) in KEYS {
            let file_var = secret_file_env(key);
            let from_file = if *secret { std::env::var(&file_var).ok() } else { None };
            match (std::env::var(env_name(key)), from_file) {
                // Both: which one was meant is anyone's guess (an image's default and an
                // operator's secret file, say), so neither is taken.
                (Ok(_), Some(_)) => bail!("set {} or {file_var}, not both", env_name(key)),
                (Ok(v), None) => {
                    s.values.insert(key, (v, Source::Env(env_name(key))));
                }
                (Err(_), Some(path)) => {
                    s.values.insert(key, (read_secret_file(&path, &file_var)?, Source::Env(file_var)));
                }
                (Err(_), None) => {}
            }
        }
        for (key, value) in flags {
            s.values.insert(key, (value.clone(), Source::Flag(flag_name(key))));
        }
        Ok(s)
    }

    /// The built-in defaults alone (`config.example.toml`), without a file, the environment
    /// or flags.
    #[cfg(test)]
    pub fn defaults_only() -> Settings {
        let mut s = Settings { values: BTreeMap::new() };
        s.merge_toml(DEFAULTS, Source::Default).expect("the built-in defaults parse");
        s
    }

    fn merge_toml(&mut self, text: &str, source: Source) -> anyhow::Result<()> {
        let table: toml::Table = text.parse().map_err(|e| anyhow::anyhow!("{source}: not valid TOML: {e}"))?;
        for (key, value) in table {
            let secret_file = key.strip_suffix("_file").and_then(known).filter(|(_, secret)| *secret);
            let Some((name, _)) = known(&key).or(secret_file) else {
                bail!("{source}: unknown key `{key}` (see config.example.toml)");
            };
            let Some(text) = toml_text(&value) else {
                bail!("{source}: `{key}` must be a string, number or boolean");
            };
            let text = if secret_file.is_some() { read_secret_file(&text, &key)? } else { text };
            self.values.insert(name, (text, source.clone()));
        }
        Ok(())
    }

    /// `WAOTP_*` variables that mean nothing to waotp (typos, mostly).
    pub fn unknown_env() -> Vec<String> {
        std::env::vars()
            .map(|(k, _)| k)
            .filter(|k| k.starts_with("WAOTP_"))
            .filter(|k| {
                !OTHER_ENV.contains(&k.as_str())
                    && !KEYS.iter().any(|(key, secret)| *k == env_name(key) || (*secret && *k == secret_file_env(key)))
            })
            .collect()
    }

    /// The raw value, `None` when unset or empty.
    pub fn raw(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(|(v, _)| v.as_str()).filter(|v| !v.is_empty())
    }

    fn source(&self, key: &str) -> String {
        self.values.get(key).map_or_else(|| "default".to_owned(), |(_, s)| s.to_string())
    }

    /// Parses a value; the error names the key and where the value came from.
    pub fn parse<T>(&self, key: &str, parse: impl FnOnce(&str) -> Result<T, String>) -> anyhow::Result<Option<T>> {
        match self.raw(key) {
            None => Ok(None),
            Some(v) => parse(v).map(Some).map_err(|e| {
                let shown = if known(key).is_some_and(|(_, s)| s) { "<redacted>" } else { v };
                // Named by its variable already, or also settable by one.
                let source = match self.values.get(key) {
                    Some((_, Source::Env(name))) => format!("env {name}"),
                    _ => format!("{}, {}", self.source(key), env_name(key)),
                };
                anyhow::anyhow!("invalid {key} = {shown:?} ({source}): {e}")
            }),
        }
    }

    pub fn get<T: FromStr>(&self, key: &str) -> anyhow::Result<Option<T>>
    where
        T::Err: fmt::Display,
    {
        self.parse(key, |v| v.parse::<T>().map_err(|e| e.to_string()))
    }

    pub fn duration(&self, key: &str) -> anyhow::Result<Option<std::time::Duration>> {
        self.parse(key, |v| humantime::parse_duration(v).map_err(|e| e.to_string()))
    }

    /// A duration that must lie in `range`; out of it, an error naming the key, `bounds` (as
    /// people write them, e.g. "100ms and 60s") and its variable.
    pub fn duration_within(
        &self,
        key: &str,
        range: std::ops::RangeInclusive<std::time::Duration>,
        bounds: &str,
    ) -> anyhow::Result<Option<std::time::Duration>> {
        match self.duration(key)? {
            Some(d) if !range.contains(&d) => bail!("invalid {key}: between {bounds} ({})", env_name(key)),
            d => Ok(d),
        }
    }

    /// A whole number that must lie in `range`; out of it, "must be a whole number {bounds}".
    pub fn count_within(
        &self,
        key: &str,
        range: std::ops::RangeInclusive<usize>,
        bounds: &str,
    ) -> anyhow::Result<Option<usize>> {
        self.parse(key, |v| {
            v.parse::<usize>()
                .ok()
                .filter(|n| range.contains(n))
                .ok_or_else(|| format!("must be a whole number {bounds}"))
        })
    }

    pub fn one_of(&self, key: &str, allowed: &[&str]) -> anyhow::Result<Option<String>> {
        self.parse(key, |v| {
            if allowed.contains(&v) {
                Ok(v.to_owned())
            } else {
                Err(format!("must be one of {}", allowed.join(", ")))
            }
        })
    }

    /// The effective configuration as TOML, secrets redacted, each line with its source.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (key, secret) in KEYS {
            let line = match (self.raw(key), secret) {
                (None, _) => format!("# {key} = (unset)"),
                (Some(v), _) if *key == "database_url" => {
                    format!("{key} = {:?}", waotp_server::config::redact_url(v))
                }
                (Some(_), true) => format!("{key} = \"<redacted>\""),
                (Some(v), false) => format!("{key} = {v:?}"),
            };
            out.push_str(&format!("{line:<60} # {}\n", self.source(key)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_documents_every_key_and_nothing_else() {
        let table: toml::Table = DEFAULTS.parse().unwrap();
        for key in table.keys() {
            assert!(known(key).is_some(), "config.example.toml has unknown key {key}");
        }
        for (key, _) in KEYS {
            assert!(
                DEFAULTS.lines().any(|l| l.trim_start_matches("# ").starts_with(&format!("{key} ="))),
                "config.example.toml does not document {key}"
            );
        }
    }
}
