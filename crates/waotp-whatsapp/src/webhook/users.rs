//! How Meta names a WhatsApp user in webhooks since April 2026: the phone number (`wa_id`,
//! `from`, `recipient_id`) may be left out for a user who adopted a username, and a
//! business-scoped user id (BSUID, `user_id`, `from_user_id`, `recipient_user_id`; a parent
//! BSUID where Meta gives one) is always there. Every field is optional here and a missing one
//! is the same as an empty one (Meta's drafts sent `""`, its final text leaves them out); a
//! value of the wrong shape is read as absent, never as an error. Meta's "Business-scoped user
//! IDs" page and its system-message reference (its 2026-08-11 fields `previous_user_id` and
//! `previous_parent_user_id`) are the source; see the book's "Usernames and business-scoped
//! user ids".

use serde_json::Value;

/// Longest BSUID kept: Meta's is a two-letter country code, a period (`ENT.` for a parent) and
/// up to 128 letters and digits.
const MAX_USER_ID: usize = 140;
/// Longest username kept (Meta allows 35 characters; its examples add an `@`).
const MAX_USERNAME: usize = 64;

/// A user as one place of a payload names them. `business` is the entry's id (the WhatsApp
/// Business Account): a BSUID is only meaningful within its business.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct UserIds {
    pub business: String,
    /// Digits only.
    pub wa_id: Option<String>,
    pub user_id: Option<String>,
    pub parent_user_id: Option<String>,
    pub username: Option<String>,
}

impl std::fmt::Debug for UserIds {
    /// Masked: a log line may show that a user was named, never who.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserIds")
            .field("business", &self.business)
            .field("wa_id", &self.wa_id.as_deref().map(waotp_core::msisdn::mask))
            .field("user_id", &self.user_id.as_deref().map(waotp_core::msisdn::mask_user_id))
            .field("parent_user_id", &self.parent_user_id.as_deref().map(waotp_core::msisdn::mask_user_id))
            .field("username", &self.username.as_deref().map(waotp_core::msisdn::mask_username))
            .finish()
    }
}

/// One user named by both number and BSUID in a business's webhook.
#[derive(Clone, PartialEq, Eq)]
pub struct Identified {
    pub business: String,
    pub wa_id: String,
    pub user_id: String,
    pub parent_user_id: Option<String>,
}

impl std::fmt::Debug for Identified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identified")
            .field("business", &self.business)
            .field("wa_id", &waotp_core::msisdn::mask(&self.wa_id))
            .field("user_id", &waotp_core::msisdn::mask_user_id(&self.user_id))
            .finish_non_exhaustive()
    }
}

/// A user's BSUID changed: `previous_*` no longer names them, the current ones do (with the
/// number where Meta shares it).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct UserIdChange {
    pub business: String,
    pub previous_user_id: Option<String>,
    pub user_id: Option<String>,
    pub previous_parent_user_id: Option<String>,
    pub parent_user_id: Option<String>,
    /// The user's number now (`user_changed_number`'s new number), if Meta shares it.
    pub wa_id: Option<String>,
    /// The number the user left (`messages[].from` of `user_changed_number`), if given.
    pub previous_wa_id: Option<String>,
}

impl std::fmt::Debug for UserIdChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let id = |v: &Option<String>| v.as_deref().map(waotp_core::msisdn::mask_user_id);
        let number = |v: &Option<String>| v.as_deref().map(waotp_core::msisdn::mask);
        f.debug_struct("UserIdChange")
            .field("business", &self.business)
            .field("previous_user_id", &id(&self.previous_user_id))
            .field("user_id", &id(&self.user_id))
            .field("wa_id", &number(&self.wa_id))
            .field("previous_wa_id", &number(&self.previous_wa_id))
            .finish_non_exhaustive()
    }
}

/// A phone number as Meta writes a `wa_id`: digits (at most 20); anything else is absent.
pub(super) fn number(v: &Value) -> Option<String> {
    let s = v.as_str()?.trim().trim_start_matches('+');
    (!s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.to_owned())
}

/// A BSUID: printable ASCII without spaces, at most [`MAX_USER_ID`] characters (checked
/// loosely: Meta's format may still change); anything else is absent.
pub(super) fn user_id(v: &Value) -> Option<String> {
    let s = v.as_str()?.trim();
    (!s.is_empty() && s.len() <= MAX_USER_ID && s.bytes().all(|b| b.is_ascii_graphic())).then(|| s.to_owned())
}

