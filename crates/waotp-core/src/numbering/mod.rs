//! Which phone numbers are valid: libphonenumber's rule, over its metadata (the `phonenumber`
//! crate's copy), for a number written in international form (calling code and national
//! number, digits only).
//!
//! libphonenumber's rule: the calling code picks its regions in metadata order; the number
//! belongs to the first region whose leading-digits pattern starts it (or, for a region without
//! one, whose patterns it matches); it is valid if it matches that region's general pattern and
//! one of its number-type patterns (fixed line, mobile, toll free, …) in full. Like
//! libphonenumber, a number written with the national (trunk) prefix after the calling code is
//! accepted too when the number without it is valid, and stands for that number
//! ([`normalise`]); the prefix is the main region's, when the metadata gives it as plain digits.
//!
//! Why not `phonenumber::is_valid` after `phonenumber::parse`: the crate's parser strips a
//! national prefix it finds after the calling code, also from numbers that are already
//! international (`+7 800 …`, a valid Russian toll-free number, becomes `+7 00 …` and fails),
//! and its type check matches a pattern against a prefix of the number, so a valid number with
//! extra digits appended passes. The rule here is libphonenumber's, exactly; [`plans`] gives
//! the metadata it runs on (the OpenAPI document writes the same rule out as one regular
//! expression from it).

use std::collections::HashMap;
use std::sync::{LazyLock, OnceLock};

use phonenumber::metadata::DATABASE;
use phonenumber::Type;
use regex::Regex;

/// Most digits a number may have as written, calling code (and any national prefix) included
/// (E.164 allows 15; libphonenumber's longest national numbers need a little more).
pub const MAX_DIGITS: usize = 17;

