//! A request holds no field the document does not name: the request bodies' schemas closed
//! against unknown properties, so that a misspelled optional field (`recipient_typ`,
//! `template.namespce`) fails instead of passing unseen. Answers stay open: Graph adds fields
//! to its answers without notice.
//!
//! OpenAPI's composition forbids the obvious patch. `additionalProperties: false` on
//! `BaseMessageProperties` would refuse `template`, which the other `allOf` branch of
//! `TemplateMessage` declares (the document's own defect, `TextMessageClosedBranch`); even
//! `unevaluatedProperties: false` there sees only the properties evaluated inside that branch.
//! So an object is closed where it is a value, not where it is defined: every schema at which a
//! new JSON value is checked (a request body, a property's value, an array's items) gets
//! `unevaluatedProperties: false` beside its `$ref` or composition, which then sees every
//! property that any of the schemas applied to that value in place (`$ref`, `allOf`, the
//! `oneOf`/`anyOf` branch that matched, a discriminator's `then`) declares.

use std::collections::HashSet;

use serde_json::Value;

/// Keywords that apply their schema(s) to the same value (walked, not closed).
const IN_PLACE: [&str; 5] = ["allOf", "anyOf", "oneOf", "then", "else"];

/// `document` with every schema reachable from an operation's JSON request body closed where it
/// checks an object value that declares `properties` and says nothing of the others (no
/// `additionalProperties` nor `unevaluatedProperties` of its own). Call after
/// [`normalise`](super::document::normalise).
pub(super) fn close_requests(document: &Value) -> Value {
    let mut walk = Walk { document, seen: HashSet::new(), values: Vec::new() };
    for (path, item) in document["paths"].as_object().into_iter().flatten() {
        for (method, operation) in item.as_object().into_iter().flatten() {
            let at = format!("/paths/{}/{method}/requestBody/content/application~1json/schema", escape(path));
            if let Some(schema) = operation.pointer("/requestBody/content/application~1json/schema") {
                walk.value(at, schema);
            }
        }
    }
    let mut closed = document.clone();
    for at in walk.values {
        if let Some(Value::Object(schema)) = closed.pointer_mut(&at) {
            schema.insert("unevaluatedProperties".into(), Value::Bool(false));
        }
    }
    closed
}

struct Walk<'d> {
    document: &'d Value,
    /// The component schemas walked already (by pointer).
    seen: HashSet<String>,
    /// Where to close: the schemas that check an object value.
    values: Vec<String>,
}

impl<'d> Walk<'d> {
    /// `schema` (at `at`) checks a value of its own: closed if it is an object's, then walked.
    fn value(&mut self, at: String, schema: &'d Value) {
        if declares_properties(self.document, schema, &mut HashSet::new()) && !says_of_others(self.document, schema) {
            self.values.push(at.clone());
        }
        self.schema(at, schema);
    }

    /// Every schema under `schema`: those applied to the same value walked, those applied to a
    /// property's value or an item [`value`](Self::value)s of their own. `if` and `not` are not
    /// walked: closing a condition or a negation would change what it says.
    fn schema(&mut self, at: String, schema: &'d Value) {
        let Value::Object(s) = schema else { return };
        if let Some(target) = s.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix('#')) {
            if self.seen.insert(target.to_owned()) {
                if let Some(t) = self.document.pointer(target) {
                    self.schema(target.to_owned(), t);
                }
            }
        }
        for keyword in IN_PLACE {
            match s.get(keyword) {
                Some(Value::Array(branches)) => {
                    for (i, b) in branches.iter().enumerate() {
                        self.schema(format!("{at}/{keyword}/{i}"), b);
                    }
                }
                Some(branch @ Value::Object(_)) => self.schema(format!("{at}/{keyword}"), branch),
                _ => {}
            }
        }
        for keyword in ["properties", "patternProperties"] {
            for (name, p) in s.get(keyword).and_then(Value::as_object).into_iter().flatten() {
                self.value(format!("{at}/{keyword}/{}", escape(name)), p);
            }
        }
        for keyword in ["items", "additionalProperties", "contains"] {
            if let Some(v @ Value::Object(_)) = s.get(keyword) {
                self.value(format!("{at}/{keyword}"), v);
            }
        }
        for (i, v) in s.get("prefixItems").and_then(Value::as_array).into_iter().flatten().enumerate() {
            self.value(format!("{at}/prefixItems/{i}"), v);
        }
    }
}

/// Whether `schema`, or a schema it applies in place, declares `properties`.
fn declares_properties(document: &Value, schema: &Value, seen: &mut HashSet<String>) -> bool {
    let Value::Object(s) = schema else { return false };
    if s.contains_key("properties") {
        return true;
    }
    if let Some(target) = s.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix('#')) {
        if seen.insert(target.to_owned())
            && document.pointer(target).is_some_and(|t| declares_properties(document, t, seen))
        {
            return true;
        }
    }
    IN_PLACE.iter().any(|k| match s.get(*k) {
        Some(Value::Array(branches)) => branches.iter().any(|b| declares_properties(document, b, seen)),
        Some(branch) => declares_properties(document, branch, seen),
        None => false,
    })
}

/// Whether `schema` (or the schema its `$ref` names) already says what other properties may be.
fn says_of_others(document: &Value, schema: &Value) -> bool {
    let mut s = schema;
    for _ in 0..16 {
        if s.get("additionalProperties").is_some() || s.get("unevaluatedProperties").is_some() {
            return true;
        }
        match s.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix('#')) {
            Some(target) => s = document.pointer(target).unwrap_or(&Value::Null),
            None => break,
        }
    }
    false
}

/// A name as one segment of a JSON pointer.
fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::super::Contract;

    const MESSAGES: &str = "/{Version}/{Phone-Number-ID}/messages";

    /// Meta's request examples of the one operation the client sends a JSON body to: the errors
    /// of each against the open document and against the closed one.
    fn examples() -> Vec<(String, usize, usize)> {
        let contract = Contract::meta();
        let at = "/paths/~1{Version}~1{Phone-Number-ID}~1messages/post/requestBody/content/application~1json";
        let open_schema = contract.document.pointer(&format!("{at}/schema")).expect("the operation's schema");
        let examples =
            contract.document.pointer(&format!("{at}/examples")).and_then(Value::as_object).expect("examples");
        examples
            .iter()
            .map(|(name, example)| {
                let body = &example["value"];
                let open = contract.errors(&contract.document, &format!("POST {MESSAGES} open"), open_schema, body);
                let closed = contract.body_errors("POST", MESSAGES, body);
                (name.clone(), open.len(), closed.len())
            })
            .collect()
    }

    /// Closing the request bodies refuses none of Meta's examples that the document accepts: every
    /// template, text and reaction example that passed passes (with `DateTimeObjectFields`). The
    /// examples that fail already (message kinds the client never sends, with defects of their
    /// own left alone) may fail more.
    #[test]
    fn metas_examples_that_pass_open_pass_closed() {
        let examples = examples();
        let passing = |which: fn(&(String, usize, usize)) -> usize| -> Vec<&str> {
            examples.iter().filter(|e| which(e) == 0).map(|(n, _, _)| n.as_str()).collect()
        };
        assert_eq!(passing(|e| e.1), passing(|e| e.2));
        for name in ["Send Message Template Text", "Send Text Message", "Send Reply with Reaction Message"] {
            assert!(passing(|e| e.2).contains(&name), "{name}");
        }
    }
}
