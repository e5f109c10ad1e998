//! The Shenfen HTTP API (axum) and the operator commands of the `shenfen` binary.
//!
//! Request and response types live here, never in the domain; `error.rs` is the one place
//! that knows HTTP status codes.

// `ApiError` carries both languages and the field list; it is built only on the error path,
// so its size costs nothing where it matters.
#![allow(clippy::result_large_err)]

pub mod app;
pub mod authority;
pub mod blobs;
pub mod captcha;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod error;
pub mod extract;
pub mod ids;
pub mod legacy;
pub mod notices;
pub mod notifier;
pub mod openapi;
pub mod read_side;
pub mod routes;
pub mod schools;
pub mod startup;
pub mod student_registry;
pub mod telemetry;
pub mod validate;
pub mod wechat;
