//! TLS to PostgreSQL: each `sslmode` against clusters of the tests' own on 127.0.0.1, one with
//! `ssl=on` and a certificate from a throwaway CA made here (and only TLS connections allowed
//! by its `pg_hba.conf`, so a store that connected at all connected over TLS), one without
//! TLS. A store connects where libpq would, and where libpq would not it fails with words
//! that name the problem, never with the URL's password.

use std::time::Duration;

use rcgen::{BasicConstraints, Certificate, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use waotp_store::postgres::{PgOptions, PgStore};
use waotp_store::Store;
use waotp_test_support::postgres::cluster::{server_bin, Cluster};
use waotp_test_support::postgres::connect;

/// In every URL: it must appear in no error (the clusters trust every local connection, so
/// it is never checked).
const PASSWORD: &str = "pw-never-printed-4f1c";

struct Ca {
    cert: Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        Ca { cert: params.self_signed(&key).unwrap(), key }
    }

    /// A certificate for `common_name` and the subject alternative names `names` (host names
    /// or IP addresses), signed by this CA: its PEM and its key's.
    fn issue(&self, common_name: &str, names: &[&str]) -> (String, String) {
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(DnType::CommonName, common_name);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

async fn start(cluster: impl FnOnce() -> Cluster + Send + 'static) -> Cluster {
    tokio::task::spawn_blocking(cluster).await.unwrap()
}

fn bin() -> std::path::PathBuf {
    server_bin().expect(
        "this test needs PostgreSQL's server binaries (WAOTP_TEST_PG_BIN; run it through scripts/with-postgres)",
    )
}

/// `postgres://postgres:PASSWORD@{host}:{port}/postgres?{params}`.
fn url(host: &str, port: u16, params: &str) -> String {
    format!("postgres://postgres:{PASSWORD}@{host}:{port}/postgres?{params}")
}

/// What a case should come to.
enum Expect {
    /// A store opens (migrations and all) and its connections are encrypted (`true`) or not.
    Opens { encrypted: bool },
    /// Opening fails with an error that holds these words.
    Fails(String),
}

/// Opens a store at `url` (in a schema of its own when it should open) and checks it came to
/// `expect`; a mismatch is returned as a line for the test's failure message.
async fn check(name: &str, url: &str, expect: &Expect) -> Option<String> {
    let url = match expect {
        Expect::Opens { .. } => match waotp_test_support::postgres::fresh_postgres_url(url).await {
            Ok(url) => url,
            Err(e) => return Some(format!("{name}: should connect, but: {e}")),
        },
        Expect::Fails(_) => url.to_owned(),
    };
    let opened = async {
        let mut options = PgOptions::from_url(&url)?;
        options.wait = Duration::from_secs(20);
        let store = PgStore::open(options).await?;
        store.ready().await?;
        let ssl: bool = connect(&url)
            .await?
            .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
            .await?
            .get(0);
        Ok::<_, waotp_store::StoreError>(ssl)
    }
    .await;
    match (expect, opened) {
        (_, Err(e)) if e.to_string().contains(PASSWORD) => Some(format!("{name}: the error shows the password: {e}")),
        (Expect::Opens { encrypted }, Ok(ssl)) if ssl == *encrypted => None,
        (Expect::Opens { encrypted }, Ok(ssl)) => Some(format!("{name}: connected, encrypted {ssl}, not {encrypted}")),
        (Expect::Opens { .. }, Err(e)) => Some(format!("{name}: should connect, but: {e}")),
        (Expect::Fails(words), Ok(_)) => Some(format!("{name}: connected, but should fail with {words:?}")),
        (Expect::Fails(words), Err(e)) if e.to_string().contains(words.as_str()) => {
            eprintln!("{name}: {e}");
            None
        }
        (Expect::Fails(words), Err(e)) => Some(format!("{name}: failed without {words:?}: {e}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn each_sslmode_against_a_server_with_a_certificate_from_a_throwaway_ca() {
    let (ca, other_ca) = (Ca::new("waotp test CA"), Ca::new("some other CA"));
    // The server's certificate names localhost and 127.0.0.1: connecting to 127.0.0.1 as
    // `wrong.example` (hostaddr) is connecting to a server whose certificate is for another
    // host.
    let (server_cert, server_key) = ca.issue("localhost", &["localhost", "127.0.0.1"]);
    let (client_cert, client_key) = ca.issue("certuser", &[]);
    let ca_pem = ca.cert.pem();
    let cluster = start(move || {
        let cluster = Cluster::create(
            &bin(),
            "-c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key -c ssl_ca_file=ca.crt",
        );
        cluster.put_file("data/server.crt", server_cert.as_bytes());
        cluster.put_file("data/server.key", server_key.as_bytes());
        cluster.put_file("data/ca.crt", ca_pem.as_bytes());
        // TCP over TLS only; certuser only with a client certificate the CA signed for it.
        cluster.put_file(
            "data/pg_hba.conf",
            b"local all all trust\n\
              hostssl all certuser 127.0.0.1/32 trust clientcert=verify-full\n\
              hostssl all postgres 127.0.0.1/32 trust\n",
        );
        cluster.start_again();
        cluster
    })
    .await;
    let port = cluster.port();
    connect(&url("127.0.0.1", port, "sslmode=require"))
        .await
        .unwrap()
        .batch_execute("CREATE ROLE certuser LOGIN")
        .await
        .unwrap();
    let files = tempfile::tempdir().unwrap();
    let put = |name: &str, contents: &str| {
        let path = files.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path.display().to_string()
    };
    let ca_file = put("ca.pem", &ca.cert.pem());
    let other_ca_file = put("other-ca.pem", &other_ca.cert.pem());
    let cert_file = put("client.crt", &client_cert);
    let key_file = put("client.key", &client_key);
    let missing = files.path().join("missing.pem").display().to_string();

    let fails = |words: &str| Expect::Fails(words.to_owned());
    let cases = [
        ("require", url("127.0.0.1", port, "sslmode=require"), Expect::Opens { encrypted: true }),
        ("prefer (the default)", url("127.0.0.1", port, "pool_size=4"), Expect::Opens { encrypted: true }),
        (
            "verify-full with the CA, by IP",
            url("127.0.0.1", port, &format!("sslmode=verify-full&sslrootcert={ca_file}")),
            Expect::Opens { encrypted: true },
        ),
        (
            "verify-full with the CA, by name",
            url("localhost", port, &format!("sslmode=verify-full&sslrootcert={ca_file}&hostaddr=127.0.0.1")),
            Expect::Opens { encrypted: true },
        ),
        (
            "verify-full with another CA",
            url("127.0.0.1", port, &format!("sslmode=verify-full&sslrootcert={other_ca_file}")),
            fails(&format!("certificate not trusted (its issuer is not among sslrootcert {other_ca_file})")),
        ),
        (
            "verify-full with the built-in roots",
            url("127.0.0.1", port, "sslmode=verify-full"),
            fails("certificate not trusted (its issuer is not among the webpki roots"),
        ),
        (
            "verify-full, a certificate for another host",
            url("wrong.example", port, &format!("sslmode=verify-full&sslrootcert={ca_file}&hostaddr=127.0.0.1")),
            fails("hostname mismatch: certificate is not valid for wrong.example (it names localhost, 127.0.0.1)"),
        ),
        (
            "verify-ca, a certificate for another host",
            url("wrong.example", port, &format!("sslmode=verify-ca&sslrootcert={ca_file}&hostaddr=127.0.0.1")),
            Expect::Opens { encrypted: true },
        ),
        (
            "verify-ca with another CA",
            url("127.0.0.1", port, &format!("sslmode=verify-ca&sslrootcert={other_ca_file}")),
            fails("certificate not trusted"),
        ),
        (
            "require with a CA file checks the chain (as libpq)",
            url("127.0.0.1", port, &format!("sslmode=require&sslrootcert={other_ca_file}")),
            fails("certificate not trusted"),
        ),
        (
            "disable, against a server that takes TLS only",
            url("127.0.0.1", port, "sslmode=disable"),
            fails("no encryption"),
        ),
        (
            "a missing sslrootcert",
            url("127.0.0.1", port, &format!("sslmode=verify-full&sslrootcert={missing}")),
            fails(&format!("cannot read sslrootcert {missing}")),
        ),
        (
            "certuser without its client certificate",
            url("127.0.0.1", port, "sslmode=require&user=certuser"),
            fails("certificate"),
        ),
    ];
    let mut failures = Vec::new();
    for (name, url, expect) in &cases {
        failures.extend(check(name, url, expect).await);
    }

    // The client certificate: certuser may not create a schema, so it opens no store; its
    // connection is what is checked.
    let with_cert = url(
        "127.0.0.1",
        port,
        &format!("sslmode=verify-full&sslrootcert={ca_file}&sslcert={cert_file}&sslkey={key_file}&user=certuser"),
    );
    match connect(&with_cert).await {
        Ok(client) => {
            let row = client
                .query_one(
                    "SELECT current_user::text, s.ssl, s.client_dn FROM pg_stat_ssl s WHERE pid = pg_backend_pid()",
                    &[],
                )
                .await
                .unwrap();
            let (user, ssl, dn): (String, bool, Option<String>) = (row.get(0), row.get(1), row.get(2));
            if (user.as_str(), ssl, dn.as_deref()) != ("certuser", true, Some("/CN=certuser")) {
                failures.push(format!("client certificate: connected as {user}, ssl {ssl}, client DN {dn:?}"));
            }
        }
        Err(e) => failures.push(format!("client certificate: should connect, but: {e}")),
    }
    drop(cluster);
    assert!(failures.is_empty(), "{} of the cases went wrong:\n{}", failures.len(), failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn a_server_without_tls_is_refused_by_the_modes_that_need_it() {
    let cluster = start(|| Cluster::start(&bin())).await;
    let port = cluster.port();
    let files = tempfile::tempdir().unwrap();
    let ca_file = files.path().join("ca.pem");
    std::fs::write(&ca_file, Ca::new("waotp test CA").cert.pem()).unwrap();
    let ca_file = ca_file.display();
    let cases = [
        (
            "require",
            url("127.0.0.1", port, "sslmode=require"),
            Expect::Fails("server does not support TLS (sslmode=require)".into()),
        ),
        (
            "verify-full",
            url("127.0.0.1", port, &format!("sslmode=verify-full&sslrootcert={ca_file}")),
            Expect::Fails("server does not support TLS (sslmode=verify-full)".into()),
        ),
        ("prefer", url("127.0.0.1", port, "sslmode=prefer"), Expect::Opens { encrypted: false }),
        ("disable", url("127.0.0.1", port, "sslmode=disable"), Expect::Opens { encrypted: false }),
    ];
    let mut failures = Vec::new();
    for (name, url, expect) in &cases {
        failures.extend(check(name, url, expect).await);
    }
    drop(cluster);
    assert!(failures.is_empty(), "{} of the cases went wrong:\n{}", failures.len(), failures.join("\n"));
}
