//! The document's schemas, written from the rules the server applies (its constants, its
//! patterns, its sandbox tables), in JSON Schema terms `utoipa`'s derive cannot state: a number
//! as a JSON number or a string of digits, `""` and `null` meaning absent, fields that may not
//! come together, the sandbox's answer depending on the number. A body valid under these
//! schemas is accepted by the checks in `body.rs`, `send.rs`, `verify.rs` and `sandbox.rs`, and
//! an invalid one is refused (400); the property-based test in `scripts/api-fuzz` holds both.

use serde_json::{json, Map, Value};
use waotp_core::code::{CUSTOM_CODE_LEN, GENERATED_CODE_LEN};
use waotp_core::template::{LANGUAGE_PATTERN, NAME_PATTERN};
use waotp_core::AttemptFailure;

use super::msisdn_pattern;
use crate::body::MAX_WHOLE_NUMBER;
use crate::pattern::{decimal_range, NO_CONTROL};
use crate::sandbox::{SendScenario, VerifyScenario, SEND_SCENARIOS};
use crate::send::{MAX_CALLBACK_URL_CHARS, MAX_CHALLENGE_CHARS, MAX_CONTENT_CHARS, MAX_CONTENT_VALUES, TIME_LIMIT};
use crate::verify::MAX_GUESS_CHARS;

