//! Msisdn parsing: never panics; a parsed msisdn is digits in international form that parse to
//! themselves; and the OpenAPI document's pattern accepts exactly what the parser accepts.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use regex::Regex;
use waotp_core::numbering::{self, MAX_DIGITS};
use waotp_core::Msisdn;
use waotp_server::openapi::msisdn_pattern;

/// The `msisdn` pattern the OpenAPI document serves.
static PATTERN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!("^\\+?{}$", msisdn_pattern::pattern())).expect("msisdn pattern"));

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else { return };
    let parsed = Msisdn::parse(input);
    assert_eq!(parsed.is_ok(), PATTERN.is_match(input), "{input:?}: the parser says {parsed:?}");
    let digits = input.strip_prefix('+').unwrap_or(input);
    if digits.bytes().all(|b| b.is_ascii_digit()) {
        assert_eq!(numbering::normalise(digits).is_some(), parsed.is_ok(), "{input:?}");
    }
    let Ok(msisdn) = parsed else { return };
    let s = msisdn.as_str();
    assert!(!s.is_empty() && s.len() <= MAX_DIGITS && s.bytes().all(|b| b.is_ascii_digit()), "{s:?}");
    // Normalised once is normalised for good: the stored form parses to itself.
    assert_eq!(Msisdn::parse(s).as_ref(), Ok(&msisdn), "{input:?} became {s:?}");
    assert_eq!(numbering::normalise(s).as_deref(), Some(s));
    // At most a national prefix after the calling code (1 to 3 digits) was dropped.
    assert!(s.len() <= digits.len() && digits.ends_with(&s[s.len().min(3)..]), "{input:?} became {s:?}");
    let (fewest, most) = msisdn_pattern::digit_bounds();
    assert!((fewest..=most).contains(&s.len()), "{s:?}");
    // Logs never see the whole number.
    assert!(!format!("{msisdn} {msisdn:?}").contains(s));
});
