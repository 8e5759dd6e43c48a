//! The send and verify body readers: any bytes are either refused (a 400) or read into fields
//! within their documented limits; a send that is read renders a message carrying its code.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use waotp_core::template::Category;
use waotp_core::{Msisdn, Template};
use waotp_server::callbacks::target;
use waotp_server::fuzzing::{
    app, fields, read_guess, CachedApp, SendRequest, MAX_CHALLENGE_CHARS, MAX_CONTENT_CHARS, MAX_CONTENT_VALUES,
    MAX_GUESS_CHARS, MAX_WHOLE_NUMBER, TIME_LIMIT,
};

/// An app with one registered utility template (in English only) beside the default,
/// unregistered `verification_code`, so a send can hit every template choice.
static APP: LazyLock<CachedApp> = LazyLock::new(|| {
    app(vec![Template {
        name: "otp_utility".into(),
        language: "en".into(),
        category: Category::Utility,
        body: "This is your OTP Code {{1}}. Please use it for {{2}}".into(),
        code_placeholder: 1,
        copy_code_button: false,
    }])
});

fn clean(s: &str, max_chars: usize) -> bool {
    s.chars().count() <= max_chars && !s.chars().any(char::is_control)
}

fuzz_target!(|data: &[u8]| {
    let Ok(body) = fields(data) else { return };
    // A body that is read is a JSON object.
    assert!(matches!(serde_json::from_slice::<serde_json::Value>(data), Ok(serde_json::Value::Object(_))));

    // The pickers on their own.
    if let Ok(Some(s)) = body.opt_str("challenge", MAX_CHALLENGE_CHARS) {
        assert!(!s.is_empty() && clean(s, MAX_CHALLENGE_CHARS));
    }
    if let Ok(Some(n)) = body.opt_uint("time_limit", TIME_LIMIT) {
        assert!(TIME_LIMIT.contains(&n));
    }
    if let Ok(Some(n)) = body.opt_uint("otp_length", 0..=u64::MAX) {
        assert!(n <= MAX_WHOLE_NUMBER);
    }
    if let Ok(Some(code)) = body.opt_code("otp") {
        assert!(!code.is_empty());
    }
    if let Ok(values) = body.opt_string_list("content", MAX_CONTENT_VALUES, MAX_CONTENT_CHARS) {
        assert!(values.len() <= MAX_CONTENT_VALUES && values.iter().all(|v| clean(v, MAX_CONTENT_CHARS)));
    }

    // The verify route's reading.
    if let Ok((guess, challenge)) = read_guess(&body) {
        assert!(!guess.is_empty() && guess.chars().count() <= MAX_GUESS_CHARS);
        assert!(clean(&challenge, MAX_CHALLENGE_CHARS));
    }

    // The send route's reading, with and without private callback targets.
    for deny_private in [false, true] {
        let Ok(send) = SendRequest::parse(&body, &APP, deny_private) else { continue };
        assert_eq!(Msisdn::parse(send.msisdn.as_str()).as_ref(), Ok(&send.msisdn));
        assert!(clean(&send.challenge, MAX_CHALLENGE_CHARS));
        assert!(TIME_LIMIT.contains(&send.time_limit_s));
        assert!(send.content.len() <= MAX_CONTENT_VALUES);
        assert!(send.content.iter().all(|v| clean(v, MAX_CONTENT_CHARS)));
        if let Some(url) = &send.callback_url {
            assert!(target::check(url, deny_private).is_ok(), "stored callback_url {url:?} is refused");
        }
        let code = send.code.as_str();
        assert!(send.message.text.contains(code), "{:?} lacks the code", send.message.text);
        assert!(send.message.body_parameters.iter().any(|p| p == code));
    }
});
