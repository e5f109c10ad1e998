//! HTTP handlers, one module per resource, and the mapping of domain errors to problems.

pub mod accounts;
pub mod codes;
pub mod me;
pub mod ops;
pub mod resets;
pub mod sessions;

use shenfen_domain::account::AccountError;
use shenfen_domain::code::CodeError;
use shenfen_projections::store::BusError;

use crate::error::{ApiError, FieldError};

/// The problem for a refused account command.
pub fn account_problem(err: AccountError) -> ApiError {
    let status = ApiError::status_of(err.kind());
    let (en, zh): (&str, &str) = match &err {
        AccountError::AlreadyRegistered => (
            "This document is already registered. Use password recovery if you cannot sign in.",
            "该证件已注册，如忘记密码请使用找回密码功能。",
        ),
        AccountError::NotFound => ("No account matches these details.", "未找到匹配的账号。"),
        AccountError::LegacyMustReregister => (
            "This account predates the current system and must be registered again.",
            "该账号为旧系统账号，请重新注册。",
        ),
        AccountError::Locked { .. } => {
            ("Too many failed logins: the account is temporarily locked.", "登录失败次数过多，账号已被临时锁定。")
        }
        AccountError::StaleCredentials => ("The account changed meanwhile; try again.", "账号信息已变更，请重试。"),
        AccountError::ProfileIncomplete => ("Complete the profile first.", "请先完善个人信息。"),
        AccountError::MissingProfileFields(_) => ("Required profile fields are missing.", "请填写必填的个人信息。"),
        AccountError::FieldNotModifiable(_) => ("This field cannot be modified.", "该字段不可修改。"),
        AccountError::MethodNotAvailable => {
            ("This recovery method is not available for the account.", "该找回方式不可用。")
        }
        AccountError::ResetNotFound => ("No such password reset, or it expired.", "找回密码请求不存在或已过期。"),
        AccountError::InvalidOrExpiredSecret => {
            ("The code or link is wrong, used or expired.", "验证码或链接错误、已使用或已过期。")
        }
        AccountError::RateLimited { .. } => ("Wait before asking for another code.", "请稍后再获取验证码。"),
        AccountError::SessionNotFound => ("Sign in first.", "请先登录。"),
        AccountError::WechatNotBound => ("WeChat is not bound.", "未绑定微信。"),
    };
    let problem = match &err {
        AccountError::MissingProfileFields(fields) => ApiError::invalid(
            fields.iter().map(|f| FieldError { field: (*f).into(), code: "required".into(), hint: None }).collect(),
        ),
        AccountError::FieldNotModifiable(field) => ApiError::field(field, "field_not_modifiable"),
        AccountError::MethodNotAvailable => ApiError::field("method", "method_not_available"),
        _ => ApiError::new(status, err.code(), en, zh),
    };
    let problem = ApiError { detail_en: en.into(), detail_zh: zh.into(), ..problem };
    match err {
        AccountError::Locked { until } => problem.with("locked_until", until),
        AccountError::RateLimited { retry_at } => problem.with("retry_at", retry_at),
        _ => problem,
    }
}

/// The problem for a refused code command.
pub fn code_problem(err: CodeError) -> ApiError {
    match err {
        CodeError::RateLimited { retry_at } => ApiError::new(
            ApiError::status_of(err.kind()),
            err.code(),
            "A new code can be requested once a minute and 10 times a day.",
            "验证码每分钟最多获取一次，每天最多 10 次。",
        )
        .with("retry_at", retry_at),
        CodeError::Invalid => ApiError::field("verification.code", err.code()),
    }
}

/// The problem for a failed command, given how to map the domain error.
pub fn bus_problem<E: std::error::Error>(err: BusError<E>, domain: impl FnOnce(E) -> ApiError) -> ApiError {
    match err {
        BusError::Domain(e) => domain(e),
        BusError::Contention => ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "conflict_retry",
            "Too many simultaneous changes to this account; try again.",
            "操作过于频繁，请重试。",
        ),
        BusError::Store(cause) => ApiError::internal(cause),
    }
}
