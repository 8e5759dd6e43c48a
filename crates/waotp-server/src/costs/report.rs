//! A cost report: the messages recorded in a window by country and category, the verified
//! sessions by country, billable messages per verified session, and, with a price table, the
//! money per row and in all, per currency, kept exact (millionths) until written.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use uuid::Uuid;
use waotp_core::calendar::{format_date, DAY_MS};
use waotp_store::{CostWindow, CountryCount, MessageCount};

use super::prices::{category_key, format_micros, Micros, PriceTable};

/// Days the window of a report may span.
pub const MAX_DAYS: i64 = 366;

/// A report's window: whole UTC days, both included, of one app or all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub app_id: Option<Uuid>,
    pub first_day: i64,
    pub last_day: i64,
}

impl Window {
    /// The window as the store counts it: from the first day's start to the last day's end.
    pub fn store(&self) -> CostWindow {
        CostWindow { app_id: self.app_id, from_ms: self.first_day * DAY_MS, to_ms: (self.last_day + 1) * DAY_MS }
    }
}

/// Messages and money of one row, country or the whole report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub billable: u64,
    pub free: u64,
    /// Billable messages the price table has no price for (or all of them, without a table).
    pub unpriced: u64,
    /// Money by currency, in millionths.
    pub money: BTreeMap<String, Micros>,
}

impl Tally {
    fn add(&mut self, count: &MessageCount, prices: Option<&PriceTable>) {
        if !count.billable {
            self.free += count.messages;
            return;
        }
        self.billable += count.messages;
        match prices.and_then(|t| t.price(count.country.as_deref(), &count.category, count.day)) {
            Some(price) => {
                let cost = price.micros.saturating_mul(count.messages as i64);
                let sum = self.money.entry(price.currency.clone()).or_default();
                *sum = sum.saturating_add(cost);
            }
            None => self.unpriced += count.messages,
        }
    }

    fn merge(&mut self, other: &Tally) {
        self.billable += other.billable;
        self.free += other.free;
        self.unpriced += other.unpriced;
        for (currency, micros) in &other.money {
            let sum = self.money.entry(currency.clone()).or_default();
            *sum = sum.saturating_add(*micros);
        }
    }

    /// The money as `[{currency, amount}]`, amounts as exact decimals.
    pub fn money_json(&self) -> Value {
        money_json(self.money.iter().map(|(c, m)| (c.as_str(), *m)))
    }

    /// The money divided by `verified` sessions (rounded to the nearest millionth; in 128 bits,
    /// so that no sum, however large, overflows on the way).
    pub fn per_verified(&self, verified: u64) -> Option<BTreeMap<String, Micros>> {
        let n = i128::from(verified);
        if n == 0 {
            return None;
        }
        let share = |m: Micros| Micros::try_from((i128::from(m) + n / 2).div_euclid(n)).unwrap_or(Micros::MAX);
        Some(self.money.iter().map(|(c, m)| (c.clone(), share(*m))).collect())
    }
}

fn money_json<'a>(money: impl Iterator<Item = (&'a str, Micros)>) -> Value {
    Value::Array(money.map(|(currency, m)| json!({ "currency": currency, "amount": format_micros(m) })).collect())
}

/// A country's tally and verified sessions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CountryLine {
    pub tally: Tally,
    pub verified: u64,
}

impl CountryLine {
    /// Billable messages per verified session, to two decimals; `None` without a verified one.
    pub fn billable_per_verified(&self) -> Option<f64> {
        (self.verified > 0).then(|| (self.tally.billable as f64 / self.verified as f64 * 100.0).round() / 100.0)
    }

    fn json(&self, country: Option<&Option<String>>) -> Value {
        let mut v = json!({
            "verified_sessions": self.verified,
            "billable_messages": self.tally.billable,
            "free_messages": self.tally.free,
            "unpriced_messages": self.tally.unpriced,
            "billable_per_verified": self.billable_per_verified(),
            "cost": self.tally.money_json(),
            "cost_per_verified": self.tally.per_verified(self.verified).map(|m| money_json(m.iter().map(|(c, m)| (c.as_str(), *m)))),
        });
        if let Some(country) = country {
            v["country"] = json!(country);
        }
        v
    }
}

/// The report.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub window: Window,
    /// Whether a price table was configured.
    pub priced: bool,
    /// By (country, category as [`category_key`] writes it).
    pub rows: BTreeMap<(Option<String>, String), Tally>,
    pub countries: BTreeMap<Option<String>, CountryLine>,
    pub total: CountryLine,
}

