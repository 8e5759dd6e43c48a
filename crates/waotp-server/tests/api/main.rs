//! HTTP integration tests: each test starts the real server on 127.0.0.1:0 with its own
//! database and talks to it over HTTP (`waotp_test_support::app`).

mod admin;
mod callback_secrets;
mod callbacks;
mod client_types;
mod connections;
mod costs;
mod dashboard;
mod dashboard_costs;
mod dashboard_security;
mod failover;
mod guards;
mod inbox;
mod metrics;
mod ops;
mod outage;
mod reverse;
mod reverse_user_ids;
mod sandbox;
mod send;
mod verify;
mod whatsapp;
mod whatsapp_health;
mod whatsapp_health_accounts;
