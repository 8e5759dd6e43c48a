//! Apps, their settings and their templates.

use rusqlite::{params, Connection, OptionalExtension, Row};
use uuid::Uuid;
use waotp_core::{CallbackMode, Category, RuleMode, Template};

use super::uuid_from;
use crate::{decode_reverse_texts, encode_reverse_texts, AppRecord, AppSettings, Result, StoreError, WhatsAppSender};

const APP_COLUMNS: &str = "app_id, name, api_key_hash, code_length, time_limit, template_name, lang_code, \
     return_code, created_at, callback_secret, callback_mode, callback_signing, quota, rps_limit, \
     msisdn_send_limit, msisdn_send_window, msisdn_verify_limit, msisdn_verify_window, ip_send_limit, \
     allowed_countries, sequential_mode, conversion_mode, wa_phone_number_id, wa_access_token, backup_templates, \
     reverse_texts, reverse_reply, billable_ceiling";

/// A ceiling as the integer the schema stores (capped: no app sends 2^63 messages a month).
fn ceiling_param(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A comma-separated list as stored.
fn names(s: &str) -> Vec<String> {
    s.split(',').filter(|c| !c.is_empty()).map(str::to_owned).collect()
}

fn app_from(row: &Row<'_>) -> rusqlite::Result<AppRecord> {
    let hash: Vec<u8> = row.get(2)?;
    let mode: String = row.get(10)?;
    let countries: String = row.get(19)?;
    let rule = |i: usize| -> rusqlite::Result<RuleMode> {
        let s: String = row.get(i)?;
        Ok(RuleMode::parse(&s).unwrap_or(RuleMode::Monitor))
    };
    Ok(AppRecord {
        app_id: uuid_from(row.get(0)?)?,
        name: row.get(1)?,
        api_key_hash: hash.try_into().unwrap_or([0; 32]),
        settings: AppSettings {
            code_length: row.get(3)?,
            time_limit: row.get(4)?,
            template_name: row.get(5)?,
            lang_code: row.get(6)?,
            return_code: row.get(7)?,
            callback_mode: CallbackMode::parse(&mode).unwrap_or(CallbackMode::Get),
            callback_signing: row.get(11)?,
            rps_limit: row.get(13)?,
            msisdn_send_limit: row.get(14)?,
            msisdn_send_window: row.get(15)?,
            msisdn_verify_limit: row.get(16)?,
            msisdn_verify_window: row.get(17)?,
            ip_send_limit: row.get(18)?,
            allowed_countries: countries.split(',').filter(|c| !c.is_empty()).map(str::to_owned).collect(),
            sequential_mode: rule(20)?,
            conversion_mode: rule(21)?,
            backup_templates: names(&row.get::<_, String>(24)?),
            reverse_texts: decode_reverse_texts(&row.get::<_, String>(25)?),
            reverse_reply: row.get(26)?,
            billable_ceiling: row.get::<_, Option<i64>>(27)?.map(|n| n.max(0) as u64),
        },
        quota: row.get(12)?,
        sender: match (row.get::<_, Option<String>>(22)?, row.get::<_, Option<String>>(23)?) {
            (Some(phone_number_id), Some(access_token)) => Some(WhatsAppSender { phone_number_id, access_token }),
            _ => None,
        },
        created_at_ms: row.get(8)?,
        callback_secret: row.get(9)?,
    })
}

pub(super) fn create(c: &Connection, app: &AppRecord) -> Result<()> {
    let s = &app.settings;
    c.prepare_cached(&format!(
        "INSERT INTO apps ({APP_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, \
         ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28)"
    ))?
    .execute(params![
        app.app_id.as_bytes(),
        app.name,
        &app.api_key_hash[..],
        s.code_length,
        s.time_limit,
        s.template_name,
        s.lang_code,
        s.return_code,
        app.created_at_ms,
        app.callback_secret,
        s.callback_mode.as_str(),
        s.callback_signing,
        app.quota,
        s.rps_limit,
        s.msisdn_send_limit,
        s.msisdn_send_window,
        s.msisdn_verify_limit,
        s.msisdn_verify_window,
        s.ip_send_limit,
        s.allowed_countries.join(","),
        s.sequential_mode.as_str(),
        s.conversion_mode.as_str(),
        app.sender.as_ref().map(|w| &w.phone_number_id),
        app.sender.as_ref().map(|w| &w.access_token),
        s.backup_templates.join(","),
        encode_reverse_texts(&s.reverse_texts),
        s.reverse_reply,
        s.billable_ceiling.map(ceiling_param),
    ])?;
    Ok(())
}

pub(super) fn get(c: &Connection, app_id: Uuid) -> Result<Option<AppRecord>> {
    Ok(c.prepare_cached(&format!("SELECT {APP_COLUMNS} FROM apps WHERE app_id = ?1"))?
        .query_row([app_id.as_bytes()], app_from)
        .optional()?)
}

pub(super) fn list(c: &Connection) -> Result<Vec<AppRecord>> {
    let mut stmt = c.prepare_cached(&format!("SELECT {APP_COLUMNS} FROM apps ORDER BY created_at, name"))?;
    let rows = stmt.query_map([], app_from)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn update_settings(c: &Connection, app_id: Uuid, s: &AppSettings) -> Result<bool> {
    let n = c
        .prepare_cached(
            "UPDATE apps SET code_length = ?2, time_limit = ?3, template_name = ?4, lang_code = ?5, \
             return_code = ?6, callback_mode = ?7, callback_signing = ?8, rps_limit = ?9, msisdn_send_limit = ?10, \
             msisdn_send_window = ?11, msisdn_verify_limit = ?12, msisdn_verify_window = ?13, ip_send_limit = ?14, \
             allowed_countries = ?15, sequential_mode = ?16, conversion_mode = ?17, backup_templates = ?18, \
             reverse_texts = ?19, reverse_reply = ?20, billable_ceiling = ?21 WHERE app_id = ?1",
        )?
        .execute(params![
            app_id.as_bytes(),
            s.code_length,
            s.time_limit,
            s.template_name,
            s.lang_code,
            s.return_code,
            s.callback_mode.as_str(),
            s.callback_signing,
            s.rps_limit,
            s.msisdn_send_limit,
            s.msisdn_send_window,
            s.msisdn_verify_limit,
            s.msisdn_verify_window,
            s.ip_send_limit,
            s.allowed_countries.join(","),
            s.sequential_mode.as_str(),
            s.conversion_mode.as_str(),
            s.backup_templates.join(","),
            encode_reverse_texts(&s.reverse_texts),
            s.reverse_reply,
            s.billable_ceiling.map(ceiling_param),
        ])?;
    Ok(n == 1)
}

pub(super) fn set_quota(c: &Connection, app_id: Uuid, quota: Option<i64>) -> Result<bool> {
    let n =
        c.prepare_cached("UPDATE apps SET quota = ?2 WHERE app_id = ?1")?.execute(params![app_id.as_bytes(), quota])?;
    Ok(n == 1)
}

pub(super) fn add_quota(c: &Connection, app_id: Uuid, amount: i64) -> Result<Option<i64>> {
    Ok(c.prepare_cached("UPDATE apps SET quota = MAX(COALESCE(quota, 0) + ?2, 0) WHERE app_id = ?1 RETURNING quota")?
        .query_row(params![app_id.as_bytes(), amount], |r| r.get(0))
        .optional()?)
}

pub(super) fn set_key_hash(c: &Connection, app_id: Uuid, hash: &[u8; 32]) -> Result<bool> {
    let n = c
        .prepare_cached("UPDATE apps SET api_key_hash = ?2 WHERE app_id = ?1")?
        .execute(params![app_id.as_bytes(), &hash[..]])?;
    Ok(n == 1)
}

pub(super) fn set_callback_secret(c: &Connection, app_id: Uuid, secret: &str) -> Result<bool> {
    let n = c
        .prepare_cached("UPDATE apps SET callback_secret = ?2 WHERE app_id = ?1")?
        .execute(params![app_id.as_bytes(), secret])?;
    Ok(n == 1)
}

pub(super) fn put_template(c: &Connection, app_id: Uuid, t: &Template) -> Result<bool> {
    if get(c, app_id)?.is_none() {
        return Ok(false);
    }
    c.prepare_cached(
        "INSERT OR REPLACE INTO templates (app_id, name, language, category, body, code_placeholder, copy_code_button) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        app_id.as_bytes(),
        t.name,
        t.language,
        t.category.as_str(),
        t.body,
        t.code_placeholder,
        t.copy_code_button
    ])?;
    Ok(true)
}

pub(super) fn list_templates(c: &Connection, app_id: Uuid) -> Result<Vec<Template>> {
    let mut stmt = c.prepare_cached(
        "SELECT name, language, category, body, code_placeholder, copy_code_button FROM templates \
         WHERE app_id = ?1 ORDER BY name, language",
    )?;
    let rows = stmt.query_map([app_id.as_bytes()], |r| {
        Ok((
            r.get::<_, String>(2)?,
            Template {
                name: r.get(0)?,
                language: r.get(1)?,
                category: Category::Utility,
                body: r.get(3)?,
                code_placeholder: r.get(4)?,
                copy_code_button: r.get(5)?,
            },
        ))
    })?;
    rows.map(|r| {
        let (category, mut t) = r?;
        t.category =
            Category::parse(&category).ok_or_else(|| StoreError::Corrupt(format!("template category {category:?}")))?;
        Ok(t)
    })
    .collect()
}

pub(super) fn delete_template(c: &Connection, app_id: Uuid, name: &str, language: &str) -> Result<bool> {
    let n = c
        .prepare_cached("DELETE FROM templates WHERE app_id = ?1 AND name = ?2 AND language = ?3")?
        .execute(params![app_id.as_bytes(), name, language])?;
    Ok(n == 1)
}

pub(super) fn set_sender(c: &Connection, app_id: Uuid, sender: Option<&WhatsAppSender>) -> Result<bool> {
    let n = c
        .prepare_cached("UPDATE apps SET wa_phone_number_id = ?2, wa_access_token = ?3 WHERE app_id = ?1")?
        .execute(params![app_id.as_bytes(), sender.map(|w| &w.phone_number_id), sender.map(|w| &w.access_token)])?;
    Ok(n == 1)
}
