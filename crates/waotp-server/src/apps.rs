//! Creating and changing apps: shared by the CLI (and later the admin API).

use uuid::Uuid;
use waotp_core::code::GENERATED_CODE_LEN;
use waotp_core::template::{validate_language, validate_name};
use waotp_core::{generate_api_key, hash_api_key};
use waotp_store::{AppRecord, AppSettings, AppStore};

use crate::send::TIME_LIMIT;

/// Backup templates an app may name.
pub const MAX_BACKUP_TEMPLATES: usize = 5;
/// Prefilled texts (languages) an app may set, and the longest of one, in characters (the
/// link holds it percent-encoded, and a QR code of a long link is hard to scan).
pub const MAX_REVERSE_TEXTS: usize = 20;
pub const MAX_REVERSE_TEXT_CHARS: usize = 200;
/// The longest prefilled text once percent-encoded in its `wa.me` link: a QR code holds 2,331
/// bytes at most at the error correction waotp uses (version 40-M), and the link's other
/// parts take some 40 (`https://wa.me/` + up to 15 digits + `?text=`).
pub const MAX_REVERSE_LINK_TEXT_BYTES: usize = 2_000;
/// The longest reply after a reverse verification (Meta allows 4,096 characters).
pub const MAX_REVERSE_REPLY_CHARS: usize = 1024;

/// Checks settings before they are stored; the message names the setting.
pub fn validate_settings(s: &AppSettings) -> Result<(), String> {
    if !GENERATED_CODE_LEN.contains(&(s.code_length as usize)) {
        return Err("code length must be from 4 to 10".into());
    }
    if !TIME_LIMIT.contains(&u64::from(s.time_limit)) {
        return Err("time limit must be from 1 to 86400 seconds".into());
    }
    validate_name(&s.template_name).map_err(|e| format!("template: {e}"))?;
    if s.rps_limit == Some(0) || s.ip_send_limit == Some(0) || s.msisdn_send_limit == 0 || s.msisdn_verify_limit == 0 {
        return Err("limits must be at least 1 (leave a limit unset for none)".into());
    }
    if s.msisdn_send_window == 0 || s.msisdn_verify_window == 0 {
        return Err("limit windows must be at least 1 second".into());
    }
    if s.msisdn_verify_limit <= waotp_core::MAX_WRONG_ATTEMPTS {
        return Err(format!(
            "the verify limit must stay above the {} wrong tries a code allows",
            waotp_core::MAX_WRONG_ATTEMPTS
        ));
    }
    for cc in &s.allowed_countries {
        if cc.is_empty() || cc.len() > 3 || !cc.bytes().all(|b| b.is_ascii_digit()) || cc.starts_with('0') {
            return Err(format!("allowed countries must be calling codes like 62 or 1, not {cc:?}"));
        }
    }

    validate_language(&s.lang_code).map_err(|e| format!("language: {e}"))?;
    if s.backup_templates.len() > MAX_BACKUP_TEMPLATES {
        return Err(format!("at most {MAX_BACKUP_TEMPLATES} backup templates"));
    }
    for name in &s.backup_templates {
        validate_name(name).map_err(|e| format!("backup template {name:?}: {e}"))?;
    }
    if s.reverse_texts.len() > MAX_REVERSE_TEXTS {
        return Err(format!("at most {MAX_REVERSE_TEXTS} reverse texts (one per language)"));
    }
    for (i, (lang, text)) in s.reverse_texts.iter().enumerate() {
        validate_language(lang).map_err(|e| format!("reverse text language: {e}"))?;
        if s.reverse_texts[..i].iter().any(|(l, _)| l == lang) {
            return Err(format!("reverse text for {lang}: given twice"));
        }
        if let Some(c) = waotp_core::reverse::not_one_line(text) {
            return Err(format!(
                "reverse text for {lang}: U+{:04X} refused: no control characters, line or paragraph separators \
                 or bidi controls (a prefilled text is one line, shown as written)",
                u32::from(c)
            ));
        }
        if text.matches("{code}").count() != 1 {
            return Err(format!("reverse text for {lang}: must hold {{code}} exactly once"));
        }
        let chars = text.chars().count();
        if text.trim() != text || chars > MAX_REVERSE_TEXT_CHARS {
            return Err(format!(
                "reverse text for {lang}: 1 to {MAX_REVERSE_TEXT_CHARS} characters, without leading or trailing spaces"
            ));
        }
        // With a code in it, as a link: the link must fit a QR code. (Where {code} stands does
        // not matter: a message verifies only when it is the whole text.)
        let sample = waotp_core::OtpCode::from_guess("ABCDEFGHJK");
        let filled = waotp_core::reverse::prefilled_text(Some(text), lang, &sample);
        let encoded = percent_encoding::utf8_percent_encode(&filled, percent_encoding::NON_ALPHANUMERIC)
            .map(str::len)
            .sum::<usize>();
        if encoded > MAX_REVERSE_LINK_TEXT_BYTES {
            return Err(format!(
                "reverse text for {lang}: {encoded} bytes once percent-encoded in a link, at most \
                 {MAX_REVERSE_LINK_TEXT_BYTES} (its QR code must stay scannable)"
            ));
        }
    }
    if let Some(reply) = &s.reverse_reply {
        if reply.trim().is_empty() || reply.chars().count() > MAX_REVERSE_REPLY_CHARS {
            return Err(format!("reverse reply: 1 to {MAX_REVERSE_REPLY_CHARS} characters (or none)"));
        }
        if let Some(c) = waotp_core::reverse::not_one_line(&reply.replace('\n', " ")) {
            return Err(format!(
                "reverse reply: U+{:04X} refused: no control characters, separators or bidi controls \
                 (lines break with \\n alone)",
                u32::from(c)
            ));
        }
    }
    Ok(())
}

