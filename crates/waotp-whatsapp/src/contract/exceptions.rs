//! The defects of Meta's OpenAPI document that waotp's requests or the double's answers meet:
//! one entry each, patched at the spots it names (and nowhere else), each with the proof that
//! the document is wrong there. The tests below show every proof failing the unpatched schema
//! and passing the patched one.

use serde_json::{json, Value};

/// One defect of the document, and its patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Exception {
    /// `LanguageObject` requires `policy` (`deterministic`), which Meta's own template sends omit:
    /// the example "Send Message Template Text" of `POST /{Version}/{Phone-Number-ID}/messages`
    /// sends `"language": {"code": "en_US"}`. Patched: only `code` is required.
    LanguagePolicyRequired,
    /// A template button's `index` has the pattern `^[2-6, 11-14]$` (one character of `2-6`, `,`,
    /// ` `, `1` or `4`), which refuses the first button, `"0"`, that every URL and OTP button
    /// uses: the example "Send Message Template Interactive" sends `"index": "0"`, and the
    /// document's own description says "Position index of the button (0-9)". Patched, in
    /// `TemplateComponent` and `ButtonComponent`: `^[0-9]$`.
    ButtonIndexPattern,
    /// A template button's `index` is typed `string`, while the example "Send Sample Issue
    /// Resolution Template" (and "Send Catalog Template Message") sends the integers `0` and `1`.
    /// Patched, in `TemplateComponent` and `ButtonComponent`: a string as before, or an integer 0–9.
    ButtonIndexInteger,
    /// `BaseMessageProperties` requires `recipient_type`, which Meta's first example, "Send Test
    /// Message" (the `hello_world` template), omits (Meta's default is `individual`). Patched:
    /// not required.
    RecipientTypeRequired,
    /// `TextMessage` puts `additionalProperties: false` inside its second `allOf` branch, which
    /// then refuses the shared `messaging_product`, `recipient_type` and `to` that the first
    /// branch (`BaseMessageProperties`) requires: every text message fails, e.g. the example
    /// "Send Text Message". Patched: the branch is open, and `TextMessage` itself has
    /// `unevaluatedProperties: false` (what the document means: no field beyond both branches').
    TextMessageClosedBranch,
    /// The same in `ReactionMessage`: the example "Send Reply with Reaction Message" fails.
    /// Patched the same way.
    ReactionMessageClosedBranch,
    /// `BusinessVerificationStatus` (the WABA's `business_verification_status`) lists upper-case
    /// values (`VERIFIED`, …), while Meta's WhatsApp Business Account reference lists lower-case
    /// ones (`expired`, `failed`, `ineligible`, `not_verified`, `pending`,
    /// `pending_need_more_info`, `pending_submission`, `rejected`, `revoked`, `verified`:
    /// `whatsapp-operations.md` section 4), as does the document's own `BusinessPartner`
    /// (`verification_status`: `not_verified`, `pending`, `verified`). No example of the
    /// document shows this field lower case: the proof is Meta's answer as its reference gives
    /// it. Patched, in `WhatsAppBusinessAccount.business_verification_status` only (not in the
    /// other user of the shared enum, `ConnectedClientBusiness.verification_status`): the
    /// lower-case values are accepted too.
    WabaVerificationStatusCase,
    /// `DateTimeObject` (a template's `date_time` parameter) declares only `fallback_value`,
    /// while the example "Send Message Template Text" (and the four other template examples with
    /// a `date_time`) also sends `calendar`, `day_of_month`, `day_of_week`, `hour`, `minute`,
    /// `month` and `year`. Met once request bodies are closed against unknown properties
    /// (`contract/closed.rs`). Patched: those fields are declared (`calendar` a string, the
    /// others integers, as the example gives them).
    DateTimeObjectFields,
}

/// What shows the document wrong: one of its own examples, or (where it has none) Meta's answer
/// as Meta's reference page gives it. `at`: where the unpatched schema fails it (JSON pointers
/// into the example or answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    /// A request example of the operation `method path`.
    Example { method: &'static str, path: &'static str, example: &'static str, at: &'static [&'static str] },
    /// An answer with `status` to the operation `method path`, fields asked with `fields`.
    Answer {
        method: &'static str,
        path: &'static str,
        fields: &'static str,
        status: u16,
        answer: &'static str,
        at: &'static [&'static str],
    },
}

const MESSAGES: &str = "/{Version}/{Phone-Number-ID}/messages";
const INDEXES: [&str; 2] = [
    "/components/schemas/TemplateComponent/properties/index",
    "/components/schemas/ButtonComponent/allOf/1/properties/index",
];

