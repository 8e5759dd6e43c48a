//! The records the store takes and gives back: parsed domain types, never raw request strings.

mod callbacks;
mod guards;

pub use callbacks::*;
pub use guards::*;

use uuid::Uuid;
pub use waotp_core::delivery::{Blocklisted, DeliveryCheck, Stale};
use waotp_core::{CallbackMode, CodeHash, Guess, Msisdn, RefusalReason, RuleMode, SealedCode, SessionState, Status};

/// An app's per-app defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSettings {
    /// Length of generated codes when a send has no `otp_length` (4–10).
    pub code_length: u32,
    /// Validity in seconds when a send has no `time_limit` (1–86400).
    pub time_limit: u32,
    /// Template used when a send has no `template_name`.
    pub template_name: String,
    /// Language used when a send has no `lang_code`.
    pub lang_code: String,
    /// Whether the send response carries the code (Verihubs does).
    pub return_code: bool,
    /// GET (Verihubs) or POST with a JSON body.
    pub callback_mode: CallbackMode,
    /// Whether callbacks carry Standard Webhooks signature headers.
    pub callback_signing: bool,
    /// Production sends per second for the whole app; `None`: no limit.
    pub rps_limit: Option<u32>,
    /// Sends to one msisdn per `msisdn_send_window` seconds.
    pub msisdn_send_limit: u32,
    pub msisdn_send_window: u32,
    /// Verifies of one msisdn per `msisdn_verify_window` seconds (keep above the 5 wrong
    /// tries a code allows, so resends cannot multiply guesses).
    pub msisdn_verify_limit: u32,
    pub msisdn_verify_window: u32,
    /// Sends per minute from one client IP; `None`: no limit.
    pub ip_send_limit: Option<u32>,
    /// Calling codes (e.g. `62`) a msisdn must start with; empty: every country.
    pub allowed_countries: Vec<String>,
    /// Bursts of sends into one block of 100 consecutive numbers.
    pub sequential_mode: RuleMode,
    /// Number ranges whose sends do not turn into verifies.
    pub conversion_mode: RuleMode,
    /// Templates tried in order, in the send's language, when the one a send would use is
    /// known to be unusable (paused, disabled, not approved).
    pub backup_templates: Vec<String>,
    /// The prefilled text of a reverse verification, per language: (language, text) pairs,
    /// `{code}` standing for the code once in each; a language without one gets waotp's
    /// default text in that language.
    pub reverse_texts: Vec<(String, String)>,
    /// A text message sent to the user after their message verified a reverse session
    /// (`None`: only the free ✅ reaction). A service message: Meta bills it beyond the
    /// number's monthly free allowance (since 2026-10-01); its pricing is recorded with the
    /// session ([`crate::ReverseStore::record_reverse_reply`]).
    pub reverse_reply: Option<String>,
    /// Billable messages per calendar month (UTC) before production sends (and, with a
    /// `reverse_reply`, reverse starts) are refused (`billable_ceiling_reached`); `None`: no
    /// ceiling. Counted from the pricing Meta's status
    /// webhooks report, so the count lags the sends (see `crate::CostStore`).
    pub billable_ceiling: Option<u64>,
}

impl AppSettings {
    /// The app's prefilled text for `language`: the one of that exact language, else the one
    /// of its base language (`pt` for `pt_BR`).
    pub fn reverse_text(&self, language: &str) -> Option<&str> {
        let base = language.split(['_', '-']).next().unwrap_or(language);
        let of = |lang: &str| self.reverse_texts.iter().find(|(l, _)| l == lang).map(|(_, t)| t.as_str());
        of(language).or_else(|| of(base))
    }
}

/// The prefilled texts as stored: one `language=text` line each. (A format of our own rather
/// than JSON: the store has no JSON dependency, and a text holds no control character, so a
/// newline cannot occur in one; the language holds no `=`.)
pub fn encode_reverse_texts(texts: &[(String, String)]) -> String {
    texts.iter().map(|(lang, text)| format!("{lang}={text}")).collect::<Vec<_>>().join("\n")
}

