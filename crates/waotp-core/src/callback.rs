//! Status callbacks as the receiving app sees them: how they are sent (GET as Verihubs does,
//! or POST with a JSON body) and how they are signed (Standard Webhooks).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// How an app receives callbacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallbackMode {
    /// `GET url?…&session_id=…&status=N` (the Verihubs contract).
    Get,
    /// `POST url` with a JSON body: session id, status number and name, challenge, timestamp.
    Post,
}

impl CallbackMode {
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackMode::Get => "get",
            CallbackMode::Post => "post",
        }
    }

    pub fn parse(s: &str) -> Option<CallbackMode> {
        match s.to_ascii_lowercase().as_str() {
            "get" => Some(CallbackMode::Get),
            "post" => Some(CallbackMode::Post),
            _ => None,
        }
    }
}

/// A new signing secret: `whsec_` and base64 of 32 random bytes (the Standard Webhooks form).
pub fn generate_secret() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    format!("whsec_{}", STANDARD.encode(bytes))
}

/// The key bytes of a `whsec_…` secret; `None` if it is not one.
pub fn secret_bytes(secret: &str) -> Option<Vec<u8>> {
    STANDARD.decode(secret.strip_prefix("whsec_")?).ok()
}

/// The `webhook-signature` header value: `v1,` and base64 HMAC-SHA256 over
/// `{id}.{timestamp}.{payload}`.
pub fn sign(secret: &str, id: &str, timestamp: i64, payload: &[u8]) -> Option<String> {
    let key = secret_bytes(secret)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    Some(format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())))
}

/// Why a callback attempt got no HTTP answer, as its app is told: three coarse words, so the
/// attempt log cannot be used to scan ports or probe networks. The detail (the connection
/// error) stays with the operator: in the server's log and the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptFailure {
    /// No connection, or the connection failed before an answer.
    Unreachable,
    /// No answer within the attempt's time limit.
    Timeout,
    /// The SSRF guard refused the address (or every address of the name).
    RefusedByPolicy,
}

impl AttemptFailure {
    pub const ALL: [AttemptFailure; 3] =
        [AttemptFailure::Unreachable, AttemptFailure::Timeout, AttemptFailure::RefusedByPolicy];

    pub fn as_str(self) -> &'static str {
        match self {
            AttemptFailure::Unreachable => "unreachable",
            AttemptFailure::Timeout => "timeout",
            AttemptFailure::RefusedByPolicy => "refused by policy",
        }
    }

    /// The attempt log's error text: this failure, then the detail (`timeout: …`).
    pub fn logged(self, detail: &str) -> String {
        format!("{}: {detail}", self.as_str())
    }

    /// The failure an attempt log's error text starts with, as [`AttemptFailure::logged`]
    /// wrote it. Text written otherwise (by an older version) is told as unreachable: the
    /// word never comes from the text itself.
    pub fn of_logged(error: &str) -> AttemptFailure {
        let head = error.split_once(": ").map_or(error, |(head, _)| head);
        AttemptFailure::ALL.into_iter().find(|f| f.as_str() == head).unwrap_or(AttemptFailure::Unreachable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempt_failures_read_back_as_logged_and_nothing_else() {
        for f in AttemptFailure::ALL {
            assert_eq!(AttemptFailure::of_logged(&f.logged("cannot connect: Connection refused")), f);
            assert_eq!(AttemptFailure::of_logged(f.as_str()), f);
        }
        for text in ["cannot connect: Connection refused", "timed out: deadline", "", "timeouts: x", "HTTP 401"] {
            assert_eq!(AttemptFailure::of_logged(text), AttemptFailure::Unreachable, "{text}");
        }
    }

    /// The example from the Standard Webhooks specification.
    #[test]
    fn matches_the_standard_webhooks_example() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let payload = br#"{"test": 2432232314}"#;
        assert_eq!(sign(secret, id, 1614265330, payload).unwrap(), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn secrets() {
        let s = generate_secret();
        assert!(s.starts_with("whsec_"));
        assert_eq!(secret_bytes(&s).unwrap().len(), 32);
        assert_ne!(s, generate_secret());
        assert!(secret_bytes("nope").is_none());
        assert!(sign("whsec_!!", "id", 1, b"x").is_none());
    }
}
