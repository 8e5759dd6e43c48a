//! `waotp whatsapp doctor` and `waotp whatsapp template create|list`, the real binary against
//! the Graph API double: exit codes, `--json`, and the exact bodies Meta receives.

use serde_json::{json, Value};
use waotp_test_support::binary::{Ran, Waotp};
use waotp_whatsapp::double::{DoubleConfig, GraphDouble};

const BIN: &str = env!("CARGO_BIN_EXE_waotp");
const TOKEN: &str = "EAAG-cli-token";
const PNID: &str = "106540352242922";
const SECRET: &str = "cli-app-secret";

struct Trial {
    _dir: tempfile::TempDir,
    db: String,
    double: GraphDouble,
}

impl Trial {
    async fn new() -> Trial {
        let dir = tempfile::tempdir().unwrap();
        let db = format!("sqlite://{}/waotp.db", dir.path().display());
        let mut config = DoubleConfig::new(TOKEN, PNID, SECRET);
        config.webhook_url = Some("https://otp.example.com/webhooks/whatsapp".into());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let double = GraphDouble::start(config, listener).unwrap();
        Trial { _dir: dir, db, double }
    }

    /// waotp on the database `db`, configured for the double.
    fn cli_on(&self, db: &str) -> Waotp {
        let (waba, app) = self.double.meta(|m| (m.waba_id.clone(), m.app_id.clone()));
        Waotp::new(BIN)
            .db(db)
            .env("WAOTP_WHATSAPP_API_BASE", &self.double.base())
            .env("WAOTP_WHATSAPP_PHONE_NUMBER_ID", PNID)
            .env("WAOTP_WHATSAPP_ACCESS_TOKEN", TOKEN)
            .env("WAOTP_WHATSAPP_APP_SECRET", SECRET)
            .env("WAOTP_WHATSAPP_WABA_ID", &waba)
            .env("WAOTP_WHATSAPP_APP_ID", &app)
            .env("WAOTP_WHATSAPP_MESSAGING_LIMIT", "2000")
    }

    /// Runs waotp on the trial's database, configured for the double.
    fn waotp(&self, args: &[&str]) -> Ran {
        self.cli_on(&self.db).run(args)
    }

    fn ok(&self, args: &[&str]) -> String {
        self.cli_on(&self.db).ok(args)
    }

    /// An app sending `verification_code` in `en` (its default) and `id` (registered).
    fn app(&self, extra: &[&str]) -> String {
        self.app_named("shop", extra)
    }

