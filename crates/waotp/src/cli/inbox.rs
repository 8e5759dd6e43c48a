//! `waotp inbox inbound --from … --text …`: the user's message to the business, simulated on
//! the database (as the server's webhook and `POST /v1/inbox/inbound` apply it): a reverse
//! verification's prefilled text from its number verifies it, and a running server sends its
//! callback.
//! It acts on the database directly (it needs the server secret, as `waotp app` does), so it
//! works with or without a server running; `--server` is not used.

use std::sync::Arc;

use anyhow::bail;
use clap::Subcommand;
use uuid::Uuid;
use waotp_core::reverse::InboundDecision;
use waotp_core::{CodeKey, VerifyDecision};
use waotp_server::Clock;
use waotp_store::{InboundOutcome, Store};

#[derive(Subcommand, Debug)]
pub(crate) enum InboxCommand {
    /// Simulate the user's WhatsApp message to the business (reverse verification).
    Inbound {
        /// The sender, international form (a leading + is dropped).
        #[arg(long)]
        from: String,
        /// The message's text, e.g. the prefilled "7KQ4MZ2HXP is my verification code".
        #[arg(long)]
        text: String,
    },
}

pub(super) async fn inbox(store: &Arc<dyn Store>, key: CodeKey, cmd: InboxCommand) -> anyhow::Result<()> {
    let InboxCommand::Inbound { from, text } = cmd;
    let digits = from.strip_prefix('+').unwrap_or(&from);
    if !(6..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        bail!("--from must be a phone number: 6 to 15 digits, an optional +");
    }
    if text.is_empty() || text.chars().count() > waotp_whatsapp::webhook::MAX_INBOUND_TEXT {
        bail!("--text must be 1 to {} characters", waotp_whatsapp::webhook::MAX_INBOUND_TEXT);
    }
    let message_id = format!("cli.{}", Uuid::new_v4().simple());
    let now = Clock::system().now_ms();
    let outcome = waotp_server::reverse::decide(
        store.as_ref(),
        &Arc::new(key),
        waotp_server::reverse::InboundSender::number(digits),
        &text,
        &message_id,
        &waotp_store::InboundScope::Any,
        now,
    )
    .await?;
    match outcome {
        InboundOutcome::Decided { session_id, decision: InboundDecision::Owner(VerifyDecision::Verified), .. } => {
            println!("verified: session {session_id} (status 4; a running server sends its callback)");
        }
        InboundOutcome::Decided { session_id, decision, .. } => {
            println!("refused: session {session_id} ({decision:?})");
        }
        InboundOutcome::Replayed | InboundOutcome::NoSession => {
            println!("ignored: the text is no pending reverse verification's prefilled text");
        }
    }
    Ok(())
}
