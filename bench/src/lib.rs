//! The pieces of Shenfen's benchmarks, shared by `shenfen-load` (`src/main.rs`) and
//! `shenfen-replay-bench` (`src/bin/replay-bench.rs`).

pub mod api;
pub mod argon;
pub mod cpu;
pub mod database;
pub mod http1;
pub mod identity;
pub mod phases;
pub mod replay_log;
pub mod report;
pub mod seed;
pub mod server;
pub mod stats;
