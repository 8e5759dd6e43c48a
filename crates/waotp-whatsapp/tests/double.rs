//! The Graph API double answers as Meta does: the checklist of a faithful double.

use serde_json::{json, Value};
use waotp_whatsapp::double::{DoubleConfig, GraphDouble, ScriptedFailure};
use waotp_whatsapp::{GraphClient, SendFailure, TemplateMessage};

async fn double(adjust: impl FnOnce(&mut DoubleConfig)) -> GraphDouble {
    let mut config = DoubleConfig::new("tok", "123", "secret");
    adjust(&mut config);
    GraphDouble::start(config, tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()).unwrap()
}

fn auth(to: &str, code: &str) -> TemplateMessage {
    TemplateMessage {
        to: to.into(),
        template: "verification_code".into(),
        language: "en_US".into(),
        body_parameters: vec![code.into()],
        button_parameter: Some(code.into()),
    }
}

async fn raw(d: &GraphDouble, token: &str, pnid: &str, body: Value) -> (u16, Value) {
    let res = reqwest::Client::new()
        .post(format!("{}/v24.0/{pnid}/messages", d.base()))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

fn code_of(v: &Value) -> i64 {
    v["error"]["code"].as_i64().unwrap()
}

#[tokio::test]
async fn success_and_metas_envelope() {
    let d = double(|_| {}).await;
    let client = GraphClient::new(&d.base(), "v24.0", std::time::Duration::from_secs(5)).unwrap();
    let a = client.send("123", "tok", &auth("6281234567890", "482913")).await.unwrap();
    let b = client.send("123", "tok", &auth("+6281234567891", "J8FpnYnP")).await.unwrap();
    assert!(a.starts_with("wamid.") && b.starts_with("wamid.") && a != b);
    // The index may be an integer, recipient_type may be missing.
    let mut body = auth("6281234567892", "1234").to_json();
    body["template"]["components"][1]["index"] = json!(0);
    body.as_object_mut().unwrap().remove("recipient_type");
    let (status, v) = raw(&d, "tok", "123", body).await;
    assert_eq!(status, 200);
    assert_eq!(v["contacts"][0]["wa_id"], "6281234567892");
}

#[tokio::test]
async fn refusals_carry_metas_codes() {
    let d = double(|_| {}).await;
    let ok = auth("6281234567890", "482913").to_json();
    let (status, v) = raw(&d, "wrong", "123", ok.clone()).await;
    assert_eq!((status, code_of(&v)), (401, 190));
    assert_eq!(v["error"]["type"], "OAuthException");
    assert_eq!(v["error"]["message"], "(#190) Access token has expired");
    assert_eq!(v["error"]["error_data"]["messaging_product"], "whatsapp");
    assert!(v["error"]["fbtrace_id"].is_string());
    assert_eq!(code_of(&raw(&d, "tok", "999", ok.clone()).await.1), 100);

    let mut no_button = ok.clone();
    no_button["template"]["components"].as_array_mut().unwrap().pop();
    let (_, v) = raw(&d, "tok", "123", no_button).await;
    assert_eq!(code_of(&v), 131008);
    assert!(v["error"]["error_data"]["details"].as_str().unwrap().contains("Button at index 0"));

    let mut two_params = ok.clone();
    two_params["template"]["components"][0]["parameters"] =
        json!([{ "type": "text", "text": "1" }, { "type": "text", "text": "2" }]);
    assert_eq!(code_of(&raw(&d, "tok", "123", two_params).await.1), 132000);

    let long = auth("6281234567890", "1234567890123456").to_json();
    assert_eq!(code_of(&raw(&d, "tok", "123", long).await.1), 131009);

    let mut unknown = ok.clone();
    unknown["template"]["name"] = json!("nope");
    let (status, v) = raw(&d, "tok", "123", unknown).await;
    assert_eq!((status, code_of(&v)), (404, 132001));
    let mut language = ok.clone();
    language["template"]["language"]["code"] = json!("fr");
    assert_eq!(code_of(&raw(&d, "tok", "123", language).await.1), 132001);
}

#[tokio::test]
async fn scripted_failures_and_rate_limits() {
    let d = double(|c| {
        c.max_per_second = 5;
        c.pair_burst = 2;
    })
    .await;
    let client = GraphClient::new(&d.base(), "v24.0", std::time::Duration::from_secs(5)).unwrap();
    let code = |r: Result<String, SendFailure>| match r {
        Ok(_) => 200,
        Err(SendFailure::Graph { error, .. }) => error.code,
        Err(e) => panic!("{e:?}"),
    };
    d.fail(ScriptedFailure { code: 131000, to: None, asynchronous: false }, 1);
    let x = auth("6281234567890", "1111");
    let y = auth("6281234567891", "1111");
    // All within one second: a scripted failure, the pair burst of 2, the pair limit, then
    // the 5-per-second throughput.
    assert_eq!(code(client.send("123", "tok", &x).await), 131000);
    assert_eq!(code(client.send("123", "tok", &x).await), 200);
    assert_eq!(code(client.send("123", "tok", &x).await), 200);
    assert_eq!(code(client.send("123", "tok", &x).await), 131056);
    assert_eq!(code(client.send("123", "tok", &y).await), 200);
    assert_eq!(code(client.send("123", "tok", &y).await), 130429);
    let answers: Vec<u16> = d.received().iter().map(|r| r.answered).collect();
    assert_eq!(answers, vec![500, 200, 200, 400, 200, 400]);
}
