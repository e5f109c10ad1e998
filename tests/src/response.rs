//! Responses, and the assertions tests make on them.

use reqwest::{header::HeaderMap, StatusCode};
use serde_json::Value;

/// A whole HTTP answer, with what was asked, for helpful assertion messages.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    /// The request, e.g. `POST /v1/accounts {..}`.
    pub what: String,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    /// The body as JSON (`Null` when it is not JSON).
    pub body: Value,
    /// The body as sent (for binary answers such as photos).
    pub bytes: Vec<u8>,
}

impl ApiResponse {
    pub(crate) async fn read(what: String, response: reqwest::Response) -> ApiResponse {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap_or_else(|e| panic!("{what}: reading the body failed: {e}")).to_vec();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        ApiResponse { what, status, headers, text, body, bytes }
    }

    /// The request and the answer, for assertion messages.
    pub fn describe(&self) -> String {
        let what: String = self.what.chars().take(600).collect();
        format!("request: {what}\nanswer: {} {}", self.status, self.text.chars().take(2000).collect::<String>())
    }

    /// Asserts the status code.
    #[track_caller]
    pub fn assert_status(&self, expected: u16) -> &Self {
        assert_eq!(self.status.as_u16(), expected, "unexpected status\n{}", self.describe());
        self
    }

    /// The `content-type` header, or "".
    pub fn content_type(&self) -> &str {
        self.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// A header, or `None`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a problem+json answer with this status and `code`.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) -> &Self {
        self.assert_status(status);
        assert!(
            self.content_type().starts_with("application/problem+json"),
            "content-type is {:?}, not application/problem+json\n{}",
            self.content_type(),
            self.describe()
        );
        assert_eq!(self.body["code"].as_str(), Some(code), "unexpected problem code\n{}", self.describe());
        assert_eq!(
            self.body["status"].as_u64(),
            Some(u64::from(status)),
            "problem `status` field\n{}",
            self.describe()
        );
        self
    }

    /// A string field of the JSON body (dotted paths such as `validity.end`).
    #[track_caller]
    pub fn str(&self, path: &str) -> String {
        let mut value = &self.body;
        for part in path.split('.') {
            value = &value[part];
        }
        value.as_str().unwrap_or_else(|| panic!("no string at `{path}`\n{}", self.describe())).to_string()
    }

    /// `errors: [{field, code}]` of a 422, as pairs.
    #[track_caller]
    pub fn field_errors(&self) -> Vec<(String, String)> {
        let errors = self.body["errors"].as_array().unwrap_or_else(|| panic!("no `errors` array\n{}", self.describe()));
        errors
            .iter()
            .map(|e| (e["field"].as_str().unwrap_or("").to_string(), e["code"].as_str().unwrap_or("").to_string()))
            .collect()
    }

    /// Asserts a 422 that lists `field` with `code` (among possibly others).
    #[track_caller]
    pub fn assert_field_error(&self, field: &str, code: &str) -> &Self {
        self.assert_status(422);
        let errors = self.field_errors();
        assert!(
            errors.iter().any(|(f, c)| f == field && c == code),
            "expected {field}: {code} among the errors {errors:?}\n{}",
            self.describe()
        );
        self
    }
}

/// The files of a zip archive, by name.
pub fn unzip(bytes: &[u8]) -> std::collections::BTreeMap<String, Vec<u8>> {
    use std::io::Read;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip archive");
    (0..archive.len())
        .map(|i| {
            let mut file = archive.by_index(i).expect("an entry");
            let mut content = Vec::new();
            file.read_to_end(&mut content).expect("its bytes");
            (file.name().to_string(), content)
        })
        .collect()
}
