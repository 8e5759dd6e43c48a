#![forbid(unsafe_code)]
//! WhatsApp Cloud API, as waotp needs it: sending an authentication template
//! ([`client`]), what each Graph error code means for an OTP ([`errors`]), the signed status
//! webhooks ([`webhook`]), and a Graph API test double that behaves like Meta's ([`double`]).

pub mod client;
pub mod double;
pub mod errors;
pub mod management_events;
pub mod webhook;

pub use client::{error_chain, GraphClient, GraphError, SendFailure, TemplateMessage};
pub use errors::{classify, ErrorClass};
