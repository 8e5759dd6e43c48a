#![forbid(unsafe_code)]
//! waotp's storage: what the server and the CLI keep, as traits by capability ([`AppStore`],
//! [`SessionStore`], [`DeliveryStore`], [`CallbackStore`], [`DashboardStore`],
//! [`DashboardLogins`], [`CostStore`], …) gathered in [`Store`]; their record types; the driver-neutral
//! [`StoreError`]; and two backends: SQLite (embedded, WAL, one writer thread with group
//! commit) and PostgreSQL (several nodes on one database). Decisions are `waotp-core`'s pure
//! functions; a backend loads their facts and stores their outcomes, atomically.
//!
//! A third backend implements these traits (classifying its driver's errors into
//! [`StoreError`] at its own boundary) and passes the contract suite, `tests/contract.rs`:
//! the single statement of what a backend promises. Add it to the suite's `open` (which picks
//! the backend from the test database's URL) and run `cargo test -p waotp-store --test
//! contract` (SQLite), or `scripts/with-postgres cargo test -p waotp-store --test contract --
//! --include-ignored` (PostgreSQL, with the PostgreSQL-only cases).

/// Sessions without an outcome (neither 4 Verified nor 5 Unverified), as SQL. Both backends
/// write it literally, as their migrations' partial index `sessions_unfinished` does: a query
/// uses that index only when its condition matches the index's text. A test pins it to
/// waotp_core's statuses and to the migrations.
macro_rules! unfinished_sql {
    () => {
        "status NOT IN (4, 5)"
    };
}

mod costs;
mod error;
mod health;
pub mod postgres;
mod reverse;
pub mod sqlite;
mod types;
pub mod user_ids;

use async_trait::async_trait;
use uuid::Uuid;
use waotp_core::{Msisdn, Status, Template};

pub use costs::{CostStore, CostWindow, CountryCount, MessageCount, RecordedCost, ID_ORDER_SLACK_MS};
pub use error::{retry_while_unavailable, StoreError};
pub use health::*;
pub use reverse::{InboundAttempt, InboundOutcome, InboundScope, ReverseFunnelRow, ReverseLinkParts, ReverseStore};
pub use types::*;
pub use user_ids::{UserIdFact, UserKey};

pub type Result<T> = std::result::Result<T, StoreError>;

/// A stored code hash, as both backends read it back.
pub(crate) fn code_hash(bytes: Vec<u8>) -> Result<waotp_core::CodeHash> {
    Ok(waotp_core::CodeHash(bytes.try_into().map_err(|_| StoreError::Corrupt("code hash length".into()))?))
}

/// How long a request waits for the database (a pooled connection, the SQLite writer or a
/// lock held by another process) before it is refused as unavailable.
pub const DEFAULT_DATABASE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Idempotency keys are remembered this long.
pub const IDEMPOTENCY_TTL_MS: i64 = 24 * 3600 * 1000;
/// A provider's event for a message id no session has recorded yet (it beat the send's own
/// answer) is kept this long for the send to record it…
pub const EARLY_EVENT_TTL_MS: i64 = 10 * 60 * 1000;
/// …and at most this many such events are kept (the oldest go first), so webhooks for
/// messages that are not waotp's cannot grow the table without limit.
pub const EARLY_EVENTS_MAX: i64 = 10_000;

