//! What the binary's integration tests share: a `waotp serve` process on a loopback port.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_waotp");

/// A running `waotp serve`, killed when dropped (also when a test fails).
pub struct Server {
    pub child: Child,
    /// `http://ADDR` as its banner prints it.
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `waotp serve` on 127.0.0.1:0 over the database `db`, with `env` and logs at `warn` to
/// nowhere; returns once the banner names its address (the rest of stdout is drained).
pub fn serve(db: &str, env: &[(&str, &str)]) -> Server {
    let mut command = Command::new(BIN);
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("WAOTP_DATABASE_URL", db)
        .env("WAOTP_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("start waotp serve");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("banner").expect("banner line");
    let base = first.strip_prefix("waotp listening on ").expect("banner line").to_owned();
    std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
    Server { child, base }
}
