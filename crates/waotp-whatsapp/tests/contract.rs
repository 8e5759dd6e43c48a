//! Meta's OpenAPI document as the contract of the Graph client: the checker finds a wrong
//! request and a wrong answer, passes the client's requests, and the double refuses (and
//! reports) whatever the document forbids.

use serde_json::{json, Value};
use waotp_whatsapp::client::{reaction_message, text_message};
use waotp_whatsapp::contract::{Contract, Route};
use waotp_whatsapp::double::{DoubleConfig, GraphDouble};
use waotp_whatsapp::{GraphClient, TemplateMessage};

const MESSAGES: &str = "/{Version}/{Phone-Number-ID}/messages";

fn send() -> Value {
    TemplateMessage {
        to: "6281234567890".into(),
        template: "verification_code".into(),
        language: "en_US".into(),
        body_parameters: vec!["482913".into()],
        button_parameter: Some("482913".into()),
    }
    .to_json()
}

/// `body` with `from` renamed `to` (a misspelling).
fn renamed(mut body: Value, from: &str, to: &str) -> Value {
    let object = body.as_object_mut().unwrap();
    let value = object.remove(from).unwrap();
    object.insert(to.into(), value);
    body
}

async fn double() -> GraphDouble {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    GraphDouble::start(DoubleConfig::new("tok", "123", "secret"), listener).unwrap()
}

