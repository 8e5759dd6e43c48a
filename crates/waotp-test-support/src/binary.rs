//! The real `waotp` binary as a process, as the binary's integration tests drive it: a command
//! line run to its end ([`Waotp::run`]), and `waotp serve` read up to its banner
//! ([`Waotp::serve`]) and killed when dropped. Only those tests know where the binary is: they
//! give its path, `env!("CARGO_BIN_EXE_waotp")`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long [`Server::line`] waits for a line the server has not printed yet (a start on a
/// busy machine, migrations and all, included).
const LINE_WAIT: Duration = Duration::from_secs(60);

/// A `waotp` command line: the binary and the environment it runs in. Each run or server
/// starts from it afresh, so one `Waotp` serves a whole test.
#[derive(Debug, Clone)]
pub struct Waotp {
    bin: PathBuf,
    /// Variables set (`Some`) or removed (`None`), in order.
    env: Vec<(String, Option<String>)>,
    /// Without the test's own `WAOTP_*` variables.
    isolated: bool,
    dir: Option<PathBuf>,
    /// Where `serve` appends its log (standard error); `None`: discarded.
    log: Option<PathBuf>,
}

/// What a finished run left: its exit status and its output, as text.
#[derive(Debug)]
pub struct Ran {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn success(&self) -> bool {
        self.status.success()
    }
}

impl Waotp {
    /// The binary at `bin` (`env!("CARGO_BIN_EXE_waotp")`), in the test's environment.
    pub fn new(bin: impl Into<PathBuf>) -> Waotp {
        Waotp { bin: bin.into(), env: Vec::new(), isolated: false, dir: None, log: None }
    }

    /// On the database at `url` (`WAOTP_DATABASE_URL`).
    pub fn db(self, url: &str) -> Waotp {
        self.env("WAOTP_DATABASE_URL", url)
    }

    pub fn env(mut self, key: &str, value: &str) -> Waotp {
        self.env.push((key.to_owned(), Some(value.to_owned())));
        self
    }

    pub fn envs(self, pairs: &[(&str, &str)]) -> Waotp {
        pairs.iter().fold(self, |cli, (k, v)| cli.env(k, v))
    }

    /// Without `key`, also when the test's own environment has it.
    pub fn env_remove(mut self, key: &str) -> Waotp {
        self.env.push((key.to_owned(), None));
        self
    }

    /// Without any `WAOTP_*` variable of the test's own environment: only those given here.
    pub fn isolated(mut self) -> Waotp {
        self.isolated = true;
        self
    }

    /// Run in `dir` (where `waotp.toml` and `waotp-data/` are looked for).
    pub fn current_dir(mut self, dir: &Path) -> Waotp {
        self.dir = Some(dir.to_owned());
        self
    }

    /// `serve`'s log (its standard error) appended to `path` instead of discarded.
    pub fn log_to(mut self, path: &Path) -> Waotp {
        self.log = Some(path.to_owned());
        self
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.bin);
        if self.isolated {
            for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("WAOTP_")) {
                command.env_remove(k);
            }
        }
        for (k, v) in &self.env {
            match v {
                Some(v) => command.env(k, v),
                None => command.env_remove(k),
            };
        }
        if let Some(dir) = &self.dir {
            command.current_dir(dir);
        }
        command
    }

    /// Runs `waotp ARGS` to its end.
    pub fn run(&self, args: &[&str]) -> Ran {
        let out = self.command().args(args).output().unwrap_or_else(|e| panic!("running waotp {args:?}: {e}"));
        Ran {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs `waotp ARGS`, which must succeed (else a panic with its standard error); its
    /// standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let ran = self.run(args);
        assert!(ran.success(), "waotp {args:?}: {}", ran.stderr);
        ran.stdout
    }

    /// [`Waotp::ok`], whose output is one JSON document.
    pub fn json(&self, args: &[&str]) -> Value {
        let out = self.ok(args);
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("waotp {args:?} printed no JSON ({e}): {out}"))
    }

    /// `waotp serve --listen LISTEN`, logging at `warn` unless `WAOTP_LOG` is given; returns
    /// once the banner's first line names the address.
    pub fn serve(&self, listen: &str) -> Server {
        let mut command = self.command();
        command.args(["serve", "--listen", listen]).stdout(Stdio::piped());
        if !self.env.iter().any(|(k, _)| k == "WAOTP_LOG") {
            command.env("WAOTP_LOG", "warn");
        }
        match &self.log {
            Some(path) => {
                let log = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                command.stderr(log)
            }
            None => command.stderr(Stdio::null()),
        };
        let mut child = command.spawn().expect("start waotp serve");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let (tx, lines) = std::sync::mpsc::channel();
        // Every line is read, as it comes: a closed pipe would end the server at its next line.
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut server = Server { child, base: String::new(), printed: Vec::new(), lines };
        let first = server.line(LISTENING);
        server.base = first[LISTENING.len()..].to_owned();
        server
    }
}

/// How the banner's first line starts.
const LISTENING: &str = "waotp listening on ";

/// A running `waotp serve`, killed when dropped (also when a test fails).
pub struct Server {
    pub child: Child,
    /// `http://ADDR` as the banner prints it.
    pub base: String,
    /// What it printed so far (read by [`Server::line`]).
    printed: Vec<String>,
    lines: Receiver<String>,
}

impl Server {
    /// The first printed line starting with `prefix`, waiting for it if need be.
    pub fn line(&mut self, prefix: &str) -> String {
        self.line_where(&format!("a line starting with {prefix:?}"), |l| l.starts_with(prefix))
    }

    /// The first printed line containing `text`, waiting for it if need be.
    pub fn line_containing(&mut self, text: &str) -> String {
        self.line_where(&format!("a line containing {text:?}"), |l| l.contains(text))
    }

    fn line_where(&mut self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + LINE_WAIT;
        loop {
            if let Some(line) = self.printed.iter().find(|l| wanted(l)) {
                return line.clone();
            }
            match self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => self.printed.push(line),
                Err(RecvTimeoutError::Timeout) => panic!("no {what} within {LINE_WAIT:?}: {:#?}", self.printed),
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("waotp serve ended without {what} ({:?}): {:#?}", self.child.try_wait(), self.printed)
                }
            }
        }
    }

    /// Every line printed so far (those [`Server::line`] has read).
    pub fn printed(&self) -> String {
        self.printed.join("\n")
    }

    /// Kills the server (SIGKILL) and waits for it to end.
    pub fn stop(mut self) {
        self.child.kill().expect("kill waotp serve");
        self.child.wait().expect("wait for waotp serve");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
