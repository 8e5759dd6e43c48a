//! Regular expressions for what the API accepts, written out for the OpenAPI document and, for
//! callback URLs, used by the check itself. They use the syntax that ECMAScript, Rust's
//! `regex` and Python's `re` read alike (no `\d`, `\s` or lookarounds).

/// No control character anywhere (what [`crate::body::Fields`] refuses in strings).
pub const NO_CONTROL: &str = r"^[^\x00-\x1f\x7f-\x9f]*$";

/// The decimal numbers from `low` to `high`, written without leading zeros, as an expression
/// (an alternation: group it before quantifying or concatenating).
pub fn decimal_range(low: u64, high: u64) -> String {
    assert!(low <= high);
    let mut alternatives = Vec::new();
    let (mut from, mut width) = (low, digits(low));
    while from <= high {
        let top = 10u64.saturating_pow(width as u32).saturating_sub(1).min(high);
        alternatives.push(same_width(&from.to_string(), &top.to_string()));
        if top == high {
            break;
        }
        (from, width) = (top + 1, width + 1);
    }
    alternatives.join("|")
}

/// The real dates `YYYY-MM-DD` of the years 1970 to 9999 (what
/// [`waotp_core::calendar::parse_date`] reads), as an expression: each month's own number of
/// days, and the 29th of February in leap years only (every fourth year, but of the
/// centuries only those a multiple of 400).
pub fn date() -> String {
    let year = "(?:19[7-9][0-9]|[2-9][0-9]{3})";
    let leap = "(?:19(?:7[26]|8[048]|9[26])|[2-9][0-9](?:0[48]|[2468][048]|[13579][26])|(?:[2468][048]|[3579][26])00)";
    let month_day = "(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)\
        |02-(?:0[1-9]|1[0-9]|2[0-8]))";
    format!("(?:{year}-{month_day}|{leap}-02-29)")
}

fn digits(n: u64) -> usize {
    n.to_string().len()
}

/// The digit strings from `a` to `b`, both of the same length (leading zeros allowed).
fn same_width(a: &str, b: &str) -> String {
    if a == b {
        return a.to_owned();
    }
    let (a0, b0) = (a.as_bytes()[0] - b'0', b.as_bytes()[0] - b'0');
    let (rest_a, rest_b) = (&a[1..], &b[1..]);
    if a0 == b0 {
        return format!("{a0}{}", group(&same_width(rest_a, rest_b)));
    }
    let n = rest_a.len();
    let any = |count: usize| match count {
        0 => String::new(),
        1 => "[0-9]".to_owned(),
        c => format!("[0-9]{{{c}}}"),
    };
    let lowest = rest_a.bytes().all(|c| c == b'0');
    let highest = rest_b.bytes().all(|c| c == b'9');
    let mut alternatives = Vec::new();
    // The first digit's full ranges in the middle, widened to either end when that end is whole.
    let middle_low = if lowest { a0 } else { a0 + 1 };
    let middle_high = if highest { b0 } else { b0 - 1 };
    if !lowest {
        alternatives.push(format!("{a0}{}", group(&same_width(rest_a, &"9".repeat(n)))));
    }
    if middle_low <= middle_high {
        alternatives.push(format!("{}{}", class(middle_low, middle_high), any(n)));
    }
    if !highest {
        alternatives.push(format!("{b0}{}", group(&same_width(&"0".repeat(n), rest_b))));
    }
    alternatives.join("|")
}

fn class(low: u8, high: u8) -> String {
    match high - low {
        0 => low.to_string(),
        9 => "[0-9]".to_owned(),
        1 => format!("[{low}{high}]"),
        _ => format!("[{low}-{high}]"),
    }
}

/// An expression ready to be followed: an alternation gets a group.
pub fn group(expression: &str) -> String {
    if expression.contains('|') {
        format!("(?:{expression})")
    } else {
        expression.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_date_pattern_matches_exactly_the_real_dates() {
        use waotp_core::calendar::parse_date;
        let re = regex::Regex::new(&format!("^{}$", date())).unwrap();
        let years = (1960..=2110).chain([2400, 2500, 3200, 9996, 9999, 10000]);
        for year in years {
            for month in 0..=13 {
                for day in 0..=32 {
                    let text = format!("{year:04}-{month:02}-{day:02}");
                    assert_eq!(re.is_match(&text), parse_date(&text).is_some(), "{text}");
                }
            }
        }
        for bad in ["2025-7-01", "02025-07-01", "2025-07-01T00:00", " 2025-07-01", "2025/07/01", ""] {
            assert!(!re.is_match(bad), "{bad:?}");
        }
    }

    #[test]
    fn decimal_ranges_match_exactly_their_numbers() {
        let ranges = [(0, 0), (0, 9), (1, 10), (4, 10), (1, 500), (0, 255), (17, 83), (100, 199), (1, 86_400)];
        for (low, high) in ranges {
            let re = regex::Regex::new(&format!("^(?:{})$", decimal_range(low, high))).unwrap();
            for n in 0..=100_000u64 {
                assert_eq!(re.is_match(&n.to_string()), (low..=high).contains(&n), "{n} in {low}..={high}");
            }
            assert!(!re.is_match(&format!("0{low}")), "no leading zero");
        }
        let port = regex::Regex::new(&format!("^(?:{})$", decimal_range(0, 65_535))).unwrap();
        assert!(port.is_match("65535") && !port.is_match("65536") && port.is_match("0"));
    }
}
