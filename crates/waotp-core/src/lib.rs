#![forbid(unsafe_code)]
//! waotp's pure domain: no I/O, no clocks, no database.
//!
//! Everything here is parsed once at the edge (the HTTP layer) and then trusted by the store
//! and the workers: a [`Msisdn`] is always a valid phone number in international form, an [`OtpCode`]
//! always fits WhatsApp's rules, a [`CodeHash`] is the only form in which a code is kept.

pub mod calendar;
pub mod callback;
pub mod code;
pub mod delivery;
pub mod msisdn;
pub mod numbering;
pub mod policy;
pub mod pricing;
pub mod refusal;
pub mod reverse;
pub mod session;
pub mod status;
pub mod template;

pub use callback::{AttemptFailure, CallbackMode};
pub use code::{generate_api_key, hash_api_key, CodeHash, CodeKey, Guess, OtpCode, SealedCode};
pub use delivery::{Blocklisted, DeliveryCheck, DeliveryFacts, Stale};
pub use msisdn::Msisdn;
pub use policy::{PumpingRule, RuleMode};
pub use pricing::MessagePricing;
pub use refusal::{RefusalKind, RefusalReason};

pub use session::{SessionState, VerifyDecision, VerifyFacts, VerifyWrite, MAX_WRONG_ATTEMPTS};
pub use status::Status;
pub use template::{Category, RenderedMessage, Template, TemplateError};
