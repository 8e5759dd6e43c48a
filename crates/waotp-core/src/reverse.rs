//! Reverse verification: the user sends the code to the business over WhatsApp, and the
//! inbound message's sender proves the number. The pure parts: the code (long enough to name
//! its session among every pending one, since an inbound message does not say which app it
//! answers), finding it in a message's text, the prefilled text, and comparing the sender
//! Meta reports (`messages[].from`, the `wa_id`) with the number being verified.

use rand::Rng;

use crate::OtpCode;

/// Characters of a reverse code: digits and capitals without the look-alikes `0 O 1 I`, so a
/// code read aloud or retyped survives; 32 symbols, 5 bits each.
pub const ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
/// Length of a reverse code: 50 bits, so two pending sessions hold the same code with odds
/// of about n / 10^15 per send (the store refuses a duplicate all the same).
pub const CODE_LEN: usize = 10;
/// Candidate codes read from one message at most: what one message may cost the store.
pub const MAX_CANDIDATES: usize = 3;

/// A fresh reverse code from the thread-local CSPRNG.
pub fn generate() -> OtpCode {
    let mut rng = rand::rng();
    let code: String = (0..CODE_LEN).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect();
    OtpCode::parse_custom(&code).expect("a reverse code is a valid custom code")
}

/// The reverse codes a message's text may hold: its words of exactly [`CODE_LEN`] characters
/// of [`ALPHABET`] (case-insensitive), distinct, the first [`MAX_CANDIDATES`] of them.
pub fn codes_in(text: &str) -> Vec<OtpCode> {
    let mut found: Vec<OtpCode> = Vec::new();
    for word in text.split(|c: char| !c.is_ascii_alphanumeric()) {
        if found.len() == MAX_CANDIDATES {
            break;
        }
        if word.len() != CODE_LEN {
            continue;
        }
        let upper = word.to_ascii_uppercase();
        if !upper.bytes().all(|b| ALPHABET.contains(&b)) {
            continue;
        }
        let code = OtpCode::from_guess(&upper);
        if !found.contains(&code) {
            found.push(code);
        }
    }
    found
}

/// The text the user sends, prefilled in WhatsApp: the app's own (with `{code}` standing for
/// the code) or waotp's default in the request's language (English when it has none).
pub fn prefilled_text(custom: Option<&str>, lang_code: &str, code: &OtpCode) -> String {
    if let Some(custom) = custom.filter(|t| t.contains("{code}")) {
        return custom.replace("{code}", code.as_str());
    }
    let code = code.as_str();
    match lang_code.split(['_', '-']).next().unwrap_or("") {
        "id" => format!("{code} adalah kode verifikasi saya"),
        "ms" => format!("{code} ialah kod pengesahan saya"),
        "pt" => format!("{code} é o meu código de verificação"),
        "es" => format!("{code} es mi código de verificación"),
        "de" => format!("{code} ist mein Bestätigungscode"),
        "fr" => format!("{code} est mon code de vérification"),
        _ => format!("{code} is my verification code"),
    }
}

