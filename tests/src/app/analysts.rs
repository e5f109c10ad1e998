//! Analysts, auditors and the database behind the server's back.

use std::time::Duration;

use rand::Rng;
use reqwest::Method;
use serde_json::Value;

use crate::*;

/// How long a test waits for an asynchronous projection (the analytics tables) to show a change.
pub const PROJECTION_TIMEOUT: Duration = Duration::from_secs(5);

/// A fresh `x-request-id` value, unique in this process.
pub fn request_id() -> String {
    format!("test-request-{}-{:08x}", next_unique(), rand::thread_rng().gen::<u32>())
}

/// Parses CSV text (RFC 4180: fields in double quotes may hold commas, line breaks and doubled
/// quotes; lines end in LF or CRLF) into rows of fields. A trailing line break ends the last
/// row; it does not start an empty one.
pub fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (_, c) => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

impl TestApp {
    /// `GET path` as `token` with `Accept: text/csv`.
    pub async fn get_csv_as(&self, token: &str, path: &str) -> ApiResponse {
        let request = self.request(Method::GET, path).bearer_auth(token).header("accept", "text/csv");
        self.send(format!("GET {path} (Accept: text/csv)"), request).await
    }

    /// `GET path` as `token` every 50 ms until `done` accepts the answer or
    /// [`PROJECTION_TIMEOUT`] passes, for read models that are updated asynchronously. Returns
    /// the last answer either way, so that the caller's assertions show what was there.
    pub async fn poll_as(&self, token: &str, path: &str, done: impl Fn(&ApiResponse) -> bool) -> ApiResponse {
        eventually(PROJECTION_TIMEOUT, || self.get_as(token, path), done).await
    }

    /// `METHOD path` with `x-request-id: request_id`, and a bearer token and a JSON body when
    /// given.
    pub async fn send_with_request_id(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        request_id: &str,
    ) -> ApiResponse {
        let mut what = format!("{method} {path} (x-request-id: {request_id})");
        let mut request = self.request(method, path).header("x-request-id", request_id);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            what.push_str(&format!(" {body}"));
            request = request.json(body);
        }
        self.send(what, request).await
    }

    /// `GET /v1/audit/aggregates/{aggregate_type}/{id}/events` as `token`.
    pub async fn audit_events(&self, token: &str, aggregate_type: &str, id: &str) -> ApiResponse {
        self.get_as(token, &format!("/v1/audit/aggregates/{aggregate_type}/{id}/events")).await
    }

    /// `GET /v1/audit/aggregates/{aggregate_type}/{id}/state`, with `as_of` (sent as RFC 3339
    /// in UTC with microseconds) when given.
    pub async fn audit_state(
        &self,
        token: &str,
        aggregate_type: &str,
        id: &str,
        as_of: Option<chrono::DateTime<chrono::Utc>>,
    ) -> ApiResponse {
        let mut path = format!("/v1/audit/aggregates/{aggregate_type}/{id}/state");
        if let Some(as_of) = as_of {
            path.push_str(&format!("?as_of={}", as_of.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)));
        }
        self.get_as(token, &path).await
    }

    /// Runs one SQL statement on the server's database behind the server's back (as an
    /// intruder with database access would), binding `args` as text to `$1`, `$2`, …; returns
    /// the number of rows it changed.
    pub async fn execute_sql(&self, sql: &str, args: &[&str]) -> u64 {
        use sqlx::Connection;
        match self.store {
            Store::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.direct_db_url).await.expect("connect to PostgreSQL");
                let mut query = sqlx::query(sql);
                for arg in args {
                    query = query.bind(*arg);
                }
                let done = query.execute(&mut conn).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
                let _ = conn.close().await;
                done.rows_affected()
            }
            Store::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&self.db_url).await.expect("open the SQLite file");
                let mut query = sqlx::query(sql);
                for arg in args {
                    query = query.bind(*arg);
                }
                let done = query.execute(&mut conn).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
                let _ = conn.close().await;
                done.rows_affected()
            }
        }
    }
}

/// Writes to the server's database held up behind its back (see [`TestApp::hold_writes`]) until
/// [`release`](Self::release)d.
pub enum WriteHold {
    Postgres(sqlx::PgConnection),
    Sqlite(sqlx::SqliteConnection),
}

impl WriteHold {
    /// Lets the held writes go.
    pub async fn release(self) {
        use sqlx::{Connection, Executor};
        match self {
            WriteHold::Postgres(mut conn) => {
                conn.execute("COMMIT").await.expect("COMMIT");
                let _ = conn.close().await;
            }
            WriteHold::Sqlite(mut conn) => {
                conn.execute("COMMIT").await.expect("COMMIT");
                let _ = conn.close().await;
            }
        }
    }
}

impl TestApp {
    /// Holds up every write to the events table while reads go on, as a DBA's lock or another
    /// writer would: PostgreSQL `LOCK TABLE events IN SHARE MODE`, SQLite `BEGIN IMMEDIATE` (the
    /// database's one write lock), each in an open transaction of its own.
    pub async fn hold_writes(&self) -> WriteHold {
        use sqlx::{Connection, Executor};
        match self.store {
            Store::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.direct_db_url).await.expect("connect to PostgreSQL");
                conn.execute("BEGIN").await.expect("BEGIN");
                conn.execute("LOCK TABLE events IN SHARE MODE").await.expect("LOCK TABLE");
                WriteHold::Postgres(conn)
            }
            Store::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&self.db_url).await.expect("open the SQLite file");
                conn.execute("BEGIN IMMEDIATE").await.expect("BEGIN IMMEDIATE");
                WriteHold::Sqlite(conn)
            }
        }
    }

    /// Runs one query on the server's database behind its back and returns the first column of
    /// the first row as a number (`0` when there is no row). `args` are bound as text.
    pub async fn query_i64(&self, sql: &str, args: &[&str]) -> i64 {
        self.query_texts(&format!("SELECT CAST(({sql}) AS TEXT)"), args)
            .await
            .first()
            .and_then(|v| v.as_deref())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// Runs one query on the server's database behind its back and returns the first column
    /// of every row, as text (cast it in the query). `args` are bound as text.
    pub async fn query_texts(&self, sql: &str, args: &[&str]) -> Vec<Option<String>> {
        use sqlx::Connection;
        match self.store {
            Store::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.direct_db_url).await.expect("connect to PostgreSQL");
                let mut query = sqlx::query_scalar::<_, Option<String>>(sql);
                for arg in args {
                    query = query.bind(*arg);
                }
                let rows = query.fetch_all(&mut conn).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
                let _ = conn.close().await;
                rows
            }
            Store::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&self.db_url).await.expect("open the SQLite file");
                let mut query = sqlx::query_scalar::<_, Option<String>>(sql);
                for arg in args {
                    query = query.bind(*arg);
                }
                let rows = query.fetch_all(&mut conn).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
                let _ = conn.close().await;
                rows
            }
        }
    }
}
