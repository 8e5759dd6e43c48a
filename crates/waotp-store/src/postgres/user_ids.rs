//! Business-scoped user ids on PostgreSQL: the numbers they stand for (`whatsapp_user_ids`,
//! migration 0017), written by the rules of [`crate::user_ids`] (PL/pgSQL keeps none).

use deadpool_postgres::GenericClient;

use super::{exec, query_opt};
use crate::user_ids::{plan_move, plan_pair, replaces_others, PairWrite, PARENT_BUSINESS};
use crate::{Result, UserIdFact, UserKey};

pub(super) async fn learn<C: GenericClient>(c: &C, facts: &[UserIdFact], now_ms: i64) -> Result<()> {
    for fact in facts {
        match fact {
            UserIdFact::Pair { key, wa_id } => pair(c, key, wa_id, now_ms).await?,
            UserIdFact::Moved { previous, current, wa_id } => {
                let stored = query_opt(
                    c,
                    "DELETE FROM whatsapp_user_ids WHERE business = $1 AND user_id = $2 RETURNING wa_id",
                    &[&previous.business, &previous.user_id],
                )
                .await?
                .map(|r| r.get::<_, String>(0));
                let write = plan_move(stored, current.as_ref(), wa_id.as_deref());
                if let Some(left) = write.left {
                    left_number(c, &previous.business, &left).await?;
                }
                if let Some((key, number)) = write.pair {
                    pair(c, &key, &number, now_ms).await?;
                }
            }
            UserIdFact::LeftNumber { business, wa_id } => left_number(c, business, wa_id).await?,
        }
    }
    Ok(())
}

async fn left_number<C: GenericClient>(c: &C, business: &str, wa_id: &str) -> Result<()> {
    exec(
        c,
        "DELETE FROM whatsapp_user_ids WHERE business IN ($1, $2) AND wa_id = $3",
        &[&business, &PARENT_BUSINESS, &wa_id],
    )
    .await?;
    Ok(())
}

async fn pair<C: GenericClient>(c: &C, key: &UserKey, wa_id: &str, now_ms: i64) -> Result<()> {
    let stored = query_opt(
        c,
        "SELECT wa_id, seen_at FROM whatsapp_user_ids WHERE business = $1 AND user_id = $2",
        &[&key.business, &key.user_id],
    )
    .await?
    .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1)));
    match plan_pair(stored.as_ref().map(|(n, at)| (n.as_str(), *at)), wa_id, now_ms) {
        PairWrite::Nothing => {}
        write => {
            if write == PairWrite::Replace && replaces_others(key) {
                // One BSUID per number and business: two nodes learning two BSUIDs of one number
                // at once take turns (the transaction's lock, on the business and number).
                exec(
                    c,
                    "SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2, 31))",
                    &[&key.business, &wa_id],
                )
                .await?;
                exec(
                    c,
                    "DELETE FROM whatsapp_user_ids WHERE business = $1 AND wa_id = $2 AND user_id <> $3",
                    &[&key.business, &wa_id, &key.user_id],
                )
                .await?;
            }
            // An upsert for a refresh too: the row may have just been pruned.
            exec(
                c,
                "INSERT INTO whatsapp_user_ids (business, user_id, wa_id, seen_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (business, user_id) DO UPDATE SET wa_id = excluded.wa_id, seen_at = excluded.seen_at",
                &[&key.business, &key.user_id, &wa_id, &now_ms],
            )
            .await?;
        }
    }
    Ok(())
}

pub(super) async fn number<C: GenericClient>(c: &C, key: &UserKey) -> Result<Option<String>> {
    Ok(query_opt(
        c,
        "SELECT wa_id FROM whatsapp_user_ids WHERE business = $1 AND user_id = $2",
        &[&key.business, &key.user_id],
    )
    .await?
    .map(|r| r.get(0)))
}

/// The number the first of `keys` that was learned stands for.
pub(super) async fn first_number<C: GenericClient>(c: &C, keys: &[UserKey]) -> Result<Option<String>> {
    for key in keys {
        if let Some(number) = number(c, key).await? {
            return Ok(Some(number));
        }
    }
    Ok(None)
}

/// Pairs not seen since `before_ms`, the oldest `limit` at most.
pub(super) async fn prune<C: GenericClient>(c: &C, before_ms: i64, limit: usize) -> Result<usize> {
    Ok(exec(
        c,
        "DELETE FROM whatsapp_user_ids WHERE (business, user_id) IN \
         (SELECT business, user_id FROM whatsapp_user_ids WHERE seen_at < $1 ORDER BY seen_at LIMIT $2)",
        &[&before_ms, &(limit as i64)],
    )
    .await? as usize)
}
