//! Business-scoped user ids on SQLite: the numbers they stand for (`whatsapp_user_ids`,
//! migration 0013), written by the rules of [`crate::user_ids`].

use rusqlite::{params, Connection, OptionalExtension};

use crate::user_ids::{plan_move, plan_pair, replaces_others, PairWrite, PARENT_BUSINESS};
use crate::{Result, UserIdFact, UserKey};

pub(super) fn learn(c: &Connection, facts: &[UserIdFact], now_ms: i64) -> Result<()> {
    for fact in facts {
        match fact {
            UserIdFact::Pair { key, wa_id } => pair(c, key, wa_id, now_ms)?,
            UserIdFact::Moved { previous, current, wa_id } => {
                let stored = number(c, previous)?;
                c.prepare_cached("DELETE FROM whatsapp_user_ids WHERE business = ?1 AND user_id = ?2")?
                    .execute(params![previous.business, previous.user_id])?;
                let write = plan_move(stored, current.as_ref(), wa_id.as_deref());
                if let Some(left) = write.left {
                    left_number(c, &previous.business, &left)?;
                }
                if let Some((key, number)) = write.pair {
                    pair(c, &key, &number, now_ms)?;
                }
            }
            UserIdFact::LeftNumber { business, wa_id } => left_number(c, business, wa_id)?,
        }
    }
    Ok(())
}

fn left_number(c: &Connection, business: &str, wa_id: &str) -> Result<()> {
    c.prepare_cached("DELETE FROM whatsapp_user_ids WHERE business IN (?1, ?2) AND wa_id = ?3")?.execute(params![
        business,
        PARENT_BUSINESS,
        wa_id
    ])?;
    Ok(())
}

fn pair(c: &Connection, key: &UserKey, wa_id: &str, now_ms: i64) -> Result<()> {
    let stored: Option<(String, i64)> = c
        .prepare_cached("SELECT wa_id, seen_at FROM whatsapp_user_ids WHERE business = ?1 AND user_id = ?2")?
        .query_row(params![key.business, key.user_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    match plan_pair(stored.as_ref().map(|(n, at)| (n.as_str(), *at)), wa_id, now_ms) {
        PairWrite::Nothing => {}
        write => {
            if write == PairWrite::Replace && replaces_others(key) {
                c.prepare_cached("DELETE FROM whatsapp_user_ids WHERE business = ?1 AND wa_id = ?2 AND user_id <> ?3")?
                    .execute(params![key.business, wa_id, key.user_id])?;
            }
            // An upsert for a refresh too: the row may have just been pruned.
            c.prepare_cached(
                "INSERT INTO whatsapp_user_ids (business, user_id, wa_id, seen_at) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (business, user_id) DO UPDATE SET wa_id = excluded.wa_id, seen_at = excluded.seen_at",
            )?
            .execute(params![key.business, key.user_id, wa_id, now_ms])?;
        }
    }
    Ok(())
}

pub(super) fn number(c: &Connection, key: &UserKey) -> Result<Option<String>> {
    Ok(c.prepare_cached("SELECT wa_id FROM whatsapp_user_ids WHERE business = ?1 AND user_id = ?2")?
        .query_row(params![key.business, key.user_id], |r| r.get(0))
        .optional()?)
}

/// The number the first of `keys` that was learned stands for.
pub(super) fn first_number(c: &Connection, keys: &[UserKey]) -> Result<Option<String>> {
    for key in keys {
        if let Some(number) = number(c, key)? {
            return Ok(Some(number));
        }
    }
    Ok(None)
}

/// Pairs not seen since `before_ms`, the oldest `limit` at most.
pub(super) fn prune(c: &Connection, before_ms: i64, limit: usize) -> Result<usize> {
    Ok(c.prepare_cached(
        "DELETE FROM whatsapp_user_ids WHERE (business, user_id) IN \
         (SELECT business, user_id FROM whatsapp_user_ids WHERE seen_at < ?1 ORDER BY seen_at LIMIT ?2)",
    )?
    .execute(params![before_ms, limit as i64])?)
}
