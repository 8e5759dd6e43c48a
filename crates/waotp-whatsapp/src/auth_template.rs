//! An authentication template to create with Meta's bulk upsert
//! (`POST /<WABA_ID>/upsert_message_templates`): checked against Meta's rules before any call,
//! and turned into Meta's documented body.

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
    pub fn parse(s: &str) -> Result<Self, UnknownButton> {
        match s {
            "copy-code" | "copy_code" | "COPY_CODE" => Ok(OtpButton::CopyCode),
            "one-tap" | "one_tap" | "ONE_TAP" => Ok(OtpButton::OneTap),
            "zero-tap" | "zero_tap" | "ZERO_TAP" => Ok(OtpButton::ZeroTap),
            _ => Err(UnknownButton(s.to_owned())),
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

/// A button name that is none of copy-code, one-tap and zero-tap.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown button {0:?}: copy-code, one-tap or zero-tap")]
pub struct UnknownButton(pub String);

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
    pub fn parse(s: &str) -> Result<Self, AndroidAppError> {
        let Some((package, hash)) = s.split_once(':') else {
            return Err(AndroidAppError::NotPackageAndHash(s.to_owned()));
        };
        let segments: Vec<&str> = package.split('.').collect();
        let segment_ok = |seg: &&str| {
            seg.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && seg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        if package.len() > 224 || segments.len() < 2 || !segments.iter().all(segment_ok) {
            return Err(AndroidAppError::PackageName(package.to_owned()));
        }
        if hash.len() != 11 || !hash.chars().all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c)) {
            return Err(AndroidAppError::SignatureHash(hash.to_owned()));
        }
        Ok(AndroidApp { package_name: package.to_owned(), signature_hash: hash.to_owned() })
    }
}

/// Why an `--android-app` value was refused, as Meta would refuse it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AndroidAppError {
    #[error("{0:?}: expected PACKAGE:HASH, e.g. com.example.app:K8a/AINcGX7")]
    NotPackageAndHash(String),
    #[error(
        "package name {0:?}: at most 224 characters, two or more dot-separated parts, each starting with a \
         letter and made of letters, digits and _"
    )]
    PackageName(String),
    #[error("signature hash {0:?}: exactly 11 characters of letters, digits, + / = (the app's SMS Retriever hash)")]
    SignatureHash(String),
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
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("template name {0:?}: 1 to 512 characters of a-z, 0-9 and _")]
    Name(String),
    #[error("language {0:?}: a locale code like en, id or en_US")]
    Language(String),
    #[error("give at least one language (--lang en_US,id)")]
    NoLanguage,
    #[error("--android-app is for one-tap and zero-tap buttons, not copy-code")]
    AndroidAppForCopyCode,
    #[error("one-tap and zero-tap need at least one --android-app PACKAGE:HASH")]
    NoAndroidApp,
    #[error("at most {max} Android apps, got {0}", max = MAX_ANDROID_APPS)]
    TooManyAndroidApps(usize),
    #[error("zero-tap needs --zero-tap-terms-accepted (Meta's zero-tap terms of service)")]
    ZeroTapTermsNotAccepted,
    #[error("--zero-tap-terms-accepted goes with --button zero-tap only")]
    ZeroTapTermsWithoutZeroTap,
    /// No TTL Meta takes is short enough for the code.
    #[error(
        "the code lifetime ({lifetime} s) is shorter than Meta's shortest message TTL ({shortest} s): a message \
         could arrive with a dead code; raise the app's time limit to {shortest} s or more",
        shortest = TTL_RANGE.start()
    )]
    LifetimeBelowTtl { lifetime: u32 },
    #[error("code expiry {0} minutes: Meta allows 1 to 90")]
    CodeExpiryRange(u32),
    /// The footer would promise more time than the code has.
    #[error(
        "code expiry {minutes} minutes is longer than the code lifetime ({lifetime} s): the message would \
         promise more time than the code has; use --code-expiry-minutes {most} or less"
    )]
    CodeExpiryBeyondLifetime { minutes: u32, lifetime: u32, most: u32 },
    #[error("message TTL {0} s: Meta allows {start} to {end} s", start = TTL_RANGE.start(), end = TTL_RANGE.end())]
    TtlRange(u32),
    /// Meta might deliver the message after its code is dead.
    #[error(
        "message TTL {ttl} s is longer than the code lifetime ({lifetime} s): a message delivered after that \
         carries a dead code; use --ttl {lifetime} or less"
    )]
    TtlBeyondLifetime { ttl: u32, lifetime: u32 },
}