/// Why an app could not be created: what was asked for (a 400), or the store (a 503 when the
/// database is unavailable, else a 500): never a database failure dressed as a bad request.
#[derive(Debug, thiserror::Error)]
pub enum CreateAppError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] waotp_store::StoreError),
}

impl From<CreateAppError> for crate::ApiError {
    fn from(e: CreateAppError) -> Self {
        match e {
            CreateAppError::Invalid(reason) => crate::ApiError::Validation(reason),
            CreateAppError::Store(e) => e.into(),
        }
    }
}

/// A new app, with what is shown of it once: its API key (which exists nowhere else
/// afterwards) and its callback signing secret (stored only sealed).
pub struct NewApp {
    /// As stored: its callback secret sealed.
    pub app: AppRecord,
    pub api_key: String,
    pub callback_secret: String,
}

/// Creates an app; its callback secret is stored sealed under the server secret (`key`).
pub async fn create_app(
    store: &(impl AppStore + ?Sized),
    key: &waotp_core::CodeKey,
    name: &str,
    settings: AppSettings,
    quota: Option<i64>,
    now_ms: i64,
) -> Result<NewApp, CreateAppError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(CreateAppError::Invalid("app name must be 1 to 200 characters".into()));
    }
    validate_settings(&settings).map_err(CreateAppError::Invalid)?;
    let api_key = generate_api_key();
    let app_id = Uuid::new_v4();
    let callback_secret = waotp_core::callback::generate_secret();
    let app = AppRecord {
        app_id,
        name: name.to_owned(),
        api_key_hash: hash_api_key(&api_key),
        callback_secret: key.seal_callback_secret(&app_id, &callback_secret),
        settings,
        quota,
        sender: None,
        created_at_ms: now_ms,
    };
    store.create_app(app.clone()).await?;
    Ok(NewApp { app, api_key, callback_secret })
}

/// A change to an app, as the CLI's `app update`, the admin API's `PATCH /admin/apps/{id}`
/// and the dashboard ask for it: settings to patch, a quota to set, a top-up.
#[derive(Debug, Default)]
pub struct AppUpdate {
    pub settings: crate::admin::SettingsPatch,
    /// `Some(None)`: unlimited.
    pub quota: Option<Option<i64>>,
    pub quota_add: Option<i64>,
}

