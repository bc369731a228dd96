//! Helpers shared by the storage test files.

#[allow(
    dead_code,
    reason = "each test target uses a different part of the launcher"
)]
pub mod etcd_server;
