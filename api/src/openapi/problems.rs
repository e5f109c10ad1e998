//! The error answers of every operation, as `application/problem+json` with the codes that
//! operation can give: those of [`super::catalogue`], and those that follow from the
//! operation's shape (a JSON or multipart body, a bearer token, the per-address limit).

use std::collections::{BTreeMap, BTreeSet};

use axum::http::StatusCode;
use serde_json::{json, Value};

use super::catalogue::CATALOGUE;

/// Operations behind the per-address limit (`SHENFEN_IP_RATE_LIMIT`).
const ADDRESS_LIMITED: &[&str] = &["POST /v1/staff/sessions"];
/// The tag of the public operations, all behind the per-address limit.
const PUBLIC_TAG: &str = "public";

/// The tag of `/healthz`, `/readyz`, `/metrics` and `/openapi.json`, which answer no problems.
const OPERATIONS_TAG: &str = "operations";

/// `status → codes` of one operation.
type Answers = BTreeMap<u16, BTreeSet<&'static str>>;

/// The catalogued answers of `operation` (`"POST /v1/accounts"`), if it is catalogued.
pub fn catalogued(operation: &str) -> Option<Answers> {
    let (_, entries) = CATALOGUE.iter().find(|(op, _)| *op == operation)?;
    let mut answers = Answers::new();
    for (status, codes) in entries.iter() {
        answers.entry(*status).or_default().extend(codes.iter().copied());
    }
    Some(answers)
}

/// What the operation's shape adds: 400/413/415 for a body, 400 for parameters, 401 for a
/// token, 429 for the per-address limit, and 500 and 503 `store_unavailable` (a write the
/// database did not take in time) everywhere.
fn from_shape(operation: &str, op: &Value) -> Answers {
    let mut answers = Answers::new();
    let mut add = |status: u16, code: &'static str| {
        answers.entry(status).or_default().insert(code);
    };
    let body = op.pointer("/requestBody/content").and_then(Value::as_object);
    if let Some(content) = body {
        if content.contains_key("application/json") {
            add(400, "malformed_json");
            add(415, "unsupported_media_type");
        }
        if content.contains_key("multipart/form-data") {
            add(400, "malformed_multipart");
            add(415, "unsupported_media_type");
        }
        add(400, "bad_request");
        add(413, "payload_too_large");
    }
    if op.get("parameters").and_then(Value::as_array).is_some_and(|p| !p.is_empty()) {
        add(400, "bad_request");
    }
    if op.get("security").and_then(Value::as_array).is_some_and(|s| !s.is_empty()) {
        add(401, "unauthenticated");
    }
    let public = op.get("tags").and_then(Value::as_array).is_some_and(|t| t.iter().any(|t| t == PUBLIC_TAG));
    if public || ADDRESS_LIMITED.contains(&operation) {
        add(429, "rate_limited");
    }
    add(500, "internal_error");
    add(503, "store_unavailable");
    answers
}

/// The response of one status: `application/problem+json`, the problem with `code` one of
/// `codes`.
fn problem_response(status: u16, codes: &BTreeSet<&str>) -> Value {
    let reason = StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Error");
    let listed: Vec<String> = codes.iter().map(|c| format!("`{c}`")).collect();
    let narrowed = json!({
        "type": "object",
        "properties": {
            "status": {"type": "integer", "enum": [status]},
            "code": {"type": "string", "enum": codes.iter().collect::<Vec<_>>()},
        },
    });
    json!({
        "description": format!("{reason}: {}", listed.join(", ")),
        "content": {
            "application/problem+json": {
                "schema": {"allOf": [{"$ref": "#/components/schemas/Problem"}, narrowed]},
            },
        },
    })
}

/// Replaces every operation's error responses by the problems it can answer.
pub fn describe(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else { return };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else { continue };
        for (method, op) in item.iter_mut() {
            if op.pointer("/tags/0").is_some_and(|t| t == OPERATIONS_TAG) {
                continue;
            }
            let operation = format!("{} {path}", method.to_ascii_uppercase());
            let mut answers = catalogued(&operation).unwrap_or_default();
            for (status, codes) in from_shape(&operation, op) {
                answers.entry(status).or_default().extend(codes);
            }
            let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else { continue };
            responses.retain(|status, _| !status.starts_with('4') && !status.starts_with('5'));
            for (status, codes) in &answers {
                responses.insert(status.to_string(), problem_response(*status, codes));
            }
        }
    }
}
