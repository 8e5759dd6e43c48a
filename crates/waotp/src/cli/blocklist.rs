//! `waotp blocklist …`: numbers and prefixes refused with 409.

use anyhow::bail;
use clap::Subcommand;
use serde_json::json;
use uuid::Uuid;
use waotp_server::admin::parse_block_entry;
use waotp_server::Clock;
use waotp_store::{BlockEntry, Store};

use super::apps::existing;

#[derive(Subcommand, Debug)]
pub(crate) enum BlocklistCommand {
    /// Block a number (6281234567890) or a prefix ending in `*` (62812*, or 7* for a country).
    Add {
        /// Only for this app; default every app.
        #[arg(long)]
        app: Option<Uuid>,
        number_or_prefix: String,
    },
    /// Unblock a number or prefix (as it was added).
    Remove {
        #[arg(long)]
        app: Option<Uuid>,
        number_or_prefix: String,
    },
    /// List blocked numbers and prefixes.
    List {
        #[arg(long)]
        json: bool,
    },
}

pub(super) async fn blocklist(store: &std::sync::Arc<dyn Store>, cmd: BlocklistCommand) -> anyhow::Result<()> {
    let store = store.as_ref();
    let scope = |app: Option<Uuid>| app.map_or_else(|| "every app".to_owned(), |a| format!("app {a}"));
    match cmd {
        BlocklistCommand::Add { app, number_or_prefix } => {
            if let Some(a) = app {
                existing(store, a).await?;
            }
            let (entry, is_prefix) = parse_block_entry(&number_or_prefix).map_err(anyhow::Error::msg)?;
            let shown = if is_prefix { format!("{entry}*") } else { entry.clone() };
            let added = store
                .block(BlockEntry { app_id: app, entry, is_prefix, created_at_ms: Clock::system().now_ms() })
                .await?;
            if added {
                println!("Blocked {shown} for {}.", scope(app));
            } else {
                println!("{shown} was already blocked for {}.", scope(app));
            }
        }
        BlocklistCommand::Remove { app, number_or_prefix } => {
            let (entry, is_prefix) = parse_block_entry(&number_or_prefix).map_err(anyhow::Error::msg)?;
            if !store.unblock(app, &entry, is_prefix).await? {
                bail!("{number_or_prefix} is not blocked for {}", scope(app));
            }
            println!("Unblocked {number_or_prefix} for {}.", scope(app));
        }
        BlocklistCommand::List { json } => {
            let entries = store.blocklist().await?;
            if json {
                let rows: Vec<serde_json::Value> = entries
                    .iter()
                    .map(|e| json!({ "app_id": e.app_id, "entry": e.entry, "prefix": e.is_prefix }))
                    .collect();
                println!("{}", serde_json::Value::Array(rows));
            } else if entries.is_empty() {
                println!("Nothing is blocked.");
            } else {
                for e in entries {
                    println!("{}{}  {}", e.entry, if e.is_prefix { "*" } else { "" }, scope(e.app_id));
                }
            }
        }
    }
    Ok(())
}
