//! Meta's OpenAPI document of the WhatsApp Business Messaging API (v23.0, in
//! `contract/meta/`) as the contract of waotp's Graph client: an operation found by method and
//! path, a request checked against its parameters and request body, an answer against the
//! response of its status. Test-only (the `meta-contract` feature): the Graph double checks
//! every request it receives and every answer it gives with it.
//!
//! A request body is checked closed against properties the document does not name (a
//! misspelled optional field fails; `closed.rs`), an answer open (Graph adds fields).
//! The document's defects are patched, each at its spots, by the named [`Exception`]s; the
//! endpoints the client uses that the document omits are named in [`OMITTED`]. The rules beyond
//! the document's schemas (OpenAPI's `discriminator` and `nullable`, Graph's field selection
//! and paging parameters, errors) are in `crates/waotp-whatsapp/contract/meta/README.md`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{json, Value};

mod closed;
mod document;
mod exceptions;

pub use exceptions::{Exception, Proof};

/// Where the document is (in the repository: a clean checkout is self-contained).
pub const DOCUMENT_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/contract/meta/business-messaging-api_v23.0.yaml");

/// An endpoint the client uses that the document does not describe: not checked by a schema,
/// the client's request checked by hand against Meta's reference page
/// (`crates/waotp-whatsapp/contract/meta/README.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Omitted {
    pub method: &'static str,
    pub path: &'static str,
    /// Meta's reference page for it.
    pub reference: &'static str,
}

/// The endpoints the document omits, every one the client calls.
pub const OMITTED: [Omitted; 3] = [
    Omitted {
        method: "GET",
        path: "/{Version}/debug_token",
        reference: "Graph API reference: Debug Token (/debug_token)",
    },
    Omitted {
        method: "GET",
        path: "/{Version}/{App-ID}/subscriptions",
        reference: "Graph API reference: Application, edge /subscriptions",
    },
    Omitted {
        method: "POST",
        path: "/{Version}/{WABA-ID}/upsert_message_templates",
        reference: "WhatsApp Business Management API: Bulk management of authentication templates",
    },
];

/// Query parameters every Graph node and edge takes (field selection and cursor paging),
/// accepted on any operation even where the document does not list them.
pub const GRAPH_WIDE_QUERY: [&str; 4] = ["fields", "limit", "after", "before"];

/// What a method and path are to the contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// The document's path templates that match (several when the path is `/{Version}/{id}` and
    /// nothing tells which object the id is), the most specific only.
    Documented(Vec<String>),
    Omitted(&'static Omitted),
    Unknown,
}

/// A request as the Graph API receives it. Header names in lower case.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    pub query: &'a [(String, String)],
    pub headers: &'a [(String, String)],
    /// `None`: no body.
    pub body: Option<&'a Value>,
}

/// The document, patched and in JSON Schema's dialect, with its compiled schemas.
pub struct Contract {
    document: Value,
    /// The same with the request bodies' schemas closed against unknown properties
    /// ([`closed`]): what a request body is checked against.
    requests: Value,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

fn raw() -> &'static Value {
    static RAW: OnceLock<Value> = OnceLock::new();
    RAW.get_or_init(|| {
        let text = std::fs::read_to_string(DOCUMENT_PATH).unwrap_or_else(|e| panic!("{DOCUMENT_PATH}: {e}"));
        document::from_yaml(&text).unwrap_or_else(|e| panic!("{DOCUMENT_PATH}: {e}"))
    })
}

