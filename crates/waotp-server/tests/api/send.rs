use serde_json::{json, Value};

use waotp_test_support::app::*;

#[tokio::test]
async fn send_answers_201_with_the_contract_body_on_v1_and_v2() {
    let app = spawn_app().await;
    for path in ["/v1/whatsapp/otp/send", "/v2/whatsapp/otp/send"] {
        let a = app.post(path, json!({ "msisdn": MSISDN, "challenge": path })).await;
        assert_eq!(a.status, 201, "{path}: {:?}", a.body);
        assert_eq!(a.message(), "OTP sent successfully");
        assert_eq!(a.body["msisdn"], MSISDN);
        assert_eq!(a.body["try_count"], 1);
        let otp = a.otp();
        assert_eq!(otp.len(), 6);
        assert!(otp.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(a.session_id().get_version_num(), 7);
    }
}

#[tokio::test]
async fn leading_plus_is_dropped_and_the_number_normalised() {
    let app = spawn_app().await;
    let a = app.send(json!({ "msisdn": "+6281234567890" })).await;
    assert_eq!(a.status, 201);
    assert_eq!(a.body["msisdn"], MSISDN);
}

#[tokio::test]
async fn otp_length_and_time_limit_accept_strings_and_integers() {
    let app = spawn_app().await;
    for (len, limit) in [(json!(4), json!(60)), (json!("8"), json!("600")), (json!(10), json!("86400"))] {
        let a = app.send(json!({ "msisdn": MSISDN, "otp_length": len, "time_limit": limit })).await;
        assert_eq!(a.status, 201, "{:?}", a.body);
        let want = len.as_u64().unwrap_or_else(|| len.as_str().unwrap().parse().unwrap()) as usize;
        assert_eq!(a.otp().len(), want);
    }
}

#[tokio::test]
async fn empty_strings_and_nulls_are_absent() {
    let app = spawn_app().await;
    // A Go client that sends every field, empty.
    let a = app
        .send(json!({
            "msisdn": MSISDN, "otp": "", "otp_length": "", "challenge": null, "time_limit": "",
            "template_name": "", "lang_code": null, "content": null, "callback_url": "",
            "some_unknown_field": {"nested": true}
        }))
        .await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    assert_eq!(a.otp().len(), 6);
    // Sent with the empty challenge, so it verifies without one.
    let v = app.verify(json!({ "msisdn": MSISDN, "otp": a.otp(), "challenge": "" })).await;
    assert_eq!(v.status, 200);
}

#[tokio::test]
async fn otp_together_with_otp_length_is_rejected() {
    let app = spawn_app().await;
    let a = app.send(json!({ "msisdn": MSISDN, "otp": "123456", "otp_length": 6 })).await;
    assert_eq!(a.status, 400);
    assert_eq!(a.message(), "Validation error");
    assert!(a.body["reason"].as_str().unwrap().contains("otp_length"));
}

#[tokio::test]
async fn custom_otp_round_trips_as_string_and_integer() {
    let app = spawn_app().await;
    let a = app.send(json!({ "msisdn": MSISDN, "otp": "Ab12Cd" })).await;
    assert_eq!(a.status, 201);
    assert_eq!(a.otp(), "Ab12Cd");
    assert_eq!(app.verify(json!({ "msisdn": MSISDN, "otp": "ab12cd" })).await.status, 404);
    assert_eq!(app.verify(json!({ "msisdn": MSISDN, "otp": "Ab12Cd" })).await.status, 200);

    let a = app.send(json!({ "msisdn": MSISDN, "otp": 918273 })).await;
    assert_eq!(a.status, 201);
    assert_eq!(a.otp(), "918273");
    assert_eq!(app.verify(json!({ "msisdn": MSISDN, "otp": 918273 })).await.status, 200);
}

#[tokio::test]
async fn invalid_fields_are_400_with_a_reason() {
    let app = spawn_app().await;
    let cases = [
        json!({}),
        json!({ "msisdn": 6281234567890u64 }),
        json!({ "msisdn": "12345" }),
        json!({ "msisdn": "62 812 3456 7890" }),
        json!({ "msisdn": ["6281234567890"] }),
        json!({ "msisdn": MSISDN, "otp": "12" }),
        json!({ "msisdn": MSISDN, "otp": "1234567890123456" }),
        json!({ "msisdn": MSISDN, "otp": "12-34" }),
        json!({ "msisdn": MSISDN, "otp": -1234 }),
        json!({ "msisdn": MSISDN, "otp": 12.5 }),
        json!({ "msisdn": MSISDN, "otp_length": 3 }),
        json!({ "msisdn": MSISDN, "otp_length": 11 }),
        json!({ "msisdn": MSISDN, "otp_length": "six" }),
        json!({ "msisdn": MSISDN, "otp_length": 6.5 }),
        json!({ "msisdn": MSISDN, "time_limit": 0 }),
        json!({ "msisdn": MSISDN, "time_limit": 86401 }),
        json!({ "msisdn": MSISDN, "time_limit": "-5" }),
        json!({ "msisdn": MSISDN, "time_limit": true }),
        json!({ "msisdn": MSISDN, "challenge": "x".repeat(65) }),
        json!({ "msisdn": MSISDN, "challenge": 5 }),
        json!({ "msisdn": MSISDN, "template_name": "Not-A-Name" }),
        json!({ "msisdn": MSISDN, "lang_code": "english please" }),
        json!({ "msisdn": MSISDN, "content": "Registration" }),
        json!({ "msisdn": MSISDN, "content": [1, 2] }),
        json!({ "msisdn": MSISDN, "callback_url": "ftp://example.com/cb" }),
        json!({ "msisdn": MSISDN, "callback_url": "/relative/cb" }),
        json!({ "msisdn": MSISDN, "callback_url": format!("https://example.com/{}", "a".repeat(2048)) }),
    ];
    for body in cases {
        let a = app.send(body.clone()).await;
        assert_eq!(a.status, 400, "{body}: {:?}", a.body);
        assert_eq!(a.message(), "Validation error", "{body}");
        assert!(!a.body["reason"].as_str().unwrap_or("").is_empty(), "{body}");
    }
}

#[tokio::test]
async fn malformed_bodies_are_400_not_500() {
    let app = spawn_app().await;
    let id = app.app_id.to_string();
    let creds = Some((id.as_str(), app.api_key.as_str()));
    let huge = format!("{{\"msisdn\":\"{MSISDN}\",\"pad\":\"{}\"}}", "x".repeat(2 * 1024 * 1024));
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"{".to_vec(),
        b"not json".to_vec(),
        b"[]".to_vec(),
        b"\"msisdn\"".to_vec(),
        b"null".to_vec(),
        vec![0xff, 0xfe, 0x00],
        huge.into_bytes(),
    ];
    for path in ["/v1/whatsapp/otp/send", "/v2/whatsapp/otp/verify"] {
        for body in &bodies {
            let a = app.post_raw(path, creds, body.clone()).await;
            assert_eq!(a.status, 400, "{path} {:?}", String::from_utf8_lossy(&body[..body.len().min(40)]));
            assert_eq!(a.message(), "Validation error");
        }
    }
}

