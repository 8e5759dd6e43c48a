//! What each verification costs (issue 31): every message's pricing as Meta reported it,
//! recorded once per message (its provider id) with its session, app and the recipient's
//! country; the billable messages of each app and calendar month (what a monthly ceiling,
//! [`crate::BillableCeiling`], is checked against); and the counts a cost report is made of.
//! Pricing that beats the send's own answer is kept as the status events are
//! ([`crate::ProviderReport::Kept`]) and recorded when the send records its message id.

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

/// What became of a message's pricing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PricingOutcome {
    /// Recorded now for the session that sent the message (its first pricing).
    Recorded(RecordedCost),
    /// The message's pricing was recorded before (Meta repeats it): nothing changed.
    Known,
    /// No session has that message id yet: kept, and recorded when the send records it, as a
    /// status event is ([`crate::ProviderReport::Kept`]; `evicted` as there).
    Kept { evicted: u64 },
}

/// The costs of messages.
#[async_trait]
pub trait CostStore: Send + Sync {
    /// Records the pricing of message `provider_id` for the session that sent it, once per
    /// message (a second pricing of the same message changes nothing), with the recipient's
    /// country ([`waotp_core::numbering::region`] of the session's number) and `now_ms`; a
    /// billable one also counts in its app's month ([`CostStore::billable_in_month`]). With no
    /// session of that message id yet, the pricing is kept and recorded (as of the recording)
    /// by [`crate::DeliveryStore::record_delivery`], as a kept status event is.
    async fn record_pricing(&self, provider_id: &str, pricing: MessagePricing, now_ms: i64) -> Result<PricingOutcome>;
    /// Recorded messages in the window, by country, category, billability and day.
    async fn message_counts(&self, window: CostWindow) -> Result<Vec<MessageCount>>;
    /// Production sessions created in the window and verified, by the country of their number.
    async fn verified_by_country(&self, window: CostWindow) -> Result<Vec<CountryCount>>;
    /// Billable messages recorded for an app in a calendar month (months since 1970-01). Kept
    /// for the month whatever the retention (the month's row goes once the month is older
    /// than the retention's cut).
    async fn billable_in_month(&self, app_id: Uuid, month: i64) -> Result<u64>;
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
