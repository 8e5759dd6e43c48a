//! Apps, their settings and their templates.

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use uuid::Uuid;
use waotp_core::{CallbackMode, Category, RuleMode, Template};

use super::{exec, query, query_opt, small};
use crate::{decode_reverse_texts, encode_reverse_texts, AppRecord, AppSettings, Result, StoreError, WhatsAppSender};

const APP_COLUMNS: &str = "app_id, name, api_key_hash, code_length, time_limit, template_name, lang_code, \
     return_code, created_at, callback_secret, callback_mode, callback_signing, quota, rps_limit, \
     msisdn_send_limit, msisdn_send_window, msisdn_verify_limit, msisdn_verify_window, ip_send_limit, \
     allowed_countries, sequential_mode, conversion_mode, wa_phone_number_id, wa_access_token, backup_templates, \
     reverse_texts, reverse_reply, billable_ceiling";

fn optional_small(v: Option<i64>) -> Result<Option<u32>> {
    v.map(small).transpose()
}

/// A comma-separated list as stored.
fn names(s: &str) -> Vec<String> {
    s.split(',').filter(|c| !c.is_empty()).map(str::to_owned).collect()
}

fn app_from(row: &Row) -> Result<AppRecord> {
    let hash: Vec<u8> = row.get(2);
    let mode: String = row.get(10);
    let countries: String = row.get(19);
    let rule = |i: usize| RuleMode::parse(&row.get::<_, String>(i)).unwrap_or(RuleMode::Monitor);
    Ok(AppRecord {
        app_id: row.get(0),
        name: row.get(1),
        api_key_hash: hash.try_into().unwrap_or([0; 32]),
        settings: AppSettings {
            code_length: small(row.get(3))?,
            time_limit: small(row.get(4))?,
            template_name: row.get(5),
            lang_code: row.get(6),
            return_code: row.get(7),
            callback_mode: CallbackMode::parse(&mode).unwrap_or(CallbackMode::Get),
            callback_signing: row.get(11),
            rps_limit: optional_small(row.get(13))?,
            msisdn_send_limit: small(row.get(14))?,
            msisdn_send_window: small(row.get(15))?,
            msisdn_verify_limit: small(row.get(16))?,
            msisdn_verify_window: small(row.get(17))?,
            ip_send_limit: optional_small(row.get(18))?,
            allowed_countries: countries.split(',').filter(|c| !c.is_empty()).map(str::to_owned).collect(),
            sequential_mode: rule(20),
            conversion_mode: rule(21),
            backup_templates: names(&row.get::<_, String>(24)),
            reverse_texts: decode_reverse_texts(&row.get::<_, String>(25)),
            reverse_reply: row.get(26),
            billable_ceiling: row.get::<_, Option<i64>>(27).map(|n| n.max(0) as u64),
        },
        quota: row.get(12),
        sender: match (row.get::<_, Option<String>>(22), row.get::<_, Option<String>>(23)) {
            (Some(phone_number_id), Some(access_token)) => Some(WhatsAppSender { phone_number_id, access_token }),
            _ => None,
        },
        created_at_ms: row.get(8),
        callback_secret: row.get(9),
    })
}

/// The settings as the bigint parameters the schema stores.
struct SettingsParams {
    code_length: i64,
    time_limit: i64,
    rps_limit: Option<i64>,
    msisdn_send_limit: i64,
    msisdn_send_window: i64,
    msisdn_verify_limit: i64,
    msisdn_verify_window: i64,
    ip_send_limit: Option<i64>,
    allowed_countries: String,
    billable_ceiling: Option<i64>,
}

