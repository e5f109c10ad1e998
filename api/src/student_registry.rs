//! Adapters of the student-registry port (学籍库, `SHENFEN_STUDENT_REGISTRY`).
//!
//! - `reference:PATH` — a CSV file, header
//!   `student_number,name,id_number,birth_date,school_code,grade,class,head_teacher_mobile`
//!   (`id_number` may be empty). A row whose `name` is `!unavailable` makes the registry answer
//!   "unavailable" for that student number, `!unsynced` "school not synchronised".
//!   `reference:` alone uses the demo file shipped in `api/data/student-registry.csv`.
//! - `http:URL` — POSTs `{student_number}` and reads `{result: "found", record: {…the CSV
//!   columns…}}`, `{result: "not_found"}`, `{result: "school_not_synced"}` or
//!   `{result: "unavailable"}`; anything else, a non-2xx status or 5 s without an answer is
//!   "unavailable".

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use shenfen_domain::ports::StudentRegistry;
use shenfen_domain::student::{Grade, RegistryAnswer, RegistryRecord, StudentNumber};

const DEMO_REGISTRY: &str = include_str!("../data/student-registry.csv");

/// Builds the adapter named by `spec`.
pub fn from_spec(spec: &str) -> anyhow::Result<Box<dyn StudentRegistry>> {
    if let Some(path) = spec.strip_prefix("reference:") {
        let csv = if path.is_empty() {
            DEMO_REGISTRY.to_string()
        } else {
            std::fs::read_to_string(path).with_context(|| format!("reading the student registry {path}"))?
        };
        return Ok(Box::new(ReferenceStudentRegistry::parse(&csv)?));
    }
    if let Some(url) = spec.strip_prefix("http:") {
        return Ok(Box::new(HttpStudentRegistry::new(url, Duration::from_secs(5))?));
    }
    anyhow::bail!("SHENFEN_STUDENT_REGISTRY must be `reference:PATH` or `http:URL`")
}

/// A registry record as the CSV and the HTTP registry write it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub student_number: String,
    pub name: String,
    #[serde(default)]
    pub id_number: Option<String>,
    pub birth_date: String,
    pub school_code: String,
    /// Text in the CSV; a JSON registry may send a number.
    #[serde(deserialize_with = "text_or_number")]
    pub grade: String,
    pub class: String,
    pub head_teacher_mobile: String,
}

fn text_or_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        serde_json::Value::Null => Ok(String::new()),
        _ => Err(serde::de::Error::custom("a grade is text or a number")),
    }
}

impl Row {
    /// The record, or `None` when a column does not parse (the registry's answer is then
    /// unusable: "unavailable").
    fn record(&self) -> Option<RegistryRecord> {
        let grade = self.grade.trim().parse::<i64>().ok().and_then(|g| Grade::new(g).ok())?;
        let birth_date = NaiveDate::parse_from_str(self.birth_date.trim(), "%Y-%m-%d").ok()?;
        Some(RegistryRecord {
            name: self.name.trim().to_string(),
            id_number: self.id_number.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_uppercase),
            birth_date,
            school_code: self.school_code.trim().to_string(),
            grade,
            class: self.class.trim().to_string(),
            head_teacher_mobile: self.head_teacher_mobile.trim().to_string(),
        })
    }

    fn answer(&self) -> RegistryAnswer {
        match self.name.trim() {
            "!unavailable" => RegistryAnswer::Unavailable,
            "!unsynced" => RegistryAnswer::SchoolNotSynced,
            _ => self.record().map(RegistryAnswer::Found).unwrap_or(RegistryAnswer::Unavailable),
        }
    }
}

/// The CSV registry.
pub struct ReferenceStudentRegistry {
    rows: HashMap<String, Row>,
}

impl ReferenceStudentRegistry {
    /// Parses the CSV text; every row must have a valid student number.
    pub fn parse(csv: &str) -> anyhow::Result<Self> {
        let mut reader = csv::Reader::from_reader(csv.as_bytes());
        let mut rows = HashMap::new();
        for (i, row) in reader.deserialize::<Row>().enumerate() {
            let row = row.with_context(|| format!("student registry line {}", i + 2))?;
            let number = StudentNumber::parse(&row.student_number)
                .map_err(|e| anyhow::anyhow!("student registry line {}: {e}", i + 2))?;
            let marker = matches!(row.name.trim(), "!unavailable" | "!unsynced");
            anyhow::ensure!(
                marker || row.record().is_some(),
                "student registry line {}: bad grade or birth date",
                i + 2
            );
            rows.insert(number.as_str().to_string(), row);
        }
        Ok(ReferenceStudentRegistry { rows })
    }
}

#[async_trait]
impl StudentRegistry for ReferenceStudentRegistry {
    async fn lookup(&self, number: &StudentNumber) -> RegistryAnswer {
        self.rows.get(number.as_str()).map(Row::answer).unwrap_or(RegistryAnswer::NotFound)
    }
}

#[derive(Debug, Serialize)]
struct HttpQuery<'a> {
    student_number: &'a str,
}

#[derive(Debug, Deserialize)]
struct HttpAnswer {
    result: String,
    record: Option<Row>,
}

/// A student registry reached over HTTP.
pub struct HttpStudentRegistry {
    url: String,
    client: reqwest::Client,
}

impl HttpStudentRegistry {
    /// An adapter posting to `url`, giving up after `timeout`.
    pub fn new(url: &str, timeout: Duration) -> anyhow::Result<Self> {
        anyhow::ensure!(url.starts_with("http://") || url.starts_with("https://"), "registry URL must be http(s)");
        let client = reqwest::Client::builder().timeout(timeout).build().context("HTTP client")?;
        Ok(HttpStudentRegistry { url: url.to_string(), client })
    }
}

