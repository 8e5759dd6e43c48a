//! Which phone numbers are valid: libphonenumber's rule, over its metadata (the `phonenumber`
//! crate's copy), for a number written in international form (calling code and national
//! number, digits only).
//!
//! libphonenumber's rule: the calling code picks its regions in metadata order; the number
//! belongs to the first region whose leading-digits pattern starts it (or, for a region without
//! one, whose patterns it matches); it is valid if it matches that region's general pattern and
//! one of its number-type patterns (fixed line, mobile, toll free, …) in full.
//!
//! Why not `phonenumber::is_valid` after `phonenumber::parse`: the crate's parser strips a
//! national prefix it finds after the calling code, also from numbers that are already
//! international (`+7 800 …`, a valid Russian toll-free number, becomes `+7 00 …` and fails),
//! and its type check matches a pattern against a prefix of the number, so a valid number with
//! extra digits appended passes. The rule here is libphonenumber's, exactly, and it is also
//! what [`pattern`] writes out as one regular expression for the OpenAPI document.

use std::collections::HashMap;
use std::sync::{LazyLock, OnceLock};

use phonenumber::metadata::DATABASE;
use phonenumber::Type;
use regex::Regex;

mod pattern;
pub use pattern::{digit_bounds, pattern};

/// Most digits a number may have, calling code included (E.164 allows 15; libphonenumber's
/// longest national numbers need a little more).
pub const MAX_DIGITS: usize = 17;

/// The number types a valid number must match one of.
const TYPES: [Type; 10] = [
    Type::FixedLine,
    Type::Mobile,
    Type::TollFree,
    Type::PremiumRate,
    Type::SharedCost,
    Type::PersonalNumber,
    Type::Voip,
    Type::Pager,
    Type::Uan,
    Type::Voicemail,
];

/// One region's patterns, as regular-expression sources over ASCII digits.
#[derive(Debug, Clone)]
pub(crate) struct RegionPatterns {
    /// Starts every national number of the region, when its calling code is shared.
    pub leading: Option<String>,
    pub general: String,
    /// Every number type's pattern, as one alternation.
    pub types: String,
}

/// A metadata pattern as a plain regex over ASCII digits (the metadata is written in extended
/// syntax, with whitespace, and `\d` would mean any Unicode digit).
fn clean(pattern: &str) -> String {
    pattern.split_whitespace().collect::<String>().replace(r"\d", "[0-9]")
}

/// The calling codes and their regions' patterns, in metadata order.
pub(crate) fn plans() -> &'static [(u16, Vec<RegionPatterns>)] {
    static PLANS: LazyLock<Vec<(u16, Vec<RegionPatterns>)>> = LazyLock::new(|| {
        (1..1000u16)
            .filter_map(|code| {
                let ids = DATABASE.region(&code)?;
                let shared = ids.len() > 1;
                let regions = ids
                    .iter()
                    .filter_map(|id| match *id {
                        // Non-geographic codes (+800, +882, …) have one entry, found by code.
                        "001" => DATABASE.by_code(&code)?.into_iter().next(),
                        id => DATABASE.by_id(id),
                    })
                    .map(|meta| {
                        let d = meta.descriptors();
                        let types: Vec<String> = TYPES
                            .iter()
                            .filter_map(|t| d.get(*t))
                            .map(|t| format!("(?:{})", clean(t.national_number().as_str())))
                            .collect();
                        RegionPatterns {
                            // A single region's leading digits are never consulted.
                            leading: meta.leading_digits().filter(|_| shared).map(|l| clean(l.as_str())),
                            general: clean(d.general().national_number().as_str()),
                            types: types.join("|"),
                        }
                    })
                    .collect();
                Some((code, regions))
            })
            .collect()
    });
    &PLANS
}

/// A region's patterns, compiled: leading digits match a prefix, the others the whole number.
struct Region {
    leading: Option<Regex>,
    general: Regex,
    types: Regex,
}

