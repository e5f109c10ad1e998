//! Adapters of the CAPTCHA port (`SHENFEN_CAPTCHA`), and the check the public operations run.
//!
//! - `none` — no CAPTCHA (the default): requests need no token.
//! - `reference:PATH` — a CSV file, header `token,valid` (`valid` is `true` or `false`); a
//!   token not in the file is refused.
//! - `http:URL` — POSTs `{"token": "…"}` and expects `{"valid": true|false}`; a 4xx answer
//!   refuses the token; anything else, or no answer within 3 seconds, is "unavailable", which
//!   refuses the request with 503 `captcha_unavailable` (the check fails closed).

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use serde::Deserialize;
use shenfen_domain::ports::{Captcha, CaptchaAnswer};

use crate::error::{ApiError, ApiResult};
use crate::validate::Errors;

/// How long the HTTP adapter waits for the service.
const HTTP_TIMEOUT: Duration = Duration::from_secs(3);

/// Builds the adapter named by `spec`; `None` for `none`.
pub fn from_spec(spec: &str) -> anyhow::Result<Option<Box<dyn Captcha>>> {
    if spec == "none" || spec.is_empty() {
        return Ok(None);
    }
    if let Some(path) = spec.strip_prefix("reference:") {
        let csv = std::fs::read_to_string(path).with_context(|| format!("reading the CAPTCHA tokens {path}"))?;
        return Ok(Some(Box::new(ReferenceCaptcha::parse(&csv)?)));
    }
    if let Some(url) = spec.strip_prefix("http:") {
        anyhow::ensure!(
            url.starts_with("http://") || url.starts_with("https://"),
            "SHENFEN_CAPTCHA http:URL must be http(s)"
        );
        let client = reqwest::Client::builder().timeout(HTTP_TIMEOUT).build().context("HTTP client")?;
        return Ok(Some(Box::new(HttpCaptcha { url: url.to_string(), client })));
    }
    anyhow::bail!("SHENFEN_CAPTCHA must be `none`, `reference:PATH` or `http:URL`")
}

/// Notes `captcha_required` among the request's bad fields when a CAPTCHA is configured and
/// no token was sent. Run with the other field checks, so one 422 names them all.
pub fn require(captcha: Option<&dyn Captcha>, errors: &mut Errors, token: Option<&str>) {
    if captcha.is_some() && token.is_none_or(|t| t.trim().is_empty()) {
        errors.add("captcha_token", "captcha_required");
    }
}

/// Asks the service about the token (once the fields are valid, before any other work):
/// 422 `captcha_failed` when refused, 503 `captcha_unavailable` when it cannot be asked.
pub async fn check(captcha: Option<&dyn Captcha>, token: Option<&str>) -> ApiResult<()> {
    let Some(captcha) = captcha else { return Ok(()) };
    let token = token.map(str::trim).unwrap_or_default();
    if token.is_empty() {
        return Err(ApiError::field("captcha_token", "captcha_required"));
    }
    match captcha.check(token).await {
        CaptchaAnswer::Passed => Ok(()),
        CaptchaAnswer::Refused => Err(ApiError::field("captcha_token", "captcha_failed")),
        CaptchaAnswer::Unavailable => Err(ApiError::unavailable(
            "captcha_unavailable",
            "The CAPTCHA service is unavailable; try again later.",
            "人机验证服务暂不可用，请稍后再试。",
        )),
    }
}

#[derive(Debug, Deserialize)]
struct Row {
    token: String,
    valid: bool,
}

/// The CSV reference adapter.
pub struct ReferenceCaptcha {
    tokens: HashMap<String, bool>,
}

impl ReferenceCaptcha {
    /// Parses the CSV text.
    pub fn parse(csv: &str) -> anyhow::Result<Self> {
        let mut reader = csv::Reader::from_reader(csv.as_bytes());
        let mut tokens = HashMap::new();
        for (i, row) in reader.deserialize::<Row>().enumerate() {
            let row = row.with_context(|| format!("CAPTCHA tokens line {}", i + 2))?;
            tokens.insert(row.token.trim().to_string(), row.valid);
        }
        Ok(ReferenceCaptcha { tokens })
    }
}

#[async_trait]
impl Captcha for ReferenceCaptcha {
    async fn check(&self, token: &str) -> CaptchaAnswer {
        match self.tokens.get(token) {
            Some(true) => CaptchaAnswer::Passed,
            _ => CaptchaAnswer::Refused,
        }
    }
}

/// A CAPTCHA service reached over HTTP.
pub struct HttpCaptcha {
    url: String,
    client: reqwest::Client,
}

#[derive(Debug, Deserialize)]
struct HttpAnswer {
    valid: bool,
}

#[async_trait]
impl Captcha for HttpCaptcha {
    async fn check(&self, token: &str) -> CaptchaAnswer {
        let response = self.client.post(&self.url).json(&serde_json::json!({ "token": token })).send().await;
        let Ok(response) = response else { return CaptchaAnswer::Unavailable };
        if response.status().is_client_error() {
            return CaptchaAnswer::Refused;
        }
        if !response.status().is_success() {
            return CaptchaAnswer::Unavailable;
        }
        match response.json::<HttpAnswer>().await {
            Ok(HttpAnswer { valid: true }) => CaptchaAnswer::Passed,
            Ok(HttpAnswer { valid: false }) => CaptchaAnswer::Refused,
            Err(_) => CaptchaAnswer::Unavailable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_reference_adapter_passes_only_its_valid_tokens() {
        let captcha = ReferenceCaptcha::parse("token,valid\nt1,true\nt2,false\n").expect("csv");
        assert_eq!(captcha.check("t1").await, CaptchaAnswer::Passed);
        assert_eq!(captcha.check("t2").await, CaptchaAnswer::Refused);
        assert_eq!(captcha.check("t3").await, CaptchaAnswer::Refused);
    }

    #[tokio::test]
    async fn without_a_captcha_nothing_is_required() {
        let mut errors = Errors::default();
        require(None, &mut errors, None);
        assert!(errors.0.is_empty());
        assert!(check(None, None).await.is_ok());
    }

    #[test]
    fn specs_are_read_or_refused() {
        assert!(from_spec("none").expect("none").is_none());
        assert!(from_spec("http:ftp://x").is_err());
        assert!(from_spec("magic").is_err());
    }
}