/// Why an app was not changed.
#[derive(Debug, thiserror::Error)]
pub enum UpdateAppError {
    #[error("no app with id {0}")]
    NotFound(Uuid),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] waotp_store::StoreError),
}

impl From<UpdateAppError> for crate::ApiError {
    fn from(e: UpdateAppError) -> Self {
        match e {
            UpdateAppError::NotFound(_) => crate::ApiError::AppNotFound,
            UpdateAppError::Invalid(reason) => crate::ApiError::Validation(reason),
            UpdateAppError::Store(e) => e.into(),
        }
    }
}

/// Applies `update` to an app (settings checked before anything is stored); the app as it is
/// afterwards. The one path every surface changes an app through.
pub async fn update_app(
    store: &(impl AppStore + ?Sized),
    app_id: Uuid,
    update: AppUpdate,
) -> Result<AppRecord, UpdateAppError> {
    let app = store.get_app(app_id).await?.ok_or(UpdateAppError::NotFound(app_id))?;
    if update.quota.flatten().is_some_and(|q| q < 0) {
        return Err(UpdateAppError::Invalid("quota must be 0 or more, or unlimited".into()));
    }
    let settings = update.settings.apply(app.settings.clone());
    validate_settings(&settings).map_err(UpdateAppError::Invalid)?;
    store.update_app_settings(app_id, settings).await?;
    if let Some(quota) = update.quota {
        store.set_quota(app_id, quota).await?;
    }
    if let Some(n) = update.quota_add {
        store.add_quota(app_id, n).await?;
    }
    store.get_app(app_id).await?.ok_or(UpdateAppError::NotFound(app_id))
}

/// Gives an app a new API key (the old one stops working); `None` if there is no such app.
pub async fn rotate_api_key(store: &(impl AppStore + ?Sized), app_id: Uuid) -> waotp_store::Result<Option<String>> {
    let api_key = generate_api_key();
    Ok(store.set_api_key_hash(app_id, hash_api_key(&api_key)).await?.then_some(api_key))
}

/// Gives an app a new callback signing secret, stored sealed under the server secret (`key`);
/// the secret, or `None` if there is no such app.
pub async fn rotate_callback_secret(
    store: &(impl AppStore + ?Sized),
    key: &waotp_core::CodeKey,
    app_id: Uuid,
) -> waotp_store::Result<Option<String>> {
    let secret = waotp_core::callback::generate_secret();
    Ok(store.set_callback_secret(app_id, key.seal_callback_secret(&app_id, &secret)).await?.then_some(secret))
}

/// An app's callback signing secret, opened: stored sealed, or as given by an older waotp
/// (until the next start seals it, see [`seal_stored_secrets`]).
pub fn callback_secret(
    key: &waotp_core::CodeKey,
    app: &AppRecord,
) -> Result<String, waotp_core::code::OpenSecretError> {
    match key.open_callback_secret(&app.app_id, &app.callback_secret) {
        Err(waotp_core::code::OpenSecretError::NotSealed) => Ok(app.callback_secret.clone()),
        opened => opened,
    }
}

/// Gives an app its own WhatsApp number (`Some((phone number id, access token))`) or takes it
/// back to the server's (`None`). The token is stored sealed under the server secret (see
/// `CodeKey::seal_secret`): a database dump holds no usable token. False: no such app.
pub async fn set_sender(
    store: &(impl AppStore + ?Sized),
    key: &waotp_core::CodeKey,
    app_id: Uuid,
    sender: Option<(String, String)>,
) -> waotp_store::Result<bool> {
    let sealed = sender.map(|(phone_number_id, token)| waotp_store::WhatsAppSender {
        phone_number_id,
        access_token: key.seal_secret(&app_id, &token),
    });
    store.set_sender(app_id, sealed).await
}