/// The number types a valid number must match one of.
pub const TYPES: [Type; 10] = [
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
pub struct RegionPatterns {
    /// The region's ISO 3166-1 alpha-2 code (`ID`, `US`), or `001` for a non-geographic
    /// calling code (+800, +882, …).
    pub id: String,
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

/// A calling code's plan: its main region's national prefix, and its regions' patterns.
#[derive(Debug, Clone)]
pub struct Plan {
    pub code: u16,
    /// The national (trunk) prefix of the code's main region, when the metadata gives one as
    /// plain digits (`0` for +62, `8` for +7, `1` for +1).
    pub prefix: Option<String>,
    /// The regions, in metadata order (the main region first).
    pub regions: Vec<RegionPatterns>,
}

/// The calling codes and their regions' patterns, in metadata order: the facts
/// libphonenumber's rule runs on.
pub fn plans() -> &'static [Plan] {
    static PLANS: LazyLock<Vec<Plan>> = LazyLock::new(|| {
        (1..1000u16)
            .filter_map(|code| {
                let ids = DATABASE.region(&code)?;
                let shared = ids.len() > 1;
                let metas: Vec<_> = ids
                    .iter()
                    .filter_map(|id| match *id {
                        // Non-geographic codes (+800, +882, …) have one entry, found by code.
                        "001" => DATABASE.by_code(&code)?.into_iter().next(),
                        id => DATABASE.by_id(id),
                    })
                    .collect();
                // libphonenumber strips a national prefix after the calling code by the code's
                // main region (the first); only a prefix of plain digits is taken here.
                let prefix = metas
                    .first()
                    .and_then(|meta| meta.national_prefix())
                    .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                    .map(str::to_owned);
                let regions = metas
                    .into_iter()
                    .map(|meta| {
                        let d = meta.descriptors();
                        let types: Vec<String> = TYPES
                            .iter()
                            .filter_map(|t| d.get(*t))
                            .map(|t| format!("(?:{})", clean(t.national_number().as_str())))
                            .collect();
                        RegionPatterns {
                            id: meta.id().to_owned(),
                            // A single region's leading digits are never consulted.
                            leading: meta.leading_digits().filter(|_| shared).map(|l| clean(l.as_str())),
                            general: clean(d.general().national_number().as_str()),
                            types: types.join("|"),
                        }
                    })
                    .collect();
                Some(Plan { code, prefix, regions })
            })
            .collect()
    });
    &PLANS
}

/// A region's patterns, compiled: leading digits match a prefix, the others the whole number.
struct Region {
    id: &'static str,
    leading: Option<Regex>,
    general: Regex,
    types: Regex,
}

fn compile(p: &'static RegionPatterns) -> Region {
    let full = |p: &str| Regex::new(&format!("^(?:{p})$")).expect("libphonenumber pattern");
    Region {
        id: &p.id,
        leading: p.leading.as_ref().map(|l| Regex::new(&format!("^(?:{l})")).expect("libphonenumber pattern")),
        general: full(&p.general),
        types: full(&p.types),
    }
}

/// A calling code's region patterns, and the regions once compiled.
type Lazily = (&'static Plan, OnceLock<Vec<Region>>);

/// The plan of a calling code and its regions, compiled on first use.
fn regions(code: u16) -> Option<(&'static Plan, &'static [Region])> {
    static COMPILED: LazyLock<HashMap<u16, Lazily>> =
        LazyLock::new(|| plans().iter().map(|plan| (plan.code, (plan, OnceLock::new()))).collect());
    let (plan, compiled) = COMPILED.get(&code)?;
    Some((plan, compiled.get_or_init(|| plan.regions.iter().map(compile).collect())))
}

/// Whether `digits` (ASCII digits: calling code, then national number) is a valid number.
pub fn is_valid(digits: &str) -> bool {
    normalise(digits).is_some()
}

/// The number `digits` (ASCII digits: calling code, then national number, at most
/// [`MAX_DIGITS`] as written) stands for, if valid: the digits themselves when the national
/// number is valid as written, else, when the national number starts with the national prefix
/// of the calling code's main region and the rest is a valid national number, the calling code
/// and that rest (`62 0 81234567890` → `6281234567890`), as libphonenumber parses it.
pub fn normalise(digits: &str) -> Option<String> {
    if digits.len() > MAX_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (code, national, plan, regions) = split(digits)?;
    if valid_national(regions, national) {
        return Some(digits.to_owned());
    }
    let rest = national.strip_prefix(plan.prefix.as_deref()?)?;
    valid_national(regions, rest).then(|| format!("{code}{rest}"))
}

/// `digits` as calling code and national number, with the code's plan and regions.
fn split(digits: &str) -> Option<(&str, &str, &'static Plan, &'static [Region])> {
    // Calling codes are prefix-free: at most one of the first three prefixes is one.
    (1..=3.min(digits.len())).find_map(|n| {
        let code = digits[..n].parse::<u16>().ok().filter(|_| !digits.starts_with('0'))?;
        let (plan, regions) = regions(code)?;
        Some((&digits[..n], &digits[n..], plan, regions))
    })
}

/// libphonenumber's rule for a national number of a calling code with these regions.
fn valid_national(regions: &[Region], national: &str) -> bool {
    region_of(regions, national).is_some_and(|r| r.general.is_match(national) && r.types.is_match(national))
}

/// The region a national number belongs to, by libphonenumber's rule: the first whose
/// leading-digits pattern starts it, or, for a region without one, whose patterns it matches.
fn region_of<'a>(regions: &'a [Region], national: &str) -> Option<&'a Region> {
    let matches = |r: &Region| r.general.is_match(national) && r.types.is_match(national);
    regions.iter().find(|region| match &region.leading {
        Some(leading) => leading.is_match(national),
        None => matches(region),
    })
}

