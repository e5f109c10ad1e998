//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` annotations, with
//! each operation's security requirement and the problems it can answer added here.

mod catalogue;
pub mod problems;
pub mod values;

use std::sync::OnceLock;

use serde_json::{json, Value};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "Shenfen", description = "Real-name accounts for public education portals."),
    paths(
        routes::codes::request_code,
        routes::accounts::register,
        routes::accounts::reregister,
        routes::sessions::log_in,
        routes::sessions::log_out,
        routes::resets::start,
        routes::resets::deliver,
        routes::resets::complete,
        routes::me::get_me,
        routes::me::update_profile,
        routes::me::change_password,
        routes::me::bind_wechat,
        routes::me::unbind_wechat,
        routes::me::confirm_email,
        routes::deletion::request,
        routes::deletion::cancel,
        routes::export::export,
        routes::claims::of_holder,
        routes::claims::refuse,
        routes::claims::current,
        routes::claims::submit_proof,
        routes::verification::verify,
        routes::verification::apply_for_review,
        routes::verification::my_reviews,
        routes::verification::eligibility,
        routes::staff::log_in,
        routes::staff::log_out,
        routes::staff::change_password,
        routes::staff::create,
        routes::staff::disable,
        routes::staff::enable,
        routes::staff::change_role,
        routes::reviews::queue,
        routes::reviews::claim,
        routes::reviews::decide,
        routes::reviews::photo,
        routes::support::lookup,
        routes::support::change_contact,
        routes::support::correct,
        routes::support::approve,
        routes::support_cases::open_case,
        routes::support_cases::list_cases,
        routes::support_cases::reply_to_case,
        routes::support_cases::case_photo,
        routes::analytics::registrations,
        routes::analytics::verification_attempts,
        routes::analytics::verification_failures,
        routes::analytics::quota_exhaustion,
        routes::analytics::manual_reviews,
        routes::analytics::manual_reviews_daily,
        routes::analytics::overdue,
        routes::analytics::student_verifications,
        routes::students::register,
        routes::students::log_in,
        routes::students::search_schools,
        routes::students::me,
        routes::students::edit_application,
        routes::students::attach_materials,
        routes::students::verify_guardian,
        routes::students::submit,
        routes::students::reconfirm,
        routes::students::timeline,
        routes::students::eligibility,
        routes::students::request_deletion,
        routes::students::cancel_deletion,
        routes::students::export,
        routes::student_reviews::list,
        routes::student_reviews::material,
        routes::student_reviews::decide,
        routes::student_reviews::refresh,
        routes::student_reviews::link,
        routes::student_reviews::school_students,
        routes::audit::events,
        routes::audit::state,
        routes::feeds::identity_changes,
        routes::ops::healthz,
        routes::ops::readyz,
        routes::ops::metrics,
        routes::ops::openapi,
    ),
    components(schemas(crate::error::Problem)),
    modifiers(&Security)
)]
struct ApiDoc;

/// The four kinds of bearer token; staff operations name the roles they admit.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some(description.to_string())).build(),
            )
        };
        components.add_security_scheme(
            "holder",
            bearer("An account holder's session token (`s1.…`), from `POST /v1/sessions`."),
        );
        components.add_security_scheme(
            "staff",
            bearer("A staff session token (`st1.…`), from `POST /v1/staff/sessions`; an operation lists the roles it admits (none: any role)."),
        );
        components.add_security_scheme(
            "student",
            bearer("A student's session token (`su1.…`), from `POST /v1/student-sessions`."),
        );
        components.add_security_scheme(
            "claim_token",
            bearer("The claim token of a re-registration claim (`c1.…`), from `POST /v1/accounts/reregistration`."),
        );
    }
}