    fn app_named(&self, name: &str, extra: &[&str]) -> String {
        let mut args = vec!["app", "create", "--name", name, "--json"];
        args.extend_from_slice(extra);
        let v: Value = serde_json::from_str(self.ok(&args).trim()).unwrap();
        let id = v["app_id"].as_str().unwrap().to_owned();
        self.ok(&[
            "template",
            "add",
            "--app",
            &id,
            "--name",
            "verification_code",
            "--lang",
            "id",
            "--category",
            "authentication",
        ]);
        id
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_doctor_exits_zero_when_all_is_well_and_non_zero_naming_the_fix_otherwise() {
    let t = Trial::new().await;
    t.app(&[]);
    let report: Value = serde_json::from_str(t.ok(&["whatsapp", "doctor", "--json"]).trim()).unwrap();
    assert_eq!(report["ok"], true, "{report:#}");
    let checks = report["checks"].as_array().unwrap();
    assert!(checks.iter().all(|c| c["outcome"] == "ok"), "{report:#}");
    let subjects: Vec<&str> = checks.iter().filter_map(|c| c["subject"].as_str()).collect();
    assert_eq!(subjects, ["verification_code (en)", "verification_code (id)"]);

    t.double.set_template_status("verification_code", "id", "PAUSED");
    let out = t.waotp(&["whatsapp", "doctor", "--json"]);
    assert!(!out.success());
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["ok"], false);
    let paused = report["checks"].as_array().unwrap().iter().find(|c| c["outcome"] == "failure").unwrap();
    assert_eq!(paused["subject"], "verification_code (id)", "{report:#}");
    assert!(paused["fix"].as_str().unwrap().contains("132015"), "{paused:#}");
    // What the doctor read is the sender's health in the database, where a server fails over.
    let store = waotp_server::Config::new(&t.db).open_store().await.unwrap();
    let facts = store.health_facts().await.unwrap();
    let status = |lang: &str| {
        facts
            .iter()
            .find(|f| f.subject == waotp_store::template_subject("verification_code", lang) && f.aspect == "status")
            .map(|f| (f.value.clone(), f.source.clone()))
    };
    assert_eq!(status("id"), Some(("PAUSED".into(), "doctor".into())), "{facts:#?}");
    assert_eq!(status("en"), Some(("APPROVED".into(), "doctor".into())), "{facts:#?}");
    drop(store);

    // The text form: one line per check, the fix under the failure.
    let out = t.waotp(&["whatsapp", "doctor"]);
    assert!(!out.success());
    let text = out.stdout;
    assert!(text.contains("FAILURE template verification_code (id): status PAUSED"), "{text}");
    assert!(text.contains("        fix: Meta paused it for low quality"), "{text}");
    assert!(out.stderr.contains("1 check(s) failed"), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_doctor_names_a_missing_waba_id() {
    let t = Trial::new().await;
    let out = Waotp::new(BIN)
        .db(&t.db)
        .env("WAOTP_WHATSAPP_API_BASE", &t.double.base())
        .env("WAOTP_WHATSAPP_PHONE_NUMBER_ID", PNID)
        .env("WAOTP_WHATSAPP_ACCESS_TOKEN", TOKEN)
        .run(&["whatsapp", "doctor"]);
    let text = &out.stdout;
    assert!(out.success(), "only warnings: {text}");
    assert!(text.contains("warning waba: not checked: whatsapp_waba_id is not set"), "{text}");
    assert!(text.contains("fix: set whatsapp_waba_id (WAOTP_WHATSAPP_WABA_ID)"), "{text}");
    assert!(text.contains("without it the server ignores Meta's management webhooks"), "{text}");
    assert!(text.contains("warning token: not checked"), "{text}");
}

fn upserts(t: &Trial) -> Vec<Value> {
    t.double
        .management_requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/upsert_message_templates"))
        .map(|r| r.body)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_create_sends_metas_documented_bodies() {
    let t = Trial::new().await;
    t.app(&["--time-limit", "240"]);
    // Copy-code in two languages; the TTL defaults to the code lifetime (240 s, not Meta's 600).
    let out = t.ok(&[
        "whatsapp",
        "template",
        "create",
        "--name",
        "auth_copy",
        "--lang",
        "en_US,id",
        "--security-recommendation",
        "--code-expiry-minutes",
        "4",
    ]);
    // One-tap with two Android apps.
    t.ok(&[
        "whatsapp",
        "template",
        "create",
        "--name",
        "auth_one_tap",
        "--lang",
        "en_US",
        "--lang",
        "id",
        "--button",
        "one-tap",
        "--android-app",
        "com.example.shop:K8a/AINcGX7",
        "--android-app",
        "com.example.shop_beta:Zx9+aBcDeF=",
        "--ttl",
        "120",
    ]);
    // Zero-tap, with Meta's terms accepted.
    t.ok(&[
        "whatsapp",
        "template",
        "create",
        "--name",
        "auth_zero_tap",
        "--lang",
        "en_US,id",
        "--button",
        "zero-tap",
        "--android-app",
        "com.example.shop:K8a/AINcGX7",
        "--zero-tap-terms-accepted",
    ]);
    assert_eq!(
        upserts(&t),
        [
            json!({ "name": "auth_copy", "languages": ["en_US", "id"], "category": "AUTHENTICATION",
                "message_send_ttl_seconds": 240,
                "components": [
                    { "type": "BODY", "add_security_recommendation": true },
                    { "type": "FOOTER", "code_expiration_minutes": 4 },
                    { "type": "BUTTONS", "buttons": [ { "type": "OTP", "otp_type": "COPY_CODE" } ] } ] }),
            json!({ "name": "auth_one_tap", "languages": ["en_US", "id"], "category": "AUTHENTICATION",
                "message_send_ttl_seconds": 120,
                "components": [
                    { "type": "BODY", "add_security_recommendation": false },
                    { "type": "BUTTONS", "buttons": [ { "type": "OTP", "otp_type": "ONE_TAP",
                        "supported_apps": [
                            { "package_name": "com.example.shop", "signature_hash": "K8a/AINcGX7" },
                            { "package_name": "com.example.shop_beta", "signature_hash": "Zx9+aBcDeF=" } ] } ] } ] }),
            json!({ "name": "auth_zero_tap", "languages": ["en_US", "id"], "category": "AUTHENTICATION",
                "message_send_ttl_seconds": 240,
                "components": [
                    { "type": "BODY", "add_security_recommendation": false },
                    { "type": "BUTTONS", "buttons": [ { "type": "OTP", "otp_type": "ZERO_TAP",
                        "supported_apps": [ { "package_name": "com.example.shop", "signature_hash": "K8a/AINcGX7" } ],
                        "zero_tap_terms_accepted": true } ] } ] }),
        ]
    );
    // Each language's id and status, as Meta answered.
    let id = t.double.meta(|m| m.template_mut("auth_copy", "id").unwrap().id.clone());
    assert!(
        out.lines().any(|l| l.contains(&id) && l.contains("APPROVED") && l.trim_start().starts_with("id ")),
        "{out}"
    );
    // And `template list` shows them with status, category and quality.
    t.double.set_template_status("auth_copy", "id", "PAUSED");
    let list: Value = serde_json::from_str(t.ok(&["whatsapp", "template", "list", "--json"]).trim()).unwrap();
    let paused = list.as_array().unwrap().iter().find(|x| x["name"] == "auth_copy" && x["language"] == "id").unwrap();
    assert_eq!((&paused["status"], &paused["category"]), (&json!("PAUSED"), &json!("AUTHENTICATION")));
    assert_eq!(paused["quality_score"]["score"], "UNKNOWN");
    let text = t.ok(&["whatsapp", "template", "list", "--name", "auth_copy"]);
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["auth_copy", "id", "PAUSED", "AUTHENTICATION", "UNKNOWN"]),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tap_and_zero_tap_creates_say_what_an_android_app_must_do() {
    let t = Trial::new().await;
    let create = |name: &str, button: &str| {
        let mut args = vec!["whatsapp", "template", "create", "--name", name, "--lang", "en_US", "--button", button];
        if button != "copy-code" {
            args.extend(["--android-app", "com.example.shop:K8a/AINcGX7"]);
        }
        if button == "zero-tap" {
            args.push("--zero-tap-terms-accepted");
        }
        let out = t.waotp(&args);
        assert!(out.success(), "{}", out.stderr);
        out.stderr
    };
    for (name, button) in [("auth_tap", "one-tap"), ("auth_zero", "zero-tap")] {
        let err = create(name, button);
        assert!(
            err.contains("2026-10-15") && err.contains("PendingIntent") && err.contains("OTP Android SDK"),
            "{button}: {err}"
        );
    }
    assert!(!create("auth_copy", "copy-code").contains("PendingIntent"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ttl_longer_than_the_code_lifetime_is_refused_before_any_call() {
    let t = Trial::new().await;
    let app = t.app(&["--time-limit", "300"]);
    let before = t.double.management_requests().len();
    for args in [
        vec!["--ttl", "600"],
        vec!["--ttl", "400", "--app", app.as_str()],
        vec!["--button", "zero-tap", "--android-app", "com.example.shop:K8a/AINcGX7"],
        vec!["--button", "one-tap", "--android-app", "com.example.shop:short"],
    ] {
        let mut all = vec!["whatsapp", "template", "create", "--name", "auth_x", "--lang", "en_US"];
        all.extend(args.iter().copied());
        let out = t.waotp(&all);
        assert!(!out.success(), "{args:?}");
        let err = out.stderr;
        let expected = match args[1] {
            "600" | "400" => "longer than the code lifetime (300 s)",
            "zero-tap" => "--zero-tap-terms-accepted",
            _ => "signature hash",
        };
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    // An app whose codes live 10 s: no TTL Meta accepts (30 s at least) is short enough.
    let short = t.app_named("quick", &["--time-limit", "10"]);
    let out = t.waotp(&["whatsapp", "template", "create", "--name", "auth_x", "--lang", "en_US", "--app", &short]);
    assert!(!out.success());
    let err = out.stderr;
    assert!(err.contains("shorter than Meta's shortest message TTL (30 s)"), "{err}");
    assert_eq!(t.double.management_requests().len(), before, "no call reached Meta");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_servers_database_the_doctor_warns_and_creates_none() {
    let t = Trial::new().await;
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("elsewhere").join("waotp.db");
    let out = t.cli_on(&format!("sqlite://{}", missing.display())).run(&["whatsapp", "doctor"]);
    let text = &out.stdout;
    assert!(out.success(), "only a warning: {text}");
    assert!(text.contains("warning apps: no app found in the database: no template was checked"), "{text}");
    assert!(out.stderr.contains("note: no database at"), "{}", out.stderr);
    assert!(!missing.exists() && !missing.parent().unwrap().exists(), "no database was created");
}
