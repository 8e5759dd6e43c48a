//! WhatsApp message templates and how a code and `content` fill them (api.md section 4).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::code::OtpCode;

/// The body Meta fixes for authentication templates.
pub const AUTHENTICATION_BODY: &str = "{{1}} is your verification code.";
/// Longest template body WhatsApp accepts.
pub const MAX_BODY_LEN: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Authentication,
    Utility,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Authentication => "authentication",
            Category::Utility => "utility",
        }
    }

    pub fn parse(s: &str) -> Option<Category> {
        match s.to_ascii_lowercase().as_str() {
            "authentication" => Some(Category::Authentication),
            "utility" => Some(Category::Utility),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("template name must be 1 to 512 characters of a-z, 0-9 and _")]
    Name,
    #[error("language code must look like `en`, `id` or `en_US`")]
    Language,
    #[error("template body must be 1 to 1024 characters")]
    BodyLength,
    #[error("template placeholders must be numbered {{{{1}}}} to {{{{n}}}} without gaps")]
    Placeholders,
    #[error("the code placeholder {{{{{0}}}}} does not appear in the body")]
    CodePlaceholder(u32),
    #[error("an authentication template has exactly one placeholder, the code")]
    AuthenticationShape,
    #[error("template needs {needed} content value(s) but the request has {got}")]
    NotEnoughContent { needed: usize, got: usize },
    #[error("template {name} is not registered in language {language}")]
    NotInLanguage { name: String, language: String },
}

/// A local record of a WhatsApp template that an app uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    pub name: String,
    pub language: String,
    pub category: Category,
    /// Text with numbered placeholders `{{1}}`, `{{2}}`…
    pub body: String,
    /// Which placeholder receives the code.
    pub code_placeholder: u32,
    /// Whether a copy-code button carries the code again.
    pub copy_code_button: bool,
}

/// What a channel delivers: the text a user reads and the parameters WhatsApp needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedMessage {
    pub template_name: String,
    pub language: String,
    pub category: Category,
    /// The body with every placeholder filled.
    pub text: String,
    /// Body parameters in placeholder order (the code at its own place).
    pub body_parameters: Vec<String>,
    /// The code again, for the copy-code button (url button, index 0), if the template has one.
    pub button_parameter: Option<String>,
}

/// What [`validate_name`] accepts, as a regular expression (for the OpenAPI document).
pub const NAME_PATTERN: &str = "^[a-z0-9_]{1,512}$";

/// What [`validate_language`] accepts, as a regular expression.
pub const LANGUAGE_PATTERN: &str = "^[a-z]{2,3}(?:[_-][A-Za-z0-9]{2,4})?$";

pub fn validate_name(name: &str) -> Result<(), TemplateError> {
    let ok = !name.is_empty()
        && name.len() <= 512
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    ok.then_some(()).ok_or(TemplateError::Name)
}

/// `en`, `id`, `fil`, `en_US`, `zh_CN`, `pt_BR`, also accepting `en-US` written with a dash.
pub fn validate_language(lang: &str) -> Result<(), TemplateError> {
    let mut parts = lang.splitn(2, ['_', '-']);
    let base = parts.next().unwrap_or("");
    let base_ok = (2..=3).contains(&base.len()) && base.bytes().all(|b| b.is_ascii_lowercase());
    let region_ok = match parts.next() {
        None => true,
        Some(r) => (2..=4).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_alphanumeric()),
    };
    (base_ok && region_ok).then_some(()).ok_or(TemplateError::Language)
}

/// One piece of a template body: literal text or a numbered placeholder.
enum Piece<'a> {
    Text(&'a str),
    Slot(u32),
}

fn pieces(body: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let slot = after.find("}}").and_then(|close| {
            let inner = &after[..close];
            let ok = !inner.is_empty() && inner.len() <= 3 && inner.bytes().all(|b| b.is_ascii_digit());
            ok.then(|| (inner.parse::<u32>().ok(), close))
        });
        match slot {
            Some((Some(n), close)) if n > 0 => {
                if open > 0 {
                    out.push(Piece::Text(&rest[..open]));
                }
                out.push(Piece::Slot(n));
                rest = &after[close + 2..];
            }
            _ => {
                out.push(Piece::Text(&rest[..open + 2]));
                rest = after;
            }
        }
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    out
}

/// The distinct placeholder numbers of a body, ascending.
pub fn placeholders(body: &str) -> Vec<u32> {
    let mut slots: Vec<u32> = pieces(body)
        .into_iter()
        .filter_map(|p| match p {
            Piece::Slot(n) => Some(n),
            Piece::Text(_) => None,
        })
        .collect();
    slots.sort_unstable();
    slots.dedup();
    slots
}

