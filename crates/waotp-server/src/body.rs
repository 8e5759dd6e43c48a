//! Request bodies: read with a size limit, parsed as a JSON object, and picked apart field by
//! field with the contract's leniency (numbers as strings or integers, `""` and `null` as
//! absent, unknown fields ignored). Anything else is a 400 with a reason, never a 500.
//! The OpenAPI document states the same rules as JSON Schema (`crate::openapi`).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde_json::{Map, Value};

use crate::{ApiError, AppState};

/// Largest body accepted. A send is a few hundred bytes, but every body whose fields keep to
/// their limits must fit, even with each character written as a `\u` escape (about 270 KiB).
pub const MAX_BODY_BYTES: usize = 512 * 1024;

/// Largest whole number read from a JSON number: 2^53 - 1, the last one every JSON parser
/// reads exactly.
pub const MAX_WHOLE_NUMBER: u64 = (1 << 53) - 1;

/// A JSON number that is a whole number from 0 to [`MAX_WHOLE_NUMBER`], however it is
/// written (`6`, `6.0`, `6e0`: JSON, and JSON Schema's `integer`, do not tell them apart).
fn whole_number(n: &serde_json::Number) -> Option<u64> {
    // A float cast saturates (1e300 becomes u64::MAX, refused below); -0.0 is 0.
    let value = n.as_u64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0).map(|f| f as u64))?;
    (value <= MAX_WHOLE_NUMBER).then_some(value)
}

/// Why a body was not read.
pub enum Unread {
    /// It is longer than the limit.
    TooLarge,
    /// The client went away or was too slow (`http_body_timeout`): the cause.
    Failed(String),
}

/// A whole body, up to `limit` bytes.
pub async fn read(body: axum::body::Body, limit: usize) -> Result<Bytes, Unread> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let e = e.into_inner();
        if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
            Unread::TooLarge
        } else {
            Unread::Failed(e.to_string())
        }
    })
}

/// A request body that is a JSON object (and its raw bytes, for idempotency keys).
pub struct Fields {
    map: Map<String, Value>,
    raw: Bytes,
}

impl FromRequest<AppState> for Fields {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &AppState) -> Result<Self, ApiError> {
        let bytes = read(req.into_body(), MAX_BODY_BYTES).await.map_err(|e| match e {
            Unread::TooLarge => ApiError::validation(format!("body must be at most {MAX_BODY_BYTES} bytes")),
            Unread::Failed(why) => ApiError::validation(format!("the body could not be read: {why}")),
        })?;
        Fields::parse(&bytes)
    }
}

impl Fields {
    pub fn parse(bytes: &Bytes) -> Result<Fields, ApiError> {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => Ok(Fields { map, raw: bytes.clone() }),
            Ok(_) => Err(ApiError::validation("body must be a JSON object")),
            Err(e) => Err(ApiError::validation(format!("body is not valid JSON: {e}"))),
        }
    }

    /// SHA-256 of the body exactly as received.
    pub fn sha256(&self) -> [u8; 32] {
        use sha2::Digest;
        sha2::Sha256::digest(&self.raw).into()
    }

    /// The field, with `null` and `""` read as absent.
    fn present(&self, name: &str) -> Option<&Value> {
        match self.map.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(v) => Some(v),
        }
    }

    pub fn required_str(&self, name: &str) -> Result<&str, ApiError> {
        self.opt_str(name, usize::MAX)?.ok_or_else(|| ApiError::validation(format!("{name} is required")))
    }

    /// A string of at most `max_chars` characters, without control characters.
    pub fn opt_str(&self, name: &str, max_chars: usize) -> Result<Option<&str>, ApiError> {
        match self.present(name) {
            None => Ok(None),
            Some(Value::String(s)) => {
                if s.chars().count() > max_chars {
                    return Err(ApiError::validation(format!("{name} must be at most {max_chars} characters")));
                }
                if s.chars().any(char::is_control) {
                    return Err(ApiError::validation(format!("{name} must not contain control characters")));
                }
                Ok(Some(s))
            }
            Some(_) => Err(ApiError::validation(format!("{name} must be a string"))),
        }
    }

    /// A whole number within `range`, sent as a JSON number or a string of digits.
    pub fn opt_uint(&self, name: &str, range: std::ops::RangeInclusive<u64>) -> Result<Option<u64>, ApiError> {
        let n = match self.present(name) {
            None => return Ok(None),
            Some(Value::Number(n)) => whole_number(n),
            // The same bound as a JSON number's: a whole number is one however it is written.
            Some(Value::String(s)) => digits(s).filter(|n| *n <= MAX_WHOLE_NUMBER),
            Some(_) => None,
        };
        match n {
            Some(n) if range.contains(&n) => Ok(Some(n)),
            _ => Err(ApiError::validation(format!(
                "{name} must be a whole number from {} to {}",
                range.start(),
                range.end()
            ))),
        }
    }

    /// A code: a string, or a whole JSON number (written out in decimal).
    pub fn opt_code(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.present(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => v
                .as_number()
                .and_then(whole_number)
                .map(|n| Some(n.to_string()))
                .ok_or_else(|| ApiError::validation(format!("{name} must be a string or a whole number"))),
        }
    }

    /// An array of strings (`null`, `""` or absent: empty).
    pub fn opt_string_list(&self, name: &str, max_items: usize, max_chars: usize) -> Result<Vec<String>, ApiError> {
        match self.present(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => {
                if items.len() > max_items {
                    return Err(ApiError::validation(format!("{name} must have at most {max_items} values")));
                }
                items
                    .iter()
                    .map(|item| match item {
                        Value::String(s) if s.chars().count() <= max_chars && !s.chars().any(char::is_control) => {
                            Ok(s.clone())
                        }
                        Value::String(_) => Err(ApiError::validation(format!(
                            "each {name} value must be at most {max_chars} characters without control characters"
                        ))),
                        _ => Err(ApiError::validation(format!("{name} must be an array of strings"))),
                    })
                    .collect()
            }
            Some(_) => Err(ApiError::validation(format!("{name} must be an array of strings"))),
        }
    }
}

