//! What each verification costs (issue 31): every message's pricing as Meta reported it,
//! recorded once per message (its provider id) with its session, app and the recipient's
//! country; the billable messages of each app and calendar month (what a monthly ceiling,
//! [`crate::BillableCeiling`], is checked against); and the counts a cost report is made of.
//! A pricing comes with its status report ([`crate::DeliveryStore::report_provider_status`]):
//! one that beats the send's own answer is kept with the status, in the same row
//! ([`crate::ProviderReport::Kept`]), and recorded when the send records its message id.

use std::collections::BTreeMap;

use async_trait::async_trait;
use uuid::Uuid;
use waotp_core::MessagePricing;

use crate::Result;

/// A report's window: records made at or after `from_ms` and before `to_ms`, of one app or all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CostWindow {
    pub app_id: Option<Uuid>,
    pub from_ms: i64,
    pub to_ms: i64,
}

/// Messages of one country, category, billability and UTC day (what prices apply to).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MessageCount {
    /// ISO 3166-1 alpha-2; `None` when the number has no country (non-geographic).
    pub country: Option<String>,
    pub category: String,
    pub billable: bool,
    /// Days since 1970-01-01 (UTC) of the record.
    pub day: i64,
    pub messages: u64,
}

/// Verified sessions of one country.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CountryCount {
    pub country: Option<String>,
    pub count: u64,
}

/// A message's pricing as it was recorded, for the caller's metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedCost {
    pub app_id: Uuid,
    pub session_id: Uuid,
    pub country: Option<&'static str>,
    pub pricing: MessagePricing,
}

/// The costs of messages. A message's pricing is recorded by the status report that carries
/// it ([`crate::DeliveryStore::report_provider_status`]), in the same transaction.
#[async_trait]
pub trait CostStore: Send + Sync {
    /// Recorded messages in the window, by country, category, billability and day.
    async fn message_counts(&self, window: CostWindow) -> Result<Vec<MessageCount>>;
    /// Production sessions created in the window and verified, by the country of their number.
    /// Read within the window's rows only: sessions are stored in the order they are created
    /// (ids grow with `created_at`, give or take [`ID_ORDER_SLACK_MS`]), so the window's first
    /// and last ids are found by a binary search of the ids, never a scan of the table.
    async fn verified_by_country(&self, window: CostWindow) -> Result<Vec<CountryCount>>;
    /// Billable messages recorded for an app in a calendar month (months since 1970-01). Kept
    /// for the month whatever the retention (the month's row goes once the month is older
    /// than the retention's cut).
    async fn billable_in_month(&self, app_id: Uuid, month: i64) -> Result<u64>;
}

/// How far out of `created_at` order sessions may be stored (sends in flight together, the
/// clocks of several nodes): the ids a report reads reach this much beyond its window on
/// each side, and every row is checked against the window itself.
pub const ID_ORDER_SLACK_MS: i64 = 60 * 60 * 1000;

/// The ids a window's sessions may have, `[first, end)`, on both backends (written `$1`, `$2`;
/// SQLite's statement writes them `?1`, `?2`): a binary search of the ids through the primary
/// key, some 2 × log2(sessions) probes of one row each, never a scan. `$1`: the window's start
/// less [`ID_ORDER_SLACK_MS`], `$2`: its end plus it. Each step reads the first session at or
/// after the middle id: if it was created at or after the target, the answer is at or before
/// the middle; otherwise every session up to it was created before the target (give or take
/// the slack), and the answer is after it. Every session below `first` was created before the
/// window, and every one from `end` on after it; NULLs for an empty table. A search cut short
/// (sessions pruned under it) still gives bounds that hold, only wider.
pub(crate) const WINDOW_IDS_SQL: &str = "WITH RECURSIVE \
    lo(a, b) AS (SELECT (SELECT min(id) FROM sessions), (SELECT max(id) FROM sessions) + 1 \
      UNION ALL SELECT \
        CASE WHEN (SELECT created_at FROM sessions WHERE id >= a + (b - a) / 2 ORDER BY id LIMIT 1) >= $1 THEN a \
          ELSE (SELECT id FROM sessions WHERE id >= a + (b - a) / 2 ORDER BY id LIMIT 1) + 1 END, \
        CASE WHEN (SELECT created_at FROM sessions WHERE id >= a + (b - a) / 2 ORDER BY id LIMIT 1) >= $1 \
          THEN a + (b - a) / 2 ELSE b END \
      FROM lo WHERE a < b), \
    hi(a, b) AS (SELECT (SELECT min(id) FROM sessions), (SELECT max(id) FROM sessions) + 1 \
      UNION ALL SELECT \
        CASE WHEN (SELECT created_at FROM sessions WHERE id >= a + (b - a) / 2 ORDER BY id LIMIT 1) >= $2 THEN a \
          ELSE (SELECT id FROM sessions WHERE id >= a + (b - a) / 2 ORDER BY id LIMIT 1) + 1 END, \
        CASE WHEN (SELECT created_at FROM sessions WHERE id >= a + (b - a) / 2 ORDER BY id LIMIT 1) >= $2 \
          THEN a + (b - a) / 2 ELSE b END \
      FROM hi WHERE a < b) \
    SELECT (SELECT max(a) FROM lo), (SELECT min(b) FROM hi)";

/// The targets of [`WINDOW_IDS_SQL`] for a window: its start and end, widened by the slack.
pub(crate) fn window_id_targets(w: &CostWindow) -> (i64, i64) {
    (w.from_ms.saturating_sub(ID_ORDER_SLACK_MS), w.to_ms.saturating_add(ID_ORDER_SLACK_MS))
}

/// Numbers (each with how many sessions it has) counted by their country: both backends load
/// the numbers and count them here, by libphonenumber's rule in one place.
pub(crate) fn by_country(numbers: impl IntoIterator<Item = (String, u64)>) -> Vec<CountryCount> {
    let mut counts: BTreeMap<Option<&'static str>, u64> = BTreeMap::new();
    for (number, n) in numbers {
        *counts.entry(waotp_core::numbering::region(&number)).or_default() += n;
    }
    counts.into_iter().map(|(country, count)| CountryCount { country: country.map(str::to_owned), count }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_count_by_their_country() {
        let counts = by_country([
            ("6281234567890".to_owned(), 2),
            ("6281234567891".to_owned(), 1),
            ("447400123456".to_owned(), 4),
            ("80012345678".to_owned(), 1),
        ]);
        assert_eq!(
            counts,
            vec![
                CountryCount { country: None, count: 1 },
                CountryCount { country: Some("GB".into()), count: 4 },
                CountryCount { country: Some("ID".into()), count: 3 },
            ]
        );
    }
}