impl Report {
    pub fn build(
        window: Window,
        counts: &[MessageCount],
        verified: &[CountryCount],
        prices: Option<&PriceTable>,
    ) -> Report {
        let mut rows: BTreeMap<(Option<String>, String), Tally> = BTreeMap::new();
        // By category as prices are matched (`authentication-international` is
        // `authentication_international`): one row each, however Meta spelled it.
        for count in counts {
            rows.entry((count.country.clone(), category_key(&count.category))).or_default().add(count, prices);
        }
        let mut countries: BTreeMap<Option<String>, CountryLine> = BTreeMap::new();
        for ((country, _), tally) in &rows {
            countries.entry(country.clone()).or_default().tally.merge(tally);
        }
        for v in verified {
            countries.entry(v.country.clone()).or_default().verified += v.count;
        }
        let mut total = CountryLine::default();
        for line in countries.values() {
            total.tally.merge(&line.tally);
            total.verified += line.verified;
        }
        Report { window, priced: prices.is_some(), rows, countries, total }
    }

    pub fn json(&self) -> Value {
        json!({
            "app_id": self.window.app_id,
            "from": format_date(self.window.first_day),
            "to": format_date(self.window.last_day),
            "priced": self.priced,
            "rows": self.rows.iter().map(|((country, category), t)| json!({
                "country": country,
                "category": category,
                "billable_messages": t.billable,
                "free_messages": t.free,
                "unpriced_messages": t.unpriced,
                "cost": t.money_json(),
            })).collect::<Vec<_>>(),
            "countries": self.countries.iter().map(|(country, line)| line.json(Some(country))).collect::<Vec<_>>(),
            "total": self.total.json(None),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(country: &str, category: &str, billable: bool, day: i64, messages: u64) -> MessageCount {
        MessageCount { country: Some(country.into()), category: category.into(), billable, day, messages }
    }

    #[test]
    fn money_is_summed_exactly_per_currency_with_the_price_of_each_day() {
        let day = waotp_core::calendar::parse_date("2025-09-30").unwrap();
        let table = PriceTable::parse(
            "country,category,price,currency,valid_from\nID,authentication,0.0250,USD,2025-07-01\n\
             ID,authentication,0.0280,USD,2025-10-01\nGB,authentication,0.03,EUR,2025-07-01\n",
        )
        .unwrap();
        let counts = [
            count("ID", "authentication", true, day, 3),
            count("ID", "authentication", true, day + 1, 10),
            count("ID", "authentication", false, day, 4),
            count("GB", "authentication", true, day, 7),
            count("GB", "marketing", true, day, 2),
        ];
        let verified = [
            CountryCount { country: Some("ID".into()), count: 8 },
            CountryCount { country: Some("BR".into()), count: 1 },
        ];
        let window = Window { app_id: None, first_day: day, last_day: day + 1 };
        let r = Report::build(window, &counts, &verified, Some(&table));
        let id = &r.countries[&Some("ID".to_owned())];
        assert_eq!((id.tally.billable, id.tally.free, id.verified), (13, 4, 8));
        assert_eq!(id.tally.money["USD"], 3 * 25_000 + 10 * 28_000);
        assert_eq!(id.billable_per_verified(), Some(1.63));
        assert_eq!(id.tally.per_verified(8).unwrap()["USD"], 44_375);
        let gb = &r.countries[&Some("GB".to_owned())];
        assert_eq!((gb.tally.unpriced, gb.tally.money["EUR"]), (2, 210_000));
        assert_eq!(r.countries[&Some("BR".to_owned())].verified, 1);
        assert_eq!((r.total.tally.billable, r.total.verified), (22, 9));
        let v = r.json();
        assert_eq!(
            v["total"]["cost"],
            json!([{"currency": "EUR", "amount": "0.21"}, {"currency": "USD", "amount": "0.355"}])
        );
        assert_eq!(v["rows"][0]["country"], "GB");
        assert_eq!(v["countries"][0]["billable_per_verified"], json!(0.0), "BR: one verified, nothing billable");
        assert_eq!(v["countries"][1]["cost_per_verified"], Value::Null, "GB: nothing verified");
        // Meta's two spellings of a category are one row.
        let spelled = [
            count("IN", "authentication-international", true, day, 2),
            count("IN", "authentication_international", true, day, 3),
            count("IN", "Authentication_International", false, day + 1, 1),
        ];
        let r = Report::build(window, &spelled, &[], Some(&table));
        assert_eq!(r.rows.len(), 1, "{:?}", r.rows);
        let row = &r.rows[&(Some("IN".to_owned()), "authentication_international".to_owned())];
        assert_eq!((row.billable, row.free, row.unpriced), (5, 1, 5));
        assert_eq!(r.json()["rows"][0]["category"], "authentication_international");
        // Sums at the bound of their integers still divide (the share rounds, never overflows).
        let mut huge = Tally::default();
        huge.money.insert("USD".into(), Micros::MAX);
        assert_eq!(huge.per_verified(3).unwrap()["USD"], Micros::MAX / 3);
        assert_eq!(huge.per_verified(1).unwrap()["USD"], Micros::MAX);
        assert_eq!(huge.per_verified(u64::MAX).unwrap()["USD"], 0, "just under half a millionth");
        // Without a table: counts only, every billable message unpriced.
        let r = Report::build(window, &counts, &verified, None);
        assert_eq!((r.priced, r.total.tally.unpriced, r.total.tally.money.len()), (false, 22, 0));
    }
}
