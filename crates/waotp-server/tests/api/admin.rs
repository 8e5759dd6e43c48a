use serde_json::{json, Value};

use waotp_test_support::app::*;

const ADMIN: &str = "admin-token-for-tests-0123456789";

async fn call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app.http.request(method, format!("{}{path}", app.base));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() })
}

#[tokio::test]
async fn the_admin_api_is_off_without_a_token_and_closed_to_wrong_ones() {
    let off = spawn_app().await;
    let (status, body) = call(&off, reqwest::Method::GET, "/admin/apps", Some(ADMIN), None).await;
    assert_eq!((status, body["error_code"].as_str()), (403, Some("admin_disabled")));
    let on = spawn_app_with(|c| c.admin_token = Some(waotp_server::config::Secret::new(ADMIN))).await;
    assert_eq!(call(&on, reqwest::Method::GET, "/admin/apps", None, None).await.0, 401);
    assert_eq!(call(&on, reqwest::Method::GET, "/admin/apps", Some("wrong"), None).await.0, 401);
    // An app's own key is no admin token.
    let key = on.api_key.clone();
    assert_eq!(call(&on, reqwest::Method::GET, "/admin/apps", Some(&key), None).await.0, 401);
}

#[tokio::test]
async fn operators_manage_apps_templates_quotas_blocklists_and_sessions() {
    use reqwest::Method;
    let app = spawn_app_with(|c| c.admin_token = Some(waotp_server::config::Secret::new(ADMIN))).await;
    let t = Some(ADMIN);
    // Create: the key is shown once and works.
    let (status, created) =
        call(&app, Method::POST, "/admin/apps", t, Some(json!({ "name": "shop", "quota": 2, "code_length": 8 }))).await;
    assert_eq!(status, 201, "{created}");
    let id = created["app_id"].as_str().unwrap().to_owned();
    let key = created["api_key"].as_str().unwrap().to_owned();
    assert!(created["callback_secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!((created["quota"].as_i64(), created["code_length"].as_i64()), (Some(2), Some(8)));
    let send = |key: String| {
        let id = id.clone();
        let app = &app;
        async move {
            app.post_raw("/v2/whatsapp/otp/send", Some((&id, &key)), json!({ "msisdn": MSISDN }).to_string()).await
        }
    };
    let sent = send(key.clone()).await;
    assert_eq!((sent.status, sent.otp().len()), (201, 8));
    // Bad input is a 400 with a reason.
    let (status, body) =
        call(&app, Method::POST, "/admin/apps", t, Some(json!({ "name": "x", "colour": "red" }))).await;
    assert_eq!(status, 400, "{body}");
    let (status, _) =
        call(&app, Method::PATCH, &format!("/admin/apps/{id}"), t, Some(json!({ "code_length": 20 }))).await;
    assert_eq!(status, 400);
    // Update settings and quota.
    let (status, updated) = call(
        &app,
        Method::PATCH,
        &format!("/admin/apps/{id}"),
        t,
        Some(json!({ "msisdn_send_limit": 3, "rps_limit": 50, "quota_add": 5 })),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!((updated["msisdn_send_limit"].as_i64(), updated["rps_limit"].as_i64()), (Some(3), Some(50)));
    assert_eq!(updated["quota"], 6);
    let (_, updated) =
        call(&app, Method::PATCH, &format!("/admin/apps/{id}"), t, Some(json!({ "rps_limit": null }))).await;
    assert_eq!(updated["rps_limit"], Value::Null);
    let (status, q) =
        call(&app, Method::PUT, &format!("/admin/apps/{id}/quota"), t, Some(json!({ "quota": null }))).await;
    assert_eq!((status, q["quota"].clone()), (200, Value::Null));
    // Templates.
    let template = json!({ "name": "otp_reg", "language": "id", "body": "Kode {{1}} untuk {{2}}" });
    assert_eq!(call(&app, Method::PUT, &format!("/admin/apps/{id}/templates"), t, Some(template)).await.0, 200);
    let bad = json!({ "name": "otp_bad", "language": "id", "body": "{{2}}" });
    assert_eq!(call(&app, Method::PUT, &format!("/admin/apps/{id}/templates"), t, Some(bad)).await.0, 400);
    let (_, shown) = call(&app, Method::GET, &format!("/admin/apps/{id}"), t, None).await;
    assert_eq!(shown["templates"][0]["name"], "otp_reg");
    assert_eq!(call(&app, Method::DELETE, &format!("/admin/apps/{id}/templates/otp_reg/id"), t, None).await.0, 204);
    assert_eq!(call(&app, Method::DELETE, &format!("/admin/apps/{id}/templates/otp_reg/id"), t, None).await.0, 404);
    // Blocklist.
    let (status, _) =
        call(&app, Method::POST, "/admin/blocklist", t, Some(json!({ "entry": "62899*", "app_id": id }))).await;
    assert_eq!(status, 201);
    assert_eq!(call(&app, Method::POST, "/admin/blocklist", t, Some(json!({ "entry": "123" }))).await.0, 400);
    let (_, list) = call(&app, Method::GET, "/admin/blocklist", t, None).await;
    assert_eq!(list[0]["entry"], "62899");
    let path = format!("/admin/blocklist?entry=62899*&app_id={id}");
    assert_eq!(call(&app, Method::DELETE, &path, t, None).await.0, 204);
    // Sessions and their callbacks.
    let sid = sent.session_id();
    let (status, session) = call(&app, Method::GET, &format!("/admin/apps/{id}/sessions/{sid}"), t, None).await;
    assert_eq!(status, 200);
    assert_eq!(session["msisdn"], MSISDN);
    assert!(session.get("otp").is_none() && session.get("code_hash").is_none());
    let (status, callbacks) =
        call(&app, Method::GET, &format!("/admin/apps/{id}/sessions/{sid}/callbacks"), t, None).await;
    assert_eq!((status, callbacks), (200, json!([])));
    // Rotate the key: the old one stops working at once on this node.
    let (_, rotated) = call(&app, Method::POST, &format!("/admin/apps/{id}/api-key"), t, None).await;
    let new_key = rotated["api_key"].as_str().unwrap().to_owned();
    assert_eq!(send(key).await.status, 401);
    assert_eq!(send(new_key).await.status, 201);
    let (status, listed) = call(&app, Method::GET, "/admin/apps", t, None).await;
    assert_eq!(status, 200);
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert!(!listed.to_string().contains("wak_"), "keys are never listed");
}

/// A database failure behind an admin call is a 5xx with the generic body: the database's own
/// words (a table name, a driver message) stay in the log.
#[tokio::test]
async fn an_admin_call_that_hits_a_database_failure_shows_no_database_text() {
    let app = spawn_app_with(|c| c.admin_token = Some(waotp_server::config::Secret::new(ADMIN))).await;
    let (status, _) = call(&app, reqwest::Method::GET, "/admin/blocklist", Some(ADMIN), None).await;
    assert_eq!(status, 200);
    // The table the call reads is gone from under the running server.
    match app.database_url.strip_prefix("sqlite://") {
        Some(path) => {
            let db = rusqlite::Connection::open(path).unwrap();
            db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
            db.execute_batch("DROP TABLE blocklist").unwrap();
        }
        None => {
            let client = waotp_test_support::postgres::connect(&app.database_url).await.unwrap();
            client.batch_execute("DROP TABLE blocklist CASCADE").await.unwrap();
        }
    }
    for (method, body) in [(reqwest::Method::GET, None), (reqwest::Method::POST, Some(json!({ "entry": "62812*" })))] {
        let (status, answer) = call(&app, method.clone(), "/admin/blocklist", Some(ADMIN), body).await;
        assert!((500..600).contains(&status), "{method}: {status} {answer}");
        assert_eq!(answer, json!({ "message": "Internal server error", "error_code": "internal_error" }), "{method}");
    }
}
