//! The CLI and the apps' sealed secrets: `app create` and `app rotate-callback-secret` store the
//! callback secret sealed under the server secret a server on the database reads, and a CLI
//! given another secret than the one the database's secrets are sealed under refuses to seal.

use serde_json::Value;
use waotp_test_support::binary::Waotp;

/// `waotp` on `db`, with `secret` as `WAOTP_SERVER_SECRET` (`None`: the key file).
fn waotp(db: &str, secret: Option<&str>) -> Waotp {
    let cli = Waotp::new(env!("CARGO_BIN_EXE_waotp")).db(db).env_remove("WAOTP_SERVER_SECRET");
    match secret {
        Some(s) => cli.env("WAOTP_SERVER_SECRET", s),
        None => cli,
    }
}

/// Created and rotated with the CLI: the database holds the callback secret sealed, never as
/// printed, and it opens to what was printed with the server secret the CLI used (here the
/// SQLite key file a server on this database reads too).
#[tokio::test]
async fn the_cli_stores_callback_secrets_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/waotp.db", dir.path().display());
    let created = waotp(&db, None).json(&["app", "create", "--name", "sealed", "--json"]);
    let id = created["app_id"].as_str().unwrap().to_owned();
    let config = waotp_server::Config::new(db.clone());
    let (key, store) = (config.code_key().unwrap(), config.open_store().await.unwrap());
    let app_id = id.parse().unwrap();
    let opened = |shown: String| {
        let (key, store) = (&key, &store);
        async move {
            let record = store.get_app(app_id).await.unwrap().unwrap();
            let stored = &record.callback_secret;
            assert!(stored.starts_with("sealed:v1:"), "{stored}");
            assert!(!stored.contains(shown.trim_start_matches("whsec_")), "{stored}");
            assert_eq!(waotp_server::apps::callback_secret(key, &record).unwrap(), shown);
        }
    };
    opened(created["callback_secret"].as_str().unwrap().to_owned()).await;
    let rotated = waotp(&db, None).json(&["app", "rotate-callback-secret", &id, "--json"]);
    assert_ne!(rotated["callback_secret"], created["callback_secret"]);
    opened(rotated["callback_secret"].as_str().unwrap().to_owned()).await;
}

/// A CLI given another server secret than the one the database's secrets are sealed under
/// (the servers read `WAOTP_SERVER_SECRET`, the CLI was not given it) refuses to create or
/// rotate, saying why, instead of sealing what no server could open.
#[test]
fn a_cli_with_another_server_secret_refuses_to_seal() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/waotp.db", dir.path().display());
    let servers = Some("the-servers-secret-0123456789");
    let created = waotp(&db, servers).json(&["app", "create", "--name", "a", "--json"]);
    let id = created["app_id"].as_str().unwrap();
    for args in [&["app", "create", "--name", "b", "--json"][..], &["app", "rotate-callback-secret", id, "--json"]] {
        for other in [None, Some("another-secret-0123456789")] {
            let out = waotp(&db, other).run(args);
            assert!(!out.success(), "{args:?} with {other:?}");
            let err = out.stderr;
            assert!(err.contains("does not open the app secrets") && err.contains("WAOTP_SERVER_SECRET"), "{err}");
        }
    }
    let listed: Value = waotp(&db, servers).json(&["app", "list", "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "nothing made");
    waotp(&db, servers).json(&["app", "rotate-callback-secret", id, "--json"]);
}