/// What [`seal_stored_secrets`] found: the secrets it sealed, and the sealed ones that do not
/// open with this server secret (sealed under another: a node or a CLI given another secret).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sealed {
    pub access_tokens: usize,
    pub callback_secrets: usize,
    pub unopenable: usize,
}

/// Seals the per-app access tokens and callback signing secrets an older waotp stored as
/// given, and counts the sealed ones that do not open with `key`. Run at start: with several
/// nodes each may seal the same secret, which is harmless (every node holds the same server
/// secret).
pub async fn seal_stored_secrets(
    store: &(impl AppStore + ?Sized),
    key: &waotp_core::CodeKey,
) -> waotp_store::Result<Sealed> {
    use waotp_core::code::OpenSecretError::{NotSealed, Refused};
    let mut sealed = Sealed::default();
    for app in store.list_apps().await? {
        match key.open_callback_secret(&app.app_id, &app.callback_secret) {
            Err(NotSealed) => {
                let secret = key.seal_callback_secret(&app.app_id, &app.callback_secret);
                store.set_callback_secret(app.app_id, secret).await?;
                sealed.callback_secrets += 1;
            }
            Err(Refused) => sealed.unopenable += 1,
            Ok(_) => {}
        }
        let Some(sender) = app.sender else { continue };
        match key.open_secret(&app.app_id, &sender.access_token) {
            Err(NotSealed) => {
                set_sender(store, key, app.app_id, Some((sender.phone_number_id, sender.access_token))).await?;
                sealed.access_tokens += 1;
            }
            Err(Refused) => sealed.unopenable += 1,
            Ok(_) => {}
        }
    }
    Ok(sealed)
}

/// Whether `key` is the server secret the apps' secrets are sealed under: true when one of
/// them opens with it, or none is sealed yet. The CLI checks it before it seals a new one, so
/// that a CLI given another secret than the servers' (a key file where the servers read
/// `WAOTP_SERVER_SECRET`) refuses instead of sealing what no server can open.
pub async fn key_opens_stored_secrets(
    store: &(impl AppStore + ?Sized),
    key: &waotp_core::CodeKey,
) -> waotp_store::Result<bool> {
    let mut sealed_any = false;
    for app in store.list_apps().await? {
        let token = app.sender.as_ref().map(|s| key.open_secret(&app.app_id, &s.access_token));
        for opened in [Some(key.open_callback_secret(&app.app_id, &app.callback_secret)), token].into_iter().flatten() {
            match opened {
                Ok(_) => return Ok(true),
                Err(waotp_core::code::OpenSecretError::Refused) => sealed_any = true,
                Err(waotp_core::code::OpenSecretError::NotSealed) => {}
            }
        }
    }
    Ok(!sealed_any)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A prefilled text is one line, shown as written: every Unicode line break and bidi
    /// control is refused, naming the character; the reply keeps its `\n` and nothing else.
    #[test]
    fn reverse_texts_refuse_every_line_break_and_bidi_control() {
        let with_text =
            |text: String| AppSettings { reverse_texts: vec![("en".into(), text)], ..AppSettings::default() };
        let refused = [
            '\n', '\r', '\u{0B}', '\u{0C}', '\u{85}', '\u{2028}', '\u{2029}', '\u{061C}', '\u{200E}', '\u{200F}',
            '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
        ];
        for c in refused {
            let e = validate_settings(&with_text(format!("Kode {{code}} {c}x"))).unwrap_err();
            assert!(e.contains(&format!("U+{:04X} refused", c as u32)), "{e}");
            let reply = AppSettings { reverse_reply: Some(format!("Thanks{c}!")), ..AppSettings::default() };
            if c == '\n' {
                assert_eq!(validate_settings(&reply), Ok(()));
            } else {
                let e = validate_settings(&reply).unwrap_err();
                assert!(e.starts_with("reverse reply") && e.contains(&format!("U+{:04X}", c as u32)), "{e}");
            }
        }
        assert_eq!(validate_settings(&with_text("رمز التحقق {code}".into())), Ok(()));
    }
}