/// Every schema the paths refer to by name, for a server configured with `deny_private`.
pub fn all(deny_private: bool) -> Vec<(&'static str, Value)> {
    vec![
        ("Msisdn", msisdn()),
        ("SendBody", send_body(deny_private)),
        ("VerifyBody", verify_body()),
        ("SandboxSendBody", sandbox_send_body(deny_private)),
        ("SandboxVerifyBody", sandbox_verify_body()),
        ("IdempotencyKey", idempotency_key()),
        ("InboxLimit", inbox_limit()),
        ("SessionId", session_id()),
        ("CallbackStatus", callback_status()),
        ("ErrorBody", error_body()),
        ("SendAnswer", send_answer()),
        ("VerifyAnswer", verify_answer()),
        ("InboxAnswer", inbox_answer()),
        ("QuotaAnswer", quota_answer()),
        ("CallbacksAnswer", callbacks_answer()),
        ("ReplayAnswer", replay_answer()),
        ("SessionAnswer", session_answer()),
        ("InboundBody", inbound_body()),
        ("InboundAnswer", inbound_answer()),
        ("Liveness", json!({"type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}}})),
        ("Readiness", readiness()),
        ("OpenApiDocument", json!({"type": "object", "description": "This document."})),
        ("CostDate", super::costs::cost_date()),
        ("CostDays", super::costs::cost_days()),
        ("CostsAnswer", super::costs::costs_answer()),
    ]
}

/// `null` or `""`: the field is absent.
fn absent() -> Value {
    json!({"enum": [null, ""], "description": "Absent, as if the field were not sent."})
}

/// A whole number in `low..=high`, as a JSON number or a string of decimal digits (leading
/// zeros allowed), or absent.
fn number_or_digits(low: u64, high: u64, description: &str) -> Value {
    json!({
        "description": description,
        "anyOf": [
            {"type": "integer", "minimum": low, "maximum": high},
            {"type": "string", "pattern": format!("^0*(?:{})$", decimal_range(low, high))},
            absent(),
        ],
    })
}

/// A string without control characters of at most `max` characters, or absent.
fn text(max: usize, description: &str) -> Value {
    json!({
        "description": description,
        "anyOf": [{"type": "string", "maxLength": max, "pattern": NO_CONTROL}, {"type": "null"}],
    })
}

/// Digits of numbers in international form, optionally after one `+`.
fn msisdn() -> Value {
    let (fewest, most) = msisdn_pattern::digit_bounds();
    json!({
        "type": "string",
        "format": "msisdn",
        "description": "A phone number in international form: the calling code, then the national number, \
            digits only, optionally after one leading `+`. It must be a valid number under libphonenumber's \
            rule (its metadata's patterns for the calling code's regions and number types). As in \
            libphonenumber, the national (trunk) prefix of the calling code's main region may follow the \
            calling code when the number without it is valid; it is then dropped (`62081234567890` stands \
            for `6281234567890`). The pattern states exactly that rule.",
        "minLength": fewest,
        "maxLength": most + 1,
        "pattern": format!("^\\+?{}$", msisdn_pattern::pattern()),
        "examples": ["6281234567890"],
    })
}

/// The send fields other than `msisdn`, as the production and sandbox sends read them.
fn send_fields(deny_private: bool) -> Map<String, Value> {
    let (short, long) = (*CUSTOM_CODE_LEN.start() as u32, *CUSTOM_CODE_LEN.end() as u32);
    let mut fields = Map::new();
    fields.insert(
        "otp".into(),
        json!({
            "description": "Your own code: letters and digits (a string) or a whole number. Not together with `otp_length`.",
            "anyOf": [
                {"type": "string", "pattern": format!("^[0-9A-Za-z]{{{short},{long}}}$")},
                {"type": "integer", "minimum": 10u64.pow(short - 1), "maximum": 10u64.pow(long) - 1},
                absent(),
            ],
        }),
    );
    fields.insert(
        "otp_length".into(),
        number_or_digits(
            *GENERATED_CODE_LEN.start() as u64,
            *GENERATED_CODE_LEN.end() as u64,
            "Digits of a generated code. Default: the app's (6). Not together with `otp`.",
        ),
    );
    fields.insert(
        "challenge".into(),
        text(
            MAX_CHALLENGE_CHARS,
            "A category such as `login`; a code verifies only under the challenge it was sent with.",
        ),
    );
    fields.insert(
        "time_limit".into(),
        number_or_digits(*TIME_LIMIT.start(), *TIME_LIMIT.end(), "Validity in seconds. Default: the app's (300)."),
    );
    fields.insert(
        "template_name".into(),
        json!({
            "description": "The WhatsApp template. Default: the app's. A name the app registered in other \
                languages only, not in `lang_code`, is refused (400).",
            "anyOf": [{"type": "string", "pattern": NAME_PATTERN}, absent()],
        }),
    );
    fields.insert(
        "lang_code".into(),
        json!({
            "description": "The template's language (`id`, `en`, `en_US`). Default: the app's.",
            "anyOf": [{"type": "string", "pattern": LANGUAGE_PATTERN}, absent()],
        }),
    );
    fields.insert(
        "content".into(),
        json!({
            "description": "Values of the template's placeholders other than the code, in order. Fewer values \
                than a registered template needs are refused (400); surplus values are ignored.",
            "anyOf": [
                {
                    "type": "array",
                    "maxItems": MAX_CONTENT_VALUES,
                    "items": {"type": "string", "maxLength": MAX_CONTENT_CHARS, "pattern": NO_CONTROL},
                },
                absent(),
            ],
        }),
    );
    fields.insert(
        "callback_url".into(),
        json!({
            "description": "Receives the session's status callbacks: http(s), the host a name whose last label \
                starts with a letter (an `xn--` label must also be valid IDNA) or a dotted IPv4 address \
                callbacks may reach (never link-local, multicast, broadcast, `0.0.0.0/8` or cloud metadata; \
                with `callback_deny_private` not loopback or private either); no IPv6 literals, credentials, \
                spaces or control characters.",
            "anyOf": [
                {
                    "type": "string",
                    "maxLength": MAX_CALLBACK_URL_CHARS,
                    "pattern": crate::callbacks::target::pattern(deny_private),
                },
                absent(),
            ],
        }),
    );
    fields
}

/// `otp` and `otp_length` may not both be present.
fn not_both_code_and_length() -> Value {
    let present = json!({"not": {"enum": [null, ""]}});
    json!({"required": ["otp", "otp_length"], "properties": {"otp": present, "otp_length": present}})
}

fn send_body(deny_private: bool) -> Value {
    let mut properties = send_fields(deny_private);
    properties.insert("msisdn".into(), json!({"$ref": "#/components/schemas/Msisdn"}));
    properties.insert(
        "method".into(),
        json!({
            "description": "`template` (the default): an authentication template carries the code to the user. \
                `reverse`: nothing is sent; the user sends the code to the business over WhatsApp (the answer's \
                `wa_link`), and the inbound message from the number verifies it (see docs/src/guide/reverse-verification.md). The code is \
                waotp's: `otp` is refused.",
            "anyOf": [{"enum": ["template", "reverse"]}, absent()],
        }),
    );
    let present = json!({"not": {"enum": [null, ""]}});
    json!({
        "type": "object",
        "description": "A send. `\"\"` and `null` mean absent; unknown fields are ignored. A body over 512 KiB \
            is refused (400).",
        "required": ["msisdn"],
        "properties": properties,
        "not": not_both_code_and_length(),
        "allOf": [{"not": {"required": ["method", "otp"], "properties": {"method": {"const": "reverse"}, "otp": present}}}],
    })
}

fn guess() -> Value {
    json!({
        "description": "The code the user typed: a string or a whole number. Any shape is a guess; a wrong one is a 404.",
        "anyOf": [
            {"type": "string", "minLength": 1, "maxLength": MAX_GUESS_CHARS},
            {"type": "integer", "minimum": 0, "maximum": MAX_WHOLE_NUMBER},
        ],
    })
}

fn verify_body() -> Value {
    json!({
        "type": "object",
        "description": "A verify. `\"\"` and `null` mean absent; unknown fields are ignored.",
        "required": ["msisdn", "otp"],
        "properties": {
            "msisdn": {"$ref": "#/components/schemas/Msisdn"},
            "otp": guess(),
            "challenge": text(MAX_CHALLENGE_CHARS, "The challenge the code was sent with."),
        },
    })
}

/// A sandbox number, optionally after one `+`, among `numbers`.
fn scenario_number(numbers: &[&str], description: &str) -> Value {
    json!({"type": "string", "description": description, "pattern": format!("^\\+?(?:{})$", numbers.join("|"))})
}

fn sandbox_send_body(deny_private: bool) -> Value {
    let storing: Vec<&str> = SEND_SCENARIOS
        .iter()
        .filter(|(_, s, _)| matches!(s, SendScenario::Accept(_) | SendScenario::Seed(_) | SendScenario::Reverse))
        .map(|(m, _, _)| *m)
        .collect();
    // The canned refusals answer without reading the rest of the body; the bad-request
    // scenario's 400 says its body is invalid, so its number is not among the valid ones.
    let canned: Vec<&str> = SEND_SCENARIOS
        .iter()
        .filter(|(_, s, _)| match s {
            SendScenario::Unauthorized => true,
            SendScenario::Refuse(error) => error().parts().0.as_u16() != 400,
            _ => false,
        })
        .map(|(m, _, _)| *m)
        .collect();
    let mut properties = send_fields(deny_private);
    properties.insert(
        "msisdn".into(),
        scenario_number(&storing, "A scenario that stores a sandbox session: 201 and its callbacks."),
    );
    json!({
        "description": "A sandbox send: the answer is chosen by `msisdn` (see docs/src/guide/sandbox.md). 6282123060002 is the \
            bad-request scenario (400 Validation error); any other number answers 400 Invalid Scenario.",
        "anyOf": [
            {
                "type": "object",
                "required": ["msisdn"],
                "properties": {"msisdn": scenario_number(&canned, "A canned refusal (401, 403, 409, 429); the other fields are not read.")},
            },
            {
                "type": "object",
                "required": ["msisdn"],
                "properties": properties,
                "not": not_both_code_and_length(),
            },
        ],
    })
}

fn sandbox_verify_body() -> Value {
    let numbers = |real: bool| -> Vec<&'static str> {
        crate::sandbox::verify_numbers()
            .filter(|(_, s)| (*s == VerifyScenario::RealCheck) == real)
            .map(|(m, _)| m)
            .collect()
    };
    json!({
        "description": "A sandbox verify: the answer is chosen by `msisdn` (see docs/src/guide/sandbox.md); any other number \
            answers 400 Invalid Scenario.",
        "anyOf": [
            {
                "type": "object",
                "required": ["msisdn"],
                "properties": {"msisdn": scenario_number(&numbers(false), "A canned answer (200, 404, 422); the other fields are not read.")},
            },
            {
                "type": "object",
                "required": ["msisdn", "otp"],
                "properties": {
                    "msisdn": scenario_number(&numbers(true), "A scenario whose sandbox send stored a session: its code is checked."),
                    "otp": guess(),
                    "challenge": text(MAX_CHALLENGE_CHARS, "The challenge the code was sent with."),
                },
            },
        ],
    })
}

fn idempotency_key() -> Value {
    json!({
        "type": "string",
        "description": "1 to 255 visible ASCII characters (surrounding spaces and tabs are ignored).",
        "pattern": "^[ \\t]*[!-~]{1,255}[ \\t]*$",
    })
}

fn inbox_limit() -> Value {
    let (low, high) = (*crate::inbox::LIMIT.start() as u64, *crate::inbox::LIMIT.end() as u64);
    json!({
        "type": "string",
        "description": format!("Messages to return, {low} to {high}; empty or absent: {}.", crate::inbox::DEFAULT_LIMIT),
        "pattern": format!("^(?:0*(?:{}))?$", decimal_range(low, high)),
    })
}

fn session_id() -> Value {
    let hyphenated = "[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}";
    json!({
        "type": "string",
        "description": "A session id (a UUID: hyphenated, simple, braced or as a URN).",
        "pattern": format!("^(?:{hyphenated}|[0-9A-Fa-f]{{32}}|\\{{{hyphenated}\\}}|urn:uuid:{hyphenated})$"),
    })
}

fn callback_status() -> Value {
    json!({"type": "string", "description": "A callback status, 0 to 10.", "pattern": "^(?:[0-9]|10)$"})
}

fn error_body() -> Value {
    json!({
        "type": "object",
        "description": "Every error: the contract's `message`, a machine-readable `error_code`, and for a 400 a \
            `reason`. Never a key named `code` (public clients decode that as an integer).",
        "required": ["message", "error_code"],
        "properties": {
            "message": {"type": "string"},
            "error_code": {"type": "string"},
            "reason": {"type": "string"},
        },
    })
}

fn uuid() -> Value {
    json!({"type": "string", "format": "uuid"})
}

fn timestamp() -> Value {
    json!({"type": "string", "format": "date-time"})
}

fn send_answer() -> Value {
    json!({
        "type": "object",
        "required": ["message", "msisdn", "session_id", "try_count"],
        "properties": {
            "message": {"const": "OTP sent successfully"},
            "msisdn": {"type": "string"},
            "otp": {"type": "string", "description": "The code, unless the app switched this off."},
            "session_id": uuid(),
            "try_count": {"type": "integer", "minimum": 1},
            "method": {"const": "reverse", "description": "Only for a reverse verification, with the three below."},
            "text": {"type": "string", "description": "The message the user sends (prefilled in WhatsApp)."},
            "wa_link": {"type": "string", "description": "`https://wa.me/<business_number>?text=<text, URL-encoded>`."},
            "business_number": {"type": "string", "pattern": "^[0-9]+$", "description": "The number the user writes to."},
        },
    })
}

fn optional_time(description: &str) -> Value {
    json!({"type": ["string", "null"], "description": description})
}

fn session_answer() -> Value {
    json!({
        "type": "object",
        "required": ["session_id", "msisdn", "challenge", "method", "status", "status_name", "state", "try_count",
            "wrong_attempts", "wrong_senders", "number_not_shared", "created_at", "expires_at", "sent_at", "delivered_at", "read_at",
            "failed_at", "closed_at"],
        "properties": {
            "session_id": uuid(),
            "msisdn": {"type": "string"},
            "challenge": {"type": "string"},
            "method": {"enum": ["template", "reverse", "sandbox"]},
            "status": {"type": "integer", "minimum": 0, "maximum": 10},
            "status_name": {"type": "string"},
            "state": {"enum": ["pending", "verified", "superseded", "locked"]},
            "try_count": {"type": "integer", "minimum": 1},
            "wrong_attempts": {"type": "integer", "minimum": 0},
            "wrong_senders": {
                "type": ["integer", "null"],
                "minimum": 0,
                "description": "A reverse session's messages with its text from other numbers than its own, counted \
                    apart from wrong_attempts (they never lock the session), at most 20; null for other sessions"
            },
            "number_not_shared": {
                "type": ["integer", "null"],
                "minimum": 0,
                "description": "A reverse session's messages with its text from a sender whose phone number WhatsApp \
                    did not share (a username user named only by a business-scoped user id that waotp has not \
                    learned): nothing verified, nothing counted against the session, at most 20. Above 0 while \
                    pending: send a code to the number instead (method template). Null for other sessions"
            },
            "created_at": {"type": "string", "description": "RFC 3339, UTC"},
            "expires_at": {"type": "string", "description": "RFC 3339, UTC"},
            "sent_at": optional_time("When WhatsApp took the message (null: not yet, or never: reverse)"),
            "delivered_at": optional_time("When it was delivered"),
            "read_at": optional_time("When it was read"),
            "failed_at": optional_time("When it failed"),
            "closed_at": optional_time("When it was verified or reported unverified"),
        },
    })
}

fn inbound_body() -> Value {
    json!({
        "type": "object",
        "description": "The user's message to the business, simulated (local inbox channel only).",
        "required": ["text"],
        "anyOf": [
            {"required": ["from"], "properties": {"from": {"not": {"enum": [null, ""]}}}},
            {"required": ["from_user_id"], "properties": {"from_user_id": {"not": {"enum": [null, ""]}}}},
        ],
        "properties": {
            "from": {"anyOf": [{"type": "string", "pattern": "^\\+?[0-9]{6,15}$"}, absent()],
                "description": "The sender, as Meta's `from`"},
            "from_user_id": {"anyOf": [{"type": "string", "pattern": "^[!-~]{1,140}$"}, absent()],
                "description": "Without `from`: a sender Meta names only by a business-scoped user id (a username \
                    user whose number is not shared), as Meta's `from_user_id`; the local inbox learns no such id, so \
                    the message verifies nothing and the session counts it in `number_not_shared`"},
            "text": {"type": "string", "minLength": 1, "maxLength": waotp_whatsapp::webhook::MAX_INBOUND_TEXT,
                "pattern": NO_CONTROL},
        },
    })
}

fn inbound_answer() -> Value {
    json!({
        "type": "object",
        "required": ["message", "outcome"],
        "properties": {
            "message": {"const": "Inbound message received"},
            "outcome": {"enum": ["verified", "refused", "ignored", "replayed"]},
            "session_id": uuid(),
        },
    })
}

fn verify_answer() -> Value {
    json!({
        "type": "object",
        "required": ["message", "msisdn"],
        "properties": {"message": {"const": "OTP has been verified"}, "msisdn": {"type": "string"}},
    })
}

fn inbox_answer() -> Value {
    json!({
        "type": "object",
        "required": ["messages"],
        "properties": {
            "messages": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["session_id", "msisdn", "text", "created_at"],
                    "properties": {
                        "session_id": uuid(),
                        "msisdn": {"type": "string"},
                        "text": {"type": "string"},
                        "created_at": timestamp(),
                    },
                },
            },
        },
    })
}