/// The prefilled texts from their stored form ([`encode_reverse_texts`]).
pub fn decode_reverse_texts(stored: &str) -> Vec<(String, String)> {
    stored
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(lang, text)| (lang.to_owned(), text.to_owned()))
        .collect()
}

impl Default for AppSettings {
    fn default() -> Self {
        AppSettings {
            code_length: 6,
            time_limit: 300,
            template_name: "verification_code".into(),
            lang_code: "en".into(),
            return_code: true,
            callback_mode: CallbackMode::Get,
            callback_signing: true,
            rps_limit: None,
            msisdn_send_limit: 5,
            msisdn_send_window: 600,
            msisdn_verify_limit: 10,
            msisdn_verify_window: 600,
            ip_send_limit: None,
            allowed_countries: Vec::new(),
            sequential_mode: RuleMode::Monitor,
            conversion_mode: RuleMode::Monitor,
            backup_templates: Vec::new(),
            reverse_texts: Vec::new(),
            reverse_reply: None,
            billable_ceiling: None,
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct AppRecord {
    pub app_id: Uuid,
    pub name: String,
    /// SHA-256 of the API key; the key itself is never stored.
    pub api_key_hash: [u8; 32],
    /// `whsec_…`: signs this app's callbacks.
    pub callback_secret: String,
    pub settings: AppSettings,
    /// Production sends left; `None`: unlimited.
    pub quota: Option<i64>,
    /// The app's own WhatsApp sender, overriding the server's.
    pub sender: Option<WhatsAppSender>,
    pub created_at_ms: i64,
}

impl std::fmt::Debug for AppRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppRecord")
            .field("app_id", &self.app_id)
            .field("name", &self.name)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// A session as the send route accepted it.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub session_id: Uuid,
    pub app_id: Uuid,
    pub msisdn: Msisdn,
    pub challenge: String,
    pub code_hash: CodeHash,
    /// The code sealed for the channel; `None` when no message is to be delivered (sandbox).
    pub sealed_code: Option<SealedCode>,
    /// A sandbox session: kept apart from production ones (its own verify key space).
    pub sandbox: bool,
    /// Statuses reported right away, in order, in the same transaction (sandbox scenarios).
    pub scripted: Vec<Status>,
    pub template_name: String,
    pub lang_code: String,
    pub content: Vec<String>,
    pub callback_url: Option<String>,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    /// The message's text when it goes to the local inbox: stored with the session in the
    /// send's own write, which records it sent and delivered at once (statuses 1 and 2, with
    /// their callbacks after status 0's) and keeps no sealed code, as nothing is left to
    /// deliver. Only for a send whose guards looked at the blocklist (that look is the last
    /// one before delivery). `None`: the dispatcher delivers it later.
    pub inbox_text: Option<String>,
    /// A reverse verification ([`crate::ReverseStore`]): the keyed hash its code is found by
    /// ([`waotp_core::CodeKey::reverse_lookup`]). Nothing is delivered to the user (the sealed
    /// code is kept with the key, for the session's link, not in the delivery queue), and the
    /// verify route never verifies it; a reverse session needs a `sealed_code`. A key another stored session
    /// holds is refused with [`crate::StoreError::Conflict`] before anything is counted.
    pub reverse_key: Option<[u8; 32]>,
    /// A reverse verification's own prefilled text, as the app had set it when the session
    /// started (`{code}` in it; `None`: waotp's default for its language): kept with the key,
    /// so that its link and QR code show the text the key was made from, whatever the app
    /// changes meanwhile.
    pub reverse_text: Option<String>,
}

impl NewSession {
    /// The session as it is stored: its scripted statuses, then, when its message goes to the
    /// local inbox with it, sent and delivered, walked from Requested; `taken` starts with
    /// Requested itself, so it lists every status the new session reports (one callback each).
    pub fn birth(&self) -> Walk {
        let inbox = if self.inbox_text.is_some() { &[Status::Sent, Status::Delivered][..] } else { &[] };
        let mut walk = Timeline::walk(Status::Requested, self.scripted.iter().chain(inbox).copied());
        walk.taken.insert(0, Status::Requested);
        walk
    }

    /// The sealed code the session's row keeps: none when its message was stored in the inbox
    /// with it, or for a reverse verification (nothing is left to deliver).
    pub fn stored_sealed_code(&self) -> Option<&SealedCode> {
        self.sealed_code.as_ref().filter(|_| self.inbox_text.is_none() && self.reverse_key.is_none())
    }
}

/// A verify request, parsed.
#[derive(Debug, Clone)]
pub struct VerifyAttempt {
    pub app_id: Uuid,
    /// Checks sandbox sessions instead of production ones.
    pub sandbox: bool,

    pub msisdn: Msisdn,
    pub challenge: String,
    /// The code given, with the key that compares it to a session's hash.
    pub guess: Guess,
    pub now_ms: i64,
    /// The verify rate limit for this msisdn (production only).
    pub limit: Option<Limit>,
    /// Counters bumped when the code verifies (conversion tracking).
    pub on_verified: Vec<(String, i64)>,
}

/// A session whose message still waits for its channel (found again after a restart).
#[derive(Debug, Clone)]
pub struct PendingDelivery {
    pub row_id: i64,
    pub session_id: Uuid,
    pub app_id: Uuid,
    pub msisdn: Msisdn,
    pub sealed_code: SealedCode,
    pub template_name: String,
    pub lang_code: String,
    pub content: Vec<String>,
    pub expires_at_ms: i64,
}

/// What a channel did with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The provider accepted it (status 1 Sent), with its message id.
    Sent { provider_id: String },
    /// The channel gave up: `status` is one of 6–10, with the provider's error if any.
    Failed { status: Status, error_code: Option<i64>, error_text: String },
    /// Not sent because the code can no longer be used; the status does not change (the
    /// reason is kept as the session's error text).
    Skipped(waotp_core::Stale),
}

/// When a number blocked after its send was accepted is found: before its first delivery.
pub const BLOCKED_AFTER_ACCEPTED: &str = "after the request was accepted";

impl DeliveryOutcome {
    /// What is recorded for a message the [`DeliveryCheck`] stopped (`None`: it goes out): 9
    /// Blocked for a number blocked meanwhile (`when`: when that was found, e.g.
    /// [`BLOCKED_AFTER_ACCEPTED`]), or a skip for a code that can no longer be used.
    pub fn stopped(check: DeliveryCheck, when: &str) -> Option<DeliveryOutcome> {
        match check {
            DeliveryCheck::Send => None,
            DeliveryCheck::Blocked(blocked) => Some(DeliveryOutcome::Failed {
                status: Status::Blocked,
                error_code: None,
                error_text: format!("{}: blocked {when}", blocked.code()),
            }),
            DeliveryCheck::Stale(stale) => Some(DeliveryOutcome::Skipped(stale)),
        }
    }
}

/// What became of a provider's report on one of its messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderReport {
    /// Applied to the session that sent the message.
    Applied,
    /// Applied, and the message's pricing recorded now (its first): what was recorded, for the
    /// caller's metrics.
    Priced(crate::RecordedCost),
    /// No session has recorded that message id yet (the provider's event beat the send's own
    /// answer): kept, and applied in arrival order when the send records the id, unless it is
    /// older than [`crate::EARLY_EVENT_TTL_MS`] by then. `evicted`: how many of the oldest
    /// kept events were dropped to stay within [`crate::EARLY_EVENTS_MAX`].
    Kept { evicted: u64 },
}

