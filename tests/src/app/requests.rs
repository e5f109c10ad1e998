//! Typed requests: registration, login, profile, verification, manual review, staff.

use reqwest::Method;
use serde_json::{json, Value};

use crate::*;

impl TestApp {
    // -- real-name verification and manual review ----------------------------------------------

    /// `PUT /v1/me/profile` with what an account of `document_type` needs to complete its
    /// profile (the ethnicity; for permits also gender, birth date and local identity number,
    /// and for residence permits the travel-permit number); asserts 200.
    pub async fn complete_profile(&self, token: &str, document_type: &str) {
        let body = match document_type {
            "resident_id_card" => json!({"ethnicity": "01"}),
            "other" => json!({"ethnicity": "01", "gender": "female", "birth_date": "1990-05-20"}),
            "hmt_residence_permit" => {
                panic!("complete_profile: give a residence permit's birth date by hand (it is in the number)")
            }
            _ => {
                json!({"ethnicity": "01", "gender": "male", "birth_date": "1990-05-20", "local_id_number": "A1234563"})
            }
        };
        self.put_json_as(token, "/v1/me/profile", &body).await.assert_status(200);
    }

    /// Registers `registration`, signs in and completes the profile: an applicant ready for
    /// real-name verification. Returns the account and a session token.
    pub async fn ready_applicant(&self, registration: Registration) -> (Registered, String) {
        let document_type = registration.document_type.clone();
        let account = self.register_account_with(registration).await;
        let token = self.login_ok(&account).await;
        self.complete_profile(&token, &document_type).await;
        (account, token)
    }

    /// `POST /v1/me/real-name-verifications` without a body (verify the registered data).
    pub async fn verify(&self, token: &str) -> ApiResponse {
        let path = "/v1/me/real-name-verifications";
        self.send(format!("POST {path} (no body)"), self.request(Method::POST, path).bearer_auth(token)).await
    }

    /// `POST /v1/me/real-name-verifications` with `{name?, validity?}`.
    pub async fn verify_with(&self, token: &str, body: &Value) -> ApiResponse {
        self.post_json_as(token, "/v1/me/real-name-verifications", body).await
    }

    /// `POST path` with a multipart form and a bearer token.
    pub async fn post_multipart_as(&self, token: &str, path: &str, form: MultipartForm) -> ApiResponse {
        let what = format!("POST {path} multipart {}", form.describe());
        let content_type = form.content_type();
        let request = self
            .request(Method::POST, path)
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(form.finish());
        self.send(what, request).await
    }

    /// `POST /v1/me/manual-reviews` with the application.
    pub async fn apply_for_review(&self, token: &str, application: &ReviewApplication) -> ApiResponse {
        self.post_multipart_as(token, "/v1/me/manual-reviews", application.form()).await
    }

    /// `GET /v1/me/manual-reviews`
    pub async fn my_reviews(&self, token: &str) -> ApiResponse {
        self.get_as(token, "/v1/me/manual-reviews").await
    }

    /// `GET /v1/me/business-eligibility`
    pub async fn eligibility(&self, token: &str) -> ApiResponse {
        self.get_as(token, "/v1/me/business-eligibility").await
    }

    /// `GET /v1/review-queue`
    pub async fn review_queue(&self, token: &str) -> ApiResponse {
        self.get_as(token, "/v1/review-queue").await
    }

    /// `POST /v1/manual-reviews/{id}/claim`
    pub async fn claim_review(&self, token: &str, review_id: &str) -> ApiResponse {
        let path = format!("/v1/manual-reviews/{review_id}/claim");
        self.send(format!("POST {path}"), self.request(Method::POST, &path).bearer_auth(token)).await
    }

    /// `POST /v1/manual-reviews/{id}/decision` with `decision` (`approve` or `reject`) and a
    /// reason when given.
    pub async fn decide_review(
        &self,
        token: &str,
        review_id: &str,
        decision: &str,
        reason: Option<&str>,
    ) -> ApiResponse {
        let mut body = json!({"decision": decision});
        if let Some(reason) = reason {
            body["reason"] = json!(reason);
        }
        self.post_json_as(token, &format!("/v1/manual-reviews/{review_id}/decision"), &body).await
    }

    /// `GET /v1/manual-reviews/{id}/photos/{which}` (`front`, `back` or `handheld`).
    pub async fn review_photo(&self, token: &str, review_id: &str, which: &str) -> ApiResponse {
        self.get_as(token, &format!("/v1/manual-reviews/{review_id}/photos/{which}")).await
    }
}

/// A signed-in staff member.
#[derive(Debug, Clone)]
pub struct StaffMember {
    pub username: String,
    pub password: String,
    pub role: String,
    pub token: String,
}

/// A staff account asked for through `POST /v1/staff/accounts`, and the answer.
#[derive(Debug, Clone)]
pub struct NewStaff {
    pub username: String,
    pub password: String,
    pub role: String,
    pub response: ApiResponse,
}