#[tokio::test]
async fn missing_or_wrong_credentials_are_401() {
    let app = spawn_app().await;
    let id = app.app_id.to_string();
    let body = json!({ "msisdn": MSISDN }).to_string();
    let last = if app.api_key.ends_with('0') { '1' } else { '0' };
    let wrong_key = format!("{}{last}", &app.api_key[..app.api_key.len() - 1]);

    let unknown = uuid::Uuid::new_v4().to_string();
    let cases: Vec<Option<(&str, &str)>> = vec![
        None,
        Some((&id, "")),
        Some(("", &app.api_key)),
        Some((&id, &wrong_key)),
        Some(("not-a-uuid", &app.api_key)),
        Some((&unknown, &app.api_key)),
    ];
    for path in ["/v1/whatsapp/otp/send", "/v2/whatsapp/otp/send", "/v1/whatsapp/otp/verify", "/v2/whatsapp/otp/verify"]
    {
        for creds in &cases {
            let a = app.post_raw(path, *creds, body.clone()).await;
            assert_eq!(a.status, 401, "{path} {creds:?}");
            assert_eq!(a.message(), "Authorization failed");
        }
    }
    // Credentials are checked before the body: a bad body without credentials is still 401.
    assert_eq!(app.post_raw("/v2/whatsapp/otp/send", None, "{").await.status, 401);
}

#[tokio::test]
async fn header_names_are_case_insensitive() {
    let app = spawn_app().await;
    for (h1, h2) in [("APP-ID", "API-KEY"), ("app-id", "api-key"), ("App-Id", "Api-Key")] {
        let res = app
            .http
            .post(format!("{}/v2/whatsapp/otp/send", app.base))
            .header(h1, app.app_id.to_string())
            .header(h2, &app.api_key)
            .body(json!({ "msisdn": MSISDN }).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 201);
    }
}