impl AuthTemplate {
    /// Checks Meta's rules and that messages never outlive their code (`code_lifetime_seconds`);
    /// languages are normalised (`en-US` → `en_US`) and deduplicated.
    pub fn validate(mut self, code_lifetime_seconds: u32) -> Result<Self, Invalid> {
        let lifetime = code_lifetime_seconds;
        if self.name.is_empty()
            || self.name.len() > 512
            || !self.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(Invalid::Name(self.name));
        }
        let mut languages: Vec<String> = Vec::new();
        for lang in &self.languages {
            let l = normalise_language(lang);
            if l.is_empty() || !l.chars().all(|c| c.is_ascii_alphabetic() || c == '_') {
                return Err(Invalid::Language(lang.clone()));
            }
            if !languages.contains(&l) {
                languages.push(l);
            }
        }
        if languages.is_empty() {
            return Err(Invalid::NoLanguage);
        }
        self.languages = languages;
        match self.button {
            OtpButton::CopyCode if !self.android_apps.is_empty() => return Err(Invalid::AndroidAppForCopyCode),
            OtpButton::OneTap | OtpButton::ZeroTap if self.android_apps.is_empty() => {
                return Err(Invalid::NoAndroidApp);
            }
            _ => {}
        }
        if self.android_apps.len() > MAX_ANDROID_APPS {
            return Err(Invalid::TooManyAndroidApps(self.android_apps.len()));
        }
        if self.button == OtpButton::ZeroTap && !self.zero_tap_terms_accepted {
            return Err(Invalid::ZeroTapTermsNotAccepted);
        }
        if self.button != OtpButton::ZeroTap && self.zero_tap_terms_accepted {
            return Err(Invalid::ZeroTapTermsWithoutZeroTap);
        }
        if lifetime < *TTL_RANGE.start() {
            return Err(Invalid::LifetimeBelowTtl { lifetime });
        }
        if let Some(minutes) = self.code_expiration_minutes {
            if !(1..=90).contains(&minutes) {
                return Err(Invalid::CodeExpiryRange(minutes));
            }
            // The footer tells the user how long the code lasts (and a one-tap button stays
            // enabled that long): never longer than the code does, to the minute above.
            let most = lifetime.div_ceil(60).max(1);
            if minutes > most {
                return Err(Invalid::CodeExpiryBeyondLifetime { minutes, lifetime, most });
            }
        }
        if !TTL_RANGE.contains(&self.ttl_seconds) {
            return Err(Invalid::TtlRange(self.ttl_seconds));
        }
        if self.ttl_seconds > lifetime {
            return Err(Invalid::TtlBeyondLifetime { ttl: self.ttl_seconds, lifetime });
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
    fn buttons_by_name() {
        assert_eq!(OtpButton::parse("one-tap"), Ok(OtpButton::OneTap));
        assert_eq!(OtpButton::parse("ZERO_TAP"), Ok(OtpButton::ZeroTap));
        let e = OtpButton::parse("two-tap").unwrap_err();
        assert_eq!(e, UnknownButton("two-tap".into()));
        assert_eq!(e.to_string(), r#"unknown button "two-tap": copy-code, one-tap or zero-tap"#);
    }

    #[test]
    fn android_apps_are_checked_as_meta_checks_them() {
        assert!(AndroidApp::parse("com.example.app:K8a/AINcGX7").is_ok());
        assert_eq!(
            AndroidApp::parse("com.example.app"),
            Err(AndroidAppError::NotPackageAndHash("com.example.app".into()))
        );
        assert_eq!(AndroidApp::parse("example:K8a/AINcGX7"), Err(AndroidAppError::PackageName("example".into())));
        let e = AndroidApp::parse("com.example:K8a_AINcGX7").unwrap_err();
        assert_eq!(e, AndroidAppError::SignatureHash("K8a_AINcGX7".into()));
        assert_eq!(
            e.to_string(),
            r#"signature hash "K8a_AINcGX7": exactly 11 characters of letters, digits, + / = (the app's SMS Retriever hash)"#
        );
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
        assert_eq!(e, Invalid::TtlBeyondLifetime { ttl: 600, lifetime: 300 });
        assert!(e.to_string().contains("longer than the code lifetime (300 s)"), "{e}");
        assert!(AuthTemplate { ttl_seconds: 10, ..copy_code() }.validate(300).is_err());
        assert!(AuthTemplate { code_expiration_minutes: Some(91), ..copy_code() }.validate(300).is_err());
        // The footer's expiry never promises more than the code's lifetime (to the minute above).
        let e = AuthTemplate { code_expiration_minutes: Some(10), ..copy_code() }.validate(300).unwrap_err();
        assert_eq!(e, Invalid::CodeExpiryBeyondLifetime { minutes: 10, lifetime: 300, most: 5 });
        assert!(e.to_string().contains("--code-expiry-minutes 5 or less"), "{e}");
        assert!(AuthTemplate { code_expiration_minutes: Some(5), ..copy_code() }.validate(300).is_ok());
        assert!(AuthTemplate { code_expiration_minutes: Some(1), ttl_seconds: 30, ..copy_code() }.validate(30).is_ok());
        // A code lifetime under Meta's shortest TTL cannot be honoured by any TTL.
        let e = AuthTemplate { ttl_seconds: 30, ..copy_code() }.validate(10).unwrap_err();
        assert_eq!(e, Invalid::LifetimeBelowTtl { lifetime: 10 });
        assert!(e.to_string().contains("shorter than Meta's shortest message TTL (30 s)"), "{e}");
        assert!(AuthTemplate { button: OtpButton::OneTap, ..copy_code() }.validate(300).is_err());
        let app = AndroidApp::parse("com.example.app:K8a/AINcGX7").unwrap();
        let zero = AuthTemplate { button: OtpButton::ZeroTap, android_apps: vec![app.clone()], ..copy_code() };
        assert_eq!(zero.clone().validate(300), Err(Invalid::ZeroTapTermsNotAccepted));
        assert!(AuthTemplate { zero_tap_terms_accepted: true, ..zero }.validate(300).is_ok());
        let six = AuthTemplate { button: OtpButton::OneTap, android_apps: vec![app; 6], ..copy_code() };
        assert_eq!(six.validate(300).unwrap_err().to_string(), "at most 5 Android apps, got 6");
        assert!(AuthTemplate { name: "Bad-Name".into(), ..copy_code() }.validate(300).is_err());
    }
}
