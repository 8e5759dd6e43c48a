//! Automatic template failover: a message carries its app's backup templates, rendered in its
//! language; at delivery the first usable one goes out when the primary is known unusable
//! (see [`super::SenderHealth::choose`]), and sends return to the primary once Meta approves it
//! again. A send Meta answers 132015/132016/132001 marks its template unusable and is tried
//! again at once with the next usable backup.

use waotp_core::{OtpCode, RenderedMessage};

use super::SenderHealth;
use crate::auth::CachedApp;

/// Meta's errors that mean the template itself cannot be sent, and the status it is then
/// recorded with (whatsapp-operations.md §6).
pub fn unusable_by_error(code: i64) -> Option<&'static str> {
    match code {
        132015 => Some("PAUSED"),
        132016 => Some("DISABLED"),
        132001 => Some("NOT_FOUND"),
        _ => None,
    }
}

/// The app's backup templates rendered for one message: each in `language`, with its own
/// registered shape if it has one (as the primary is: [`waotp_core::template::select`]). A
/// backup that is registered but not in this language, or that the content does not fill, is
/// left out.
pub fn render_backups(
    app: &CachedApp,
    primary: &str,
    language: &str,
    code: &OtpCode,
    content: &[String],
) -> Vec<RenderedMessage> {
    app.record
        .settings
        .backup_templates
        .iter()
        .filter(|name| name.as_str() != primary)
        .filter_map(|name| app.template(name, language).ok()?.render(code, content).ok())
        .collect()
}

impl SenderHealth {
    /// The message to send now: the primary if usable, else the first usable backup not in
    /// `tried`; with none usable, the primary (Meta answers, and the send reports 7 with
    /// Meta's reason, as without failover). `None` once every candidate has been tried.
    pub fn choose<'a>(
        &self,
        primary: &'a RenderedMessage,
        backups: &'a [RenderedMessage],
        tried: &[&str],
    ) -> Option<&'a RenderedMessage> {
        let snapshot = self.snapshot();
        let candidates = std::iter::once(primary).chain(backups).filter(|m| !tried.contains(&m.template_name.as_str()));
        let mut first = None;
        for m in candidates {
            first.get_or_insert(m);
            if snapshot.usable(&m.template_name, &m.language) {
                self.note_in_use(primary, backups, m);
                return Some(m);
            }
        }
        // Nothing usable: the first untried one (the primary when nothing was tried yet).
        if tried.is_empty() {
            return Some(primary);
        }
        first
    }

    /// Logs (once per switch, at warn) and counts a change of the template a primary's
    /// messages go out as: per primary, language and list of backups (two apps sharing a
    /// primary with different backups each switch once, not at every message).
    fn note_in_use(&self, primary: &RenderedMessage, backups: &[RenderedMessage], chosen: &RenderedMessage) {
        let mut in_use = self.in_use.lock().expect("templates in use");
        // The common case, with no key built: the primary, and no switch ever made.
        if in_use.is_empty() && std::ptr::eq(primary, chosen) {
            return;
        }
        let mut key = (primary.template_name.clone(), primary.language.clone());
        for b in backups {
            key.0.push('\0');
            key.0.push_str(&b.template_name);
        }
        let before = in_use.get(&key).map_or(primary.template_name.as_str(), String::as_str);
        if before == chosen.template_name {
            return;
        }
        let back = chosen.template_name == primary.template_name;
        if back {
            tracing::warn!(
                template = %primary.template_name,
                language = %primary.language,
                from = %before,
                "the template is usable again: sends return to it"
            );
        } else {
            tracing::warn!(
                template = %primary.template_name,
                language = %primary.language,
                backup = %chosen.template_name,
                "the template is unusable: sends use a backup template"
            );
        }
        self.metrics.template_switch(if back { "to_primary" } else { "to_backup" });
        if in_use.len() > 1000 {
            in_use.clear();
        }
        in_use.insert(key, chosen.template_name.clone());
    }
}