impl Contract {
    /// The contract: the document with every [`Exception`] patched, loaded once.
    pub fn meta() -> &'static Contract {
        static META: OnceLock<Contract> = OnceLock::new();
        META.get_or_init(|| Contract::with(&Exception::ALL))
    }

    /// The document with only `exceptions` patched (the tests of the exceptions).
    pub fn with(exceptions: &[Exception]) -> Contract {
        let mut document = raw().clone();
        for e in Exception::ALL.into_iter().filter(|e| exceptions.contains(e)) {
            e.apply(&mut document);
        }
        document::normalise(&mut document);
        let requests = closed::close_requests(&document);
        Contract { document, requests, validators: Mutex::default() }
    }

    /// The operation(s) for `method` and a concrete `path` (`/v24.0/123/messages`).
    pub fn route(&self, method: &str, path: &str) -> Route {
        let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        if let Some(o) =
            OMITTED.iter().find(|o| o.method.eq_ignore_ascii_case(method) && specificity(o.path, &segments).is_some())
        {
            return Route::Omitted(o);
        }
        let method = method.to_ascii_lowercase();
        let mut best: Vec<(usize, String)> = self.document["paths"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, item)| item.get(&method).is_some())
            .filter_map(|(template, _)| Some((specificity(template, &segments)?, template.clone())))
            .collect();
        let most = best.iter().map(|(s, _)| *s).max();
        best.retain(|(s, _)| Some(*s) == most);
        match best.is_empty() {
            true => Route::Unknown,
            false => Route::Documented(best.into_iter().map(|(_, t)| t).collect()),
        }
    }

    fn operation(&self, method: &str, template: &str) -> (&Value, &Value) {
        let item = &self.document["paths"][template];
        let operation = &item[method.to_ascii_lowercase()];
        assert!(operation.is_object(), "the document has no {method} {template}");
        (item, operation)
    }

    /// What is wrong with `request` to the operation `template`: its parameters (query and
    /// header) and its body. Empty: nothing.
    pub fn check_request(&self, template: &str, request: &Request<'_>) -> Vec<String> {
        let (item, operation) = self.operation(request.method, template);
        let mut wrong = Vec::new();
        let parameters = document::parameters(&self.document, item, operation);
        for p in &parameters {
            let (Some(name), Some(place)) = (p["name"].as_str(), p["in"].as_str()) else { continue };
            let given = match place {
                "query" => request.query.iter().find(|(k, _)| k == name).map(|(_, v)| v),
                "header" => request.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v),
                _ => continue,
            };
            match given {
                None if p["required"] == true => wrong.push(format!("the {place} parameter {name} is missing")),
                None => {}
                Some(v) => {
                    let value = typed(&p["schema"], v);
                    let key = format!("{} {template} {place} {name}", request.method);
                    for (_, e) in self.errors(&self.document, &key, &p["schema"], &value) {
                        wrong.push(format!("the {place} parameter {name}={v:?}: {e}"));
                    }
                }
            }
        }
        for (k, _) in request.query {
            let documented = parameters.iter().any(|p| p["in"] == "query" && p["name"] == k.as_str());
            if !documented && !GRAPH_WIDE_QUERY.contains(&k.as_str()) {
                wrong.push(format!("the query parameter {k} is not one of the operation's"));
            }
        }
        let schema = operation.pointer("/requestBody/content/application~1json/schema");
        match (schema, request.body) {
            (Some(_), Some(body)) => {
                wrong.extend(self.body_errors(request.method, template, body).into_iter().map(located));
            }
            (Some(_), None) if operation.pointer("/requestBody/required") == Some(&Value::Bool(true)) => {
                wrong.push("the request body is missing".into())
            }
            (None, Some(_)) => wrong.push("the operation takes no request body".into()),
            _ => {}
        }
        wrong
    }

    /// What is wrong with an answer to `method template` with HTTP `status`: checked against the
    /// response the document gives for that status (or its `default`); an error status the
    /// operation does not list against the document's common `GraphAPIError`. `fields`: the
    /// request's field selection (`fields=`), for a read.
    pub fn check_answer(
        &self,
        method: &str,
        template: &str,
        status: u16,
        body: &Value,
        fields: Option<&str>,
    ) -> Vec<String> {
        self.answer_errors(method, template, status, body, fields).into_iter().map(located).collect()
    }

    /// The errors of an answer as (JSON pointer, message): [`check_answer`](Self::check_answer).
    pub fn answer_errors(
        &self,
        method: &str,
        template: &str,
        status: u16,
        body: &Value,
        fields: Option<&str>,
    ) -> Vec<(String, String)> {
        let (_, operation) = self.operation(method, template);
        let responses = &operation["responses"];
        let response = responses.get(status.to_string()).or_else(|| responses.get("default"));
        let schema = match response {
            Some(r) => match document::resolve(&self.document, r).pointer("/content/application~1json/schema") {
                Some(s) => s.clone(),
                None => return vec![],
            },
            None if status >= 400 => json!({ "$ref": "#/components/schemas/GraphAPIError" }),
            None => return vec![(String::new(), format!("HTTP {status} is not an answer the operation has"))],
        };
        let selected: Vec<&str> = fields.unwrap_or("").split(',').map(str::trim).filter(|f| !f.is_empty()).collect();
        let (schema, key) = if (200..300).contains(&status) && !selected.is_empty() {
            let key = format!("{method} {template} {status} fields={}", selected.join(","));
            (document::select_fields(&self.document, &schema, &selected), key)
        } else {
            (schema, format!("{method} {template} {status}"))
        };
        self.errors(&self.document, &key, &schema, body)
    }

    /// The errors of a request body as (JSON pointer, message), against the operation's schema
    /// closed against unknown properties.
    pub fn body_errors(&self, method: &str, template: &str, body: &Value) -> Vec<(String, String)> {
        let at = format!("/paths/{}/{}", template.replace('~', "~0").replace('/', "~1"), method.to_ascii_lowercase());
        let schema = self
            .requests
            .pointer(&format!("{at}/requestBody/content/application~1json/schema"))
            .unwrap_or_else(|| panic!("{method} {template} takes no JSON body"));
        self.errors(&self.requests, &format!("{method} {template} request"), schema, body)
    }

    /// One of the document's request examples of an operation, by name.
    pub fn request_example(&self, method: &str, template: &str, name: &str) -> Option<Value> {
        let (_, operation) = self.operation(method, template);
        let examples = operation.pointer("/requestBody/content/application~1json/examples")?;
        examples.get(name).map(|e| e["value"].clone())
    }

    /// `instance` against `schema` (its `$ref`s into `document`'s components), compiled once
    /// under `key`.
    fn errors(&self, document: &Value, key: &str, schema: &Value, instance: &Value) -> Vec<(String, String)> {
        let validator = {
            let mut cache = self.validators.lock().expect("validators");
            match cache.get(key) {
                Some(v) => v.clone(),
                None => {
                    let mut root = json!({ "components": document["components"].clone() });
                    match schema {
                        Value::Object(s) => root.as_object_mut().expect("object").extend(s.clone()),
                        other => root["allOf"] = json!([other]),
                    }
                    let v = jsonschema::options()
                        .with_draft(jsonschema::Draft::Draft202012)
                        .build(&root)
                        .unwrap_or_else(|e| panic!("{key}: the document's schema does not compile: {e}"));
                    cache.entry(key.to_owned()).or_insert_with(|| Arc::new(v)).clone()
                }
            }
        };
        let errors: Vec<(String, String, bool)> = validator
            .iter_errors(instance)
            .map(|e| {
                let unevaluated =
                    matches!(e.kind(), jsonschema::error::ValidationErrorKind::UnevaluatedProperties { .. });
                (e.instance_path().to_string(), e.to_string(), unevaluated)
            })
            .collect();
        // A value that fails inside leaves its properties unevaluated in every object around
        // it (a failed branch gives no annotations): those echoes are dropped, the failure kept.
        let echo = |at: &str| {
            errors.iter().any(|(other, _, _)| {
                other.len() > at.len() && other.starts_with(at) && other[at.len()..].starts_with('/')
            })
        };
        errors
            .iter()
            .filter(|(at, _, unevaluated)| !(*unevaluated && echo(at)))
            .map(|(at, m, _)| (at.clone(), m.clone()))
            .collect()
    }
}

