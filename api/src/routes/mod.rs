//! HTTP handlers, one module per resource: each parses its request, calls the domain (or a
//! use case in [`crate::app`]) and shapes the answer.

pub mod accounts;
pub mod analytics;
pub mod audit;
pub mod claims;
pub mod codes;
pub mod deletion;
pub mod export;
pub mod feeds;
pub mod me;
pub mod ops;
pub mod resets;
pub mod reviews;
pub mod sessions;
pub mod staff;
pub mod student_reviews;
pub mod students;
pub mod support;
pub mod support_cases;
pub mod verification;
