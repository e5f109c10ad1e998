//! The end-to-end tests, in one binary (it links once): each module is one area, run against
//! the real server binary and real databases, on SQLite and on PostgreSQL.

mod analytics_audit;
mod api;
mod captcha;
mod common;
mod crash;
mod event_store;
mod feed;
mod identity_process;
mod integrity;
mod privacy;
mod quickstart;
mod scale;
mod snapshots;
mod students;
mod support_cases;
mod takeover;
mod verification;
