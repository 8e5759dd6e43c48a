//! The operator's price table (`whatsapp_price_table`): a CSV file of
//! `country,category,price,currency,valid_from` rows, read once at start. Meta's rate card
//! cannot be fetched at run time (it is a spreadsheet on Meta's site, not an API), so the
//! operator copies the rates they pay into this file.
//!
//! A message's price is the row of its country (ISO 3166-1 alpha-2) and category valid at the
//! message's day: the latest `valid_from` on or before it, a row of the country over a `*`
//! row. Prices are kept exact, in millionths of the currency's unit: sums never round.

use std::collections::BTreeMap;
use std::path::Path;

/// Millionths of a currency unit: `0.0305` USD is 30 500.
pub type Micros = i64;

/// Digits a price may have after the decimal point.
pub const MAX_DECIMALS: usize = 6;

/// Digits a price may have before the decimal point: a price is at most 999999.999999 (a
/// message's price in any currency is far less), so that sums of prices stay far from the
/// bounds of their integers (a billion messages at the largest price still fit).
pub const MAX_WHOLE_DIGITS: usize = 6;

/// One row: from `valid_from` (a day since 1970-01-01) on, this price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Price {
    pub valid_from: i64,
    pub micros: Micros,
    /// ISO 4217 (`USD`, `IDR`, `EUR`).
    pub currency: String,
}

/// The table, by (country or `*`, category), each list by `valid_from`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PriceTable {
    rows: BTreeMap<(String, String), Vec<Price>>,
}

/// A category as the table and Meta's webhooks are matched: lower case, `-` as `_`
/// (`authentication-international` is `authentication_international`).
pub fn category_key(category: &str) -> String {
    category.trim().to_ascii_lowercase().replace('-', "_")
}

impl PriceTable {
    /// Reads and checks the file; the error names the file and the line.
    pub fn load(path: &Path) -> Result<PriceTable, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("whatsapp_price_table {}: cannot read it: {e}", path.display()))?;
        PriceTable::parse(&text).map_err(|e| format!("whatsapp_price_table {}: {e}", path.display()))
    }

    /// Parses the CSV text: a header naming the five columns (in any order, each once), then
    /// one price a line; empty lines and comments (lines whose first visible character is `#`)
    /// are skipped.
    pub fn parse(text: &str) -> Result<PriceTable, String> {
        const COLUMNS: [&str; 5] = ["country", "category", "price", "currency", "valid_from"];
        // Comments, indented or not, become empty lines: skipped, and the lines keep their numbers.
        let text = &text
            .split_inclusive('\n')
            .map(|line| match line.trim_start().starts_with('#') {
                true => &line[line.trim_end_matches(['\r', '\n']).len()..],
                false => line,
            })
            .collect::<String>();
        let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(text.as_bytes());
        let header = reader.headers().map_err(|e| format!("line 1: {e}"))?.clone();
        let names: Vec<String> = header.iter().map(|h| h.to_ascii_lowercase()).collect();
        if let Some(twice) = names.iter().enumerate().find_map(|(i, n)| names[..i].contains(n).then_some(n)) {
            return Err(format!("line 1: the header names the column {twice:?} twice"));
        }
        let at = |column: &str| names.iter().position(|n| n == column);
        let [Some(country_at), Some(category_at), Some(price_at), Some(currency_at), Some(valid_from_at)] =
            COLUMNS.map(at)
        else {
            return Err(format!(
                "line 1: the header must name the columns {} (found: {})",
                COLUMNS.join(","),
                names.join(",")
            ));
        };
        let mut table = PriceTable::default();
        // The line of a record starting at a byte offset, counted in the text itself: the
        // reader's count, and its offset, take in the empty and comment lines before it.
        let line_at = |byte: u64| {
            let start = (byte as usize).min(text.len());
            let before = text.as_bytes()[..start].iter().filter(|b| **b == b'\n').count();
            let skipped = text[start..].lines().take_while(|l| l.trim().is_empty() || l.starts_with('#')).count();
            before + skipped + 1
        };
        for record in reader.records() {
            let record = record.map_err(|e| match e.position() {
                Some(p) => format!("line {}: {e}", line_at(p.byte())),
                None => e.to_string(),
            })?;
            let line = record.position().map_or(0, |p| line_at(p.byte()));
            let field = |i: usize| record.get(i).unwrap_or("");
            let bad = |what: String| format!("line {line}: {what}");
            let country = parse_country(field(country_at)).map_err(bad)?;
            let category = category_key(field(category_at));
            if category.is_empty() || category.len() > waotp_core::pricing::MAX_FIELD_CHARS {
                return Err(bad(format!("category {:?} must be 1 to 64 characters", field(category_at))));
            }
            let micros = parse_price(field(price_at)).map_err(bad)?;
            let currency = field(currency_at).to_ascii_uppercase();
            if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(bad(format!("currency {:?} must be an ISO 4217 code such as USD", field(currency_at))));
            }
            let valid_from = field(valid_from_at);
            let day = waotp_core::calendar::parse_date(valid_from)
                .ok_or_else(|| bad(format!("valid_from {valid_from:?} must be a date YYYY-MM-DD")))?;
            let prices = table.rows.entry((country.clone(), category.clone())).or_default();
            if prices.iter().any(|p| p.valid_from == day) {
                return Err(bad(format!("{country},{category} has a price valid from {valid_from} already")));
            }
            prices.push(Price { valid_from: day, micros, currency });
            prices.sort_by_key(|p| p.valid_from);
        }
        Ok(table)
    }

    /// How many prices the table holds.
    pub fn len(&self) -> usize {
        self.rows.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The price of a message of `country` (`None`: no country, only `*` rows apply) and
    /// `category` on `day`: the country's row valid then, else the `*` row valid then.
    pub fn price(&self, country: Option<&str>, category: &str, day: i64) -> Option<&Price> {
        let category = category_key(category);
        let valid = |country: &str| {
            let prices = self.rows.get(&(country.to_owned(), category.clone()))?;
            prices.iter().rev().find(|p| p.valid_from <= day)
        };
        country.and_then(valid).or_else(|| valid("*"))
    }
}