/// Apps and what belongs to each: settings, API key hash, templates, WhatsApp sender,
/// callback signing secret, quota; and the blocklist. What the admin API, the CLI and the
/// dashboard manage, and what a request's app is loaded from.
#[async_trait]
pub trait AppStore: Send + Sync {
    async fn create_app(&self, app: AppRecord) -> Result<()>;
    async fn get_app(&self, app_id: Uuid) -> Result<Option<AppRecord>>;
    async fn list_apps(&self) -> Result<Vec<AppRecord>>;
    /// Replaces an app's settings; false if there is no such app.
    async fn update_app_settings(&self, app_id: Uuid, settings: AppSettings) -> Result<bool>;
    /// Replaces an app's API key hash; false if there is no such app.
    async fn set_api_key_hash(&self, app_id: Uuid, hash: [u8; 32]) -> Result<bool>;
    /// Sets (or with `None` removes) an app's own WhatsApp sender; false if no such app.
    async fn set_sender(&self, app_id: Uuid, sender: Option<WhatsAppSender>) -> Result<bool>;
    /// Replaces an app's callback signing secret; false if there is no such app.
    async fn set_callback_secret(&self, app_id: Uuid, secret: String) -> Result<bool>;
    /// Sets an app's quota (`None`: unlimited); false if there is no such app.
    async fn set_quota(&self, app_id: Uuid, quota: Option<i64>) -> Result<bool>;
    /// Adds to an app's quota (an unlimited app becomes limited at `amount`); the new
    /// balance, or `None` if there is no such app.
    async fn add_quota(&self, app_id: Uuid, amount: i64) -> Result<Option<i64>>;

    /// Inserts or replaces the template (app, name, language); false if there is no such app.
    async fn put_template(&self, app_id: Uuid, template: Template) -> Result<bool>;
    async fn list_templates(&self, app_id: Uuid) -> Result<Vec<Template>>;
    async fn delete_template(&self, app_id: Uuid, name: &str, language: &str) -> Result<bool>;

    /// Blocks a number or prefix for one app or all (`None`); false if it was already.
    async fn block(&self, entry: BlockEntry) -> Result<bool>;
    /// Unblocks; false if it was not blocked.
    async fn unblock(&self, app_id: Option<Uuid>, entry: &str, is_prefix: bool) -> Result<bool>;
    async fn blocklist(&self) -> Result<Vec<BlockEntry>>;
}

/// The hot path: a send stores a session, a verify decides on it; and a session's life after
/// that (its expiry, reading it back, pruning it).
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Checks the guards and, if they pass, stores a new session (superseding the pending one
    /// of the same (app, msisdn, challenge)), counts it and uses quota — all atomically.
    async fn create_session(&self, session: NewSession, guards: SendGuards) -> Result<SendOutcome>;
    /// Checks the attempt's guess against the newest session of (app, msisdn, challenge) and
    /// applies the outcome (verified, wrong try counted, lock) atomically, within the verify
    /// limit. The decision is [`waotp_core::VerifyDecision::decide`]'s; the guess compares
    /// itself ([`waotp_core::Guess::matches`]).
    async fn verify(&self, attempt: VerifyAttempt) -> Result<VerifyOutcome>;
    async fn get_session(&self, app_id: Uuid, session_id: Uuid) -> Result<Option<SessionRecord>>;
    /// Reports 5 Unverified for sessions whose time limit has passed without a final
    /// status (also superseded and locked ones); returns how many moved.
    async fn expire_due(&self, now_ms: i64, limit: usize) -> Result<usize>;
    /// Forgets expired counters, idempotency keys and dashboard logins, and early provider
    /// events older than [`EARLY_EVENT_TTL_MS`].
    async fn prune_guards(&self, now_ms: i64) -> Result<()>;
    /// Deletes up to `limit` sessions (with their callbacks and attempts), up to `limit` inbox
    /// messages and up to `limit` message costs created before `before_ms`, and the billable
    /// counts of months that ended before it; returns how many rows went. Called in small
    /// batches so traffic never waits long behind it.
    async fn prune_older_than(&self, before_ms: i64, limit: usize) -> Result<usize>;
}

