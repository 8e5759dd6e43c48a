//! Reverse verification: the user sends the code to the business over WhatsApp, and the
//! inbound message's sender proves the number. The pure parts: the code, the prefilled text,
//! the rule that only a message that *is* the prefilled text counts ([`normalise`]), the
//! decision on the session a message names ([`decide_inbound`]), and comparing the sender
//! Meta reports (`messages[].from`, the `wa_id`) with the number being verified.

use rand::Rng;
use unicode_normalization::UnicodeNormalization;

use crate::{OtpCode, VerifyDecision, VerifyFacts};

/// Characters of a reverse code: digits and capitals without the look-alikes `0 O 1 I`, so a
/// code read aloud or retyped survives; 32 symbols, 5 bits each.
pub const ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
/// Length of a reverse code: 50 bits, so two pending sessions hold the same text with odds
/// of about n / 10^15 per send (the store refuses a duplicate all the same).
pub const CODE_LEN: usize = 10;
/// Messages from numbers other than the session's that are counted (and reported) at most;
/// later ones are answered as the counted ones were, and write nothing.
pub const MAX_WRONG_SENDERS: u32 = 20;

/// A fresh reverse code from the thread-local CSPRNG.
pub fn generate() -> OtpCode {
    let mut rng = rand::rng();
    let code: String = (0..CODE_LEN).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect();
    OtpCode::parse_custom(&code).expect("a reverse code is a valid custom code")
}

/// A message's text as it is compared with a prefilled text: compatibility-normalised (NFKC:
/// full-width letters, no-break spaces), lower case, reduced to its UTS #39 skeleton (Cyrillic
/// `а` and Latin `a` are one letter; invisible format characters such as zero-width spaces
/// and bidi controls are dropped), with every run of white space one space and none at
/// either end. A user who sends the prefilled text as WhatsApp put it in the input box, or
/// as a keyboard or a copy re-typed it, matches; a message that only contains the code
/// (an "order number" an attacker asked the victim to send) does not.
pub fn normalise(text: &str) -> String {
    let folded: String = text.nfkc().flat_map(char::to_lowercase).collect();
    // The skeleton maps some letters to capitals (`0` → `O`): lower case again after it.
    let skeleton: String =
        unicode_security::confusable_detection::skeleton(&folded).flat_map(char::to_lowercase).collect();
    skeleton.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Who sent an inbound message that is a session's prefilled text, as far as waotp can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    /// The session's own number ([`same_sender`]), as Meta sent it or as a business-scoped user
    /// id waotp learned names it.
    Owner,
    /// Another number.
    Stranger,
    /// A user Meta names only by a business-scoped user id waotp has not learned: their number
    /// is not shared (a username user), so nothing proves it is the session's.
    NumberNotShared,
}

impl Sender {
    /// The sender of a message from `number` (`None`: not shared, nor learned) to a session of
    /// `session_msisdn`.
    pub fn of(session_msisdn: &str, number: Option<&str>) -> Sender {
        match number {
            None => Sender::NumberNotShared,
            Some(n) if same_sender(session_msisdn, n) => Sender::Owner,
            Some(_) => Sender::Stranger,
        }
    }
}

/// The messages of other senders a reverse session counted so far (each at most
/// [`MAX_WRONG_SENDERS`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OtherSenders {
    /// From other numbers.
    pub wrong: u32,
    /// From users whose number was not shared ([`Sender::NumberNotShared`]).
    pub number_not_shared: u32,
}

/// What an inbound message that is a session's prefilled text does to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundDecision {
    /// From the session's own number: decided as a verify with the right code would be
    /// (`Verified`, or `NotFound`/`Expired`/`Locked`, which write nothing).
    Owner(VerifyDecision),
    /// From another number, while the session could still be verified: no wrong try of the
    /// owner's is counted (a stranger can never lock the session), but the message is counted
    /// apart: `senders` is the new count, `counted` whether it is written (at most
    /// [`MAX_WRONG_SENDERS`]).
    WrongSender { senders: u32, counted: bool },
    /// From a user whose number is not shared, while the session could still be verified:
    /// nothing verified and nothing counted against the session; the message is counted apart
    /// (`messages` the new count, `counted` whether it is written, at most
    /// [`MAX_WRONG_SENDERS`]) so the app learns why and can send a code to the number instead.
    NumberNotShared { messages: u32, counted: bool },
    /// From another sender, with the session no longer verifiable: the state's answer,
    /// nothing written.
    Closed(VerifyDecision),
}

impl InboundDecision {
    /// The outcome's name: the metrics' label and the logs'.
    pub fn label(self) -> &'static str {
        match self {
            InboundDecision::Owner(d) | InboundDecision::Closed(d) => match d {
                VerifyDecision::Verified => "verified",
                VerifyDecision::WrongCode { .. } => "wrong_code",
                VerifyDecision::NotFound => "not_found",
                VerifyDecision::Expired => "expired",
                VerifyDecision::Locked => "locked",
            },
            InboundDecision::WrongSender { .. } => "wrong_sender",
            InboundDecision::NumberNotShared { .. } => "number_not_shared",
        }
    }
}