impl Exception {
    /// Every exception, in the order they are applied.
    pub const ALL: [Exception; 8] = [
        Exception::LanguagePolicyRequired,
        Exception::ButtonIndexPattern,
        Exception::ButtonIndexInteger,
        Exception::RecipientTypeRequired,
        Exception::TextMessageClosedBranch,
        Exception::ReactionMessageClosedBranch,
        Exception::WabaVerificationStatusCase,
        Exception::DateTimeObjectFields,
    ];

    pub fn proof(self) -> Proof {
        let example = |example, at| Proof::Example { method: "POST", path: MESSAGES, example, at };
        match self {
            Exception::LanguagePolicyRequired => example("Send Message Template Text", &["/template/language"]),
            Exception::ButtonIndexPattern => {
                example("Send Message Template Interactive", &["/template/components/2/index"])
            }
            Exception::ButtonIndexInteger => example(
                "Send Sample Issue Resolution Template",
                &["/template/components/1/index", "/template/components/2/index"],
            ),
            Exception::RecipientTypeRequired => example("Send Test Message", &[""]),
            Exception::TextMessageClosedBranch => example("Send Text Message", &[""]),
            Exception::ReactionMessageClosedBranch => example("Send Reply with Reaction Message", &[""]),
            Exception::DateTimeObjectFields => {
                example("Send Message Template Text", &["/template/components/0/parameters/2/date_time"])
            }
            Exception::WabaVerificationStatusCase => Proof::Answer {
                method: "GET",
                path: "/{Version}/{WABA-ID}",
                fields: "id,name,business_verification_status",
                status: 200,
                answer: r#"{"id": "102290129340398", "name": "waotp", "business_verification_status": "verified"}"#,
                at: &["/business_verification_status"],
            },
        }
    }

    /// Patches `document` (as read from the YAML, before OpenAPI's dialect is rewritten). Panics
    /// if a spot no longer holds the defect: a new version of the document must be looked at
    /// again, not patched blindly.
    pub(super) fn apply(self, document: &mut Value) {
        match self {
            Exception::LanguagePolicyRequired => replace(
                document,
                "/components/schemas/LanguageObject/required",
                &json!(["policy", "code"]),
                json!(["code"]),
            ),
            Exception::ButtonIndexPattern => {
                for at in INDEXES {
                    replace(document, &format!("{at}/pattern"), &json!("^[2-6, 11-14]$"), json!("^[0-9]$"));
                }
            }
            Exception::ButtonIndexInteger => {
                for at in INDEXES {
                    let index = spot(document, at);
                    assert_eq!(index["type"], "string", "{at} is no longer a string");
                    *index = json!({ "anyOf": [index.clone(), { "type": "integer", "minimum": 0, "maximum": 9 }] });
                }
            }
            Exception::RecipientTypeRequired => replace(
                document,
                "/components/schemas/BaseMessageProperties/required",
                &json!(["messaging_product", "recipient_type", "to", "type"]),
                json!(["messaging_product", "to", "type"]),
            ),
            Exception::TextMessageClosedBranch => open_branch(document, "TextMessage"),
            Exception::ReactionMessageClosedBranch => open_branch(document, "ReactionMessage"),
            Exception::WabaVerificationStatusCase => {
                // Only the WABA's field: `BusinessVerificationStatus` itself stays as it is for
                // the other schema that names it (`ConnectedClientBusiness.verification_status`).
                let shared = "/components/schemas/BusinessVerificationStatus";
                let upper = json!(["VERIFIED", "UNVERIFIED", "PENDING", "REJECTED"]);
                assert_eq!(spot(document, &format!("{shared}/enum")), &upper, "{shared} no longer holds the defect");
                let lower = [
                    "expired",
                    "failed",
                    "ineligible",
                    "not_verified",
                    "pending",
                    "pending_need_more_info",
                    "pending_submission",
                    "rejected",
                    "revoked",
                    "verified",
                ];
                let at = "/components/schemas/WhatsAppBusinessAccount/properties/business_verification_status";
                let by_ref = json!({ "$ref": format!("#{shared}") });
                replace(document, at, &by_ref, json!({ "anyOf": [by_ref, { "type": "string", "enum": lower }] }));
            }
            Exception::DateTimeObjectFields => {
                let at = "/components/schemas/DateTimeObject/properties";
                let properties = spot(document, at).as_object_mut().expect("properties are an object");
                let names: Vec<&String> = properties.keys().collect();
                assert_eq!(names, ["fallback_value"], "{at} no longer holds the defect");
                properties.insert("calendar".into(), json!({ "type": "string" }));
                for name in ["day_of_month", "day_of_week", "hour", "minute", "month", "year"] {
                    properties.insert(name.into(), json!({ "type": "integer" }));
                }
            }
        }
    }
}