/// The country a valid number (`digits` as [`normalise`] takes them) belongs to: its region's
/// ISO 3166-1 alpha-2 code (`ID` for `6281234567890`, `CA` for a Canadian +1 number, `GG` for
/// a Guernsey +44 7781 number), by libphonenumber's rule (see the module's text). `None` for an
/// invalid number and for a non-geographic calling code (+800, +882, …), which has no country.
pub fn region(digits: &str) -> Option<&'static str> {
    let digits = normalise(digits)?;
    let (_, national, _, regions) = split(&digits)?;
    region_of(regions, national).map(|r| r.id).filter(|id| id.len() == 2 && id.bytes().all(|b| b.is_ascii_uppercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_example_number_of_the_metadata_is_valid() {
        let mut checked = 0;
        for Plan { code, .. } in plans() {
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

    #[test]
    fn a_number_belongs_to_its_region() {
        assert_eq!(region("6281234567890"), Some("ID"));
        assert_eq!(region("62081234567890"), Some("ID"), "with the national prefix");
        assert_eq!(region("12015550123"), Some("US"));
        assert_eq!(region("447400123456"), Some("GB"));
        assert_eq!(region("79123456789"), Some("RU"));
        assert_eq!(region("5511987654321"), Some("BR"));
        assert_eq!(region("80012345678"), None, "+800 is non-geographic");
        assert_eq!(region("6281234"), None, "invalid");
        assert_eq!(region(""), None);
        // Every mobile and fixed-line example number of the metadata belongs to the region it
        // is the example of, or, in a range two regions share (Vatican and Italian mobiles,
        // +39 3…), to another region of its calling code, the first by the rule.
        let (mut checked, mut shared) = (0, 0);
        let mut wrong = Vec::new();
        for Plan { code, .. } in plans() {
            for meta in DATABASE.by_code(code).unwrap() {
                for t in [Type::Mobile, Type::FixedLine] {
                    if let Some(example) = meta.descriptors().get(t).and_then(|d| d.example()) {
                        let want = Some(meta.id()).filter(|id| *id != "001");
                        let got = region(&format!("{code}{example}"));
                        let of_code = DATABASE.region(code).unwrap_or_default();
                        if got == want {
                            checked += 1;
                        } else if got.is_some_and(|g| of_code.contains(&g)) {
                            shared += 1;
                        } else {
                            wrong.push(format!("+{code} {example} ({t:?} of {}): {got:?}", meta.id()));
                        }
                    }
                }
            }
        }
        assert_eq!(wrong, Vec::<String>::new());
        assert!(checked > 400 && shared < 20, "{checked} {shared}");
    }

    #[test]
    fn international_form_only() {
        assert!(is_valid("6281234567890"));
        assert!(is_valid("78001234567"), "a Russian toll-free number, which the crate's parser mangles");
        assert!(!is_valid("6281234567890123"), "a valid number with digits appended");
        assert!(!is_valid("0062812345678"));
        assert!(!is_valid(""));
        assert!(!is_valid("62"));
    }

    #[test]
    fn the_national_prefix_after_the_calling_code_is_dropped() {
        let prefix = |code| plans().iter().find(|p| p.code == code).unwrap().prefix.as_deref();
        assert_eq!((prefix(62), prefix(7), prefix(1), prefix(44)), (Some("0"), Some("8"), Some("1"), Some("0")));
        assert_eq!(normalise("62081234567890").as_deref(), Some("6281234567890"));
        assert_eq!(normalise("789123456789").as_deref(), Some("79123456789"));
        assert_eq!(normalise("112015550123").as_deref(), Some("12015550123"));
        assert_eq!(normalise("4407400123456").as_deref(), Some("447400123456"));
        // Valid as written: kept, even where it starts with the prefix (+7 800 is toll-free).
        assert_eq!(normalise("78001234567").as_deref(), Some("78001234567"));
        assert_eq!(normalise("6281234567890").as_deref(), Some("6281234567890"));
        // The prefix once only, and only before a valid national number.
        assert_eq!(normalise("620081234567890"), None);
        assert_eq!(normalise("620812345"), None);
        assert_eq!(normalise("62181234567890"), None, "not the prefix");
        // The limit counts the digits as written, prefix included.
        assert_eq!(normalise("49997999999999999").as_deref(), Some("49997999999999999"));
        assert_eq!(normalise("490997999999999999"), None);
        assert_eq!(normalise("4909979999999999").as_deref(), Some("499979999999999"));
    }
}