/// A provider's report on a message, as applied to its session or kept until its message id
/// is recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProviderEvent {
    /// Each of `steps` that moves the session forward, the provider's error if any, and what
    /// the message costs if the report says (see [`crate::DeliveryStore::report_provider_status`]).
    Status { steps: Vec<Status>, error: Option<(i64, String)>, pricing: Option<waotp_core::MessagePricing> },
    /// The user said they did not request the code.
    NotRequested,
}

impl ProviderReport {
    /// Applied to its session, with the pricing the report recorded, if it recorded one.
    pub(crate) fn applied(cost: Option<crate::RecordedCost>) -> ProviderReport {
        cost.map_or(ProviderReport::Applied, ProviderReport::Priced)
    }
}

impl ProviderEvent {
    /// A status's pricing, if it carries one.
    pub(crate) fn pricing(&self) -> Option<&waotp_core::MessagePricing> {
        match self {
            ProviderEvent::Status { pricing, .. } => pricing.as_ref(),
            ProviderEvent::NotRequested => None,
        }
    }

    /// The columns a kept event is stored in, on both backends: its steps, the provider's error,
    /// and whether it is the "not requested" flag.
    pub(crate) fn columns(&self) -> (&[Status], Option<&(i64, String)>, bool) {
        match self {
            ProviderEvent::Status { steps, error, .. } => (steps, error.as_ref(), false),
            ProviderEvent::NotRequested => (&[], None, true),
        }
    }

