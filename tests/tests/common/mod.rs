//! Store fixtures shared by the tests that work below the HTTP API: a fresh store on each
//! backend, and polling until something holds.

#![allow(dead_code)]

use std::time::Duration;

use shenfen_projections::db::Db;

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

/// Asks `probe` every 50 ms until it answers something, for at most `within`.
pub async fn eventually<T, F, Fut>(within: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(found) = probe().await {
            return Some(found);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