fn spot<'d>(document: &'d mut Value, at: &str) -> &'d mut Value {
    document.pointer_mut(at).unwrap_or_else(|| panic!("the document has no {at}"))
}

fn replace(document: &mut Value, at: &str, defect: &Value, fixed: Value) {
    let value = spot(document, at);
    assert_eq!(value, defect, "{at} no longer holds the defect");
    *value = fixed;
}

/// `NAME`'s second `allOf` branch loses `additionalProperties: false`; `NAME` gains
/// `unevaluatedProperties: false`.
fn open_branch(document: &mut Value, name: &str) {
    let at = format!("/components/schemas/{name}/allOf/1");
    let branch = spot(document, &at).as_object_mut().expect("a branch is an object");
    assert_eq!(branch.remove("additionalProperties"), Some(Value::Bool(false)), "{at} is no longer closed");
    spot(document, &format!("/components/schemas/{name}"))["unevaluatedProperties"] = Value::Bool(false);
}

#[cfg(test)]
mod tests {
    use super::super::Contract;
    use super::*;

    /// The errors of a proof under `contract`, as (instance pointer, message).
    fn errors(contract: &Contract, proof: Proof) -> Vec<(String, String)> {
        match proof {
            Proof::Example { method, path, example, .. } => {
                let body = contract.request_example(method, path, example).expect("the example is in the document");
                contract.body_errors(method, path, &body)
            }
            Proof::Answer { method, path, fields, status, answer, .. } => {
                let answer: Value = serde_json::from_str(answer).expect("JSON");
                contract.answer_errors(method, path, status, &answer, Some(fields))
            }
        }
    }

    fn at(proof: Proof) -> &'static [&'static str] {
        match proof {
            Proof::Example { at, .. } | Proof::Answer { at, .. } => at,
        }
    }

    #[test]
    fn each_exception_is_proved_by_the_documents_own_example_or_metas_answer() {
        let patched = Contract::meta();
        for exception in Exception::ALL {
            let others: Vec<Exception> = Exception::ALL.into_iter().filter(|e| *e != exception).collect();
            let unpatched = Contract::with(&others);
            let proof = exception.proof();
            let before = errors(&unpatched, proof);
            for spot in at(proof) {
                assert!(
                    before.iter().any(|(p, _)| p == spot),
                    "{exception:?}: the unpatched document should fail {proof:?} at {spot:?}; its errors: {before:?}"
                );
            }
            let after = errors(patched, proof);
            let left: Vec<_> = after.iter().filter(|(p, _)| at(proof).contains(&p.as_str())).collect();
            assert!(left.is_empty(), "{exception:?}: the patched document still fails {proof:?}: {left:?}");
        }
    }

    /// A patch is at its spots only: the shared `BusinessVerificationStatus` that
    /// `WabaVerificationStatusCase` loosens for the WABA still refuses a lower-case value in the
    /// other schema that names it.
    #[test]
    fn a_patch_loosens_nothing_beyond_its_spots() {
        let listing = "/{Version}/{Application-ID}/connected_client_businesses";
        let answer = |status: &str| json!({ "data": [{ "id": "1", "name": "Client", "verification_status": status }] });
        let errors = |status| Contract::meta().answer_errors("GET", listing, 200, &answer(status), None);
        assert!(errors("VERIFIED").is_empty(), "{:?}", errors("VERIFIED"));
        let lower = errors("verified");
        assert!(lower.iter().any(|(at, _)| at == "/data/0/verification_status"), "{lower:?}");
    }

    /// With every patch the proofs pass whole, except the one example that has its own mistake
    /// (Meta's "Send Sample Issue Resolution Template" gives two quick-reply buttons the
    /// booleans `true` and `false` as `text`).
    #[test]
    fn the_proofs_pass_whole_once_patched() {
        for exception in Exception::ALL.into_iter().filter(|e| *e != Exception::ButtonIndexInteger) {
            let after = errors(Contract::meta(), exception.proof());
            assert!(after.is_empty(), "{exception:?}: {after:?}");
        }
        let rest = errors(Contract::meta(), Exception::ButtonIndexInteger.proof());
        assert!(rest.iter().all(|(p, m)| p.ends_with("/parameters/0/text") && m.contains("string")), "{rest:?}");
    }
}