/// The security requirement of an operation, from its tag: the holder's token, the claim
/// token, or a staff token with the roles the handler requires.
fn security_of(operation: &str, tag: &str) -> Option<Value> {
    let staff = |roles: &[&str]| Some(json!([{"staff": roles}]));
    match tag {
        "holder" => Some(json!([{"holder": []}])),
        "claimant" => Some(json!([{"claim_token": []}])),
        "reviewer" => staff(&["reviewer"]),
        "support" => staff(&["support"]),
        "analyst" => staff(&["analyst"]),
        "auditor" => staff(&["auditor"]),
        "service" => staff(&["service"]),
        "students" if operation.contains(" /v1/student/me") => Some(json!([{"student": []}])),
        "school" if operation.contains("/decision") => staff(&["head_teacher"]),
        "school" if operation.contains("/registry-") || operation.contains("/v1/schools/") => staff(&["school_admin"]),
        "school" => staff(&["head_teacher", "school_admin"]),
        "staff" if operation.contains("/v1/staff/accounts") => staff(&["admin"]),
        "staff" if operation == "POST /v1/staff/sessions" => None,
        "staff" => staff(&[]),
        _ => None,
    }
}

/// Operations whose JSON body may be left out (they read it with `OptionalJson`).
const OPTIONAL_BODIES: &[&str] = &["POST /v1/me/real-name-verifications"];

/// Sets every operation's security requirement from its tag, and marks optional bodies.
fn secure(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else { return };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else { continue };
        for (method, op) in item.iter_mut() {
            let operation = format!("{} {path}", method.to_ascii_uppercase());
            let tag = op.pointer("/tags/0").and_then(Value::as_str).unwrap_or_default().to_string();
            if OPTIONAL_BODIES.contains(&operation.as_str()) {
                if let Some(body) = op.get_mut("requestBody") {
                    body["required"] = json!(false);
                }
            }
            match (security_of(&operation, &tag), op.as_object_mut()) {
                (Some(security), Some(op)) => {
                    op.insert("security".into(), security);
                }
                (None, Some(op)) => {
                    op.remove("security");
                }
                _ => {}
            }
        }
    }
}

/// What a response opens: OpenAPI links, which clients read and schemathesis follows in its
/// stateful phase (`path`, `method`, `status`, link name, the link).
fn links() -> Vec<(&'static str, &'static str, &'static str, &'static str, Value)> {
    let reset_id = json!({"reset_id": "$response.body#/reset_id"});
    let username = json!({"username": "$request.body#/username"});
    vec![
        (
            "/v1/accounts",
            "post",
            "201",
            "LogIn",
            json!({"operationId": "log_in", "requestBody": {
                "document_type": "$request.body#/document_type",
                "document_number": "$request.body#/document_number",
                "password": "$request.body#/password"}}),
        ),
        ("/v1/password-resets", "post", "201", "Deliver", json!({"operationId": "deliver", "parameters": reset_id})),
        ("/v1/password-resets", "post", "201", "Complete", json!({"operationId": "complete", "parameters": reset_id})),
        ("/v1/staff/accounts", "post", "201", "Disable", json!({"operationId": "disable", "parameters": username})),
        ("/v1/staff/accounts", "post", "201", "Enable", json!({"operationId": "enable", "parameters": username})),
        (
            "/v1/staff/accounts",
            "post",
            "201",
            "ChangeRole",
            json!({"operationId": "change_role", "parameters": username}),
        ),
    ]
}

/// Adds the [`links`] to their responses.
fn link(doc: &mut Value) {
    for (path, method, status, name, link) in links() {
        if let Some(response) =
            doc.pointer_mut(&format!("/paths/{}/{method}/responses/{status}", path.replace('/', "~1")))
        {
            response["links"][name] = link;
        }
    }
}