    /// A kept status's pricing columns (billable, category, pricing model, pricing type), on
    /// both backends, in the same row as its steps; `None` without a pricing.
    pub(crate) fn pricing_columns(&self) -> (Option<bool>, Option<&str>, Option<&str>, Option<&str>) {
        match self {
            ProviderEvent::Status { pricing: Some(p), .. } => {
                (Some(p.billable), Some(&p.category), Some(&p.pricing_model), p.pricing_type.as_deref())
            }
            _ => (None, None, None, None),
        }
    }

    /// An event read back from its columns (see [`ProviderEvent::columns`] and
    /// [`ProviderEvent::pricing_columns`]). A row kept by an earlier version for a pricing
    /// alone (no steps) reads as a status without steps, with that pricing.
    pub(crate) fn from_columns(
        steps: Vec<Status>,
        error_code: Option<i64>,
        error_text: Option<String>,
        not_requested: bool,
        pricing: (Option<bool>, Option<String>, Option<String>, Option<String>),
    ) -> Self {
        if not_requested {
            return ProviderEvent::NotRequested;
        }
        let pricing = match pricing {
            (billable, Some(category), model, pricing_type) => Some(waotp_core::MessagePricing {
                billable: billable.unwrap_or(false),
                category,
                pricing_model: model.unwrap_or_default(),
                pricing_type,
            }),
            _ => None,
        };
        ProviderEvent::Status { steps, error: error_code.map(|code| (code, error_text.unwrap_or_default())), pricing }
    }
}

/// A message in the local inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxMessage {
    pub app_id: Uuid,
    pub session_id: Uuid,
    pub msisdn: Msisdn,
    pub text: String,
    pub created_at_ms: i64,
}

/// A stored session, for inspection (never the code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub session_id: Uuid,
    pub app_id: Uuid,
    pub msisdn: Msisdn,
    pub challenge: String,
    pub state: SessionState,
    pub status: Status,
    pub wrong_attempts: u32,
    pub try_count: u32,
    pub template_name: String,
    pub lang_code: String,
    pub callback_url: Option<String>,
    pub provider_id: Option<String>,
    pub error_code: Option<i64>,
    pub error_text: Option<String>,
    pub delivered_to_channel: bool,
    /// The user pressed "I didn't request a code" under this message (a fraud signal).
    pub not_requested: bool,
    /// A sandbox session (never delivered, not in the funnel).
    pub sandbox: bool,

    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    /// When the session first reached each stage of its timeline; `None`: it has not.
    pub timeline: Timeline,
}

/// When a session reached each stage after it was requested (unix ms); recorded with the
/// status change itself, on both backends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timeline {
    pub sent_at_ms: Option<i64>,
    pub delivered_at_ms: Option<i64>,
    pub read_at_ms: Option<i64>,
    /// A delivery failure (6–10).
    pub failed_at_ms: Option<i64>,
    /// The outcome: 4 Verified or 5 Unverified.
    pub closed_at_ms: Option<i64>,
}

