//! Errors as `application/problem+json`: the one place that knows HTTP status codes.
//!
//! An [`ApiError`] carries its detail in English and Chinese; the response is rendered in
//! the language the request's `Accept-Language` prefers by the [`localize`] middleware.
//! Domain errors become problems through `From` (see [`domain`]), so handlers use `?`.
//! 5xx bodies are opaque: the cause travels with the error and is logged once, by the
//! request middleware ([`crate::telemetry::observe`]), never echoed.

mod domain;
mod render;

pub use render::{localize, prefers_chinese};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};
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
    /// For a 422: every bad field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
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
    /// For a 5xx, what went wrong: logged by the request middleware, never answered.
    pub cause: Option<String>,
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
            cause: None,
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

    /// 403 `forbidden`: the caller's role may not do this.
    pub fn forbidden() -> Self {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", "Your role may not do this.", "您没有执行此操作的权限。")
    }

    /// 404 `not_found`.
    pub fn not_found() -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "No such resource.", "请求的资源不存在。")
    }

    /// 413 `payload_too_large`; `limit` names the limit ("64 KiB").
    pub fn payload_too_large(what: &str, limit: &str) -> Self {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("{what} is larger than {limit}."),
            format!("请求内容超过 {limit}。"),
        )
    }

    /// 415 `unsupported_media_type`; `expected` is the media type to send.
    pub fn unsupported_media_type(expected: &str) -> Self {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("Send the body as {expected}."),
            format!("请求内容类型须为 {expected}。"),
        )
    }

    /// 400 `malformed_json`.
    pub fn malformed_json() -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "The body is not valid JSON of the expected shape.",
            "请求内容不是有效的 JSON。",
        )
    }

    /// 400 `malformed_multipart`.
    pub fn malformed_multipart() -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "malformed_multipart", "The form could not be read.", "表单格式错误。")
    }

    /// 400 `bad_request`: the request could not be read at all.
    pub fn bad_request() -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", "The request is malformed.", "请求格式错误。")
    }

    /// 401 `login_failed` for a sensitive change whose current password was wrong (it counted
    /// as a failed login).
    pub fn wrong_current_password() -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "login_failed", "The current password is wrong.", "当前密码错误。")
    }

    /// 410 `photo_deleted`: deleted after its retention period, or with its erased account.
    pub fn photo_deleted() -> Self {
        ApiError::new(
            StatusCode::GONE,
            "photo_deleted",
            "The photo was deleted (its retention period ended, or its account was erased).",
            "该照片已删除（保存期限已过或账号已注销）。",
        )
    }

    /// 503 for a port that cannot be reached (`identity_authority_unavailable`…).
    pub fn unavailable(code: &str, en: &str, zh: &str) -> Self {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, en, zh)
    }

    /// 500; the cause is logged once by the request middleware and not echoed.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let mut err = ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Something went wrong on our side; try again later.",
            "服务器内部错误，请稍后再试。",
        );
        err.cause = Some(cause.to_string());
        err
    }

    /// The database did not take a command's write within the write timeout
    /// (`SHENFEN_WRITE_TIMEOUT_MS`): nothing was written, and the command may be sent again.
    pub fn store_unavailable() -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "The database did not take the change in time; nothing was changed. Try again shortly.",
            "系统繁忙，本次操作未生效，请稍后重试。",
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
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.render(false);
        response.extensions_mut().insert(self);
        response
    }
}
