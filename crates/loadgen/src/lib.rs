//! The load generator's parts, as a library so its integration tests can drive them against an
//! in-process calling-server; the `calling-loadgen` binary (`main.rs`) only parses flags,
//! runs the phases and writes the report.

pub mod conn;
pub mod cycle;
pub mod failover;
pub mod hold;
pub mod login_gate;
pub mod procfs;
pub mod relay;
pub mod stats;
pub mod target;
