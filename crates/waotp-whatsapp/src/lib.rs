#![forbid(unsafe_code)]
//! WhatsApp Cloud API, as waotp needs it: sending an authentication template
//! ([`client`]), what each Graph error code means for an OTP ([`errors`]), the signed status
//! webhooks ([`webhook`]), and a Graph API test double that behaves like Meta's ([`double`]).
//! The management side: Meta's setup read back ([`management`]), checked by the doctor
//! ([`doctor`]), and authentication templates created from the CLI ([`auth_template`]). In tests
//! (the `meta-contract` feature), Meta's OpenAPI document is the contract the double holds every
//! request and answer to (`contract`).

pub mod auth_template;
pub mod client;
#[cfg(feature = "meta-contract")]
pub mod contract;
pub mod doctor;
pub mod double;
pub mod errors;
pub mod management;
pub mod management_events;
pub mod webhook;

pub use client::{error_chain, GraphClient, GraphError, SendFailure, TemplateMessage};
pub use errors::{classify, ErrorClass};