fn located((pointer, message): (String, String)) -> String {
    if pointer.is_empty() {
        message
    } else {
        format!("{pointer}: {message}")
    }
}

/// How well a path template matches the concrete path's segments: the count of its literal
/// segments, or `None` if it does not match.
fn specificity(template: &str, segments: &[&str]) -> Option<usize> {
    let parts: Vec<&str> = template.split('/').collect();
    if parts.len() != segments.len() {
        return None;
    }
    let mut literal = 0;
    for (t, s) in parts.iter().zip(segments) {
        if t.starts_with('{') && t.ends_with('}') {
            if s.is_empty() {
                return None;
            }
        } else if t == s {
            literal += 1;
        } else {
            return None;
        }
    }
    Some(literal)
}

/// A query or header value as its schema types it (`limit=100` is the integer 100).
fn typed(schema: &Value, value: &str) -> Value {
    match schema["type"].as_str() {
        Some("integer") | Some("number") => value.parse::<i64>().map_or_else(|_| json!(value), Value::from),
        Some("boolean") => value.parse::<bool>().map_or_else(|_| json!(value), Value::from),
        _ => json!(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_the_documents_templates() {
        let c = Contract::meta();
        let messages = Route::Documented(vec!["/{Version}/{Phone-Number-ID}/messages".into()]);
        assert_eq!(c.route("POST", "/v24.0/123/messages"), messages);
        assert_eq!(c.route("GET", "/v24.0/debug_token"), Route::Omitted(&OMITTED[0]));
        assert_eq!(c.route("POST", "/v24.0/5/upsert_message_templates"), Route::Omitted(&OMITTED[2]));
        assert_eq!(c.route("GET", "/v24.0/5/no_such_edge"), Route::Unknown);
        let Route::Documented(node) = c.route("GET", "/v24.0/5") else { panic!("a node read is documented") };
        assert!(
            node.iter().any(|t| t == "/{Version}/{WABA-ID}")
                && node.iter().any(|t| t == "/{Version}/{Phone-Number-ID}")
        );
    }
}
