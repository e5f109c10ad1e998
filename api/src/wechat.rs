//! Adapters of the WeChat port (`SHENFEN_WECHAT`): an OAuth code, obtained by the user in
//! WeChat, is exchanged for the openid to bind.
//!
//! - `reference:PATH` — a CSV file, header `oauth_code,openid`; an unknown code is invalid.
//!   `reference:` alone uses the demo file shipped in `api/data/wechat-oauth.csv`.
//! - `http:URL` — POSTs `{"oauth_code": "…"}` and expects `{"openid": "…"}`; a 4xx answer means
//!   the code is invalid; anything else, or no answer within 5 seconds, is "unavailable".

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use serde::Deserialize;
use shenfen_domain::ports::{Wechat, WechatAnswer};

const DEMO_CODES: &str = include_str!("../data/wechat-oauth.csv");

/// Builds the adapter named by `spec`.
pub fn from_spec(spec: &str) -> anyhow::Result<Box<dyn Wechat>> {
    if let Some(path) = spec.strip_prefix("reference:") {
        let csv = if path.is_empty() {
            DEMO_CODES.to_string()
        } else {
            std::fs::read_to_string(path).with_context(|| format!("reading the WeChat codes {path}"))?
        };
        return Ok(Box::new(ReferenceWechat::parse(&csv)?));
    }
    if let Some(url) = spec.strip_prefix("http:") {
        anyhow::ensure!(
            url.starts_with("http://") || url.starts_with("https://"),
            "SHENFEN_WECHAT http:URL must be http(s)"
        );
        let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().context("HTTP client")?;
        return Ok(Box::new(HttpWechat { url: url.to_string(), client }));
    }
    anyhow::bail!("SHENFEN_WECHAT must be `reference:PATH` or `http:URL`")
}

#[derive(Debug, Deserialize)]
struct Row {
    oauth_code: String,
    openid: String,
}

/// The CSV reference adapter.
pub struct ReferenceWechat {
    codes: HashMap<String, String>,
}

impl ReferenceWechat {
    /// Parses the CSV text.
    pub fn parse(csv: &str) -> anyhow::Result<Self> {
        let mut reader = csv::Reader::from_reader(csv.as_bytes());
        let mut codes = HashMap::new();
        for (i, row) in reader.deserialize::<Row>().enumerate() {
            let row = row.with_context(|| format!("WeChat codes line {}", i + 2))?;
            codes.insert(row.oauth_code.trim().to_string(), row.openid.trim().to_string());
        }
        Ok(ReferenceWechat { codes })
    }
}

#[async_trait]
impl Wechat for ReferenceWechat {
    async fn openid(&self, oauth_code: &str) -> WechatAnswer {
        match self.codes.get(oauth_code.trim()) {
            Some(openid) => WechatAnswer::Openid(openid.clone()),
            None => WechatAnswer::InvalidCode,
        }
    }
}

/// WeChat reached over HTTP.
pub struct HttpWechat {
    url: String,
    client: reqwest::Client,
}

#[derive(Debug, Deserialize)]
struct HttpAnswer {
    openid: Option<String>,
}

#[async_trait]
impl Wechat for HttpWechat {
    async fn openid(&self, oauth_code: &str) -> WechatAnswer {
        let response = self.client.post(&self.url).json(&serde_json::json!({ "oauth_code": oauth_code })).send().await;
        let Ok(response) = response else { return WechatAnswer::Unavailable };
        if response.status().is_client_error() {
            return WechatAnswer::InvalidCode;
        }
        if !response.status().is_success() {
            return WechatAnswer::Unavailable;
        }
        match response.json::<HttpAnswer>().await {
            Ok(HttpAnswer { openid: Some(openid) }) if valid_openid(&openid) => WechatAnswer::Openid(openid),
            _ => WechatAnswer::Unavailable,
        }
    }
}

/// Whether an openid has the shape WeChat gives them (at most 64 of `A-Za-z0-9_-`).
pub fn valid_openid(openid: &str) -> bool {
    !openid.is_empty()
        && openid.len() <= 64
        && openid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_reference_adapter_knows_only_its_codes() {
        let wechat = ReferenceWechat::parse("oauth_code,openid\nc1,o1\n").expect("csv");
        assert_eq!(wechat.openid("c1").await, WechatAnswer::Openid("o1".into()));
        assert_eq!(wechat.openid("c2").await, WechatAnswer::InvalidCode);
    }
}