/// Decides an inbound message on the session whose prefilled text it is, from its `sender`
/// and the other senders the session counted so far.
pub fn decide_inbound(facts: VerifyFacts, now_ms: i64, sender: Sender, counted: OtherSenders) -> InboundDecision {
    // The text names the session's code: only the sender is in question.
    let decision = VerifyDecision::decide(Some(facts), now_ms, || true);
    let next = |n: u32| (n.saturating_add(1).min(MAX_WRONG_SENDERS), n < MAX_WRONG_SENDERS);
    match (sender, decision) {
        (Sender::Owner, d) => InboundDecision::Owner(d),
        (Sender::Stranger, VerifyDecision::Verified) => {
            let (senders, counted) = next(counted.wrong);
            InboundDecision::WrongSender { senders, counted }
        }
        (Sender::NumberNotShared, VerifyDecision::Verified) => {
            let (messages, counted) = next(counted.number_not_shared);
            InboundDecision::NumberNotShared { messages, counted }
        }
        (_, d) => InboundDecision::Closed(d),
    }
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
    fn codes_are_long_and_unambiguous() {
        let code = generate();
        assert_eq!(code.as_str().len(), CODE_LEN);
        assert!(code.as_str().bytes().all(|b| ALPHABET.contains(&b)));
        assert_ne!(generate(), generate());
    }

    #[test]
    fn only_the_prefilled_text_matches_up_to_case_spacing_and_look_alikes() {
        let code = OtpCode::parse_custom("ABCDEFGHJK").unwrap();
        let text = prefilled_text(None, "en", &code);
        let n = normalise(&text);
        assert_eq!(n, normalise("abcdefghjk is my verification code"));
        assert_eq!(n, normalise("  ABCDEFGHJK   is my\u{00a0}verification\ncode "));
        // full-width letters, Cyrillic look-alikes, a zero-width space, a bidi control
        assert_eq!(n, normalise("ＡＢＣＤＥＦＧＨＪＫ is my verification code"));
        assert_eq!(n, normalise("ABCDEFGHJK is my v\u{0435}rific\u{0430}tion code"));
        assert_eq!(n, normalise("ABCDE\u{200b}FGHJK is my verification code\u{202c}"));
        // a digit for its look-alike letter, in either case
        assert_eq!(n, normalise("ABCDEFGHJK is my verificati0n c0de"));
        // the code inside any other text is not the text
        for other in [
            "ABCDEFGHJK",
            "my order number is ABCDEFGHJK",
            "ABCDEFGHJK is my verification code, thanks",
            "hi! ABCDEFGHJK is my verification code",
            "ABCDEFGHJL is my verification code",
        ] {
            assert_ne!(n, normalise(other), "{other:?}");
        }
        let id = prefilled_text(None, "pt_BR", &code);
        assert_eq!(normalise(&id), normalise("abcdefghjk É O MEU CÓDIGO DE VERIFICAÇÃO"));
    }

    fn pending(expires_at_ms: i64, wrong_attempts: u32) -> VerifyFacts {
        VerifyFacts {
            state: crate::SessionState::Pending,
            status: crate::Status::Requested,
            expires_at_ms,
            wrong_attempts,
        }
    }

    #[test]
    fn a_stranger_counts_apart_and_never_locks_the_owner_out() {
        let s = pending(1000, 0);
        let (none, full) = (OtherSenders::default(), OtherSenders { wrong: MAX_WRONG_SENDERS, number_not_shared: 0 });
        assert_eq!(decide_inbound(s, 10, Sender::Owner, none), InboundDecision::Owner(VerifyDecision::Verified));
        assert_eq!(
            decide_inbound(s, 10, Sender::Stranger, none),
            InboundDecision::WrongSender { senders: 1, counted: true }
        );
        assert_eq!(
            decide_inbound(s, 10, Sender::Stranger, full),
            InboundDecision::WrongSender { senders: MAX_WRONG_SENDERS, counted: false }
        );
        // however many strangers came, the owner verifies
        assert_eq!(decide_inbound(s, 10, Sender::Owner, full), InboundDecision::Owner(VerifyDecision::Verified));
        // an expired session: the state's answer, for both
        assert_eq!(decide_inbound(s, 2000, Sender::Stranger, none), InboundDecision::Closed(VerifyDecision::Expired));
        assert_eq!(decide_inbound(s, 2000, Sender::Owner, none), InboundDecision::Owner(VerifyDecision::Expired));
    }

    #[test]
    fn a_sender_whose_number_is_not_shared_verifies_nothing_and_is_counted_apart() {
        let s = pending(1000, 0);
        let none = OtherSenders::default();
        assert_eq!(Sender::of("6281234567890", None), Sender::NumberNotShared);
        assert_eq!(Sender::of("5511987654321", Some("551187654321")), Sender::Owner);
        assert_eq!(Sender::of("6281234567890", Some("6281234567891")), Sender::Stranger);
        let d = decide_inbound(s, 10, Sender::NumberNotShared, none);
        assert_eq!(d, InboundDecision::NumberNotShared { messages: 1, counted: true });
        assert_eq!(d.label(), "number_not_shared");
        // counted apart from the wrong senders, each capped
        let both = OtherSenders { wrong: 3, number_not_shared: MAX_WRONG_SENDERS };
        assert_eq!(
            decide_inbound(s, 10, Sender::NumberNotShared, both),
            InboundDecision::NumberNotShared { messages: MAX_WRONG_SENDERS, counted: false }
        );
        assert_eq!(
            decide_inbound(s, 10, Sender::Stranger, both),
            InboundDecision::WrongSender { senders: 4, counted: true }
        );
        // nothing is counted against the session: the owner still verifies, the wrong tries untouched
        assert_eq!(decide_inbound(s, 10, Sender::Owner, both), InboundDecision::Owner(VerifyDecision::Verified));
        assert_eq!(
            decide_inbound(s, 2000, Sender::NumberNotShared, none),
            InboundDecision::Closed(VerifyDecision::Expired)
        );
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