/// The template a message named `name` in `language` goes out as (api.md section 4), given
/// an app's `registered` templates of that name (in any language): the one in that language;
/// with none under that name, a Meta authentication template ([`Template::meta_authentication`]);
/// registered under that name but not in that language, none
/// ([`TemplateError::NotInLanguage`]: the send is refused rather than failing at Meta later).
pub fn select<'a>(registered: &'a [Template], name: &str, language: &str) -> Result<Cow<'a, Template>, TemplateError> {
    if registered.is_empty() {
        return Ok(Cow::Owned(Template::meta_authentication(name, language)));
    }
    registered
        .iter()
        .find(|t| t.name == name && t.language == language)
        .map(Cow::Borrowed)
        .ok_or_else(|| TemplateError::NotInLanguage { name: name.to_owned(), language: language.to_owned() })
}

impl Template {
    /// The shape Meta gives every authentication template; used for names with no local record.
    pub fn meta_authentication(name: &str, language: &str) -> Template {
        Template {
            name: name.to_owned(),
            language: language.to_owned(),
            category: Category::Authentication,
            body: AUTHENTICATION_BODY.to_owned(),
            code_placeholder: 1,
            copy_code_button: true,
        }
    }

    /// Checks a template record before it is stored.
    pub fn validate(&self) -> Result<(), TemplateError> {
        validate_name(&self.name)?;
        validate_language(&self.language)?;
        if self.body.trim().is_empty() || self.body.chars().count() > MAX_BODY_LEN {
            return Err(TemplateError::BodyLength);
        }
        let slots = placeholders(&self.body);
        if slots.iter().enumerate().any(|(i, &n)| n as usize != i + 1) {
            return Err(TemplateError::Placeholders);
        }
        if !slots.contains(&self.code_placeholder) {
            return Err(TemplateError::CodePlaceholder(self.code_placeholder));
        }
        if self.category == Category::Authentication && slots.len() != 1 {
            return Err(TemplateError::AuthenticationShape);
        }
        Ok(())
    }

    /// How many `content` values a send must carry.
    pub fn content_needed(&self) -> usize {
        placeholders(&self.body).into_iter().filter(|&n| n != self.code_placeholder).count()
    }