/// A session's message on its way to the user: the queue the dispatcher works through, the
/// last look before sending, what the channel did, the local inbox channel, and what the
/// provider reports afterwards.
#[async_trait]
pub trait DeliveryStore: Send + Sync {
    /// Sessions whose message has not been handed to a channel yet, oldest first.
    async fn undelivered(&self, after_id: i64, limit: usize) -> Result<Vec<PendingDelivery>>;
    /// Whether a session's message should still go out right before a channel sends it: not
    /// if it was superseded, verified, locked or expired meanwhile, nor to a blocked number.
    async fn delivery_check(
        &self,
        app_id: Uuid,
        session_id: Uuid,
        msisdn: &Msisdn,
        now_ms: i64,
    ) -> Result<DeliveryCheck>;
    /// Records what the channel did with a session's message and forgets the sealed code. A
    /// `Sent` outcome also applies the provider's events kept for its message id (see
    /// [`ProviderReport::Kept`]), in arrival order, and forgets them — in the same transaction.
    async fn record_delivery(&self, session_id: Uuid, outcome: DeliveryOutcome, now_ms: i64) -> Result<()>;
    /// The local inbox channel: stores the message, marks the session sent and delivered,
    /// forgets the sealed code — in one transaction, after the same last look as
    /// [`DeliveryStore::delivery_check`] (a blocked number reports 9, a stale code is not
    /// delivered).
    async fn deliver_to_inbox(&self, message: InboxMessage) -> Result<()>;
    /// An app's inbox messages for one msisdn, newest first.
    async fn inbox(&self, app_id: Uuid, msisdn: &Msisdn, limit: usize) -> Result<Vec<InboxMessage>>;
    /// Marks sessions read (status 3) when their app has read them from the inbox.
    async fn mark_read(&self, app_id: Uuid, session_ids: Vec<Uuid>, now_ms: i64) -> Result<()>;
    /// Applies a provider's status report to the session that sent message `provider_id`:
    /// each of `steps` that moves it forward, the provider's error if any, and the message's
    /// `pricing` if given (recorded once per message, with the recipient's country
    /// ([`waotp_core::numbering::region`] of the session's number) and `now_ms`; a billable one
    /// also counts in its app's month, [`CostStore::billable_in_month`]; a later pricing of the
    /// same message changes nothing). If no session has that message id yet, the whole report
    /// (pricing included) is kept, as one event, for [`DeliveryStore::record_delivery`] to
    /// apply. Either way, once this returns nothing of the report can be lost to a concurrent
    /// recording of the id, on any node. The caller decides which statuses' pricing counts
    /// (Meta bills a delivered message: waotp passes the pricing of `delivered` and `read`).
    async fn report_provider_status(
        &self,
        provider_id: &str,
        steps: Vec<Status>,
        error: Option<(i64, String)>,
        pricing: Option<waotp_core::MessagePricing>,
        now_ms: i64,
    ) -> Result<ProviderReport>;
    /// Records that the user said they did not request the code of message `provider_id`
    /// (kept, as a status report is, if no session has that message id yet).
    async fn flag_not_requested(&self, provider_id: &str, now_ms: i64) -> Result<ProviderReport>;
}

/// The callbacks outbox: status callbacks queued with their sessions' status changes,
/// claimed and leased by workers, every attempt logged.
#[async_trait]
pub trait CallbackStore: Send + Sync {
    /// Claims up to `limit` due callbacks, at most one per session (the oldest pending one,
    /// so a session's statuses go out in order), leasing them until `lease_until_ms`.
    async fn claim_callbacks(&self, now_ms: i64, lease_until_ms: i64, limit: usize) -> Result<Vec<CallbackJob>>;
    /// Records an attempt (if any) and what follows it, and releases the lease.
    async fn finish_callback(
        &self,
        job: &CallbackJob,
        attempt: Option<AttemptRecord>,
        next: CallbackNext,
        now_ms: i64,
    ) -> Result<()>;
    /// Releases the leases no live worker holds: on SQLite (one server per file) every lease
    /// at startup; on PostgreSQL those of nodes that are gone.
    async fn release_callback_leases(&self) -> Result<()>;
    /// A session's callbacks with their attempts, in status order; `None` if the app has no
    /// such session.
    async fn list_callbacks(&self, app_id: Uuid, session_id: Uuid) -> Result<Option<Vec<CallbackRecord>>>;
    /// Queues a callback again (delivered or failed alike); false if there is none.
    async fn replay_callback(&self, app_id: Uuid, session_id: Uuid, status: Status, now_ms: i64) -> Result<bool>;
    /// Pending callbacks, for operators and metrics.
    async fn pending_callbacks(&self) -> Result<u64>;
}

