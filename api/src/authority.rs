//! Adapters of the identity-authority port (`SHENFEN_IDENTITY_AUTHORITY`).
//!
//! - `reference:PATH` — a CSV registry, header
//!   `document_type,document_number,name,validity_start,validity_end`. A check passes when type,
//!   number and name match a row, and the validity dates too when the row has them. A row whose
//!   name is `!unavailable` makes the authority answer "unavailable" for that document.
//!   `reference:` alone uses the demo registry shipped in `api/data/identity-registry.csv`.
//! - `http:URL` — POSTs `{document_type, document_number, name, validity_start, validity_end}`
//!   and expects `{"result": "passed" | "failed" | "unavailable", "reason": "…"}`; any other
//!   answer, a non-2xx status or no answer within 5 seconds is "unavailable".

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use shenfen_domain::ports::{IdentityAuthority, IdentityQuery};
use shenfen_domain::verification::AuthorityAnswer;

const DEMO_REGISTRY: &str = include_str!("../data/identity-registry.csv");

/// Builds the adapter named by `spec`.
pub fn from_spec(spec: &str) -> anyhow::Result<Box<dyn IdentityAuthority>> {
    if let Some(path) = spec.strip_prefix("reference:") {
        let csv = if path.is_empty() {
            DEMO_REGISTRY.to_string()
        } else {
            std::fs::read_to_string(path).with_context(|| format!("reading the identity registry {path}"))?
        };
        return Ok(Box::new(ReferenceRegistry::parse(&csv)?));
    }
    if let Some(url) = spec.strip_prefix("http:") {
        return Ok(Box::new(HttpAuthority::new(url, Duration::from_secs(5))?));
    }
    anyhow::bail!("SHENFEN_IDENTITY_AUTHORITY must be `reference:PATH` or `http:URL`")
}

#[derive(Debug, Clone, Deserialize)]
struct Row {
    document_type: String,
    document_number: String,
    name: String,
    validity_start: Option<String>,
    validity_end: Option<String>,
}

/// The CSV registry.
pub struct ReferenceRegistry {
    rows: HashMap<(String, String), Row>,
}

impl ReferenceRegistry {
    /// Parses the CSV text.
    pub fn parse(csv: &str) -> anyhow::Result<Self> {
        let mut reader = csv::Reader::from_reader(csv.as_bytes());
        let mut rows = HashMap::new();
        for (i, row) in reader.deserialize::<Row>().enumerate() {
            let row = row.with_context(|| format!("identity registry line {}", i + 2))?;
            let key = (row.document_type.trim().to_string(), row.document_number.trim().to_uppercase());
            rows.insert(key, row);
        }
        Ok(ReferenceRegistry { rows })
    }
}

fn filled(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

#[async_trait]
impl IdentityAuthority for ReferenceRegistry {
    async fn check(&self, q: &IdentityQuery) -> AuthorityAnswer {
        let key = (q.document_type.as_str().to_string(), q.document_number.as_str().to_string());
        let Some(row) = self.rows.get(&key) else {
            return AuthorityAnswer::Failed { reason: "identity_not_found".into() };
        };
        if row.name.trim() == "!unavailable" {
            return AuthorityAnswer::Unavailable;
        }
        if row.name.trim() != q.name.as_str() {
            return AuthorityAnswer::Failed { reason: "name_mismatch".into() };
        }
        if let Some(v) = &q.validity {
            let start = v.start().to_string();
            let end = v.end().map(|e| e.to_string());
            let start_ok = filled(row.validity_start.as_deref()).is_none_or(|s| s == start);
            let end_ok = filled(row.validity_end.as_deref()).is_none_or(|e| Some(e) == end.as_deref());
            if !start_ok || !end_ok {
                return AuthorityAnswer::Failed { reason: "validity_mismatch".into() };
            }
        }
        AuthorityAnswer::Passed
    }
}

/// The request sent to an HTTP authority.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct HttpQuery {
    pub document_type: String,
    pub document_number: String,
    pub name: String,
    pub validity_start: Option<String>,
    pub validity_end: Option<String>,
}

#[derive(Debug, Deserialize)]
struct HttpAnswer {
    result: String,
    reason: Option<String>,
}

/// An identity authority reached over HTTP.
pub struct HttpAuthority {
    url: String,
    client: reqwest::Client,
}

impl HttpAuthority {
    /// An adapter posting to `url`, giving up after `timeout`.
    pub fn new(url: &str, timeout: Duration) -> anyhow::Result<Self> {
        anyhow::ensure!(url.starts_with("http://") || url.starts_with("https://"), "authority URL must be http(s)");
        let client = reqwest::Client::builder().timeout(timeout).build().context("HTTP client")?;
        Ok(HttpAuthority { url: url.to_string(), client })
    }
}