impl SettingsParams {
    fn of(s: &AppSettings) -> Self {
        SettingsParams {
            code_length: s.code_length.into(),
            time_limit: s.time_limit.into(),
            rps_limit: s.rps_limit.map(i64::from),
            msisdn_send_limit: s.msisdn_send_limit.into(),
            msisdn_send_window: s.msisdn_send_window.into(),
            msisdn_verify_limit: s.msisdn_verify_limit.into(),
            msisdn_verify_window: s.msisdn_verify_window.into(),
            ip_send_limit: s.ip_send_limit.map(i64::from),
            allowed_countries: s.allowed_countries.join(","),
            billable_ceiling: s.billable_ceiling.map(|n| i64::try_from(n).unwrap_or(i64::MAX)),
        }
    }
}

pub(super) async fn create<C: GenericClient>(c: &C, app: &AppRecord) -> Result<()> {
    let s = &app.settings;
    let p = SettingsParams::of(s);
    let sender = app.sender.as_ref();
    exec(
        c,
        &format!(
            "INSERT INTO apps ({APP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
             $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28)"
        ),
        &[
            &app.app_id,
            &app.name,
            &&app.api_key_hash[..],
            &p.code_length,
            &p.time_limit,
            &s.template_name,
            &s.lang_code,
            &s.return_code,
            &app.created_at_ms,
            &app.callback_secret,
            &s.callback_mode.as_str(),
            &s.callback_signing,
            &app.quota,
            &p.rps_limit,
            &p.msisdn_send_limit,
            &p.msisdn_send_window,
            &p.msisdn_verify_limit,
            &p.msisdn_verify_window,
            &p.ip_send_limit,
            &p.allowed_countries,
            &s.sequential_mode.as_str(),
            &s.conversion_mode.as_str(),
            &sender.map(|w| w.phone_number_id.as_str()),
            &sender.map(|w| w.access_token.as_str()),
            &s.backup_templates.join(","),
            &encode_reverse_texts(&s.reverse_texts),
            &s.reverse_reply,
            &p.billable_ceiling,
        ],
    )
    .await?;
    Ok(())
}

pub(super) async fn get<C: GenericClient>(c: &C, app_id: Uuid) -> Result<Option<AppRecord>> {
    query_opt(c, &format!("SELECT {APP_COLUMNS} FROM apps WHERE app_id = $1"), &[&app_id])
        .await?
        .map(|row| app_from(&row))
        .transpose()
}

pub(super) async fn list<C: GenericClient>(c: &C) -> Result<Vec<AppRecord>> {
    query(c, &format!("SELECT {APP_COLUMNS} FROM apps ORDER BY created_at, name"), &[])
        .await?
        .iter()
        .map(app_from)
        .collect()
}

pub(super) async fn update_settings<C: GenericClient>(c: &C, app_id: Uuid, s: &AppSettings) -> Result<bool> {
    let p = SettingsParams::of(s);
    let n = exec(
        c,
        "UPDATE apps SET code_length = $2, time_limit = $3, template_name = $4, lang_code = $5, \
         return_code = $6, callback_mode = $7, callback_signing = $8, rps_limit = $9, msisdn_send_limit = $10, \
         msisdn_send_window = $11, msisdn_verify_limit = $12, msisdn_verify_window = $13, ip_send_limit = $14, \
         allowed_countries = $15, sequential_mode = $16, conversion_mode = $17, backup_templates = $18, \
         reverse_texts = $19, reverse_reply = $20, billable_ceiling = $21 WHERE app_id = $1",
        &[
            &app_id,
            &p.code_length,
            &p.time_limit,
            &s.template_name,
            &s.lang_code,
            &s.return_code,
            &s.callback_mode.as_str(),
            &s.callback_signing,
            &p.rps_limit,
            &p.msisdn_send_limit,
            &p.msisdn_send_window,
            &p.msisdn_verify_limit,
            &p.msisdn_verify_window,
            &p.ip_send_limit,
            &p.allowed_countries,
            &s.sequential_mode.as_str(),
            &s.conversion_mode.as_str(),
            &s.backup_templates.join(","),
            &encode_reverse_texts(&s.reverse_texts),
            &s.reverse_reply,
            &p.billable_ceiling,
        ],
    )
    .await?;
    Ok(n == 1)
}

