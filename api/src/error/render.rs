//! Rendering problems: the body, and the middleware that answers in the request's language
//! and turns axum's own plain-text rejections into problem+json.

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::ApiError;

impl ApiError {
    pub(super) fn body(&self, zh: bool) -> Value {
        let mut body = Map::new();
        body.insert("type".into(), json!(format!("https://shenfen.dev/problems/{}", self.code)));
        body.insert("title".into(), json!(self.status.canonical_reason().unwrap_or("Error")));
        body.insert("status".into(), json!(self.status.as_u16()));
        body.insert("detail".into(), json!(if zh { &self.detail_zh } else { &self.detail_en }));
        body.insert("code".into(), json!(self.code));
        if !self.errors.is_empty() {
            body.insert("errors".into(), json!(self.errors));
        }
        for (k, v) in &self.extra {
            body.insert(k.clone(), v.clone());
        }
        Value::Object(body)
    }

    pub(super) fn render(&self, zh: bool) -> Response {
        let bytes = serde_json::to_vec(&self.body(zh)).unwrap_or_default();
        let mut response = (self.status, bytes).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        response
    }
}

/// Whether an `Accept-Language` value prefers Chinese over English.
pub fn prefers_chinese(accept_language: &str) -> bool {
    let mut best: Option<(f32, bool)> = None;
    for item in accept_language.split(',') {
        let mut parts = item.trim().split(';');
        let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts.find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.parse::<f32>().ok())).unwrap_or(1.0);
        let zh = tag == "zh" || tag.starts_with("zh-");
        let en = tag == "en" || tag.starts_with("en-") || tag == "*";
        if (zh || en) && best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, zh));
        }
    }
    best.is_some_and(|(_, zh)| zh)
}

/// Renders problem+json errors in the request's language, and turns axum's own plain-text
/// rejections (404, 405, 413 from the body limit) into problem+json.
pub async fn localize(request: Request, next: Next) -> Response {
    let zh = request.headers().get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).is_some_and(prefers_chinese);
    let mut response = next.run(request).await;
    if let Some(err) = response.extensions_mut().remove::<ApiError>() {
        let mut localized = err.render(zh);
        std::mem::swap(localized.headers_mut(), response.headers_mut());
        localized.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        return localized;
    }
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if status.is_client_error() && !is_problem {
        let err = match status {
            StatusCode::NOT_FOUND => ApiError::not_found(),
            StatusCode::METHOD_NOT_ALLOWED => {
                ApiError::new(status, "method_not_allowed", "Method not allowed here.", "不支持该请求方法。")
            }
            StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::new(status, "payload_too_large", "The request body is too large.", "请求内容过大。")
            }
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::unsupported_media_type("application/json"),
            _ => ApiError::bad_request(),
        };
        let mut localized = err.render(zh);
        for (name, value) in response.headers() {
            if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                localized.headers_mut().insert(name.clone(), value.clone());
            }
        }
        return localized;
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_is_chosen_only_when_preferred() {
        assert!(prefers_chinese("zh-CN,zh;q=0.9,en;q=0.8"));
        assert!(!prefers_chinese("en-US,en;q=0.9,zh;q=0.8"));
        assert!(prefers_chinese("en;q=0.5, zh;q=0.9"));
        assert!(!prefers_chinese("fr"));
        assert!(!prefers_chinese(""));
    }
}
