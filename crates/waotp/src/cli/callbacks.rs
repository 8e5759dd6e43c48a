//! `waotp callbacks …`: a session's callback log, and replays.

use anyhow::{bail, Context};
use clap::Subcommand;
use uuid::Uuid;
use waotp_core::Status;
use waotp_server::Clock;
use waotp_store::Store;

#[derive(Subcommand, Debug)]
pub(crate) enum CallbackCommand {
    /// Show a session's callbacks and every delivery attempt.
    List {
        #[arg(long)]
        app: Uuid,
        #[arg(long)]
        session: Uuid,
        #[arg(long)]
        json: bool,
    },
    /// Queue a session's callback for one status again (a running server sends it at once).
    Replay {
        #[arg(long)]
        app: Uuid,
        #[arg(long)]
        session: Uuid,
        /// The status number, 0-10.
        #[arg(long)]
        status: i64,
    },
}

pub(super) async fn callbacks(store: &std::sync::Arc<dyn Store>, cmd: CallbackCommand) -> anyhow::Result<()> {
    let store = store.as_ref();
    match cmd {
        CallbackCommand::List { app, session, json } => {
            let Some(list) = store.list_callbacks(app, session).await? else {
                bail!("app {app} has no session {session}");
            };
            let rfc = waotp_server::clock::rfc3339;
            if json {
                println!("{}", waotp_server::admin::callbacks_json(&list, waotp_server::admin::LogReader::Operator));
            } else if list.is_empty() {
                println!("No callbacks (the send had no callback_url).");
            } else {
                for c in &list {
                    let next = c.due_at_ms().map(|at| format!(" next={}", rfc(at))).unwrap_or_default();
                    println!(
                        "{:>2} {:<20} {:<9} attempts={}{next} {}",
                        c.status.code(),
                        c.status.name(),
                        c.shown_state(),
                        c.attempts,
                        c.url
                    );
                    for a in &c.log {
                        println!(
                            "     {}  {}  {} ms",
                            rfc(a.at_ms),
                            a.http_status.map_or_else(|| a.error.clone().unwrap_or_default(), |s| format!("HTTP {s}")),
                            a.latency_ms
                        );
                    }
                }
            }
        }
        CallbackCommand::Replay { app, session, status } => {
            let status = Status::from_code(status).context("status must be 0 to 10")?;
            if !store.replay_callback(app, session, status, Clock::system().now_ms()).await? {
                bail!("session {session} of app {app} has no callback for status {}", status.code());
            }
            println!("Queued callback {} ({}) of session {session} again.", status.code(), status.name());
        }
    }
    Ok(())
}