#[async_trait]
impl IdentityAuthority for HttpAuthority {
    async fn check(&self, q: &IdentityQuery) -> AuthorityAnswer {
        let body = HttpQuery {
            document_type: q.document_type.as_str().into(),
            document_number: q.document_number.as_str().into(),
            name: q.name.as_str().into(),
            validity_start: q.validity.map(|v| v.start().to_string()),
            validity_end: q.validity.and_then(|v| v.end()).map(|e| e.to_string()),
        };
        let response = match self.client.post(&self.url).json(&body).send().await {
            Ok(r) if r.status().is_success() => r,
            Ok(r) => {
                tracing::warn!(status = %r.status(), "identity authority answered with an error");
                return AuthorityAnswer::Unavailable;
            }
            Err(err) => {
                tracing::warn!(timeout = err.is_timeout(), "identity authority unreachable");
                return AuthorityAnswer::Unavailable;
            }
        };
        match response.json::<HttpAnswer>().await {
            Ok(a) if a.result == "passed" => AuthorityAnswer::Passed,
            Ok(a) if a.result == "failed" => {
                AuthorityAnswer::Failed { reason: a.reason.unwrap_or_else(|| "identity_mismatch".into()) }
            }
            _ => AuthorityAnswer::Unavailable,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::routing::post;
    use axum::{Json, Router};
    use chrono::NaiveDate;
    use shenfen_domain::shared::document::{DocumentNumber, DocumentType};
    use shenfen_domain::shared::name::PersonName;

    use super::*;

    fn query(number: &str, name: &str) -> IdentityQuery {
        let today = NaiveDate::from_ymd_opt(2026, 5, 1).unwrap_or_default();
        IdentityQuery {
            document_type: DocumentType::ResidentIdCard,
            document_number: DocumentNumber::parse(DocumentType::ResidentIdCard, number, today).expect("number"),
            name: PersonName::parse(name).expect("name"),
            validity: None,
        }
    }

    #[tokio::test]
    async fn the_reference_registry_passes_fails_and_is_unavailable_by_row() {
        let csv = "document_type,document_number,name,validity_start,validity_end\n\
                   resident_id_card,11010519491231002X,张三,,\n\
                   resident_id_card,44030519900101123X,!unavailable,,\n";
        let registry = ReferenceRegistry::parse(csv).expect("csv");
        assert_eq!(registry.check(&query("11010519491231002x", "张三")).await, AuthorityAnswer::Passed);
        assert_eq!(
            registry.check(&query("11010519491231002X", "李四")).await,
            AuthorityAnswer::Failed { reason: "name_mismatch".into() }
        );
        assert_eq!(registry.check(&query("44030519900101123X", "李四")).await, AuthorityAnswer::Unavailable);
        assert_eq!(
            registry.check(&query("110105198001011238", "张三")).await,
            AuthorityAnswer::Failed { reason: "identity_not_found".into() }
        );
    }

    async fn serve(router: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, router).await });
        format!("http://{addr}/check")
    }

    #[tokio::test]
    async fn the_http_adapter_sends_the_documented_json_and_reads_the_answer() {
        let seen: Arc<Mutex<Vec<HttpQuery>>> = Arc::default();
        let log = seen.clone();
        let router = Router::new().route(
            "/check",
            post(move |Json(q): Json<HttpQuery>| {
                let log = log.clone();
                async move {
                    let answer = if q.name == "张三" {
                        serde_json::json!({"result": "passed"})
                    } else {
                        serde_json::json!({"result": "failed", "reason": "name_mismatch"})
                    };
                    log.lock().expect("lock").push(q);
                    Json(answer)
                }
            }),
        );
        let url = serve(router).await;
        let authority = HttpAuthority::new(&url, Duration::from_secs(2)).expect("adapter");
        assert_eq!(authority.check(&query("11010519491231002X", "张三")).await, AuthorityAnswer::Passed);
        assert_eq!(
            authority.check(&query("11010519491231002X", "李四")).await,
            AuthorityAnswer::Failed { reason: "name_mismatch".into() }
        );
        let seen = seen.lock().expect("lock");
        assert_eq!(seen[0].document_number, "11010519491231002X");
        assert_eq!(seen[0].document_type, "resident_id_card");
    }

    #[tokio::test]
    async fn a_slow_http_authority_is_unavailable_after_the_timeout() {
        let router = Router::new().route(
            "/check",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Json(serde_json::json!({"result": "passed"}))
            }),
        );
        let url = serve(router).await;
        let authority = HttpAuthority::new(&url, Duration::from_millis(300)).expect("adapter");
        let started = std::time::Instant::now();
        assert_eq!(authority.check(&query("11010519491231002X", "张三")).await, AuthorityAnswer::Unavailable);
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn an_unreachable_or_failing_http_authority_is_unavailable() {
        let router = Router::new().route("/check", post(|| async { (axum::http::StatusCode::BAD_GATEWAY, "down") }));
        let url = serve(router).await;
        let authority = HttpAuthority::new(&url, Duration::from_secs(2)).expect("adapter");
        assert_eq!(authority.check(&query("11010519491231002X", "张三")).await, AuthorityAnswer::Unavailable);
        let closed = HttpAuthority::new("http://127.0.0.1:9/check", Duration::from_secs(2)).expect("adapter");
        assert_eq!(closed.check(&query("11010519491231002X", "张三")).await, AuthorityAnswer::Unavailable);
    }
}