fn quota_answer() -> Value {
    json!({
        "type": "object",
        "required": ["app_id", "quota", "unlimited"],
        "properties": {
            "app_id": uuid(),
            "quota": {"type": ["integer", "null"], "description": "Production sends left; `null`: unlimited."},
            "unlimited": {"type": "boolean"},
        },
    })
}

fn callbacks_answer() -> Value {
    json!({
        "type": "object",
        "required": ["session_id", "callbacks"],
        "properties": {
            "session_id": uuid(),
            "callbacks": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["status", "status_name", "url", "webhook_id", "state", "attempts", "happened_at", "next_attempt_at", "log"],
                    "properties": {
                        "status": {"type": "integer", "minimum": 0, "maximum": 10},
                        "status_name": {"type": "string"},
                        "url": {"type": "string"},
                        "webhook_id": {"type": "string"},
                        "state": {
                            "enum": ["pending", "waiting", "delivered", "failed"],
                            "description": "`pending`: due for its next attempt at `next_attempt_at`; `waiting`: held \
                                until an earlier status of the session is delivered or given up (`next_attempt_at` is \
                                `null`); `delivered`: a receiver answered 2xx; `failed`: every attempt of the schedule failed.",
                        },
                        "attempts": {"type": "integer", "minimum": 0},
                        "happened_at": timestamp(),
                        "next_attempt_at": {
                            "anyOf": [timestamp(), {"type": "null"}],
                            "description": "When it is next due; `null` once settled, and while it waits behind an earlier status.",
                        },
                        "log": {
                            "type": "array",
                            "description": "Every attempt, oldest first, told coarsely: the HTTP status the receiver \
                                answered, or why none answered. The detail (the connection error) is in the operator's \
                                log and admin API only.",
                            "items": {
                                "type": "object",
                                "required": ["at", "http_status", "error", "latency_ms"],
                                "properties": {
                                    "at": timestamp(),
                                    "http_status": {
                                        "type": ["integer", "null"],
                                        "description": "The receiver's answer; 2xx delivers the callback. `null` if none came.",
                                    },
                                    "error": {
                                        "enum": AttemptFailure::ALL.map(AttemptFailure::as_str).into_iter().map(Value::from).chain([Value::Null]).collect::<Vec<_>>(),
                                        "description": "Why no answer came: `unreachable` (no connection, or it failed before \
                                            an answer), `timeout` (no answer within the time limit) or `refused by policy` \
                                            (the address is one callbacks may not reach); `null` when the receiver answered.",
                                    },
                                    "latency_ms": {
                                        "type": ["integer", "null"],
                                        "description": "How long the receiver took to answer; `null` if it did not.",
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    })
}

fn replay_answer() -> Value {
    json!({
        "type": "object",
        "required": ["message", "session_id", "status"],
        "properties": {
            "message": {"const": "Callback queued"},
            "session_id": uuid(),
            "status": {"type": "integer", "minimum": 0, "maximum": 10},
        },
    })
}

fn readiness() -> Value {
    json!({
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {"enum": ["ready", "not ready"]},
            "channel": {"type": "string", "description": "When ready: the channel messages go through, `local inbox` or `WhatsApp Cloud API`."},
            "reason": {"type": "string", "description": "When not ready: why."},
        },
    })
}
