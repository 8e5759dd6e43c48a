//! A PostgreSQL cluster of one test's own, which the test may stop and start again, or start
//! with settings of its own (the one `scripts/with-postgres` makes is shared by every test of
//! the run). Panics on any failure: it is for tests.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

/// The directory of PostgreSQL's server binaries: `WAOTP_TEST_PG_BIN` (which
/// `scripts/with-postgres` sets), else the newest `/usr/lib/postgresql/*/bin`, else the one
/// holding `initdb` on the PATH.
pub fn server_bin() -> Option<PathBuf> {
    let usable = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os("WAOTP_TEST_PG_BIN").map(PathBuf::from) {
        return usable(&dir).then_some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| usable(bin))
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|dir| usable(dir))
}

/// A loopback port nothing listens on now.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().unwrap().port()
}

pub(crate) fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

pub struct Cluster {
    bin: PathBuf,
    dir: TempDir,
    port: u16,
    /// initdb refuses to run as root: then the cluster runs as `postgres`.
    as_postgres: bool,
    /// Server options (`-c name=value …`) beyond the address, port and durability ones.
    options: String,
}

impl Cluster {
    /// Creates a cluster in a temporary directory and starts it on a free loopback port.
    pub fn start(bin: &Path) -> Cluster {
        let cluster = Cluster::create(bin, "");
        cluster.start_again();
        cluster
    }

    /// Creates a cluster in a temporary directory, to be started (with `options` beside the
    /// address and port: `-c ssl=on …`) by [`Cluster::start_again`] once the caller has put
    /// its files in place ([`Cluster::put_file`]).
    pub fn create(bin: &Path, options: &str) -> Cluster {
        let dir = tempfile::tempdir().expect("cluster dir");
        let as_postgres = is_root();
        if as_postgres {
            if !Command::new("id").arg("postgres").output().is_ok_and(|o| o.status.success()) {
                run(Command::new("useradd")
                    .args(["--system", "--no-create-home", "--shell", "/usr/sbin/nologin"])
                    .arg("postgres"));
            }
            run(Command::new("chown").arg("postgres:").arg(dir.path()));
        }
        let port = free_port();
        let cluster = Cluster { bin: bin.to_owned(), dir, port, as_postgres, options: options.to_owned() };
        let data = cluster.data();
        cluster.pg("initdb", |c| {
            c.arg("-D").arg(&data).args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale"]);
        });
        cluster
    }

    /// A streaming standby of `primary` (which must be running), created with
    /// `pg_basebackup -R` in a directory of its own and started on a free loopback port, with
    /// `options` beside the address and port; returns once it accepts (read-only)
    /// connections.
    pub fn standby_of(primary: &Cluster, options: &str) -> Cluster {
        let dir = tempfile::tempdir().expect("cluster dir");
        if primary.as_postgres {
            run(Command::new("chown").arg("postgres:").arg(dir.path()));
        }
        let port = free_port();
        let standby = Cluster {
            bin: primary.bin.clone(),
            dir,
            port,
            as_postgres: primary.as_postgres,
            options: options.to_owned(),
        };
        let data = standby.data();
        let source = primary.port.to_string();
        standby.pg("pg_basebackup", |c| {
            c.arg("-D").arg(&data).args(["-R", "-X", "stream", "-h", "127.0.0.1", "-p", &source, "-U", "postgres"]);
        });
        standby.start_again();
        standby
    }

    /// The data directory (`pg_hba.conf` is in it).
    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Writes `contents` to `name` under the cluster's directory (`data/pg_hba.conf`, or a
    /// key file beside the data directory), readable by the server's user alone (mode 0600,
    /// owned by `postgres` when the test runs as root), as PostgreSQL wants its key file; and
    /// returns its path.
    pub fn put_file(&self, name: &str, contents: &[u8]) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod 0600");
        if self.as_postgres {
            run(Command::new("chown").arg("postgres:").arg(&path));
        }
        path
    }

    /// The loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Runs one of the server's programs (see [`Cluster::command`]).
    fn pg(&self, program: &str, args: impl FnOnce(&mut Command)) {
        let mut command = self.command(program);
        args(&mut command);
        run(&mut command);
    }

    /// One of the server's programs, to run as `postgres` when the test runs as root.
    fn command(&self, program: &str) -> Command {
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(self.bin.join(program));
            c
        } else {
            Command::new(self.bin.join(program))
        }
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the (stopped) server again, on the same port; returns once it accepts.
    pub fn start_again(&self) {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories={} -c fsync=off \
             -c full_page_writes=off {}",
            self.port,
            self.dir.path().display(),
            self.options
        );
        let (data, log) = (self.data(), self.dir.path().join("server.log"));
        self.pg("pg_ctl", |c| {
            c.arg("-D").arg(&data).arg("-l").arg(&log).arg("-o").arg(&options).args(["-w", "-t", "60", "start"]);
        });
    }

    /// Stops the server as an operator would for maintenance: `pg_ctl stop -m fast`
    /// (sessions are terminated, open transactions rolled back); returns once it is down.
    pub fn stop(&self) {
        self.pg_ctl_stop("fast");
    }

    /// Stops the server as a crash would: `pg_ctl stop -m immediate` (no shutdown checkpoint,
    /// connections cut); returns once it is down.
    pub fn kill(&self) {
        self.pg_ctl_stop("immediate");
    }

    fn pg_ctl_stop(&self, mode: &str) {
        let data = self.data();
        self.pg("pg_ctl", |c| {
            c.arg("-D").arg(&data).args(["-m", mode, "-w", "-t", "60", "stop"]);
        });
    }

    /// Promotes a standby to primary (`pg_ctl promote`); returns once it takes writes.
    pub fn promote(&self) {
        let data = self.data();
        self.pg("pg_ctl", |c| {
            c.arg("-D").arg(&data).args(["-w", "-t", "60", "promote"]);
        });
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.command("pg_ctl").arg("-D").arg(self.data()).args(["-m", "immediate", "-w", "stop"]).output();
    }
}

fn run(command: &mut Command) {
    let out = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
