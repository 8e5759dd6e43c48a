//! Destination phone numbers, validated with libphonenumber's rules (see [`crate::numbering`]).

use std::fmt;

/// Why a msisdn was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MsisdnError {
    #[error("msisdn must not be empty")]
    Empty,
    #[error("msisdn must contain only digits, optionally after one leading '+'")]
    NotDigits,
    #[error("msisdn is too long")]
    TooLong,
    #[error("msisdn is not a valid phone number in international form (calling code, then national number)")]
    Invalid,
}

/// A phone number in international form without `+` (E.164 digits), e.g. `6281234567890`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Msisdn(String);

impl Msisdn {
    /// Parses what a client sent: digits in international form (calling code, then national
    /// number), optionally after one leading `+`, that make a valid number under
    /// libphonenumber's rule (see [`crate::numbering`]). The digits are kept as sent, except
    /// that a national (trunk) prefix after the calling code is dropped where libphonenumber
    /// drops it (`62081234567890` → `6281234567890`).
    pub fn parse(input: &str) -> Result<Self, MsisdnError> {
        let digits = input.strip_prefix('+').unwrap_or(input);
        if digits.is_empty() {
            return Err(MsisdnError::Empty);
        }
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MsisdnError::NotDigits);
        }
        if digits.len() > crate::numbering::MAX_DIGITS {
            return Err(MsisdnError::TooLong);
        }
        crate::numbering::normalise(digits).map(Msisdn).ok_or(MsisdnError::Invalid)
    }

    /// Wraps digits that were validated before (read back from the store).
    pub fn from_trusted(digits: String) -> Self {
        Msisdn(digits)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form used in logs: first five and last three digits, the rest as `*`.
    pub fn masked(&self) -> String {
        mask(&self.0)
    }
}

/// Masks any digit string for logs (`62812****890`); short strings become all stars.
pub fn mask(digits: &str) -> String {
    let n = digits.chars().count();
    if n <= 8 {
        return "*".repeat(n);
    }
    digits.chars().enumerate().map(|(i, c)| if i < 5 || i >= n - 3 { c } else { '*' }).collect()
}

/// Masks a business-scoped user id for logs: its country prefix (`US.`, or `US.ENT.` for a
/// parent id) shown, then the rest masked as [`mask`] masks a number (`US.13491****918`).
pub fn mask_user_id(user_id: &str) -> String {
    let (prefix, rest) = user_id.rsplit_once('.').map_or(("", user_id), |(p, r)| (p, r));
    let prefix = if prefix.is_empty() {
        String::new()
    } else if prefix.len() <= 6 && prefix.bytes().all(|b| b.is_ascii_alphabetic() || b == b'.') {
        format!("{prefix}.")
    } else {
        "?.".to_owned()
    };
    format!("{prefix}{}", mask(rest))
}

/// Masks a WhatsApp username for logs: its first letter (after an `@`), then `***` whatever its
/// length.
pub fn mask_username(username: &str) -> String {
    let name = username.strip_prefix('@').unwrap_or(username);
    let first: String = name.chars().take(1).collect();
    format!("@{first}***")
}

impl fmt::Display for Msisdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// `Debug` masks too, so a msisdn never lands in a log through `{:?}`.
impl fmt::Debug for Msisdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Msisdn({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_indonesian_mobile_with_and_without_plus() {
        assert_eq!(Msisdn::parse("6281234567890").unwrap().as_str(), "6281234567890");
        assert_eq!(Msisdn::parse("+6281234567890").unwrap().as_str(), "6281234567890");
    }

    #[test]
    fn accepts_other_countries() {
        assert_eq!(Msisdn::parse("4915123456789").unwrap().as_str(), "4915123456789");
        // US numbers are FixedLineOrMobile in libphonenumber: still valid.
        assert_eq!(Msisdn::parse("12015550123").unwrap().as_str(), "12015550123");
    }

    #[test]
    fn drops_a_trunk_prefix_after_the_calling_code() {
        assert_eq!(Msisdn::parse("62081234567890").unwrap().as_str(), "6281234567890");
        assert_eq!(Msisdn::parse("+62081234567890").unwrap().as_str(), "6281234567890");
        assert_eq!(Msisdn::parse("49015123456789").unwrap().as_str(), "4915123456789");
        // Valid as written: unchanged, also where it starts with the prefix (+7 800, toll-free).
        assert_eq!(Msisdn::parse("78001234567").unwrap().as_str(), "78001234567");
        assert_eq!(Msisdn::parse("4915123456789").unwrap().as_str(), "4915123456789");
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(Msisdn::parse(""), Err(MsisdnError::Empty));
        assert_eq!(Msisdn::parse("+"), Err(MsisdnError::Empty));
        assert_eq!(Msisdn::parse("62 812 3456"), Err(MsisdnError::NotDigits));
        assert_eq!(Msisdn::parse("62-8123456789"), Err(MsisdnError::NotDigits));
        assert_eq!(Msisdn::parse("++6281234567890"), Err(MsisdnError::NotDigits));
        assert_eq!(Msisdn::parse("12345"), Err(MsisdnError::Invalid));
        assert_eq!(Msisdn::parse("0000000000"), Err(MsisdnError::Invalid));
        assert_eq!(Msisdn::parse("999123456789"), Err(MsisdnError::Invalid));
        assert_eq!(Msisdn::parse("628001"), Err(MsisdnError::Invalid));
        // A trunk prefix after the calling code, before a number that is not valid without it.
        assert_eq!(Msisdn::parse("620812345"), Err(MsisdnError::Invalid));
        assert_eq!(Msisdn::parse("6200812345678"), Err(MsisdnError::Invalid));
        assert_eq!(Msisdn::parse(&"6".repeat(40)), Err(MsisdnError::TooLong));
        assert_eq!(Msisdn::parse("٦٢٨١٢٣٤٥٦٧٨٩٠"), Err(MsisdnError::NotDigits));
    }

    #[test]
    fn masks_for_logs() {
        let m = Msisdn::parse("6281234567890").unwrap();
        assert_eq!(m.masked(), "62812*****890");
        assert_eq!(format!("{m}"), "62812*****890");
        assert!(!format!("{m:?}").contains("6281234567890"));
        assert_eq!(mask("628001"), "******");
    }

    #[test]
    fn user_ids_and_usernames_are_masked() {
        assert_eq!(mask_user_id("US.13491208655302741918"), "US.13491************918");
        assert_eq!(mask_user_id("US.ENT.11815799212886844830"), "US.ENT.11815************830");
        assert_eq!(mask_user_id("BR.1234"), "BR.****");
        assert_eq!(mask_user_id("no-dots-at-all-123456789"), mask("no-dots-at-all-123456789"));
        assert!(!mask_user_id("averyverylongprefix.13491208655302741918").contains("averyvery"));
        assert_eq!(mask_username("@realsheenanelson"), "@r***");
        assert_eq!(mask_username("pablo"), "@p***");
    }
}