fn username(v: &Value) -> Option<String> {
    let s = v.as_str()?.trim();
    (!s.is_empty() && s.chars().count() <= MAX_USERNAME && !s.chars().any(char::is_control)).then(|| s.to_owned())
}

/// `contacts[]` of a message or status payload.
pub(super) fn contact(c: &Value) -> UserIds {
    UserIds {
        business: String::new(),
        wa_id: number(&c["wa_id"]),
        user_id: user_id(&c["user_id"]),
        parent_user_id: user_id(&c["parent_user_id"]),
        username: username(&c["profile"]["username"]),
    }
}

/// The recipient of a `statuses[]` entry. Meta's text named the parent field
/// `parent_recipient_user_id` for a month of 2026 before `recipient_parent_user_id`: both read.
pub(super) fn recipient(s: &Value) -> UserIds {
    UserIds {
        business: String::new(),
        wa_id: number(&s["recipient_id"]),
        user_id: user_id(&s["recipient_user_id"]),
        parent_user_id: user_id(&s["recipient_parent_user_id"]).or_else(|| user_id(&s["parent_recipient_user_id"])),
        username: None,
    }
}

/// The sender of a `messages[]` entry, with the username of its contact (the contact whose
/// BSUID, or else number, it is).
pub(super) fn sender(m: &Value, value: &Value) -> UserIds {
    let wa_id = number(&m["from"]);
    let bsuid = user_id(&m["from_user_id"]);
    let contact =
        value["contacts"].as_array().into_iter().flatten().map(contact).find(|c| {
            (bsuid.is_some() && c.user_id == bsuid) || (bsuid.is_none() && wa_id.is_some() && c.wa_id == wa_id)
        });
    UserIds {
        business: String::new(),
        // A system message's `from` is the number the user left: not theirs any more.
        wa_id: if m["type"] == "system" { None } else { wa_id },
        user_id: if m["type"] == "system" { None } else { bsuid },
        parent_user_id: if m["type"] == "system" { None } else { user_id(&m["from_parent_user_id"]) },
        username: contact.and_then(|c| c.username),
    }
}

/// `user_changed_number` and `user_changed_user_id` system messages. The older form
/// (`{body, wa_id, type}`, the left number in `from`) carries no BSUID; since May 2026 the new
/// `user_id` (and `parent_user_id`), since August 2026 `previous_user_id` and
/// `previous_parent_user_id` too.
pub(super) fn system_change(business: &str, m: &Value) -> Option<UserIdChange> {
    let system = &m["system"];
    let kind = system["type"].as_str().unwrap_or("");
    if kind != "user_changed_number" && kind != "user_changed_user_id" {
        return None;
    }
    let change = UserIdChange {
        business: business.to_owned(),
        previous_user_id: user_id(&system["previous_user_id"]),
        user_id: user_id(&system["user_id"]),
        previous_parent_user_id: user_id(&system["previous_parent_user_id"]),
        parent_user_id: user_id(&system["parent_user_id"]),
        wa_id: number(&system["wa_id"]).or_else(|| number(&system["new_wa_id"])),
        // The number the user left: `from` (Meta's May 2026 text sends `user_changed_user_id` for
        // a changed number too).
        previous_wa_id: number(&m["from"]),
    };
    Some(change).filter(|c| {
        c.previous_user_id.is_some()
            || c.previous_wa_id.is_some()
            || c.previous_parent_user_id.is_some()
            || (c.user_id.is_some() && c.wa_id.is_some())
    })
}

/// The `user_id_update` field's entries (Meta's May 2026 text; its August text says changes
/// come as system messages instead: both are read).
pub(super) fn user_id_updates<'a>(business: &'a str, value: &'a Value) -> impl Iterator<Item = UserIdChange> + 'a {
    value["user_id_update"].as_array().into_iter().flatten().filter_map(move |u| {
        let change = UserIdChange {
            business: business.to_owned(),
            previous_user_id: user_id(&u["user_id"]["previous"]),
            user_id: user_id(&u["user_id"]["current"]),
            previous_parent_user_id: user_id(&u["parent_user_id"]["previous"]),
            parent_user_id: user_id(&u["parent_user_id"]["current"]),
            wa_id: number(&u["wa_id"]),
            previous_wa_id: None,
        };
        let learns = change.user_id.is_some() && change.wa_id.is_some();
        (change.previous_user_id.is_some() || change.previous_parent_user_id.is_some() || learns).then_some(change)
    })
}