pub(super) async fn set_quota<C: GenericClient>(c: &C, app_id: Uuid, quota: Option<i64>) -> Result<bool> {
    Ok(exec(c, "UPDATE apps SET quota = $2 WHERE app_id = $1", &[&app_id, &quota]).await? == 1)
}

pub(super) async fn add_quota<C: GenericClient>(c: &C, app_id: Uuid, amount: i64) -> Result<Option<i64>> {
    Ok(query_opt(
        c,
        "UPDATE apps SET quota = GREATEST(COALESCE(quota, 0) + $2, 0) WHERE app_id = $1 RETURNING quota",
        &[&app_id, &amount],
    )
    .await?
    .map(|r| r.get(0)))
}

pub(super) async fn set_key_hash<C: GenericClient>(c: &C, app_id: Uuid, hash: &[u8; 32]) -> Result<bool> {
    Ok(exec(c, "UPDATE apps SET api_key_hash = $2 WHERE app_id = $1", &[&app_id, &&hash[..]]).await? == 1)
}

pub(super) async fn set_callback_secret<C: GenericClient>(c: &C, app_id: Uuid, secret: &str) -> Result<bool> {
    Ok(exec(c, "UPDATE apps SET callback_secret = $2 WHERE app_id = $1", &[&app_id, &secret]).await? == 1)
}

pub(super) async fn put_template<C: GenericClient>(c: &C, app_id: Uuid, t: &Template) -> Result<bool> {
    // One statement: nothing is written for an app that does not exist.
    let n = exec(
        c,
        "INSERT INTO templates (app_id, name, language, category, body, code_placeholder, copy_code_button) \
         SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS (SELECT 1 FROM apps WHERE app_id = $1) \
         ON CONFLICT (app_id, name, language) DO UPDATE SET category = EXCLUDED.category, body = EXCLUDED.body, \
         code_placeholder = EXCLUDED.code_placeholder, copy_code_button = EXCLUDED.copy_code_button",
        &[
            &app_id,
            &t.name,
            &t.language,
            &t.category.as_str(),
            &t.body,
            &i64::from(t.code_placeholder),
            &t.copy_code_button,
        ],
    )
    .await?;
    Ok(n == 1)
}

pub(super) async fn list_templates<C: GenericClient>(c: &C, app_id: Uuid) -> Result<Vec<Template>> {
    query(
        c,
        "SELECT name, language, category, body, code_placeholder, copy_code_button FROM templates \
         WHERE app_id = $1 ORDER BY name, language",
        &[&app_id],
    )
    .await?
    .iter()
    .map(|r| {
        let category: String = r.get(2);
        Ok(Template {
            name: r.get(0),
            language: r.get(1),
            category: Category::parse(&category)
                .ok_or_else(|| StoreError::Corrupt(format!("template category {category:?}")))?,
            body: r.get(3),
            code_placeholder: small(r.get(4))?,
            copy_code_button: r.get(5),
        })
    })
    .collect()
}

pub(super) async fn delete_template<C: GenericClient>(c: &C, app_id: Uuid, name: &str, language: &str) -> Result<bool> {
    let n = exec(
        c,
        "DELETE FROM templates WHERE app_id = $1 AND name = $2 AND language = $3",
        &[&app_id, &name, &language],
    )
    .await?;
    Ok(n == 1)
}

pub(super) async fn set_sender<C: GenericClient>(c: &C, app_id: Uuid, sender: Option<&WhatsAppSender>) -> Result<bool> {
    let n = exec(
        c,
        "UPDATE apps SET wa_phone_number_id = $2, wa_access_token = $3 WHERE app_id = $1",
        &[&app_id, &sender.map(|w| w.phone_number_id.as_str()), &sender.map(|w| w.access_token.as_str())],
    )
    .await?;
    Ok(n == 1)
}
