//! UTC calendar days and months of unix milliseconds: what a cost report's window, a price
//! table's `valid_from` and a monthly ceiling are counted in. Days since 1970-01-01 and months
//! since 1970-01 (January 1970 is month 0), by Howard Hinnant's civil-date algorithms.

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// The UTC day (days since 1970-01-01) of unix milliseconds.
pub fn day_of(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (`month` 1–12, `day` 1–31).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The (year, month 1–12, day 1–31) of a day since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// A date written `YYYY-MM-DD` (a real date, years 1970 to 9999) as its day since 1970-01-01.
pub fn parse_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = &s[r];
        part.bytes().all(|c| c.is_ascii_digit()).then(|| part.parse().ok()).flatten()
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1970..=9999).contains(&year) || !(1..=12).contains(&month) || day == 0 {
        return None;
    }
    let days = days_from_civil(i64::from(year), month, day);
    // 2025-02-30 comes back as March: not a date.
    (civil_from_days(days) == (i64::from(year), month, day)).then_some(days)
}

/// `YYYY-MM-DD` of a day since 1970-01-01.
pub fn format_date(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The UTC calendar month (months since 1970-01) of unix milliseconds.
pub fn month_of(ms: i64) -> i64 {
    let (y, m, _) = civil_from_days(day_of(ms));
    (y - 1970) * 12 + i64::from(m) - 1
}

/// The first day (days since 1970-01-01) of a month since 1970-01.
pub fn month_first_day(month: i64) -> i64 {
    days_from_civil(1970 + month.div_euclid(12), month.rem_euclid(12) as u32 + 1, 1)
}

/// `YYYY-MM` of a month since 1970-01.
pub fn format_month(month: i64) -> String {
    format!("{:04}-{:02}", 1970 + month.div_euclid(12), month.rem_euclid(12) + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_months_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        for days in [-1, 0, 59, 60, 11_016, 11_017, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(format_date(days_from_civil(2024, 2, 29)), "2024-02-29");
        assert_eq!(parse_date("2025-07-01"), Some(days_from_civil(2025, 7, 1)));
        for bad in ["2025-02-29", "2025-13-01", "2025-00-10", "2025-1-01", "25-01-01", "2025/01/01", "1969-12-31", ""] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
        assert_eq!(parse_date("2024-02-29"), Some(days_from_civil(2024, 2, 29)));
        let july_2025 = 55 * 12 + 6;
        assert_eq!(month_of(days_from_civil(2025, 7, 31) * DAY_MS + DAY_MS - 1), july_2025);
        assert_eq!(month_of(days_from_civil(2025, 8, 1) * DAY_MS), july_2025 + 1);
        assert_eq!(month_first_day(july_2025), days_from_civil(2025, 7, 1));
        assert_eq!(month_first_day(july_2025 + 6), days_from_civil(2026, 1, 1));
        assert_eq!(format_month(july_2025), "2025-07");
        assert_eq!(month_of(0), 0);
    }
}