async fn post(d: &GraphDouble, path: &str, body: &Value) -> (u16, Value) {
    let res = reqwest::Client::new().post(format!("{}{path}", d.base())).bearer_auth("tok").json(body).send().await;
    let res = res.unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

#[test]
fn a_misspelled_send_fails_the_check() {
    let contract = Contract::meta();
    let errors = contract.body_errors("POST", MESSAGES, &renamed(send(), "template", "tempalte"));
    assert!(
        errors.iter().any(|(at, e)| at.is_empty() && e.contains("\"template\" is a required property")),
        "{errors:?}"
    );
    let errors = contract.body_errors("POST", MESSAGES, &renamed(send(), "messaging_product", "messaging_prodcut"));
    assert!(errors.iter().any(|(_, e)| e.contains("\"messaging_product\" is a required property")), "{errors:?}");
    // Deeper: a language without its code, a body parameter that is not text.
    let mut body = send();
    body["template"]["language"] = json!({ "cod": "en_US" });
    body["template"]["components"][0]["parameters"][0]["text"] = json!(482913);
    let at: Vec<String> = contract.body_errors("POST", MESSAGES, &body).into_iter().map(|(at, _)| at).collect();
    assert!(at.contains(&"/template/language".to_owned()), "{at:?}");
    assert!(at.contains(&"/template/components/0/parameters/0/text".to_owned()), "{at:?}");
    // A text message with a field Meta does not know (the patched `unevaluatedProperties`).
    let mut text = text_message("6281234567890", "hello");
    text["txet"] = json!({ "body": "hello" });
    assert!(!contract.body_errors("POST", MESSAGES, &text).is_empty());
}

/// `body` with the field at `pointer` (its parent object, then its name) renamed `to`.
fn misspelled(mut body: Value, parent: &str, from: &str, to: &str) -> Value {
    let object = body.pointer_mut(parent).and_then(Value::as_object_mut).unwrap();
    let value = object.remove(from).unwrap_or_else(|| panic!("{parent} has no {from}"));
    object.insert(to.into(), value);
    body
}

/// A misspelled optional field fails where it is, naming the field: request bodies are closed
/// against properties the document does not name. The client's own template send (body and
/// copy-code button), misspelled; a required field misspelled fails as missing already.
#[test]
fn a_misspelled_optional_field_fails_the_check() {
    let contract = Contract::meta();
    let with = |at: &str, field: &str, value: Value| {
        let mut body = send();
        body.pointer_mut(at).and_then(Value::as_object_mut).unwrap().insert(field.into(), value);
        body
    };
    let cases = [
        (misspelled(send(), "", "recipient_type", "recipient_typ"), "", "recipient_typ"),
        (with("/template", "namespce", json!("c8ae5f90_307a_ca4c_b8f6_d1e2a2573574")), "/template", "namespce"),
        (
            misspelled(send(), "/template/components/0", "parameters", "parametres"),
            "/template/components/0",
            "parametres",
        ),
        (
            with("/template/components/0/parameters/0", "txt", json!("482913")),
            "/template/components/0/parameters/0",
            "txt",
        ),
        (
            with("/template/components/1/parameters/0", "txt", json!("482913")),
            "/template/components/1/parameters/0",
            "txt",
        ),
        (with("/template/language", "polcy", json!("deterministic")), "/template/language", "polcy"),
    ];
    let mut passed = Vec::new();
    for (body, at, field) in cases {
        let errors = contract.body_errors("POST", MESSAGES, &body);
        if !errors.iter().any(|(p, e)| p == at && e.contains(&format!("'{field}' was unexpected"))) {
            passed.push(format!("{field} at {at:?}: {errors:?}"));
        }
    }
    assert!(passed.is_empty(), "misspellings not named where they are:\n{}", passed.join("\n"));
}

#[test]
fn the_clients_sends_pass_the_check() {
    let contract = Contract::meta();
    for body in [send(), reaction_message("6281234567890", "wamid.HBgM", "✅"), text_message("6281234567890", "hi")] {
        let errors = contract.body_errors("POST", MESSAGES, &body);
        assert!(errors.is_empty(), "{body}: {errors:?}");
    }
    let no_button = TemplateMessage { button_parameter: None, ..auth() };
    assert!(contract.body_errors("POST", MESSAGES, &no_button.to_json()).is_empty());
}

fn auth() -> TemplateMessage {
    TemplateMessage {
        to: "6281234567890".into(),
        template: "verification_code".into(),
        language: "id".into(),
        body_parameters: vec!["1234".into()],
        button_parameter: Some("1234".into()),
    }
}

#[test]
fn a_wrong_answer_fails_the_check() {
    let contract = Contract::meta();
    let good = json!({ "messaging_product": "whatsapp", "messages": [{ "id": "wamid.HBgM" }],
                       "contacts": [{ "input": "6281234567890", "wa_id": "6281234567890" }] });
    assert!(contract.check_answer("POST", MESSAGES, 200, &good, None).is_empty());
    let mut bad = good.clone();
    bad["messages"][0]["id"] = json!(12345);
    let errors = contract.check_answer("POST", MESSAGES, 200, &bad, None);
    assert!(
        errors.len() == 1 && errors[0].starts_with("/messages/0/id: 12345 is not of type \"string\""),
        "{errors:?}"
    );
    // Errors the operation does not list are Graph's common envelope: `code` is an integer.
    let error = json!({ "error": { "message": "(#131056) pair rate", "type": "OAuthException", "code": "131056" } });
    assert!(!contract.check_answer("POST", MESSAGES, 400, &error, None).is_empty());
    // A read answers only the fields asked for: `status` is required of a listed number, unless
    // `fields` leaves it out.
    let listing = "/{Version}/{WABA-ID}/phone_numbers";
    let numbers = json!({ "data": [{ "id": "1", "display_phone_number": "+1 555-0100" }] });
    assert!(!contract.check_answer("GET", listing, 200, &numbers, None).is_empty());
    assert!(contract.check_answer("GET", listing, 200, &numbers, Some("id,display_phone_number")).is_empty());
}

#[test]
fn query_parameters_are_checked_where_the_document_has_them() {
    let contract = Contract::meta();
    let q = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
    let headers = q(&[("authorization", "Bearer tok")]);
    let check = |template: &str, query: &[(String, String)]| {
        let request = waotp_whatsapp::contract::Request { method: "GET", query, headers: &headers, body: None };
        contract.check_request(template, &request)
    };
    let listing = "/{Version}/{WABA-ID}/phone_numbers";
    assert!(check(listing, &q(&[("fields", "id"), ("limit", "100")])).is_empty());
    assert!(!check(listing, &q(&[("limit", "1000")])).is_empty(), "the document's maximum is 100");
    assert!(!check(listing, &q(&[("sort", "newest")])).is_empty(), "not one of the document's sorts");
    assert!(!check(listing, &q(&[("feilds", "id")])).is_empty(), "an unknown parameter");
    let no_token = waotp_whatsapp::contract::Request { method: "GET", query: &[], headers: &[], body: None };
    assert_eq!(contract.check_request(listing, &no_token), ["the header parameter Authorization is missing"]);
}

#[tokio::test]
async fn the_double_refuses_what_the_document_forbids_and_reports_it() {
    let d = double().await;
    let (status, v) = post(&d, "/v24.0/123/messages", &renamed(send(), "template", "tempalte")).await;
    assert_eq!((status, v["error"]["type"].as_str()), (400, Some("WaotpContractViolation")), "{v}");
    let (status, v) = post(&d, "/v24.0/123/no_such_edge", &json!({})).await;
    assert_eq!((status, v["error"]["type"].as_str()), (400, Some("WaotpContractViolation")), "{v}");
    let (status, v) = post(&d, "/v24.0/123/messages", &renamed(send(), "recipient_type", "recipient_typ")).await;
    assert_eq!((status, v["error"]["type"].as_str()), (400, Some("WaotpContractViolation")), "{v}");
    let violations = d.take_contract_violations();
    assert_eq!(violations.len(), 3, "{violations:?}");
    assert!(violations[0].contains("\"template\" is a required property"), "{violations:?}");
    assert!(violations[1].contains("neither an operation of Meta's OpenAPI document"), "{violations:?}");
    assert!(violations[2].contains("'recipient_typ' was unexpected"), "{violations:?}");
    // The client's send passes, and nothing is reported.
    let client = GraphClient::new(&d.base(), "v24.0", std::time::Duration::from_secs(5)).unwrap();
    assert!(client.send("123", "tok", &auth()).await.unwrap().starts_with("wamid."));
    assert!(d.take_contract_violations().is_empty());
}

/// A query string the double cannot read is a violation, not an empty (or a different) query.
#[tokio::test]
async fn the_double_refuses_a_query_string_it_cannot_read() {
    let d = double().await;
    let get = |query: &'static str| {
        let url = format!("{}/v24.0/123?{query}", d.base());
        async move {
            let res = reqwest::Client::new().get(url).bearer_auth("tok").send().await.unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap())
        }
    };
    let (status, v) = get("fields=id%2Cdisplay_phone_number").await;
    assert_eq!(status, 200, "{v}");
    for query in ["fields=%FF", "fields=id%2", "fields=%zzid"] {
        let (status, v) = get(query).await;
        assert_eq!((status, v["error"]["type"].as_str()), (400, Some("WaotpContractViolation")), "{query}: {v}");
    }
    let violations = d.take_contract_violations();
    assert_eq!(violations.len(), 3, "{violations:?}");
    assert!(violations.iter().all(|v| v.contains("the query string")), "{violations:?}");
}

#[tokio::test]
#[should_panic(expected = "request(s) or answer(s) that Meta's OpenAPI document forbids")]
async fn a_violation_left_unseen_fails_the_test_when_the_double_goes() {
    let d = double().await;
    let (status, _) = post(&d, "/v24.0/123/messages", &renamed(send(), "messaging_product", "messaging_prodcut")).await;
    assert_eq!(status, 400);
    drop(d);
}

#[test]
fn the_omitted_endpoints_are_named() {
    let contract = Contract::meta();
    for path in ["/v24.0/debug_token", "/v24.0/634974688087057/subscriptions"] {
        assert!(matches!(contract.route("GET", path), Route::Omitted(_)), "{path}");
    }
    assert!(matches!(contract.route("POST", "/v24.0/1/upsert_message_templates"), Route::Omitted(_)));
    assert_eq!(contract.route("DELETE", "/v24.0/1/upsert_message_templates"), Route::Unknown);
}
