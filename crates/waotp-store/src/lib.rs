#![forbid(unsafe_code)]
//! waotp's storage: the [`Store`] trait that the server and the CLI use, its record types,
//! the SQLite backend (embedded, WAL, one writer thread with group commit) and the PostgreSQL
//! backend (several nodes on one database).

mod error;
pub mod postgres;
pub mod sqlite;
pub mod testing;
mod types;

use async_trait::async_trait;
use uuid::Uuid;
use waotp_core::{Msisdn, Status, Template};

pub use error::{retry_while_unavailable, StoreError};
pub use types::*;

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

/// The dashboard's logins, kept in the database so that a logout on one node ends the login
/// on every node that shares it. A login is named by the SHA-256 of its random id (the signed
/// cookie carries the id; the database never sees it). Expired logins are deleted by
/// [`Store::prune_guards`].
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

/// Everything waotp keeps. Each method is one atomic unit: it either happens whole or not at
/// all. Writes return only once they are durable (committed and synced).
#[async_trait]
pub trait Store: DashboardLogins + Send + Sync + 'static {
    /// Whether the database is reachable now, with every migration this build knows applied.
    async fn ready(&self) -> Result<()>;

    /// Whether several processes may share this store (PostgreSQL): then each must look
    /// for work that a process that died left behind, not only at startup.
    fn multi_node(&self) -> bool {
        false
    }

    // ---- apps and templates -------------------------------------------------------------
    async fn create_app(&self, app: AppRecord) -> Result<()>;
    async fn get_app(&self, app_id: Uuid) -> Result<Option<AppRecord>>;
    async fn list_apps(&self) -> Result<Vec<AppRecord>>;
    /// Replaces an app's settings; false if there is no such app.
    async fn update_app_settings(&self, app_id: Uuid, settings: AppSettings) -> Result<bool>;
    /// Replaces an app's API key hash; false if there is no such app.
    async fn set_api_key_hash(&self, app_id: Uuid, hash: [u8; 32]) -> Result<bool>;
    /// Inserts or replaces the template (app, name, language); false if there is no such app.
    async fn put_template(&self, app_id: Uuid, template: Template) -> Result<bool>;
    async fn list_templates(&self, app_id: Uuid) -> Result<Vec<Template>>;
    async fn delete_template(&self, app_id: Uuid, name: &str, language: &str) -> Result<bool>;

    // ---- the hot path -------------------------------------------------------------------
    /// Checks the guards and, if they pass, stores a new session (superseding the pending one
    /// of the same (app, msisdn, challenge)), counts it and uses quota — all atomically.
    async fn create_session(&self, session: NewSession, guards: SendGuards) -> Result<SendOutcome>;
    /// Checks the attempt's guess against the newest session of (app, msisdn, challenge) and
    /// applies the outcome (verified, wrong try counted, lock) atomically, within the verify
    /// limit. The decision is [`waotp_core::VerifyDecision::decide`]'s; the guess compares
    /// itself ([`waotp_core::Guess::matches`]).
    async fn verify(&self, attempt: VerifyAttempt) -> Result<VerifyOutcome>;
    /// Sets an app's quota (`None`: unlimited); false if there is no such app.
    async fn set_quota(&self, app_id: Uuid, quota: Option<i64>) -> Result<bool>;
    /// Adds to an app's quota (an unlimited app becomes limited at `amount`); the new
    /// balance, or `None` if there is no such app.
    async fn add_quota(&self, app_id: Uuid, amount: i64) -> Result<Option<i64>>;
    /// Blocks a number or prefix for one app or all (`None`); false if it was already.
    async fn block(&self, entry: BlockEntry) -> Result<bool>;
    /// Unblocks; false if it was not blocked.
    async fn unblock(&self, app_id: Option<Uuid>, entry: &str, is_prefix: bool) -> Result<bool>;
    async fn blocklist(&self) -> Result<Vec<BlockEntry>>;
    /// Whether a session's message should still go out right before a channel sends it: not
    /// if it was superseded, verified, locked or expired meanwhile, nor to a blocked number.
    async fn delivery_check(
        &self,
        app_id: Uuid,
        session_id: Uuid,
        msisdn: &Msisdn,
        now_ms: i64,
    ) -> Result<DeliveryCheck>;
    /// Forgets expired counters, idempotency keys and dashboard logins, and early provider
    /// events older than [`EARLY_EVENT_TTL_MS`].
    async fn prune_guards(&self, now_ms: i64) -> Result<()>;
    /// Deletes up to `limit` sessions (with their callbacks and attempts) and up to `limit`
    /// inbox messages created before `before_ms`; returns how many rows went. Called in small
    /// batches so traffic never waits long behind it.
    async fn prune_older_than(&self, before_ms: i64, limit: usize) -> Result<usize>;

    // ---- delivery -----------------------------------------------------------------------
    /// Sessions whose message has not been handed to a channel yet, oldest first.
    async fn undelivered(&self, after_id: i64, limit: usize) -> Result<Vec<PendingDelivery>>;
    /// Records what the channel did with a session's message and forgets the sealed code. A
    /// `Sent` outcome also applies the provider's events kept for its message id (see
    /// [`ProviderReport::Kept`]), in arrival order, and forgets them — in the same transaction.
    async fn record_delivery(&self, session_id: Uuid, outcome: DeliveryOutcome, now_ms: i64) -> Result<()>;
    /// The local inbox channel: stores the message, marks the session sent and delivered,
    /// forgets the sealed code — in one transaction, after the same last look as
    /// [`Store::delivery_check`] (a blocked number reports 9, a stale code is not delivered).
    async fn deliver_to_inbox(&self, message: InboxMessage) -> Result<()>;
    /// An app's inbox messages for one msisdn, newest first.
    async fn inbox(&self, app_id: Uuid, msisdn: &Msisdn, limit: usize) -> Result<Vec<InboxMessage>>;
    /// Marks sessions read (status 3) when their app has read them from the inbox.
    async fn mark_read(&self, app_id: Uuid, session_ids: Vec<Uuid>, now_ms: i64) -> Result<()>;

    /// Applies a provider's status report to the session that sent message `provider_id`:
    /// each of `steps` that moves it forward, and the provider's error if any. If no session
    /// has that message id yet, the report is kept for [`Store::record_delivery`] to apply.
    /// Either way, once this returns nothing of the report can be lost to a concurrent
    /// recording of the id, on any node.
    async fn report_provider_status(
        &self,
        provider_id: &str,
        steps: Vec<Status>,
        error: Option<(i64, String)>,
        now_ms: i64,
    ) -> Result<ProviderReport>;
    /// Records that the user said they did not request the code of message `provider_id`
    /// (kept, as a status report is, if no session has that message id yet).
    async fn flag_not_requested(&self, provider_id: &str, now_ms: i64) -> Result<ProviderReport>;
    /// Sets (or with `None` removes) an app's own WhatsApp sender; false if no such app.
    async fn set_sender(&self, app_id: Uuid, sender: Option<WhatsAppSender>) -> Result<bool>;

    /// Reports 5 Unverified for sessions whose time limit has passed without a final
    /// status (also superseded and locked ones); returns how many moved.
    async fn expire_due(&self, now_ms: i64, limit: usize) -> Result<usize>;

    // ---- callbacks ----------------------------------------------------------------------
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
    /// Stored sessions by lifecycle status, for metrics.
    async fn sessions_by_status(&self) -> Result<Vec<(Status, u64)>>;
    /// Pending callbacks, for operators and metrics.
    async fn pending_callbacks(&self) -> Result<u64>;
    /// Replaces an app's callback signing secret; false if there is no such app.
    async fn set_callback_secret(&self, app_id: Uuid, secret: String) -> Result<bool>;

    // ---- inspection ---------------------------------------------------------------------
    async fn get_session(&self, app_id: Uuid, session_id: Uuid) -> Result<Option<SessionRecord>>;

    // ---- the dashboard's reads ----
    /// Sessions matching every field given, newest first, at most `limit`.
    async fn search_sessions(&self, query: SessionQuery) -> Result<Vec<SessionRecord>>;
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