fn parse_country(raw: &str) -> Result<String, String> {
    let country = raw.to_ascii_uppercase();
    if country == "*" || (country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase())) {
        Ok(country)
    } else {
        Err(format!("country {raw:?} must be an ISO 3166-1 alpha-2 code such as ID, or * for any"))
    }
}

/// `0.0305` as 30 500 millionths: digits, at most one point, at most [`MAX_WHOLE_DIGITS`]
/// before it and [`MAX_DECIMALS`] after it.
pub fn parse_price(raw: &str) -> Result<Micros, String> {
    let refuse = || format!("price {raw:?} must be a decimal such as 0.0305 (at most {MAX_DECIMALS} decimals)");
    let (whole, fraction) = raw.split_once('.').unwrap_or((raw, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || fraction.len() > MAX_DECIMALS {
        return Err(refuse());
    }
    if whole.len() > MAX_WHOLE_DIGITS {
        return Err(format!(
            "price {raw:?} is too large: at most {MAX_WHOLE_DIGITS} digits before the point (999999.999999)"
        ));
    }
    if raw.ends_with('.') {
        return Err(refuse());
    }
    let whole: Micros = whole.parse().map_err(|_| refuse())?;
    let fraction: Micros = format!("{fraction:0<6}").parse().map_err(|_| refuse())?;
    Ok(whole * 1_000_000 + fraction)
}

/// Millionths as a decimal: `30500` is `0.0305`, `2000000` is `2.00` (two decimals at least).
pub fn format_micros(micros: Micros) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let (whole, fraction) = (micros.unsigned_abs() / 1_000_000, micros.unsigned_abs() % 1_000_000);
    let fraction = format!("{fraction:06}");
    let fraction = fraction.trim_end_matches('0');
    format!("{sign}{whole}.{fraction:0<2}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use waotp_core::calendar::parse_date;

    const TABLE: &str = "country,category,price,currency,valid_from
# Meta's rates for the markets we send to
ID,authentication,0.0250,USD,2025-07-01
ID,authentication,0.0280,USD,2025-10-01
*,authentication,0.0400,USD,2025-07-01
GB,marketing,0.0529,USD,2025-07-01
in,authentication-international,0.0280,usd,2025-07-01
";

    #[test]
    fn the_latest_row_of_the_country_wins_then_any_country() {
        let t = PriceTable::parse(TABLE).unwrap();
        assert_eq!(t.len(), 5);
        let day = |d| parse_date(d).unwrap();
        let micros = |c: Option<&str>, cat, d| t.price(c, cat, day(d)).map(|p| p.micros);
        assert_eq!(micros(Some("ID"), "authentication", "2025-07-01"), Some(25_000));
        assert_eq!(micros(Some("ID"), "authentication", "2025-09-30"), Some(25_000));
        assert_eq!(micros(Some("ID"), "authentication", "2025-10-01"), Some(28_000));
        assert_eq!(micros(Some("BR"), "authentication", "2025-08-01"), Some(40_000), "any country");
        assert_eq!(micros(None, "authentication", "2025-08-01"), Some(40_000));
        assert_eq!(micros(Some("ID"), "authentication", "2025-06-30"), None, "before any row");
        assert_eq!(micros(Some("ID"), "marketing", "2025-08-01"), None);
        assert_eq!(micros(Some("IN"), "authentication_international", "2025-08-01"), Some(28_000));
        assert_eq!(t.price(Some("IN"), "authentication_international", day("2025-08-01")).unwrap().currency, "USD");
        assert!(PriceTable::parse("valid_from,currency,price,category,country\n").unwrap().is_empty());
    }

    #[test]
    fn comments_may_be_indented_and_come_first() {
        let text = "# Meta's rates\r\ncountry,category,price,currency,valid_from\r\n  # indented\r\n\t# tabbed\r\n\
                    ID,authentication,0.0250,USD,2025-07-01\r\n   #last";
        let t = PriceTable::parse(text).unwrap();
        assert_eq!(t.len(), 1);
        let e = PriceTable::parse("country,category,price,currency,valid_from\n  # note\nXX1,a,1,USD,2025-07-01\n");
        assert!(e.unwrap_err().starts_with("line 3: country"), "lines keep their numbers");
    }

    #[test]
    fn a_bad_line_is_named() {
        let cases = [
            ("country,category,price\n", "line 1: the header must name"),
            ("country,category,price,currency,valid_from,Price\n", "line 1: the header names the column \"price\" twice"),
            ("country,category,price,currency,valid_from,note,note\n", "line 1: the header names the column \"note\" twice"),
            ("country,category,price,currency,valid_from\nXYZ,authentication,1,USD,2025-07-01\n", "line 2: country"),
            ("country,category,price,currency,valid_from\nID,authentication,0.1,USD,2025-07-01\nID,,1,USD,2025-07-01\n", "line 3: category"),
            ("country,category,price,currency,valid_from\nID,authentication,abc,USD,2025-07-01\n", "line 2: price \"abc\""),
            ("country,category,price,currency,valid_from\n# a note\n\nID,authentication,1..2,USD,2025-07-01\n", "line 4: price"),
            ("country,category,price,currency,valid_from\nID,authentication,-1,USD,2025-07-01\n", "line 2: price"),
            ("country,category,price,currency,valid_from\nID,authentication,0.1234567,USD,2025-07-01\n", "line 2: price"),
            (
                "country,category,price,currency,valid_from\nID,authentication,0.1,USD,2025-07-01\nID,marketing,1000000,USD,2025-07-01\n",
                "line 3: price \"1000000\" is too large",
            ),
            ("country,category,price,currency,valid_from\nID,authentication,0.1,US Dollar,2025-07-01\n", "line 2: currency"),
            ("country,category,price,currency,valid_from\nID,authentication,0.1,USD,2025-02-30\n", "line 2: valid_from"),
            ("country,category,price,currency,valid_from\nID,authentication,0.1,USD\n", "line 2:"),
            (
                "country,category,price,currency,valid_from\nID,authentication,0.1,USD,2025-07-01\n\nID,authentication,0.2,USD,2025-07-01\n",
                "line 4: ID,authentication has a price valid from 2025-07-01 already",
            ),
        ];
        for (text, want) in cases {
            let e = PriceTable::parse(text).unwrap_err();
            assert!(e.starts_with(want), "{e:?} should start with {want:?}");
        }
    }

    #[test]
    fn prices_are_exact() {
        assert_eq!(parse_price("0.0305"), Ok(30_500));
        assert_eq!(parse_price("12"), Ok(12_000_000));
        assert_eq!(parse_price("356.16"), Ok(356_160_000));
        assert_eq!(parse_price("0.000001"), Ok(1));
        assert_eq!(parse_price("999999.999999"), Ok(999_999_999_999));
        for bad in ["", ".5", "1.", "1,5", "1e3", "+1", "0.0000001", "1.2.3", "1000000", "9999999999999"] {
            assert!(parse_price(bad).is_err(), "{bad}");
        }
        assert_eq!(format_micros(30_500), "0.0305");
        assert_eq!(format_micros(2_000_000), "2.00");
        assert_eq!(format_micros(123_450_000), "123.45");
        assert_eq!(format_micros(1), "0.000001");
        assert_eq!(format_micros(0), "0.00");
        // Ten million messages at 0.0305 add up exactly.
        assert_eq!(format_micros(30_500 * 10_000_000), "305000.00");
    }
}
