//! A PgBouncer of one test's own, in front of a PostgreSQL server on 127.0.0.1, in the pool
//! mode the test asks for. Debian's `pgbouncer` package (`scripts/with-postgres --pgbouncer`
//! installs it); `WAOTP_TEST_PGBOUNCER` names another binary. Panics on any failure: it is
//! for tests.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The PgBouncer binary tests run.
pub fn binary() -> PathBuf {
    std::env::var_os("WAOTP_TEST_PGBOUNCER").map_or_else(|| PathBuf::from("/usr/sbin/pgbouncer"), PathBuf::from)
}

pub struct PgBouncer {
    child: Child,
    port: u16,
    dir: TempDir,
}

impl PgBouncer {
    /// Starts PgBouncer on a free loopback port in `pool_mode` (`session`, `transaction` or
    /// `statement`) in front of the server at `upstream` (a `postgres://` URL: its host and
    /// port), every database name passed through, every local user trusted; returns once it
    /// accepts connections. An upstream URL with an `sslrootcert` (a server that takes TLS
    /// only, as `scripts/with-postgres --tls` starts) is reached over TLS, verified with that
    /// CA; clients talk to PgBouncer without TLS.
    pub fn start(upstream: &str, pool_mode: &str) -> PgBouncer {
        let (address, query) = upstream.split_once('?').unwrap_or((upstream, ""));
        let config: tokio_postgres::Config = address.parse().expect("upstream URL");
        let server_tls = match query.split('&').find_map(|p| p.strip_prefix("sslrootcert=")) {
            Some(ca) => format!("server_tls_sslmode = verify-full\nserver_tls_ca_file = {ca}\n"),
            None => String::new(),
        };
        let upstream_port = config.get_ports().first().copied().unwrap_or(5432);
        let dir = tempfile::tempdir().expect("pgbouncer dir");
        let port = super::cluster::free_port();
        let users = dir.path().join("users.txt");
        std::fs::write(&users, "\"postgres\" \"\"\n").expect("auth file");
        let ini = dir.path().join("pgbouncer.ini");
        std::fs::write(
            &ini,
            format!(
                "[databases]\n* = host=127.0.0.1 port={upstream_port}\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\n\
                 listen_port = {port}\nunix_socket_dir =\nauth_type = trust\nauth_file = {}\n\
                 pool_mode = {pool_mode}\nmax_client_conn = 1000\ndefault_pool_size = 100\n\
                 server_idle_timeout = 5\n{server_tls}",
                users.display()
            ),
        )
        .expect("pgbouncer.ini");
        let log = std::fs::File::create(dir.path().join("pgbouncer.log")).expect("log file");
        let mut command = Command::new(binary());
        if super::cluster::is_root() {
            let chown = Command::new("chown").arg("-R").arg("postgres:").arg(dir.path()).status();
            assert!(chown.is_ok_and(|s| s.success()), "chown of the pgbouncer dir");
            // PgBouncer refuses to run as root; -u makes it drop to that user.
            command.args(["-u", "postgres"]);
        }
        let child = command
            .arg(&ini)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e} (install Debian's pgbouncer)", binary().display()));
        let mut bouncer = PgBouncer { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = bouncer.child.try_wait() {
                panic!("pgbouncer exited ({status}): {}", bouncer.log());
            }
            assert!(Instant::now() < deadline, "pgbouncer did not listen within 10 s: {}", bouncer.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        bouncer
    }

    /// A URL of database `database` through this PgBouncer.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// What PgBouncer logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pgbouncer.log")).unwrap_or_default()
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