/// What the dashboard and the metrics read across apps, and the refusal tallies they show.
#[async_trait]
pub trait DashboardStore: Send + Sync {
    /// Sessions matching every field given, newest first, at most `limit`.
    async fn search_sessions(&self, query: SessionQuery) -> Result<Vec<SessionRecord>>;
    /// Stored sessions by lifecycle status, for metrics.
    async fn sessions_by_status(&self) -> Result<Vec<(Status, u64)>>;
    /// Production sessions created at or after `since_ms`, by app and UTC day.
    async fn funnel(&self, since_ms: i64) -> Result<Vec<FunnelRow>>;
    /// Adds to the per-day refusal counts (each node flushes its own tally).
    async fn add_refusals(&self, counts: Vec<RefusalCount>) -> Result<()>;
    /// Refusal counts of `since_day` and later.
    async fn refusals(&self, since_day: i64) -> Result<Vec<RefusalCount>>;
    /// Callbacks given up on, newest first, with their attempt logs.
    async fn failed_callbacks(&self, limit: usize) -> Result<Vec<FailedCallback>>;
    /// The newest inbox messages of every app.
    async fn recent_inbox(&self, limit: usize) -> Result<Vec<InboxMessage>>;
}

/// The dashboard's logins, kept in the database so that a logout on one node ends the login
/// on every node that shares it. A login is named by the SHA-256 of its random id (the signed
/// cookie carries the id; the database never sees it). Expired logins are deleted by
/// [`SessionStore::prune_guards`].
#[async_trait]
pub trait DashboardLogins: Send + Sync {
    /// Records a login made at `now_ms`, live until `expires_at_ms` unless ended before.
    async fn create_login(&self, id_hash: [u8; 32], now_ms: i64, expires_at_ms: i64) -> Result<()>;
    /// Whether the login is live at `now_ms`: recorded, not ended, not expired (one lookup by
    /// key: every dashboard request asks).
    async fn login_is_live(&self, id_hash: [u8; 32], now_ms: i64) -> Result<bool>;
    /// Ends a login (a logout); false if there was no such login.
    async fn end_login(&self, id_hash: [u8; 32]) -> Result<bool>;
}

/// Everything waotp keeps: every capability above, and the backend's own health. What the
/// server and the CLI hold (`Arc<dyn Store>`).
///
/// Each method of each capability is one atomic unit: it either happens whole or not at all.
/// Writes return only once they are durable (committed and synced).
#[async_trait]
pub trait Store:
    AppStore
    + SessionStore
    + DeliveryStore
    + CallbackStore
    + DashboardStore
    + DashboardLogins
    + SenderHealthStore
    + ReverseStore
    + CostStore
    + Send
    + Sync
    + 'static
{
    /// Whether the database is reachable now, with every migration this build knows applied.
    async fn ready(&self) -> Result<()>;

    /// Whether several processes may share this store (PostgreSQL): then each must look
    /// for work that a process that died left behind, not only at startup.
    fn multi_node(&self) -> bool {
        false
    }
}

/// The store's traits, for callers that call their methods (`use waotp_store::prelude::*`).
pub mod prelude {
    pub use crate::{
        AppStore, CallbackStore, CostStore, DashboardLogins, DashboardStore, DeliveryStore, ReverseStore,
        SenderHealthStore, SessionStore, Store,
    };
}

#[cfg(test)]
mod tests {
    use waotp_core::Status;

    #[test]
    fn the_unfinished_condition_names_the_outcome_statuses_as_the_partial_index_does() {
        let outcomes = format!("status NOT IN ({}, {})", Status::Verified.code(), Status::Unverified.code());
        assert_eq!(unfinished_sql!(), outcomes);
        for migration in
            [include_str!("../migrations/sqlite/0001_init.sql"), include_str!("../migrations/postgres/0001_init.sql")]
        {
            assert!(migration.contains(concat!("WHERE ", unfinished_sql!(), ";")));
        }
    }
}
