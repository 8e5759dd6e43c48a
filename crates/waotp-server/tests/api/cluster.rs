//! A PostgreSQL cluster of one test's own (see `waotp_store::testing::cluster`).

pub use waotp_store::testing::cluster::{server_bin, Cluster};