    /// Fills the body: the code at its placeholder, `content` at the others in ascending order.
    /// Fewer values than needed is an error; surplus values are ignored.
    pub fn render(&self, code: &OtpCode, content: &[String]) -> Result<RenderedMessage, TemplateError> {
        let slots = placeholders(&self.body);
        let needed = slots.iter().filter(|&&n| n != self.code_placeholder).count();
        if content.len() < needed {
            return Err(TemplateError::NotEnoughContent { needed, got: content.len() });
        }
        let mut values = content.iter();
        let body_parameters: Vec<String> = slots
            .iter()
            .map(|&n| {
                if n == self.code_placeholder {
                    code.as_str().to_owned()
                } else {
                    values.next().cloned().unwrap_or_default()
                }
            })
            .collect();
        let mut text = String::with_capacity(self.body.len() + 32);
        for piece in pieces(&self.body) {
            match piece {
                Piece::Text(t) => text.push_str(t),
                Piece::Slot(n) => {
                    let i = slots.binary_search(&n).expect("slot listed");
                    text.push_str(&body_parameters[i]);
                }
            }
        }
        Ok(RenderedMessage {
            template_name: self.name.clone(),
            language: self.language.clone(),
            category: self.category,
            text,
            body_parameters,
            button_parameter: self.copy_code_button.then(|| code.as_str().to_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each outcome of template selection.
    #[test]
    fn selection() {
        let registered = |language: &str| Template {
            name: "otp_reg".into(),
            language: language.into(),
            category: Category::Utility,
            body: "Code {{1}} for {{2}}".into(),
            code_placeholder: 1,
            copy_code_button: false,
        };
        let both = [registered("id"), registered("en")];
        // Registered in that language: that record.
        assert_eq!(select(&both, "otp_reg", "en").unwrap().as_ref(), &both[1]);
        assert!(matches!(select(&both, "otp_reg", "id").unwrap(), Cow::Borrowed(t) if t == &both[0]));
        // Registered, but not in that language: refused.
        let refused = select(&both, "otp_reg", "en_US").unwrap_err();
        assert_eq!(refused, TemplateError::NotInLanguage { name: "otp_reg".into(), language: "en_US".into() });
        assert_eq!(refused.to_string(), "template otp_reg is not registered in language en_US");
        // No record of that name: Meta's authentication template, in the language asked for.
        assert_eq!(
            select(&[], "verification_code", "id").unwrap().into_owned(),
            Template::meta_authentication("verification_code", "id")
        );
    }

    fn code() -> OtpCode {
        OtpCode::parse_custom("482913").unwrap()
    }

    fn utility(body: &str, code_at: u32) -> Template {
        Template {
            name: "otp_utility".into(),
            language: "en".into(),
            category: Category::Utility,
            body: body.into(),
            code_placeholder: code_at,
            copy_code_button: false,
        }
    }

    #[test]
    fn contract_example() {
        let t = utility("This is your OTP Code {{1}}. Please use it for {{2}}", 1);
        t.validate().unwrap();
        let r = t.render(&code(), &["Registration".into()]).unwrap();
        assert_eq!(r.text, "This is your OTP Code 482913. Please use it for Registration");
        assert_eq!(r.body_parameters, vec!["482913", "Registration"]);
        assert_eq!(r.button_parameter, None);
    }

    #[test]
    fn code_in_the_middle_and_repeated_placeholders() {
        let t = utility("Hi {{1}}, {{2}} is your code for {{3}}. Again: {{2}}", 2);
        t.validate().unwrap();
        assert_eq!(t.content_needed(), 2);
        let r = t.render(&code(), &["Ana".into(), "login".into(), "surplus".into()]).unwrap();
        assert_eq!(r.text, "Hi Ana, 482913 is your code for login. Again: 482913");
        assert_eq!(r.body_parameters, vec!["Ana", "482913", "login"]);
    }

    #[test]
    fn too_little_content() {
        let t = utility("{{1}} for {{2}} at {{3}}", 1);
        assert_eq!(t.render(&code(), &["x".into()]), Err(TemplateError::NotEnoughContent { needed: 2, got: 1 }));
    }

    #[test]
    fn authentication_default() {
        let t = Template::meta_authentication("verification_code", "id");
        t.validate().unwrap();
        let r = t.render(&code(), &[]).unwrap();
        assert_eq!(r.text, "482913 is your verification code.");
        assert_eq!(r.body_parameters, vec!["482913"]);
        assert_eq!(r.button_parameter.as_deref(), Some("482913"));
    }

    #[test]
    fn braces_that_are_not_placeholders_stay_literal() {
        let t = utility("{{x}} {{ 1 }} {{1}} {{0}} {{", 1);
        assert_eq!(placeholders(&t.body), vec![1]);
        let r = t.render(&code(), &[]).unwrap();
        assert_eq!(r.text, "{{x}} {{ 1 }} 482913 {{0}} {{");
    }

    #[test]
    fn validation() {
        assert_eq!(utility("{{1}} {{3}}", 1).validate(), Err(TemplateError::Placeholders));
        assert_eq!(utility("{{1}}", 2).validate(), Err(TemplateError::CodePlaceholder(2)));
        assert_eq!(utility("   ", 1).validate(), Err(TemplateError::BodyLength));
        let mut auth = utility("{{1}} and {{2}}", 1);
        auth.category = Category::Authentication;
        assert_eq!(auth.validate(), Err(TemplateError::AuthenticationShape));
        let mut bad_name = utility("{{1}}", 1);
        bad_name.name = "Bad-Name".into();
        assert_eq!(bad_name.validate(), Err(TemplateError::Name));
        for ok in ["en", "id", "fil", "en_US", "pt_BR", "zh-CN"] {
            assert!(validate_language(ok).is_ok(), "{ok}");
        }
        for bad in ["", "e", "english", "EN", "en_", "en_US_x y"] {
            assert!(validate_language(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_patterns_say_what_the_checks_say() {
        let name = regex::Regex::new(NAME_PATTERN).unwrap();
        let language = regex::Regex::new(LANGUAGE_PATTERN).unwrap();
        let pieces = ["", "a", "en", "id", "fil", "EN", "_", "-", "US", "BR", "419", "abcd", "abcde", "é", "1", " "];
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    let s = format!("{a}{b}{c}");
                    assert_eq!(name.is_match(&s), validate_name(&s).is_ok(), "{s:?}");
                    assert_eq!(language.is_match(&s), validate_language(&s).is_ok(), "{s:?}");
                }
            }
        }
        assert!(name.is_match(&"a".repeat(512)) && !name.is_match(&"a".repeat(513)));
        assert!(validate_name(&"a".repeat(512)).is_ok() && validate_name(&"a".repeat(513)).is_err());
    }
}