#[async_trait]
impl StudentRegistry for HttpStudentRegistry {
    async fn lookup(&self, number: &StudentNumber) -> RegistryAnswer {
        let body = HttpQuery { student_number: number.as_str() };
        let response = match self.client.post(&self.url).json(&body).send().await {
            Ok(r) if r.status().is_success() => r,
            Ok(r) => {
                tracing::warn!(status = %r.status(), "student registry answered with an error");
                return RegistryAnswer::Unavailable;
            }
            Err(err) => {
                tracing::warn!(timeout = err.is_timeout(), "student registry unreachable");
                return RegistryAnswer::Unavailable;
            }
        };
        match response.json::<HttpAnswer>().await {
            Ok(a) => match (a.result.as_str(), a.record) {
                ("found", Some(row)) => row.record().map(RegistryAnswer::Found).unwrap_or(RegistryAnswer::Unavailable),
                ("not_found", _) => RegistryAnswer::NotFound,
                ("school_not_synced", _) => RegistryAnswer::SchoolNotSynced,
                _ => RegistryAnswer::Unavailable,
            },
            Err(_) => RegistryAnswer::Unavailable,
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::routing::post;
    use axum::{Json, Router};

    use super::*;

    fn number(s: &str) -> StudentNumber {
        StudentNumber::parse(s).expect("student number")
    }

    const CSV: &str = "student_number,name,id_number,birth_date,school_code,grade,class,head_teacher_mobile\n\
                       L320100000000000001,王小红,,2014-05-01,3201001,6,2班,13700000001\n\
                       L320100000000000002,!unavailable,,,,,,\n\
                       L320100000000000003,!unsynced,,,,,,\n";

    #[tokio::test]
    async fn the_reference_registry_finds_fails_and_is_unavailable_by_row() {
        let registry = ReferenceStudentRegistry::parse(CSV).expect("csv");
        let RegistryAnswer::Found(record) = registry.lookup(&number("l320100000000000001")).await else {
            panic!("expected a record");
        };
        assert_eq!(record.name, "王小红");
        assert_eq!(record.id_number, None);
        assert_eq!(record.grade.get(), 6);
        assert_eq!(registry.lookup(&number("L320100000000000002")).await, RegistryAnswer::Unavailable);
        assert_eq!(registry.lookup(&number("L320100000000000003")).await, RegistryAnswer::SchoolNotSynced);
        assert_eq!(registry.lookup(&number("L320100000000000009")).await, RegistryAnswer::NotFound);
    }

    #[test]
    fn the_shipped_demo_registry_parses() {
        assert!(ReferenceStudentRegistry::parse(DEMO_REGISTRY).is_ok());
    }

    async fn serve(router: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, router).await });
        format!("http://{addr}/lookup")
    }

    #[tokio::test]
    async fn the_http_adapter_reads_each_documented_answer() {
        let router = Router::new().route(
            "/lookup",
            post(|Json(q): Json<serde_json::Value>| async move {
                let n = q["student_number"].as_str().unwrap_or_default().to_string();
                Json(match n.as_str() {
                    "L320100000000000001" => serde_json::json!({"result": "found", "record": {
                        "student_number": n, "name": "王小红", "id_number": "", "birth_date": "2014-05-01",
                        "school_code": "3201001", "grade": "6", "class": "2班", "head_teacher_mobile": "13700000001"}}),
                    "L320100000000000002" => serde_json::json!({"result": "found", "record": {
                        "student_number": n, "name": "赵磊", "birth_date": "2012-01-20",
                        "school_code": "3201002", "grade": 8, "class": "5班", "head_teacher_mobile": "13700000004"}}),
                    "L320100000000000003" => serde_json::json!({"result": "school_not_synced"}),
                    "L320100000000000004" => serde_json::json!({"result": "surprise"}),
                    _ => serde_json::json!({"result": "not_found"}),
                })
            }),
        );
        let url = serve(router).await;
        let registry = HttpStudentRegistry::new(&url, Duration::from_secs(2)).expect("adapter");
        assert!(matches!(registry.lookup(&number("L320100000000000001")).await, RegistryAnswer::Found(_)));
        let RegistryAnswer::Found(numeric) = registry.lookup(&number("L320100000000000002")).await else {
            panic!("a grade sent as a number is read");
        };
        assert_eq!((numeric.grade.get(), numeric.id_number), (8, None));
        assert_eq!(registry.lookup(&number("L320100000000000003")).await, RegistryAnswer::SchoolNotSynced);
        assert_eq!(registry.lookup(&number("L320100000000000004")).await, RegistryAnswer::Unavailable);
        assert_eq!(registry.lookup(&number("L320100000000000009")).await, RegistryAnswer::NotFound);
    }

    #[tokio::test]
    async fn a_slow_or_failing_http_registry_is_unavailable() {
        let router = Router::new()
            .route(
                "/lookup",
                post(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    Json(serde_json::json!({"result": "not_found"}))
                }),
            )
            .route("/down", post(|| async { (axum::http::StatusCode::BAD_GATEWAY, "down") }));
        let url = serve(router).await;
        let slow = HttpStudentRegistry::new(&url, Duration::from_millis(300)).expect("adapter");
        let started = std::time::Instant::now();
        assert_eq!(slow.lookup(&number("L320100000000000001")).await, RegistryAnswer::Unavailable);
        assert!(started.elapsed() < Duration::from_secs(2));
        let down = HttpStudentRegistry::new(&url.replace("/lookup", "/down"), Duration::from_secs(2)).expect("adapter");
        assert_eq!(down.lookup(&number("L320100000000000001")).await, RegistryAnswer::Unavailable);
    }
}
