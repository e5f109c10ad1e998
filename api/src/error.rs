//! Errors as `application/problem+json`: the one place that knows HTTP status codes.
//!
//! An [`ApiError`] carries its detail in English and Chinese; the response is rendered in
//! the language the request's `Accept-Language` prefers by the [`localize`] middleware.
//! 5xx bodies are opaque: the cause is logged once, never echoed.

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{json, Map, Value};
use shenfen_domain::kind::ErrorKind;
use utoipa::ToSchema;

/// One bad field of a 422.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct FieldError {
    /// The JSON path of the field (`validity.start`).
    pub field: String,
    /// What is wrong with it (a stable code).
    pub code: String,
    /// A hint for the user, when there is one (`permit_renewal_digits_not_entered`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// The problem+json body (documentation of the wire shape).
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    #[schema(example = "https://shenfen.dev/problems/login_failed")]
    pub r#type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub code: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// An error answered to the client.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub detail_en: String,
    pub detail_zh: String,
    pub errors: Vec<FieldError>,
    pub extra: Map<String, Value>,
}

/// Handler results.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// An error with a status, a stable code and its texts.
    pub fn new(status: StatusCode, code: &str, en: impl Into<String>, zh: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.to_string(),
            detail_en: en.into(),
            detail_zh: zh.into(),
            errors: Vec::new(),
            extra: Map::new(),
        }
    }

    /// Adds an extra member (`locked_until`, `retry_at`…).
    pub fn with(mut self, key: &str, value: impl Serialize) -> Self {
        self.extra.insert(key.to_string(), serde_json::to_value(value).unwrap_or(Value::Null));
        self
    }

    /// A 422 listing every bad field; its `code` is the first field's.
    pub fn invalid(errors: Vec<FieldError>) -> Self {
        let code = errors.first().map(|e| e.code.clone()).unwrap_or_else(|| "validation_failed".into());
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        let mut err = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            &code,
            format!("Some fields are invalid: {}.", fields.join(", ")),
            format!("以下字段填写有误：{}。", fields.join("、")),
        );
        err.errors = errors;
        err
    }

    /// A 422 for one field.
    pub fn field(field: &str, code: &str) -> Self {
        ApiError::invalid(vec![FieldError { field: field.into(), code: code.into(), hint: None }])
    }

    /// 401 `unauthenticated`.
    pub fn unauthenticated() -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", "Sign in first.", "请先登录。")
    }

    /// 500, with the cause logged and not echoed.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Something went wrong on our side; try again later.",
            "服务器内部错误，请稍后再试。",
        )
    }

    /// The status code for a domain error kind.
    pub fn status_of(kind: ErrorKind) -> StatusCode {
        match kind {
            ErrorKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::Conflict | ErrorKind::Retry => StatusCode::CONFLICT,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorKind::Locked => StatusCode::LOCKED,
            ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::BadSecret => StatusCode::BAD_REQUEST,
        }
    }

    fn body(&self, zh: bool) -> Value {
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

    fn render(&self, zh: bool) -> Response {
        let bytes = serde_json::to_vec(&self.body(zh)).unwrap_or_default();
        let mut response = (self.status, bytes).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.render(false);
        response.extensions_mut().insert(self);
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
    let plain = |status, code: &str, en: &str, zh_text: &str| ApiError::new(status, code, en, zh_text);
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if status.is_client_error() && !is_problem {
        let err = match status {
            StatusCode::NOT_FOUND => plain(status, "not_found", "No such resource.", "请求的资源不存在。"),
            StatusCode::METHOD_NOT_ALLOWED => {
                plain(status, "method_not_allowed", "Method not allowed here.", "不支持该请求方法。")
            }
            StatusCode::PAYLOAD_TOO_LARGE => {
                plain(status, "payload_too_large", "The request body is too large.", "请求内容过大。")
            }
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                plain(status, "unsupported_media_type", "Send JSON.", "请求内容类型不受支持。")
            }
            _ => plain(status, "bad_request", "The request is malformed.", "请求格式错误。"),
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