fn compile(p: &RegionPatterns) -> Region {
    let full = |p: &str| Regex::new(&format!("^(?:{p})$")).expect("libphonenumber pattern");
    Region {
        leading: p.leading.as_ref().map(|l| Regex::new(&format!("^(?:{l})")).expect("libphonenumber pattern")),
        general: full(&p.general),
        types: full(&p.types),
    }
}

/// A calling code's region patterns, and the regions once compiled.
type Lazily = (&'static [RegionPatterns], OnceLock<Vec<Region>>);

/// The compiled regions of a calling code, compiled on first use.
fn regions(code: u16) -> Option<&'static [Region]> {
    static COMPILED: LazyLock<HashMap<u16, Lazily>> =
        LazyLock::new(|| plans().iter().map(|(code, r)| (*code, (r.as_slice(), OnceLock::new()))).collect());
    let (patterns, compiled) = COMPILED.get(&code)?;
    Some(compiled.get_or_init(|| patterns.iter().map(compile).collect()))
}

/// Whether `digits` (ASCII digits: calling code, then national number) is a valid number.
pub fn is_valid(digits: &str) -> bool {
    if digits.len() > MAX_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    // Calling codes are prefix-free: at most one of the first three prefixes is one.
    let Some((code, national)) = (1..=3.min(digits.len())).find_map(|n| {
        let code = digits[..n].parse::<u16>().ok().filter(|c| !digits.starts_with('0') && regions(*c).is_some())?;
        Some((code, &digits[n..]))
    }) else {
        return false;
    };
    let matches = |r: &Region| r.general.is_match(national) && r.types.is_match(national);
    for region in regions(code).unwrap_or_default() {
        match &region.leading {
            Some(leading) if leading.is_match(national) => return matches(region),
            Some(_) => {}
            None if matches(region) => return true,
            None => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_example_number_of_the_metadata_is_valid() {
        let mut checked = 0;
        for (code, _) in plans() {
            for meta in DATABASE.by_code(code).unwrap() {
                for t in TYPES {
                    if let Some(example) = meta.descriptors().get(t).and_then(|d| d.example()) {
                        assert!(is_valid(&format!("{code}{example}")), "+{code} {example} ({:?} of {})", t, meta.id());
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 1000, "{checked}");
    }

    /// The written-out pattern accepts exactly what the rule accepts, on every example number of
    /// the metadata and on every one-digit change, deletion and insertion of each.
    #[test]
    fn the_pattern_says_what_the_rule_says() {
        let whole = Regex::new(&format!("^{}$", pattern())).unwrap();
        let mut checked = 0;
        for (code, _) in plans() {
            for meta in DATABASE.by_code(code).unwrap() {
                for example in TYPES.iter().filter_map(|t| meta.descriptors().get(*t)?.example()) {
                    let number: Vec<u8> = format!("{code}{example}").into_bytes();
                    let mut variants = vec![number.clone()];
                    for i in 0..=number.len() {
                        for d in b'0'..=b'9' {
                            let mut inserted = number.clone();
                            inserted.insert(i, d);
                            variants.push(inserted);
                            if i < number.len() {
                                let mut changed = number.clone();
                                changed[i] = d;
                                variants.push(changed);
                            }
                        }
                        if i < number.len() {
                            let mut removed = number.clone();
                            removed.remove(i);
                            variants.push(removed);
                        }
                    }
                    for v in variants {
                        let v = String::from_utf8(v).unwrap();
                        assert_eq!(whole.is_match(&v), is_valid(&v), "{v}");
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 100_000, "{checked}");
        let (fewest, most) = digit_bounds();
        assert!((4..=8).contains(&fewest) && (13..=MAX_DIGITS).contains(&most), "{fewest}..={most}");
    }

    #[test]
    fn international_form_only() {
        assert!(is_valid("6281234567890"));
        assert!(is_valid("78001234567"), "a Russian toll-free number, which the crate's parser mangles");
        assert!(!is_valid("62081234567890"), "a trunk prefix after the calling code");
        assert!(!is_valid("6281234567890123"), "a valid number with digits appended");
        assert!(!is_valid("0062812345678"));
        assert!(!is_valid(""));
        assert!(!is_valid("62"));
    }
}