impl Timeline {
    /// The column a step's time goes in: 0 sent, 1 delivered, 2 read, 3 failed, 4 closed;
    /// `None` for Requested (its time is the session's creation).
    pub fn slot(status: Status) -> Option<usize> {
        match status {
            Status::Requested => None,
            Status::Sent => Some(0),
            Status::Delivered => Some(1),
            Status::Read => Some(2),
            Status::Verified | Status::Unverified => Some(4),
            Status::Failed | Status::RequestError | Status::Rejected | Status::Blocked | Status::TierLimitExceeded => {
                Some(3)
            }
        }
    }

    /// Every status's [`Timeline::slot`] (-1: none), indexed by its code, for PostgreSQL's
    /// `waotp_advance`.
    pub fn slots() -> [i32; 11] {
        Status::ALL.map(|s| Timeline::slot(s).map_or(-1, |slot| slot as i32))
    }

    /// Where a session at `from` ends after `steps`, in order: a step that moves it forward
    /// ([`Status::can_move_to`]) is taken (and queues its callback); each step's time goes in
    /// its slot, delivery progress (slots 0–2: sent, delivered, read) even when the status has
    /// already moved past it, a failure or an outcome only when taken.
    pub fn walk(from: Status, steps: impl IntoIterator<Item = Status>) -> Walk {
        let mut walk = Walk { status: from, taken: Vec::new(), stamps: [false; 5] };
        for next in steps {
            let moves = walk.status.can_move_to(next);
            if let Some(slot) = Timeline::slot(next).filter(|&slot| slot <= 2 || moves) {
                walk.stamps[slot] = true;
            }
            if moves {
                walk.status = next;
                walk.taken.push(next);
            }
        }
        walk
    }
}

/// What [`Timeline::walk`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Walk {
    /// The status after the steps.
    pub status: Status,
    /// The steps taken, in order: one callback each.
    pub taken: Vec<Status>,
    /// The timeline's slots ([`Timeline::slot`]) the steps stamp.
    pub stamps: [bool; 5],
}

/// A search of stored sessions (for the dashboard): every given field must match; newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionQuery {
    pub app_id: Option<Uuid>,
    pub session_id: Option<Uuid>,
    /// Digits, exactly as stored.
    pub msisdn: Option<String>,
    pub challenge: Option<String>,
    pub limit: usize,
}

/// One app's production sessions of one UTC day, by how far they got. Each stage counts the
/// sessions that reached it or a later one (a `read` receipt implies delivery; a verified code
/// was received and read, whatever receipts came).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunnelRow {
    pub app_id: Uuid,
    /// Days since 1970-01-01 (UTC).
    pub day: i64,
    pub requested: u64,
    pub sent: u64,
    pub delivered: u64,
    pub read: u64,
    pub verified: u64,
}

/// Refused requests of one app on one UTC day for one reason. Stored by the reason's code;
/// a code this build does not know (written by a newer node) is not read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusalCount {
    pub app_id: Uuid,
    pub day: i64,
    pub reason: RefusalReason,
    pub count: u64,
}

/// A callback that was given up on, with its session, for the dashboard's replay list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedCallback {
    pub app_id: Uuid,
    pub session_id: Uuid,
    pub msisdn: Msisdn,
    pub callback: CallbackRecord,
}

/// Milliseconds in a day: funnel and refusal days are `unix_ms / DAY_MS`.
pub const DAY_MS: i64 = 86_400_000;

/// A WhatsApp Business phone number and the token that sends from it.
#[derive(Clone, PartialEq, Eq)]
pub struct WhatsAppSender {
    pub phone_number_id: String,
    pub access_token: String,
}

impl std::fmt::Debug for WhatsAppSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhatsAppSender").field("phone_number_id", &self.phone_number_id).finish_non_exhaustive()
    }
}