/// Whether `c` breaks a line: a line or paragraph separator in any of Unicode's forms (`\n`,
/// `\r`, U+000B, U+000C, U+0085, U+2028, U+2029).
pub fn is_line_break(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// Whether `c` is a bidirectional control (U+061C, U+200E, U+200F, U+202A to U+202E, U+2066 to
/// U+2069): invisible, it reorders what a reader sees, so a text can show other words than it
/// holds.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// The first character a text meant as one line, shown as written (an app's prefilled text),
/// may not hold: a control character, a line break ([`is_line_break`]) or a bidirectional
/// control ([`is_bidi_control`]).
pub fn not_one_line(text: &str) -> Option<char> {
    text.chars().find(|&c| c.is_control() || is_line_break(c) || is_bidi_control(c))
}

/// A number as WhatsApp identifies its account, for comparing: digits only, and the forms
/// that name the same subscriber in a few countries brought to one:
/// - Brazil (55): mobile numbers gained a ninth digit (a `9` after the two-digit area code)
///   in 2012–2016; accounts registered before keep the 8-digit form as their `wa_id`, so
///   `55 AA 9 XXXXXXXX` and `55 AA XXXXXXXX` are one number (the `9` is dropped).
/// - Mexico (52): mobiles were dialled from abroad as `52 1 …` until 2019; WhatsApp still
///   reports many accounts as `521` + 10 digits, the same as `52` + 10 digits (the `1` goes).
/// - Argentina (54): mobiles are dialled from abroad as `54 9 …` (and `wa_id`s carry the 9),
///   the same subscriber as `54` + 10 digits (the `9` goes).
pub fn canonical(number: &str) -> String {
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    let b = digits.as_bytes();
    // Brazil: 55 + 2-digit area (11–99) + 9 + 8 digits, the 8 digits a mobile's (6–9 first).
    if digits.len() == 13 && digits.starts_with("55") && b[4] == b'9' && (b'6'..=b'9').contains(&b[5]) {
        return format!("{}{}", &digits[..4], &digits[5..]);
    }
    // Mexico: 52 1 + 10 digits.
    if digits.len() == 13 && digits.starts_with("521") {
        return format!("52{}", &digits[3..]);
    }
    // Argentina: 54 9 + 10 digits.
    if digits.len() == 13 && digits.starts_with("549") {
        return format!("54{}", &digits[3..]);
    }
    digits
}

/// Whether an inbound message's sender (`from`) is the number a session verifies.
pub fn same_sender(session_msisdn: &str, from: &str) -> bool {
    let (a, b) = (canonical(session_msisdn), canonical(from));
    !a.is_empty() && a == b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_long_unambiguous_and_found_in_text() {
        let code = generate();
        assert_eq!(code.as_str().len(), CODE_LEN);
        assert!(code.as_str().bytes().all(|b| ALPHABET.contains(&b)));
        assert_ne!(generate(), generate());
        let text = prefilled_text(None, "en", &code);
        assert_eq!(codes_in(&text), vec![code.clone()]);
        // lower case, punctuation around it, repeated
        let lower = format!("hi! {}. ({})", code.as_str().to_lowercase(), code.as_str());
        assert_eq!(codes_in(&lower), vec![code]);
        // too short, too long, look-alikes
        assert!(codes_in("ABCDEFGHJ ABCDEFGHJKL 0BCDEFGHJK IBCDEFGHJK hello").is_empty());
        // a flood of words costs at most MAX_CANDIDATES lookups
        let many = (0..50).map(|_| generate().as_str().to_owned()).collect::<Vec<_>>().join(" ");
        assert_eq!(codes_in(&many).len(), MAX_CANDIDATES);
    }

    #[test]
    fn prefilled_texts() {
        let code = OtpCode::parse_custom("ABCDEFGHJK").unwrap();
        assert_eq!(prefilled_text(None, "en_US", &code), "ABCDEFGHJK is my verification code");
        assert_eq!(prefilled_text(None, "id", &code), "ABCDEFGHJK adalah kode verifikasi saya");
        assert_eq!(prefilled_text(None, "pt_BR", &code), "ABCDEFGHJK é o meu código de verificação");
        assert_eq!(prefilled_text(None, "xx", &code), "ABCDEFGHJK is my verification code");
        assert_eq!(prefilled_text(Some("Kode saya: {code}"), "en", &code), "Kode saya: ABCDEFGHJK");
        // a custom text without the placeholder would send no code: the default is used
        assert_eq!(prefilled_text(Some("hello"), "en", &code), "ABCDEFGHJK is my verification code");
    }

    #[test]
    fn one_line_texts_refuse_every_line_break_and_bidi_control() {
        for c in ['\n', '\r', '\u{0B}', '\u{0C}', '\u{85}', '\u{2028}', '\u{2029}'] {
            assert!(is_line_break(c), "{:04X}", c as u32);
            assert_eq!(not_one_line(&format!("a{c}b {{code}}")), Some(c), "{:04X}", c as u32);
        }
        for c in ['\u{061C}', '\u{200E}', '\u{200F}', '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}']
            .into_iter()
            .chain(['\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}'])
        {
            assert!(is_bidi_control(c), "{:04X}", c as u32);
            assert_eq!(not_one_line(&format!("Kode {{code}} {c}dlrow")), Some(c), "{:04X}", c as u32);
        }
        assert_eq!(not_one_line("tab\there"), Some('\t'));
        // Ordinary text of any script, joiners and spaces are left alone.
        for ok in [
            "{code} is my verification code",
            "Kode saya: {code}",
            "رمز {code}",
            "{code} 確認コード",
            "a\u{200D}b {code}",
        ] {
            assert_eq!(not_one_line(ok), None, "{ok}");
        }
        assert!(!is_bidi_control('\u{2029}') && !is_line_break('\u{202E}') && !is_bidi_control('\u{200B}'));
    }

    #[test]
    fn brazil_ninth_digit() {
        // São Paulo mobile with and without the ninth digit
        assert!(same_sender("5511987654321", "551187654321"));
        assert!(same_sender("551187654321", "5511987654321"));
        assert!(same_sender("5511987654321", "5511987654321"));
        assert!(same_sender("+55 11 98765-4321", "551187654321"));
        // another area, another subscriber
        assert!(!same_sender("5511987654321", "552187654321"));
        // a landline (8 digits starting 2–5) has no ninth digit to drop
        assert_eq!(canonical("551132654321"), "551132654321");
        assert!(!same_sender("5511932654321", "551132654321"));
    }

    #[test]
    fn mexico_mobile_prefix_one() {
        assert!(same_sender("5215512345678", "525512345678"));
        assert!(same_sender("525512345678", "5215512345678"));
        assert!(!same_sender("525512345678", "525512345679"));
    }

    #[test]
    fn argentina_mobile_nine() {
        assert!(same_sender("5491123456789", "541123456789"));
        assert!(same_sender("541123456789", "5491123456789"));
        assert!(!same_sender("5491123456789", "541123456780"));
    }

    #[test]
    fn other_countries_compare_digits() {
        assert!(same_sender("6281234567890", "6281234567890"));
        assert!(same_sender("+6281234567890", "6281234567890"));
        assert!(!same_sender("6281234567890", "6281234567891"));
        // a number that only looks like another country's long form is left alone
        assert_eq!(canonical("6291234567890"), "6291234567890");
        assert!(!same_sender("", ""));
    }
}