#[tokio::test]
async fn templates_fill_content_and_refuse_wrong_language_or_missing_content() {
    let app = spawn_app().await;
    app.add_template("otp_reg", "id", "This is your OTP Code {{1}}. Please use it for {{2}}", 1).await;
    let send = |content: serde_json::Value, lang: &str| json!({ "msisdn": MSISDN, "template_name": "otp_reg", "lang_code": lang, "content": content });
    // Registered name, language the app does not have it in.
    let a = app.send(send(json!(["Registration"]), "en")).await;
    assert_eq!(a.status, 400);
    assert!(a.body["reason"].as_str().unwrap().contains("language"));
    // Too few content values.
    let a = app.send(send(json!([]), "id")).await;
    assert_eq!(a.status, 400);
    assert!(a.body["reason"].as_str().unwrap().contains("content"));
    // Surplus values are ignored.
    let a = app.send(send(json!(["Registration", "surplus"]), "id")).await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    let messages = app.wait_inbox(MSISDN, 1).await;
    assert_eq!(messages[0]["text"], format!("This is your OTP Code {}. Please use it for Registration", a.otp()));
}

#[tokio::test]
async fn the_app_can_switch_off_returning_the_code() {
    let app = spawn_app().await;
    let settings = waotp_store::AppSettings { return_code: false, ..Default::default() };
    assert!(app.state.store.update_app_settings(app.app_id, settings).await.unwrap());
    app.state.invalidate_app(app.app_id);
    let a = app.send(send_body(MSISDN)).await;
    assert_eq!(a.status, 201);
    assert!(a.body.get("otp").is_none(), "{:?}", a.body);
    // The code still arrives, in the inbox.
    let text = app.wait_inbox(MSISDN, 1).await[0]["text"].as_str().unwrap().to_owned();
    let code = text.split(' ').next().unwrap();
    assert_eq!(app.verify(json!({ "msisdn": MSISDN, "otp": code })).await.status, 200);
}

#[tokio::test]
async fn unknown_routes_are_json_404() {
    let app = spawn_app().await;
    let a = app.post("/v3/whatsapp/otp/send", send_body(MSISDN)).await;
    assert_eq!(a.status, 404);
}

/// The number as written in international form: calling code, then national number. A trunk
/// prefix after the calling code is dropped, as libphonenumber drops it, when the number without
/// it is valid; a number valid as written is kept as sent.
#[tokio::test]
async fn msisdn_is_a_valid_number_in_international_form() {
    let app = spawn_app().await;
    let a = app.send(json!({ "msisdn": "62081234567890" })).await;
    assert_eq!((a.status, a.body["msisdn"].as_str()), (201, Some("6281234567890")), "{:?}", a.body);
    let a = app.send(json!({ "msisdn": "620812345" })).await;
    assert_eq!((a.status, a.message()), (400, "Validation error"));
    assert!(a.body["reason"].as_str().unwrap().contains("international form"), "{:?}", a.body);
    // A Russian toll-free number: valid under libphonenumber's rule.
    let a = app.send(json!({ "msisdn": "+78001234567" })).await;
    assert_eq!((a.status, a.body["msisdn"].as_str()), (201, Some("78001234567")));
}

/// JSON (and JSON Schema's `integer`) does not tell `6` from `6.0` or `6e0`.
#[tokio::test]
async fn whole_numbers_may_be_written_with_a_fraction_or_an_exponent() {
    let app = spawn_app().await;
    let body: Value =
        serde_json::from_str(&format!(r#"{{"msisdn": "{MSISDN}", "otp_length": 6.0, "time_limit": 6e1}}"#)).unwrap();
    let a = app.send(body).await;
    assert_eq!((a.status, a.otp().len()), (201, 6), "{:?}", a.body);
    let body: Value = serde_json::from_str(r#"{"msisdn": "6281234567891", "otp": 1234.0}"#).unwrap();
    let a = app.send(body).await;
    assert_eq!((a.status, a.otp()), (201, "1234".to_owned()), "{:?}", a.body);
    let a = app.send(json!({ "msisdn": "6281234567892", "otp_length": 6.5 })).await;
    assert_eq!(a.status, 400);
}

/// Every field within its limits fits in a body, even with each character `\u`-escaped.
#[tokio::test]
async fn a_body_with_every_field_at_its_limit_is_read() {
    let app = spawn_app().await;
    let escaped = "\\ud83d\\ude00".repeat(1024); // 1024 characters, 12 bytes each
    let values = vec![format!("\"{escaped}\""); 20].join(",");
    let body = format!(r#"{{"msisdn": "{MSISDN}", "content": [{values}]}}"#);
    assert!(body.len() > 240 * 1024, "{}", body.len());
    let id = app.app_id.to_string();
    let creds = Some((id.as_str(), app.api_key.as_str()));
    let a = app.post_raw("/v1/whatsapp/otp/send", creds, body).await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    let too_big = format!(r#"{{"msisdn": "{MSISDN}", "x": "{}"}}"#, "a".repeat(513 * 1024));
    let a = app.post_raw("/v1/whatsapp/otp/send", creds, too_big).await;
    assert_eq!((a.status, a.message()), (400, "Validation error"));
}
