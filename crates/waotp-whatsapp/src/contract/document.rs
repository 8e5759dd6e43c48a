//! Meta's OpenAPI document read as JSON Schema: YAML to JSON, OpenAPI's `nullable` and
//! `discriminator` turned into plain JSON Schema, and Graph's field selection applied to an
//! answer's schema. Each function here is OpenAPI's or Graph's general rule, never a patch for
//! one spot of the document (those are the [`Exception`](super::Exception)s).

use serde_json::{json, Map, Value};

/// Why the document could not be read as JSON.
#[derive(Debug, thiserror::Error)]
pub(super) enum DocumentError {
    #[error("the YAML: {0}")]
    Yaml(#[from] serde_norway::Error),
    #[error("a number: {0}")]
    Number(serde_json::Error),
    /// JSON's keys are strings: a sequence or a mapping as a key has no JSON form.
    #[error("a mapping key that is not a scalar: {0:?}")]
    MappingKey(serde_norway::Value),
}

/// The document as JSON (`serde_norway` reads it; a mapping key that YAML reads as a number,
/// like an unquoted `200:` response, becomes the string it is in JSON).
pub(super) fn from_yaml(text: &str) -> Result<Value, DocumentError> {
    to_json(serde_norway::from_str(text)?)
}

fn to_json(yaml: serde_norway::Value) -> Result<Value, DocumentError> {
    use serde_norway::Value as Y;
    Ok(match yaml {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => serde_json::to_value(&n).map_err(DocumentError::Number)?,
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(to_json).collect::<Result<_, _>>()?),
        Y::Mapping(map) => {
            let mut object = Map::new();
            for (k, v) in map {
                let key = match k {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    other => return Err(DocumentError::MappingKey(other)),
                };
                object.insert(key, to_json(v)?);
            }
            Value::Object(object)
        }
        Y::Tagged(tagged) => to_json(tagged.value)?,
    })
}

/// Rewrites OpenAPI's schema dialect into JSON Schema 2020-12, in place, over the components:
/// - `nullable: true` (OpenAPI 3.0, still used once in this 3.1 document) adds `"null"` to `type`;
/// - a `discriminator` with a `mapping` dispatches on its property: the value must be one of the
///   mapping's keys, and the object is checked against the mapped schema. A `oneOf` beside it is
///   replaced by that dispatch (a precise error instead of "not valid under any of the given
///   schemas"); a base schema that the mapped schemas extend with `allOf` (OpenAPI's inheritance
///   form) is kept as `NAME.base`, which the mapped schemas then extend, and `NAME` becomes the
///   dispatch over them.
pub(super) fn normalise(document: &mut Value) {
    let schemas = document.pointer_mut("/components/schemas").and_then(Value::as_object_mut).expect("components");
    let names: Vec<String> = schemas.keys().cloned().collect();
    for name in names {
        let Some((property, mapping)) = discriminator(&schemas[&name]) else { continue };
        let schema = schemas.get_mut(&name).expect("listed");
        let object = schema.as_object_mut().expect("a schema with a discriminator is an object");
        object.remove("discriminator");
        if object.remove("oneOf").is_some() || object.remove("anyOf").is_some() {
            object.extend(dispatch(&property, &mapping));
            continue;
        }
        let base_name = format!("{name}.base");
        let base = std::mem::replace(schema, Value::Object(dispatch(&property, &mapping)));
        schemas.insert(base_name.clone(), base);
        let (from, to) = (format!("#/components/schemas/{name}"), format!("#/components/schemas/{base_name}"));
        for target in mapping.iter().filter_map(|(_, r)| r.strip_prefix("#/components/schemas/")) {
            if let Some(extending) = schemas.get_mut(target) {
                rewrite_ref(extending, &from, &to);
            }
        }
    }
    nullable(document);
}

fn discriminator(schema: &Value) -> Option<(String, Vec<(String, String)>)> {
    let d = schema.get("discriminator")?;
    let property = d["propertyName"].as_str()?.to_owned();
    let mapping = d["mapping"].as_object()?.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())));
    Some((property, mapping.collect()))
}

/// `property` is one of the mapping's keys, and selects the schema to check against.
fn dispatch(property: &str, mapping: &[(String, String)]) -> Map<String, Value> {
    let keys: Vec<&String> = mapping.iter().map(|(k, _)| k).collect();
    let branches: Vec<Value> = mapping
        .iter()
        .map(|(k, r)| json!({ "if": { "properties": { property: { "const": k } } }, "then": { "$ref": r } }))
        .collect();
    let mut m = Map::new();
    m.insert("required".into(), json!([property]));
    m.insert("properties".into(), json!({ property: { "enum": keys } }));
    m.insert("allOf".into(), Value::Array(branches));
    m
}

fn rewrite_ref(node: &mut Value, from: &str, to: &str) {
    match node {
        Value::Object(m) => {
            for (k, v) in m.iter_mut() {
                if k == "$ref" && v == from {
                    *v = Value::String(to.to_owned());
                } else {
                    rewrite_ref(v, from, to);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rewrite_ref(v, from, to)),
        _ => {}
    }
}

fn nullable(node: &mut Value) {
    match node {
        Value::Object(m) => {
            if m.remove("nullable") == Some(Value::Bool(true)) {
                if let Some(Value::String(t)) = m.get("type").cloned() {
                    m.insert("type".into(), json!([t, "null"]));
                }
            }
            m.values_mut().for_each(nullable);
        }
        Value::Array(items) => items.iter_mut().for_each(nullable),
        _ => {}
    }
}

/// A schema by reference (`#/components/...`), or the schema itself.
pub(super) fn resolve<'d>(document: &'d Value, schema: &'d Value) -> &'d Value {
    let mut s = schema;
    for _ in 0..16 {
        match s.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix('#')) {
            Some(pointer) => s = document.pointer(pointer).unwrap_or(&Value::Null),
            None => break,
        }
    }
    s
}

/// Graph's field selection: a read with `fields=a,b` answers those fields only, so the answer's
/// schema requires only those of its `required` (a listing's: its `data` items'). Other
/// fields, when present, are still checked.
pub(super) fn select_fields(document: &Value, schema: &Value, fields: &[&str]) -> Value {
    let mut s = resolve(document, schema).clone();
    if let Some(items) = s.pointer("/properties/data/items").cloned() {
        s["properties"]["data"]["items"] = select_fields(document, &items, fields);
        return s;
    }
    if let Some(required) = s.get_mut("required").and_then(Value::as_array_mut) {
        required.retain(|r| r.as_str().is_some_and(|r| fields.contains(&r)));
    }
    s
}

/// The parameters of an operation: its path item's and its own (the latter win), references
/// resolved.
pub(super) fn parameters<'d>(document: &'d Value, path_item: &'d Value, operation: &'d Value) -> Vec<&'d Value> {
    let mut all: Vec<&Value> = Vec::new();
    for p in [path_item, operation].iter().filter_map(|o| o["parameters"].as_array()).flatten() {
        let p = resolve(document, p);
        let key = |q: &Value| (q["in"].as_str().map(str::to_owned), q["name"].as_str().map(str::to_ascii_lowercase));
        all.retain(|q| key(q) != key(p));
        all.push(p);
    }
    all
}
