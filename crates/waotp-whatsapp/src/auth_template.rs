//! An authentication template to create with Meta's bulk upsert
//! (`POST /<WABA_ID>/upsert_message_templates`): checked against Meta's rules before any call,
//! and turned into Meta's documented body.

use std::fmt;

use serde_json::{json, Value};

use crate::management::normalise_language;

/// The OTP button: copy-code, one-tap autofill or zero-tap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtpButton {
    CopyCode,
    OneTap,
    ZeroTap,
}

impl OtpButton {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "copy-code" | "copy_code" | "COPY_CODE" => Ok(OtpButton::CopyCode),
            "one-tap" | "one_tap" | "ONE_TAP" => Ok(OtpButton::OneTap),
            "zero-tap" | "zero_tap" | "ZERO_TAP" => Ok(OtpButton::ZeroTap),
            _ => Err(format!("unknown button {s:?}: copy-code, one-tap or zero-tap")),
        }
    }

    /// What an Android app must do to receive the code from this button; `None` for copy-code.
    /// Meta deprecated the `PendingIntent` handshake of one-tap and zero-tap templates on
    /// [`PENDING_INTENT_END`] in favour of its OTP Android SDK: an app still handshaking the old
    /// way gets the copy-code button instead (Meta's one-tap and zero-tap template pages).
    pub fn android_note(self) -> Option<String> {
        match self {
            OtpButton::CopyCode => None,
            OtpButton::OneTap | OtpButton::ZeroTap => Some(format!(
                "Android: since {PENDING_INTENT_END} Meta no longer takes the PendingIntent handshake of one-tap and \
                 zero-tap templates; the app must start the handshake with Meta's OTP Android SDK (or its own app \
                 must already do so), else WhatsApp shows the copy-code button instead. iOS shows copy-code (and, \
                 on iOS 26 and later, the system's own code suggestion)."
            )),
        }
    }

    /// Meta's `otp_type` on the upsert (upper case there).
    pub fn otp_type(self) -> &'static str {
        match self {
            OtpButton::CopyCode => "COPY_CODE",
            OtpButton::OneTap => "ONE_TAP",
            OtpButton::ZeroTap => "ZERO_TAP",
        }
    }
}

/// The day Meta ended the `PendingIntent` handshake of one-tap and zero-tap templates (its
/// deadline, extended from earlier in 2026, on the one-tap and zero-tap template pages).
pub const PENDING_INTENT_END: &str = "2026-10-15";

/// An Android app allowed to receive the code (one-tap, zero-tap).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AndroidApp {
    pub package_name: String,
    pub signature_hash: String,
}

impl AndroidApp {
    /// `PACKAGE:HASH`, checked as Meta checks it: a package name of at most 224 characters,
    /// two or more dot-separated segments each starting with a letter, of `[a-zA-Z0-9_]`; a
    /// signature hash of exactly 11 characters of `[a-zA-Z0-9+/=]`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let Some((package, hash)) = s.split_once(':') else {
            return Err(format!("{s:?}: expected PACKAGE:HASH, e.g. com.example.app:K8a/AINcGX7"));
        };
        let segments: Vec<&str> = package.split('.').collect();
        let segment_ok = |seg: &&str| {
            seg.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && seg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        if package.len() > 224 || segments.len() < 2 || !segments.iter().all(segment_ok) {
            return Err(format!(
                "package name {package:?}: at most 224 characters, two or more dot-separated parts, each \
                 starting with a letter and made of letters, digits and _"
            ));
        }
        if hash.len() != 11 || !hash.chars().all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c)) {
            return Err(format!(
                "signature hash {hash:?}: exactly 11 characters of letters, digits, + / = (the app's SMS \
                 Retriever hash)"
            ));
        }
        Ok(AndroidApp { package_name: package.to_owned(), signature_hash: hash.to_owned() })
    }
}

/// At most this many apps per button (Meta's limit).
pub const MAX_ANDROID_APPS: usize = 5;

/// Meta's range for `message_send_ttl_seconds` on authentication templates.
pub const TTL_RANGE: std::ops::RangeInclusive<u32> = 30..=900;

