//! Template checks and rendering. The input is lines: `CATEGORY PLACEHOLDER [button]`, the
//! name, the language, the code, the body (`\n` written as a backslash and `n`), then one
//! `content` value per line. Checks: validation and rendering never panic; a rendered message
//! carries the code wherever the body has its placeholder, and every content value it needed;
//! the name and language checks say what the OpenAPI document's patterns say.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use regex::Regex;
use waotp_core::template::{self, placeholders, Category, TemplateError, LANGUAGE_PATTERN, NAME_PATTERN};
use waotp_core::{OtpCode, Template};

static NAME: LazyLock<Regex> = LazyLock::new(|| Regex::new(NAME_PATTERN).expect("name pattern"));
static LANGUAGE: LazyLock<Regex> = LazyLock::new(|| Regex::new(LANGUAGE_PATTERN).expect("language pattern"));

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut lines = text.split('\n');
    let mut flags = lines.next().unwrap_or("").split(' ');
    let category = Category::parse(flags.next().unwrap_or("")).unwrap_or(Category::Utility);
    let code_placeholder = flags.next().and_then(|n| n.parse().ok()).unwrap_or(1);
    let copy_code_button = flags.next() == Some("button");
    let name = lines.next().unwrap_or("").to_owned();
    let language = lines.next().unwrap_or("").to_owned();
    let code = OtpCode::parse_custom(lines.next().unwrap_or(""))
        .unwrap_or_else(|_| OtpCode::parse_custom("482913").expect("a valid code"));
    let body = lines.next().unwrap_or("").replace("\\n", "\n");
    let content: Vec<String> = lines.map(str::to_owned).collect();

    assert_eq!(NAME.is_match(&name), template::validate_name(&name).is_ok(), "{name:?}");
    assert_eq!(LANGUAGE.is_match(&language), template::validate_language(&language).is_ok(), "{language:?}");

    let t = Template { name, language, category, body, code_placeholder, copy_code_button };
    let slots = placeholders(&t.body);
    assert!(slots.windows(2).all(|w| w[0] < w[1]) && slots.iter().all(|&n| (1..=999).contains(&n)), "{slots:?}");
    let has_code = slots.contains(&t.code_placeholder);
    let needed = slots.len() - usize::from(has_code);
    assert_eq!(t.content_needed(), needed);

    if t.validate().is_ok() {
        assert!(has_code && slots.iter().enumerate().all(|(i, &n)| n as usize == i + 1), "{slots:?}");
        assert!(!t.body.trim().is_empty() && t.body.chars().count() <= template::MAX_BODY_LEN);
        assert!(t.category == Category::Utility || slots.len() == 1);
    }

    let code_text = code.as_str();
    match t.render(&code, &content) {
        Err(e) => assert_eq!(e, TemplateError::NotEnoughContent { needed, got: content.len() }),
        Ok(r) => {
            assert!(content.len() >= needed);
            assert_eq!(r.body_parameters.len(), slots.len());
            if has_code {
                assert!(r.text.contains(code_text), "{:?} lacks the code", r.text);
                assert!(r.body_parameters.iter().any(|p| p == code_text));
            }
            for value in &content[..needed] {
                assert!(r.text.contains(value.as_str()), "{:?} lacks {value:?}", r.text);
            }
            assert_eq!(r.button_parameter.as_deref(), copy_code_button.then_some(code_text));
            assert_eq!((r.template_name, r.language, r.category), (t.name.clone(), t.language.clone(), t.category));
        }
    }

    // What a send to an unregistered template renders.
    let meta = Template::meta_authentication(&t.name, &t.language).render(&code, &content).expect("no content needed");
    assert_eq!(meta.text, format!("{code_text} is your verification code."));
});