/// The document served at `/openapi.json`: the handlers' annotations, each operation's
/// security, its problems and the links between operations.
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
        secure(&mut doc);
        problems::describe(&mut doc);
        link(&mut doc);
        doc
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn operations() -> Vec<(String, &'static Value)> {
        let paths = document()["paths"].as_object().expect("paths");
        paths
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .expect("path item")
                    .iter()
                    .map(move |(m, op)| (format!("{} {path}", m.to_uppercase()), op))
            })
            .collect()
    }

    #[test]
    fn every_operation_is_catalogued_and_every_catalogue_entry_is_an_operation() {
        let described: BTreeSet<String> = operations().into_iter().map(|(op, _)| op).collect();
        let catalogued: BTreeSet<String> = catalogue::CATALOGUE.iter().map(|(op, _)| op.to_string()).collect();
        assert_eq!(described, catalogued);
    }

    #[test]
    fn links_name_operations_that_exist() {
        let ids: BTreeSet<&str> = operations().iter().filter_map(|(_, op)| op["operationId"].as_str()).collect();
        for (path, method, status, name, link) in links() {
            let response = &document()["paths"][path][method]["responses"][status];
            assert_eq!(response["links"][name], link, "{method} {path} {status} {name}");
            assert!(ids.contains(link["operationId"].as_str().unwrap_or_default()), "{name}");
        }
    }

    #[test]
    fn enumerated_fields_list_the_domains_values() {
        let schemas = &document()["components"]["schemas"];
        assert_eq!(schemas["RoleName"]["enum"].as_array().map(Vec::len), Some(shenfen_domain::staff::Role::ALL.len()));
        assert_eq!(
            schemas["DocumentTypeName"]["enum"],
            json!(["resident_id_card", "hk_macau_permit", "taiwan_permit", "hmt_residence_permit", "other"])
        );
        assert_eq!(
            schemas["RegistrationRequest"]["properties"]["document_type"]["$ref"],
            "#/components/schemas/DocumentTypeName"
        );
    }

    #[test]
    fn operation_ids_are_unique() {
        let ids: Vec<&str> =
            operations().iter().map(|(_, op)| op["operationId"].as_str().expect("operationId")).collect();
        let unique: BTreeSet<&str> = ids.iter().copied().collect();
        assert_eq!(ids.len(), unique.len(), "{ids:?}");
    }

    #[test]
    fn every_error_of_an_api_operation_is_a_problem_with_its_codes() {
        for (name, op) in operations().into_iter().filter(|(name, _)| name.contains(" /v1/")) {
            let responses = op["responses"].as_object().expect("responses");
            assert!(responses.contains_key("500"), "{name}");
            for (status, response) in responses.iter().filter(|(s, _)| s.as_str() >= "400") {
                let schema = &response["content"]["application/problem+json"]["schema"];
                let codes = schema["allOf"][1]["properties"]["code"]["enum"].as_array();
                assert!(codes.is_some_and(|c| !c.is_empty()), "{name} {status}: {response}");
            }
        }
    }

    #[test]
    fn secured_operations_name_their_scheme_and_staff_roles() {
        let security = |name: &str| -> Value {
            let op = operations().into_iter().find(|(n, _)| n == name).expect(name).1;
            op.get("security").cloned().unwrap_or(Value::Null)
        };
        assert_eq!(security("GET /v1/me"), json!([{"holder": []}]));
        assert_eq!(security("GET /v1/review-queue"), json!([{"staff": ["reviewer"]}]));
        assert_eq!(security("POST /v1/staff/accounts"), json!([{"staff": ["admin"]}]));
        assert_eq!(security("POST /v1/staff/password"), json!([{"staff": []}]));
        assert_eq!(security("GET /v1/claims/current"), json!([{"claim_token": []}]));
        assert_eq!(security("POST /v1/sessions"), Value::Null);
        assert_eq!(security("POST /v1/staff/sessions"), Value::Null);
        assert_eq!(security("POST /v1/support-cases"), Value::Null);
        assert_eq!(security("POST /v1/support/cases/{id}/reply"), json!([{"staff": ["support"]}]));
    }

    #[test]
    fn required_request_fields_are_required_and_optional_bodies_optional() {
        let schemas = &document()["components"]["schemas"];
        let required = |name: &str| -> Vec<&str> {
            schemas[name]["required"]
                .as_array()
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default()
        };
        assert_eq!(required("ResetRequest"), ["document_type", "document_number", "name"]);
        assert!(required("LoginRequest").contains(&"password") && !required("LoginRequest").contains(&"document_type"));
        let verify =
            operations().into_iter().find(|(n, _)| n == "POST /v1/me/real-name-verifications").expect("verify").1;
        assert_eq!(verify["requestBody"]["required"], json!(false));
    }
}
