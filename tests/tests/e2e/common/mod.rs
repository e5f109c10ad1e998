//! Store fixtures shared by the tests that work below the HTTP API: a fresh store on each
//! backend, a fixed instant and a registration.

#![allow(dead_code)]

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use shenfen_domain::account::Registration;
use shenfen_domain::metadata::{Actor, EventMetadata};
use shenfen_domain::shared::contact::{Email, Mobile};
use shenfen_domain::shared::document::{check_char, DocumentNumber, DocumentType};
use shenfen_domain::shared::name::PersonName;
use shenfen_domain::shared::validity::Validity;
use shenfen_projections::db::Db;

/// The instant the store-level scenarios happen at: 2026-05-10 09:00 China time.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 10, 1, 0, 0).single().unwrap_or_default()
}

/// Metadata of a test command at [`now`].
pub fn meta() -> EventMetadata {
    EventMetadata { actor: Actor::System { id: "test".into() }, request_id: "r".into(), at: now() }
}

/// A registration of one fixed ID card under `holder`'s name, at [`now`].
pub fn registration(holder: &str) -> Registration {
    let today = NaiveDate::from_ymd_opt(2026, 5, 10).expect("date");
    let base = "11010519800101123";
    let number = DocumentNumber::parse(DocumentType::ResidentIdCard, &format!("{base}{}", check_char(base)), today)
        .expect("number");
    let start = NaiveDate::from_ymd_opt(2020, 1, 1).expect("date");
    Registration {
        document_type: DocumentType::ResidentIdCard,
        document_number: number,
        name: PersonName::parse(holder).expect("name"),
        validity: Validity::parse("20y", start, DocumentType::ResidentIdCard, None, today).expect("validity"),
        email: Email::parse("a@example.com").expect("email"),
        mobile: Mobile::parse("13800138000").expect("mobile"),
        password_hash: "H".into(),
        consent: None,
        now: now(),
    }
}

/// A throwaway PostgreSQL server (kept alive by the first value), its URL and the store on it.
pub async fn postgres() -> (pgtemp::PgTempDB, String, Db) {
    let (server, url) = shenfen_tests::start_postgres().await;
    let db = Db::open(&url, 8).await.expect("open postgres");
    (server, url, db)
}

/// A fresh SQLite store in a file of its own, named after `test`.
pub async fn sqlite(test: &str) -> Db {
    let dir = std::env::temp_dir().join(format!("shenfen-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("events.db");
    let _ = std::fs::remove_file(&path);
    Db::open(&format!("sqlite://{}", path.display()), 4).await.expect("open sqlite")
}
