use std::time::Duration;

use serde_json::json;

use waotp_test_support::app::*;

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    let live = app.http.get(format!("{}/healthz", app.base)).send().await.unwrap();
    assert_eq!(live.status().as_u16(), 200);
    let ready = app.http.get(format!("{}/readyz", app.base)).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    assert_eq!(ready.json::<serde_json::Value>().await.unwrap()["status"], "ready");
    // The database disappears: not ready (the process itself still answers).
    let expected = match waotp_test_support::postgres::schema_of(&app.database_url) {
        Some(schema) => {
            let client = waotp_test_support::postgres::connect(&app.database_url).await.unwrap();
            // The store's workers use its tables meanwhile: a deadlock with one of them is
            // possible, and the drop tried again.
            let drop = format!("DROP SCHEMA {schema} CASCADE");
            waotp_test_support::eventually("the schema dropped", Duration::from_secs(10), || {
                client.batch_execute(&drop)
            })
            .await;
            "waotp_schema"
        }
        None => {
            std::fs::remove_file(app.dir.path().join("waotp.db")).unwrap();
            "waotp.db"
        }
    };
    let ready = app.http.get(format!("{}/readyz", app.base)).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "not ready");
    assert!(body["reason"].as_str().unwrap().contains(expected), "{body}");
    let live = app.http.get(format!("{}/healthz", app.base)).send().await.unwrap();
    assert_eq!(live.status().as_u16(), 200);
}

async fn scrape(http: &reqwest::Client, base: &str) -> String {
    let res = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    res.text().await.unwrap()
}

#[tokio::test]
async fn metrics_move_as_traffic_flows() {
    let app = spawn_app().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = waotp_server::metrics::router(app.state.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let id = app.app_id;
    let sends = format!("waotp_sends_total{{app_id=\"{id}\",outcome=\"accepted\"}}");
    let verified = format!("waotp_verifies_total{{app_id=\"{id}\",outcome=\"verified\"}}");
    let wrong = format!("waotp_verifies_total{{app_id=\"{id}\",outcome=\"wrong_code\"}}");
    let before = scrape(&app.http, &base).await;
    assert_eq!(metric_value(&before, &sends), 0.0);

    let sent = app.send(json!({ "msisdn": MSISDN, "otp": "123456" })).await;
    app.wait_inbox(MSISDN, 1).await;
    app.verify(json!({ "msisdn": MSISDN, "otp": "000000" })).await;
    app.verify(json!({ "msisdn": MSISDN, "otp": sent.otp() })).await;
    app.send(json!({ "msisdn": "4915123456789", "otp": "1" })).await; // a 400: not a send

    let after = scrape(&app.http, &base).await;
    assert_eq!(metric_value(&after, &sends), 1.0, "{after}");
    assert_eq!(metric_value(&after, &verified), 1.0);
    assert_eq!(metric_value(&after, &wrong), 1.0);
    assert!(
        metric_value(&after, "waotp_channel_delivery_seconds_count{channel=\"local inbox\",outcome=\"delivered\"}")
            >= 1.0
    );
    assert_eq!(metric_value(&after, "waotp_sessions{status=\"Verified\"}"), 1.0);
    assert!(after.contains("# TYPE waotp_sends_total counter"));
    assert!(after.contains("\nwaotp_delivery_queue "));
    assert!(after.contains("\nwaotp_callbacks_pending 0\n"));
    // Never a msisdn in a label.
    assert!(!after.contains(MSISDN) && !after.contains("62812"));
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = spawn_app().await;
    let a = app.send(send_body(MSISDN)).await;
    let made = a.headers["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(made.len(), 32);
    let b = app.send(send_body(MSISDN)).await;
    assert_ne!(b.headers["x-request-id"].to_str().unwrap(), made);
    let res = app.http.get(format!("{}/healthz", app.base)).header("X-Request-Id", "lb-7f3a.42").send().await.unwrap();
    assert_eq!(res.headers()["x-request-id"], "lb-7f3a.42");
    let res = app.http.get(format!("{}/healthz", app.base)).header("X-Request-Id", "bad id\t").send().await;
    assert_ne!(res.unwrap().headers()["x-request-id"], "bad id\t");
}

#[test]
fn the_committed_openapi_document_is_current() {
    let committed = include_str!("../../../../openapi.json");
    let generated = waotp_server::openapi::document();
    assert!(committed == generated, "openapi.json is stale: run `cargo run -- openapi > openapi.json`");
    let doc: serde_json::Value = serde_json::from_str(&generated).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
}

/// Every documented operation exists on the server (none falls through to the 404 fallback
/// or a 405), and the server serves the same document.
#[tokio::test]
async fn every_documented_operation_is_served() {
    let app = spawn_app().await;
    let served: serde_json::Value =
        app.http.get(format!("{}/openapi.json", app.base)).send().await.unwrap().json().await.unwrap();
    let doc: serde_json::Value = serde_json::from_str(&waotp_server::openapi::document()).unwrap();
    assert_eq!(served, doc);
    let mut checked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        let concrete = path
            .replace("{app_id}", &app.app_id.to_string())
            .replace("{session_id}", &uuid::Uuid::new_v4().to_string())
            .replace("{status}", "1")
            .replace("{name}", "x")
            .replace("{language}", "en");
        for method in ops.as_object().unwrap().keys() {
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let res =
                app.http.request(method.clone(), format!("{}{concrete}", app.base)).body("{}").send().await.unwrap();
            let status = res.status().as_u16();
            let body = res.text().await.unwrap();
            assert_ne!(status, 405, "{method} {path}");
            assert!(!body.contains("route_not_found"), "{method} {path} is documented but not served");
            checked += 1;
        }
    }
    assert!(checked >= 35, "{checked}");
}

/// Requests that axum itself rejects (an undecodable path, a bad query, a wrong method) still
/// get the API's JSON error shape, and admin routes check the token first.
#[tokio::test]
async fn framework_rejections_are_json_too() {
    let app = spawn_app().await;
    let a = app.get_as("/v1/sessions/%FF/callbacks", None).await;
    assert_eq!((a.status, a.message()), (400, "Validation error"));
    let res = app.http.delete(format!("{}/admin/blocklist", app.base)).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 403, "the admin API is off here: no parsing before that");
    let res = app.http.get(format!("{}/v2/whatsapp/otp/send", app.base)).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 405);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error_code"], "request_rejected");
}