/// An authentication template in one or several languages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthTemplate {
    pub name: String,
    pub languages: Vec<String>,
    pub button: OtpButton,
    pub android_apps: Vec<AndroidApp>,
    pub zero_tap_terms_accepted: bool,
    pub security_recommendation: bool,
    /// 1–90; `None`: no expiry footer.
    pub code_expiration_minutes: Option<u32>,
    /// How long Meta keeps trying to deliver (`message_send_ttl_seconds`).
    pub ttl_seconds: u32,
}

/// A template Meta would refuse, or one whose messages would outlive their codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Invalid {}

impl AuthTemplate {
    /// Checks Meta's rules and that messages never outlive their code (`code_lifetime_seconds`);
    /// languages are normalised (`en-US` → `en_US`) and deduplicated.
    pub fn validate(mut self, code_lifetime_seconds: u32) -> Result<Self, Invalid> {
        let bad = |s: String| Err(Invalid(s));
        if self.name.is_empty()
            || self.name.len() > 512
            || !self.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return bad(format!("template name {:?}: 1 to 512 characters of a-z, 0-9 and _", self.name));
        }
        let mut languages: Vec<String> = Vec::new();
        for lang in &self.languages {
            let l = normalise_language(lang);
            if l.is_empty() || !l.chars().all(|c| c.is_ascii_alphabetic() || c == '_') {
                return bad(format!("language {lang:?}: a locale code like en, id or en_US"));
            }
            if !languages.contains(&l) {
                languages.push(l);
            }
        }
        if languages.is_empty() {
            return bad("give at least one language (--lang en_US,id)".into());
        }
        self.languages = languages;
        match self.button {
            OtpButton::CopyCode if !self.android_apps.is_empty() => {
                return bad("--android-app is for one-tap and zero-tap buttons, not copy-code".into());
            }
            OtpButton::OneTap | OtpButton::ZeroTap if self.android_apps.is_empty() => {
                return bad("one-tap and zero-tap need at least one --android-app PACKAGE:HASH".into());
            }
            _ => {}
        }
        if self.android_apps.len() > MAX_ANDROID_APPS {
            return bad(format!("at most {MAX_ANDROID_APPS} Android apps, got {}", self.android_apps.len()));
        }
        if self.button == OtpButton::ZeroTap && !self.zero_tap_terms_accepted {
            return bad("zero-tap needs --zero-tap-terms-accepted (Meta's zero-tap terms of service)".into());
        }
        if self.button != OtpButton::ZeroTap && self.zero_tap_terms_accepted {
            return bad("--zero-tap-terms-accepted goes with --button zero-tap only".into());
        }
        if code_lifetime_seconds < *TTL_RANGE.start() {
            return bad(format!(
                "the code lifetime ({code_lifetime_seconds} s) is shorter than Meta's shortest message TTL ({} s): \
                 a message could arrive with a dead code; raise the app's time limit to {} s or more",
                TTL_RANGE.start(),
                TTL_RANGE.start()
            ));
        }
        if let Some(m) = self.code_expiration_minutes {
            if !(1..=90).contains(&m) {
                return bad(format!("code expiry {m} minutes: Meta allows 1 to 90"));
            }
            // The footer tells the user how long the code lasts (and a one-tap button stays
            // enabled that long): never longer than the code does, to the minute above.
            let most = code_lifetime_seconds.div_ceil(60).max(1);
            if m > most {
                return bad(format!(
                    "code expiry {m} minutes is longer than the code lifetime ({code_lifetime_seconds} s): the \
                     message would promise more time than the code has; use --code-expiry-minutes {most} or less"
                ));
            }
        }
        if !TTL_RANGE.contains(&self.ttl_seconds) {
            return bad(format!(
                "message TTL {} s: Meta allows {} to {} s",
                self.ttl_seconds,
                TTL_RANGE.start(),
                TTL_RANGE.end()
            ));
        }
        if self.ttl_seconds > code_lifetime_seconds {
            return bad(format!(
                "message TTL {} s is longer than the code lifetime ({code_lifetime_seconds} s): a message \
                 delivered after that carries a dead code; use --ttl {code_lifetime_seconds} or less",
                self.ttl_seconds
            ));
        }
        Ok(self)
    }

    /// The bulk upsert body, as Meta documents it (upper-case types; no `text` or
    /// `autofill_text`, which the upsert does not take: Meta's localized defaults apply).
    pub fn upsert_body(&self) -> Value {
        let mut button = json!({ "type": "OTP", "otp_type": self.button.otp_type() });
        if !self.android_apps.is_empty() {
            button["supported_apps"] = self
                .android_apps
                .iter()
                .map(|a| json!({ "package_name": a.package_name, "signature_hash": a.signature_hash }))
                .collect();
        }
        if self.button == OtpButton::ZeroTap {
            button["zero_tap_terms_accepted"] = json!(true);
        }
        let mut components =
            vec![json!({ "type": "BODY", "add_security_recommendation": self.security_recommendation })];
        if let Some(m) = self.code_expiration_minutes {
            components.push(json!({ "type": "FOOTER", "code_expiration_minutes": m }));
        }
        components.push(json!({ "type": "BUTTONS", "buttons": [button] }));
        json!({
            "name": self.name,
            "languages": self.languages,
            "category": "AUTHENTICATION",
            "message_send_ttl_seconds": self.ttl_seconds,
            "components": components,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy_code() -> AuthTemplate {
        AuthTemplate {
            name: "verification_code".into(),
            languages: vec!["en-US".into(), "id".into(), "en_US".into()],
            button: OtpButton::CopyCode,
            android_apps: vec![],
            zero_tap_terms_accepted: false,
            security_recommendation: true,
            code_expiration_minutes: Some(5),
            ttl_seconds: 300,
        }
    }

    #[test]
    fn android_apps_are_checked_as_meta_checks_them() {
        assert!(AndroidApp::parse("com.example.app:K8a/AINcGX7").is_ok());
        for bad in [
            "com.example.app",
            "example:K8a/AINcGX7",
            "com.1example:K8a/AINcGX7",
            "com.ex-ample:K8a/AINcGX7",
            "com.example:K8a/AINcGX",
            "com.example:K8a/AINcGX7x",
            "com.example:K8a_AINcGX7",
        ] {
            assert!(AndroidApp::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_rules_before_any_call() {
        let t = copy_code().validate(300).unwrap();
        assert_eq!(t.languages, ["en_US", "id"]);
        let e = AuthTemplate { ttl_seconds: 600, ..copy_code() }.validate(300).unwrap_err();
        assert!(e.0.contains("longer than the code lifetime (300 s)"), "{e}");
        assert!(AuthTemplate { ttl_seconds: 10, ..copy_code() }.validate(300).is_err());
        assert!(AuthTemplate { code_expiration_minutes: Some(91), ..copy_code() }.validate(300).is_err());
        // The footer's expiry never promises more than the code's lifetime (to the minute above).
        let e = AuthTemplate { code_expiration_minutes: Some(10), ..copy_code() }.validate(300).unwrap_err();
        assert!(e.0.contains("--code-expiry-minutes 5 or less"), "{e}");
        assert!(AuthTemplate { code_expiration_minutes: Some(5), ..copy_code() }.validate(300).is_ok());
        assert!(AuthTemplate { code_expiration_minutes: Some(1), ttl_seconds: 30, ..copy_code() }.validate(30).is_ok());
        // A code lifetime under Meta's shortest TTL cannot be honoured by any TTL.
        let e = AuthTemplate { ttl_seconds: 30, ..copy_code() }.validate(10).unwrap_err();
        assert!(e.0.contains("shorter than Meta's shortest message TTL (30 s)"), "{e}");
        assert!(AuthTemplate { button: OtpButton::OneTap, ..copy_code() }.validate(300).is_err());
        let app = AndroidApp::parse("com.example.app:K8a/AINcGX7").unwrap();
        let zero = AuthTemplate { button: OtpButton::ZeroTap, android_apps: vec![app.clone()], ..copy_code() };
        assert!(zero.clone().validate(300).unwrap_err().0.contains("--zero-tap-terms-accepted"));
        assert!(AuthTemplate { zero_tap_terms_accepted: true, ..zero }.validate(300).is_ok());
        let six = AuthTemplate { button: OtpButton::OneTap, android_apps: vec![app; 6], ..copy_code() };
        assert!(six.validate(300).unwrap_err().0.contains("at most 5"));
        assert!(AuthTemplate { name: "Bad-Name".into(), ..copy_code() }.validate(300).is_err());
    }
}