/// A whole number written as ASCII digits only (no sign, no spaces): how numbers arrive as
/// strings in bodies, query strings and paths.
pub(crate) fn digits(s: &str) -> Option<u64> {
    s.bytes().all(|b| b.is_ascii_digit()).then(|| s.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(json: &str) -> Fields {
        Fields::parse(&Bytes::copy_from_slice(json.as_bytes())).unwrap()
    }

    #[test]
    fn leniency() {
        let b = f(r#"{"a": "300", "b": 300, "c": "", "d": null, "e": "x", "f": 12345}"#);
        assert_eq!(b.opt_uint("a", 1..=86400).unwrap(), Some(300));
        assert_eq!(b.opt_uint("b", 1..=86400).unwrap(), Some(300));
        assert_eq!(b.opt_uint("c", 1..=86400).unwrap(), None);
        assert_eq!(b.opt_uint("d", 1..=86400).unwrap(), None);
        assert_eq!(b.opt_uint("zz", 1..=86400).unwrap(), None);
        assert!(b.opt_uint("e", 1..=86400).is_err());
        assert_eq!(b.opt_code("f").unwrap().as_deref(), Some("12345"));
        assert_eq!(b.opt_str("c", 10).unwrap(), None);
        assert!(b.opt_str("b", 10).is_err());
    }

    /// JSON does not tell `6` from `6.0` or `6e0`, and JSON Schema calls all three an integer.
    #[test]
    fn whole_numbers_however_written() {
        let b = f(
            r#"{"a": 6.0, "b": 6e0, "c": 1234.0, "d": 6.5, "e": 9007199254740991, "f": 9007199254740992, "g": 1e300, "h": -0}"#,
        );
        assert_eq!(b.opt_uint("a", 4..=10).unwrap(), Some(6));
        assert_eq!(b.opt_uint("b", 4..=10).unwrap(), Some(6));
        assert_eq!(b.opt_code("c").unwrap().as_deref(), Some("1234"));
        assert!(b.opt_uint("d", 4..=10).is_err());
        assert!(b.opt_code("d").is_err());
        assert_eq!(b.opt_code("e").unwrap().as_deref(), Some("9007199254740991"));
        assert!(b.opt_code("f").is_err());
        assert!(b.opt_code("g").is_err());
        assert_eq!(b.opt_code("h").unwrap().as_deref(), Some("0"));
    }

    /// Found by the `body` fuzz target: a string of digits above the bound of a JSON number
    /// was read (`otp_length` takes any whole number and checks the length after).
    #[test]
    fn whole_numbers_in_strings_have_the_same_bound() {
        let b = f(r#"{"a": "9007199254740991", "b": "9007199254740992", "c": "0000000006222896942983384629"}"#);
        assert_eq!(b.opt_uint("a", 0..=u64::MAX).unwrap(), Some(MAX_WHOLE_NUMBER));
        assert!(b.opt_uint("b", 0..=u64::MAX).is_err());
        assert!(b.opt_uint("c", 0..=u64::MAX).is_err());
    }

    #[test]
    fn rejects_wrong_shapes() {
        let b = f(r#"{"n": -1, "x": 1.5, "s": " 3", "big": 99999999999999999999, "l": [1], "m": "a"}"#);
        assert!(b.opt_uint("n", 0..=10).is_err());
        assert!(b.opt_uint("x", 0..=10).is_err());
        assert!(b.opt_uint("s", 0..=10).is_err());
        assert!(b.opt_uint("big", 0..=10).is_err());
        assert!(b.opt_string_list("l", 10, 10).is_err());
        assert!(b.opt_string_list("m", 10, 10).is_err());
        assert!(b.opt_code("x").is_err());
        assert!(Fields::parse(&Bytes::from_static(b"[1]")).is_err());
        assert!(Fields::parse(&Bytes::from_static(b"{")).is_err());
    }
}
