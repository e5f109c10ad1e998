//! Every answer the end-to-end tests see is held to the description clients generate from
//! (`/openapi.json`): its status is one the operation lists, and a problem's `code` is one the
//! operation lists for that status. So the description cannot fall behind the server on any
//! path the tests walk, including the deep ones a fuzzer never reaches (quotas, locks, claims).

use std::sync::OnceLock;

use serde_json::Value;

/// The operation of `method path` in the description: the path template that matches with the
/// most literal segments (`/v1/analytics/manual-reviews/daily` before a `{id}`).
fn operation<'a>(doc: &'a Value, method: &str, path: &str) -> Option<(&'a str, &'a Value)> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let mut best: Option<(usize, &str, &Value)> = None;
    for (template, item) in doc.get("paths")?.as_object()? {
        let parts: Vec<&str> = template.split('/').collect();
        if parts.len() != segments.len() {
            continue;
        }
        let fits = parts.iter().zip(&segments).all(|(p, s)| p == s || (p.starts_with('{') && !s.is_empty()));
        let Some(op) = item.get(method.to_ascii_lowercase()) else { continue };
        if fits {
            let literal = parts.iter().filter(|p| !p.starts_with('{')).count();
            if best.is_none_or(|(l, _, _)| literal > l) {
                best = Some((literal, template, op));
            }
        }
    }
    best.map(|(_, template, op)| (template, op))
}

/// The codes a problem response of `op` may carry for `status`, if it lists them.
fn codes(op: &Value, status: u16) -> Option<Vec<&str>> {
    let schema = op.pointer(&format!("/responses/{status}/content/application~1problem+json/schema/allOf/1"))?;
    Some(schema.pointer("/properties/code/enum")?.as_array()?.iter().filter_map(Value::as_str).collect())
}

/// Checks one answer; `None` when it conforms (or the operation is not described, e.g. a
/// route a test makes up), else what is wrong.
pub fn violation(method: &str, path: &str, status: u16, content_type: &str, body: &Value) -> Option<String> {
    static DOC: OnceLock<&'static Value> = OnceLock::new();
    let doc = DOC.get_or_init(shenfen_api::openapi::document);
    let (template, op) = operation(doc, method, path)?;
    let responses = op.get("responses")?;
    let Some(response) = responses.get(status.to_string()) else {
        return Some(format!("{method} {template}: status {status} is not described"));
    };
    // No content described (a 204, `/metrics` elsewhere): nothing more to hold it to.
    let content = response.get("content").and_then(Value::as_object)?;
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    if !content.keys().any(|declared| declared.split(';').next().unwrap_or_default().trim() == media_type) {
        return Some(format!("{method} {template}: {status} answered as {content_type:?}, not as described"));
    }
    if media_type == "application/problem+json" {
        let code = body.get("code").and_then(Value::as_str).unwrap_or_default();
        let listed = codes(op, status).unwrap_or_default();
        if !listed.contains(&code) {
            return Some(format!("{method} {template}: {status} `{code}` is not among {listed:?}"));
        }
    }
    None
}

/// Panics (or, with `SHENFEN_CONTRACT_LOG=FILE`, appends a line to FILE) when an answer does
/// not conform.
pub fn check(what: &str, method: &str, path: &str, status: u16, content_type: &str, body: &Value) {
    let Some(problem) = violation(method, path, status, content_type, body) else { return };
    if let Ok(file) = std::env::var("SHENFEN_CONTRACT_LOG") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(file) {
            let _ = writeln!(f, "{problem}");
        }
        return;
    }
    panic!("the answer does not conform to /openapi.json: {problem}\nrequest: {what}\nbody: {body}");
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::violation;

    const PROBLEM: &str = "application/problem+json";

    #[test]
    fn a_described_answer_conforms() {
        let body = json!({"code": "document_already_registered"});
        assert_eq!(violation("POST", "/v1/accounts", 409, PROBLEM, &body), None);
        assert_eq!(
            violation("POST", "/v1/manual-reviews/rev_1/claim", 401, PROBLEM, &json!({"code": "unauthenticated"})),
            None
        );
    }

    #[test]
    fn an_undescribed_status_code_or_media_type_is_caught() {
        assert!(violation("POST", "/v1/accounts", 418, PROBLEM, &json!({})).is_some());
        assert!(violation("POST", "/v1/accounts", 409, PROBLEM, &json!({"code": "made_up"})).is_some());
        assert!(
            violation("POST", "/v1/accounts", 409, "application/json", &json!({"code": "conflict_retry"})).is_some()
        );
        assert!(violation("GET", "/v1/analytics/manual-reviews/daily", 200, "text/html", &json!(null)).is_some());
    }

    #[test]
    fn path_parameters_match_a_segment_and_literals_match_exactly() {
        let photo = violation("GET", "/v1/manual-reviews/rev_1/photos/front", 200, "image/jpeg", &json!(null));
        assert_eq!(photo, None);
        let csv = violation("GET", "/v1/analytics/manual-reviews/daily", 200, "text/csv; charset=utf-8", &json!(null));
        assert_eq!(csv, None);
        // Not a described operation (a made-up route): nothing to hold it to.
        assert_eq!(violation("GET", "/v1/nowhere", 404, PROBLEM, &json!({"code": "not_found"})), None);
    }
}
