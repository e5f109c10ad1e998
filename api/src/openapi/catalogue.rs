//! What each operation can answer besides success: its error statuses, and for each the
//! stable codes the `code` member can carry. Transport-level answers that follow from the
//! operation's shape are added by [`super::problems`] and are not listed here.

/// An error status and the codes it can carry.
pub(super) type Answer = (u16, &'static [&'static str]);

/// The 422 codes of a registration (also the body of a re-registration).
const REGISTRATION_INVALID: &[&str] = &[
    "agreement_required",
    "captcha_failed",
    "captcha_required",
    "document_expired",
    "invalid_channel",
    "invalid_date",
    "invalid_document_number",
    "invalid_document_type",
    "invalid_email",
    "invalid_mobile",
    "invalid_name",
    "invalid_type",
    "invalid_validity",
    "invalid_verification_code",
    "long_term_not_allowed",
    "password_mismatch",
    "required",
    "weak_password",
    "wrong_document_type",
];

/// `(operation, [(status, [code, …]), …])`, the operation as `"METHOD /path"`.
pub(super) const CATALOGUE: &[(&str, &[Answer])] = &[
    // Public.
    (
        "POST /v1/verification-codes",
        &[
            // Purpose `guardian_consent`: a student token, to the application's guardian mobile.
            (401, &["unauthenticated"]),
            (403, &["forbidden"]),
            (409, &["conflict_retry", "guardian_mobile_missing", "not_guardian_mobile"]),
            (
                422,
                &[
                    "captcha_failed",
                    "captcha_required",
                    "invalid_channel",
                    "invalid_mobile",
                    "invalid_purpose",
                    "invalid_type",
                    "required",
                ],
            ),
            (429, &["code_rate_limited"]),
            (503, &["captcha_unavailable"]),
        ],
    ),
    (
        "POST /v1/accounts",
        &[
            (409, &["conflict_retry", "document_already_registered"]),
            (422, REGISTRATION_INVALID),
            (503, &["captcha_unavailable"]),
        ],
    ),
    // A claim is opened (202) on an account in use; a legacy account is registered again (201).
    (
        "POST /v1/accounts/reregistration",
        &[
            (404, &["account_not_found"]),
            (409, &["conflict_retry"]),
            (422, REGISTRATION_INVALID),
            (503, &["captcha_unavailable"]),
        ],
    ),
    // 409 `conflict_retry` also when the password kept changing under the login.
    (
        "POST /v1/sessions",
        &[
            (401, &["login_failed"]),
            (403, &["legacy_account_must_reregister"]),
            (409, &["conflict_retry"]),
            (422, &["captcha_failed", "captcha_required", "invalid_type", "required"]),
            (423, &["account_locked"]),
            (503, &["captcha_unavailable"]),
        ],
    ),
    // An unknown document type, an unparsable name or a name that does not match: 404 too.
    (
        "POST /v1/password-resets",
        &[
            (403, &["legacy_account_must_reregister"]),
            (404, &["account_not_found"]),
            (409, &["conflict_retry"]),
            (422, &["invalid_type", "required"]),
        ],
    ),
    // An unknown method, or one the account has no destination for: 422 `method_not_available`.
    (
        "POST /v1/password-resets/{reset_id}/deliveries",
        &[
            (404, &["reset_not_found"]),
            (409, &["conflict_retry"]),
            (422, &["invalid_type", "method_not_available", "required"]),
            (429, &["code_rate_limited"]),
        ],
    ),
    // 403/404: a well-formed reset id forged for a legacy or an unknown account (the account
    // is checked before the reset); a malformed one is 400 `invalid_or_expired_secret`.
    (
        "POST /v1/password-resets/{reset_id}/completion",
        &[
            (400, &["invalid_or_expired_secret"]),
            (403, &["legacy_account_must_reregister"]),
            (404, &["account_not_found"]),
            (409, &["conflict_retry"]),
            (422, &["invalid_type", "password_mismatch", "required", "weak_password"]),
        ],
    ),
    // 409 `case_already_open` only if a new random case id collided with an existing one.
    (
        "POST /v1/support-cases",
        &[
            (409, &["case_already_open", "conflict_retry"]),
            (
                422,
                &[
                    "invalid_document_number",
                    "invalid_document_type",
                    "invalid_email",
                    "invalid_kind",
                    "invalid_mobile",
                    "invalid_name",
                    "photo_missing",
                    "photo_not_jpeg",
                    "photo_too_large",
                    "required",
                    "too_long",
                    "unknown_field",
                    "wrong_document_type",
                ],
            ),
        ],
    ),
    // The account holder. A session that ended meanwhile is 401 `unauthenticated` (the token's).
    ("DELETE /v1/sessions/current", &[(409, &["conflict_retry"])]),
    ("GET /v1/me", &[]),
    // 401 `login_failed`, 423 and 429 only with a new `email` (its `current_password`, its code);
    // 422 `required` also for the profile fields a first completion lacks.
    (
        "PUT /v1/me/profile",
        &[
            (401, &["login_failed"]),
            (409, &["conflict_retry"]),
            (
                422,
                &[
                    "document_expired",
                    "field_not_modifiable",
                    "invalid_date",
                    "invalid_email",
                    "invalid_ethnicity",
                    "invalid_gender",
                    "invalid_type",
                    "invalid_validity",
                    "invalid_value",
                    "long_term_not_allowed",
                    "password_required",
                    "required",
                ],
            ),
            (423, &["account_locked"]),
            (429, &["code_rate_limited"]),
        ],
    ),
    (
        "POST /v1/me/password",
        &[
            (401, &["login_failed"]),
            (409, &["conflict_retry"]),
            (422, &["invalid_type", "password_mismatch", "required", "weak_password"]),
            (423, &["account_locked"]),
        ],
    ),
    (
        "PUT /v1/me/wechat",
        &[
            (401, &["login_failed"]),
            (409, &["conflict_retry"]),
            (422, &["invalid_oauth_code", "invalid_type", "required"]),
            (423, &["account_locked"]),
            (503, &["wechat_unavailable"]),
        ],
    ),
    ("DELETE /v1/me/wechat", &[(409, &["conflict_retry", "wechat_not_bound"])]),
    (
        "POST /v1/me/email-confirmation",
        &[(400, &["invalid_or_expired_secret"]), (409, &["conflict_retry"]), (422, &["invalid_type", "required"])],
    ),
    ("GET /v1/me/reregistration-claims", &[]),
    // A claim id naming another account is 404 as well.
    (
        "DELETE /v1/me/reregistration-claims/{claim_id}",
        &[(404, &["claim_not_found"]), (409, &["claim_not_open", "conflict_retry"])],
    ),
    // 404 `attempt_not_found`: a re-registration reset the stream while the authority was asked.
    (
        "POST /v1/me/real-name-verifications",
        &[
            (404, &["attempt_not_found"]),
            (
                409,
                &[
                    "attempt_in_progress",
                    "conflict_retry",
                    "manual_review_pending",
                    "manual_review_required",
                    "name_change_needs_support",
                    "profile_incomplete",
                ],
            ),
            (
                422,
                &[
                    "document_expired",
                    "invalid_date",
                    "invalid_name",
                    "invalid_type",
                    "invalid_validity",
                    "long_term_not_allowed",
                    "required",
                ],
            ),
            (429, &["daily_attempts_exhausted"]),
            (503, &["identity_authority_unavailable"]),
        ],
    ),
    (
        "POST /v1/me/manual-reviews",
        &[
            (
                409,
                &[
                    "already_verified",
                    "attempt_in_progress",
                    "conflict_retry",
                    "manual_review_pending",
                    "real_name_verification_required_first",
                ],
            ),
            (
                422,
                &[
                    "document_expired",
                    "document_type_mismatch",
                    "invalid_date",
                    "invalid_document_type",
                    "invalid_name",
                    "invalid_validity",
                    "long_term_not_allowed",
                    "photo_missing",
                    "photo_not_jpeg",
                    "photo_too_large",
                    "required",
                    "unknown_field",
                ],
            ),
            (429, &["period_quota_exhausted"]),
        ],
    ),
    ("GET /v1/me/manual-reviews", &[]),
    (
        "GET /v1/me/business-eligibility",
        &[(403, &["document_type_not_eligible", "real_name_verification_required"]), (409, &["profile_incomplete"])],
    ),
    // The claimant (claim token).
    ("GET /v1/claims/current", &[]),
    // Deletion (注销): a wrong password is a failed login (401, then 423); a pending manual
    // review must be decided first.
    (
        "POST /v1/me/deletion",
        &[
            (401, &["login_failed"]),
            (409, &["conflict_retry", "manual_review_pending"]),
            (422, &["invalid_type", "required"]),
            (423, &["account_locked"]),
        ],
    ),
    ("DELETE /v1/me/deletion", &[(409, &["conflict_retry", "no_deletion_pending"])]),
    // A copy of what is held (PIPL art. 45).
    ("GET /v1/me/export", &[]),
    // A downstream service (staff role `service`).
    ("GET /v1/feeds/identity-changes", &[(403, &["forbidden"]), (422, &["invalid_cursor", "invalid_limit"])]),
    // 409 `manual_review_pending`: the proof is already with a reviewer; `claim_not_open`: decided.
    (
        "POST /v1/claims/current/manual-review",
        &[
            (409, &["claim_not_open", "conflict_retry", "manual_review_pending"]),
            (
                422,
                &[
                    "document_expired",
                    "document_type_mismatch",
                    "invalid_date",
                    "invalid_document_type",
                    "invalid_name",
                    "invalid_validity",
                    "long_term_not_allowed",
                    "photo_missing",
                    "photo_not_jpeg",
                    "photo_too_large",
                    "required",
                    "unknown_field",
                ],
            ),
        ],
    ),
    // Staff. On every operation with a staff token, an account holder's token is 403 `forbidden`.
    // 401 `login_failed` also for a disabled member.
    (
        "POST /v1/staff/sessions",
        &[
            (401, &["login_failed"]),
            (409, &["conflict_retry"]),
            (422, &["invalid_type", "required"]),
            (423, &["account_locked"]),
        ],
    ),
    ("DELETE /v1/staff/sessions/current", &[(403, &["forbidden"]), (409, &["conflict_retry"])]),
    (
        "POST /v1/staff/password",
        &[
            (401, &["login_failed"]),
            (403, &["forbidden"]),
            (409, &["conflict_retry"]),
            (422, &["invalid_type", "password_mismatch", "required", "weak_password"]),
            (423, &["account_locked"]),
        ],
    ),
    (
        "POST /v1/staff/accounts",
        &[
            (403, &["forbidden"]),
            (409, &["conflict_retry", "username_taken"]),
            (
                422,
                &[
                    "invalid_class",
                    "invalid_document_number",
                    "invalid_document_type",
                    "invalid_grade",
                    "invalid_role",
                    "invalid_type",
                    "invalid_username",
                    "not_for_this_role",
                    "required",
                    "school_not_selectable",
                    "weak_password",
                    "wrong_document_type",
                ],
            ),
        ],
    ),
    (
        "POST /v1/staff/accounts/{username}/disable",
        &[(403, &["forbidden"]), (404, &["staff_not_found"]), (409, &["conflict_retry", "own_staff_account"])],
    ),
    (
        "POST /v1/staff/accounts/{username}/enable",
        &[(403, &["forbidden"]), (404, &["staff_not_found"]), (409, &["conflict_retry", "own_staff_account"])],
    ),
    (
        "PUT /v1/staff/accounts/{username}/role",
        &[
            (403, &["forbidden"]),
            (404, &["staff_not_found"]),
            (409, &["conflict_retry", "own_staff_account"]),
            (
                422,
                &[
                    "invalid_class",
                    "invalid_grade",
                    "invalid_role",
                    "invalid_type",
                    "not_for_this_role",
                    "required",
                    "school_not_selectable",
                ],
            ),
        ],
    ),
    ("GET /v1/review-queue", &[(403, &["forbidden"])]),
    // A reviewer's own account: 403 `forbidden` for an application, `own_account` for a claim.
    (
        "POST /v1/manual-reviews/{id}/claim",
        &[
            (403, &["forbidden", "own_account"]),
            (404, &["review_not_found"]),
            (409, &["already_claimed", "conflict_retry", "review_not_pending"]),
        ],
    ),
    (
        "POST /v1/manual-reviews/{id}/decision",
        &[
            (403, &["forbidden"]),
            (404, &["review_not_found"]),
            (409, &["conflict_retry", "not_claimed_by_you", "review_not_pending"]),
            (422, &["invalid_decision", "invalid_type", "reason_required", "required", "too_long"]),
        ],
    ),
    // 404 `not_found`: `which` is not front, back or handheld.
    (
        "GET /v1/manual-reviews/{id}/photos/{which}",
        &[(403, &["forbidden"]), (404, &["not_found", "review_not_found"]), (410, &["photo_deleted"])],
    ),
    (
        "POST /v1/support/lookups",
        &[(403, &["forbidden"]), (404, &["account_not_found"]), (422, &["invalid_type", "required"])],
    ),
    // 422 `nothing_to_change` is a whole-request 422, without `errors`.
    (
        "POST /v1/support/accounts/{id}/contact",
        &[
            (403, &["forbidden", "legacy_account_must_reregister"]),
            (404, &["account_not_found"]),
            (409, &["conflict_retry"]),
            (
                422,
                &[
                    "case_of_another_account",
                    "invalid_email",
                    "invalid_mobile",
                    "invalid_type",
                    "nothing_to_change",
                    "required",
                    "too_long",
                    "unknown_case",
                ],
            ),
        ],
    ),
    (
        "POST /v1/support/accounts/{id}/corrections",
        &[
            (403, &["forbidden"]),
            (404, &["account_not_found"]),
            (409, &["conflict_retry", "profile_incomplete"]),
            (
                422,
                &[
                    "case_of_another_account",
                    "invalid_gender",
                    "invalid_name",
                    "invalid_type",
                    "required",
                    "too_long",
                    "unknown_case",
                ],
            ),
        ],
    ),
    // 403 `legacy_account_must_reregister`/404 `account_not_found`: a request id forged for a
    // legacy or an unknown account; a malformed one is 404 `request_not_found`.
    (
        "POST /v1/support/requests/{request_id}/approval",
        &[
            (403, &["forbidden", "legacy_account_must_reregister"]),
            (404, &["account_not_found", "request_not_found"]),
            (409, &["conflict_retry", "same_agent"]),
        ],
    ),
    ("GET /v1/support/cases", &[(403, &["forbidden"]), (422, &["invalid_status"])]),
    // A malformed case id is 404 `case_not_found` too (here and for the photo).
    (
        "POST /v1/support/cases/{id}/reply",
        &[
            (403, &["forbidden"]),
            (404, &["case_not_found"]),
            (409, &["conflict_retry"]),
            (422, &["invalid_type", "required", "too_long"]),
        ],
    ),
    // 410: deleted with the erased account the case is about.
    (
        "GET /v1/support/cases/{id}/photo",
        &[(403, &["forbidden"]), (404, &["case_not_found"]), (410, &["photo_deleted"])],
    ),
    (
        "GET /v1/audit/aggregates/{type}/{id}/events",
        &[(403, &["forbidden"]), (404, &["aggregate_not_found", "unknown_aggregate_type"])],
    ),
    (
        "GET /v1/audit/aggregates/{type}/{id}/state",
        &[(403, &["forbidden"]), (404, &["aggregate_not_found", "unknown_aggregate_type"])],
    ),
    ("GET /v1/analytics/registrations", &[(403, &["forbidden"])]),
    ("GET /v1/analytics/verification-attempts", &[(403, &["forbidden"])]),
    ("GET /v1/analytics/verification-failures", &[(403, &["forbidden"])]),
    ("GET /v1/analytics/quota-exhaustion", &[(403, &["forbidden"])]),
    ("GET /v1/analytics/manual-reviews", &[(403, &["forbidden"])]),
    ("GET /v1/analytics/manual-reviews/daily", &[(403, &["forbidden"])]),
    ("GET /v1/analytics/manual-reviews/overdue", &[(403, &["forbidden"])]),
    ("GET /v1/analytics/student-verifications", &[(403, &["forbidden"])]),
    // Students (api-students.md). A staff or holder token on a student operation is 403.
    (
        "POST /v1/students",
        &[
            (409, &["conflict_retry", "student_number_already_registered"]),
            (
                422,
                &[
                    "agreement_required",
                    "captcha_failed",
                    "captcha_required",
                    "invalid_channel",
                    "invalid_education_identity",
                    "invalid_mobile",
                    "invalid_student_number",
                    "invalid_type",
                    "invalid_verification_code",
                    "password_mismatch",
                    "required",
                    "student_number_registration_required",
                    "weak_password",
                ],
            ),
            (503, &["captcha_unavailable"]),
        ],
    ),
    (
        "POST /v1/student-sessions",
        &[
            (401, &["login_failed"]),
            (409, &["conflict_retry"]),
            (422, &["invalid_type", "required"]),
            (423, &["account_locked"]),
        ],
    ),
    ("GET /v1/schools", &[(422, &["query_too_short"])]),
    ("GET /v1/student/me", &[(403, &["forbidden"])]),
    (
        "PUT /v1/student/me/application",
        &[
            (403, &["forbidden"]),
            (409, &["conflict_retry", "student_already_approved", "student_verification_pending"]),
            (
                422,
                &[
                    "invalid_class",
                    "invalid_date",
                    "invalid_email",
                    "invalid_grade",
                    "invalid_id_number",
                    "invalid_mobile",
                    "invalid_name",
                    "invalid_type",
                    "minor_flag_required",
                    "required",
                    "school_not_selectable",
                    "too_long",
                ],
            ),
        ],
    ),
    (
        "POST /v1/student/me/application/materials",
        &[
            (403, &["forbidden"]),
            (
                409,
                &["conflict_retry", "enrolment_required", "student_already_approved", "student_verification_pending"],
            ),
            (422, &["material_wrong_for_stage", "photo_missing", "photo_not_jpeg", "photo_too_large"]),
        ],
    ),
    (
        "POST /v1/student/me/guardian-verification",
        &[
            (403, &["forbidden"]),
            (409, &["conflict_retry", "guardian_mobile_missing"]),
            (422, &["guardian_consent_required", "invalid_type", "invalid_verification_code", "required"]),
        ],
    ),
    (
        "POST /v1/student/me/application/submission",
        &[
            (403, &["forbidden"]),
            (
                409,
                &[
                    "application_incomplete",
                    "conflict_retry",
                    "guardian_not_verified",
                    "school_action_required",
                    "school_not_filed",
                    "student_already_approved",
                    "student_verification_pending",
                ],
            ),
            (422, &["invalid_type", "school_confirmation_required"]),
            (429, &["daily_submissions_exhausted"]),
            (503, &["student_registry_unavailable"]),
        ],
    ),
    (
        "POST /v1/student/me/reconfirmation",
        &[
            (403, &["forbidden"]),
            (409, &["conflict_retry", "reconfirmation_not_due", "school_not_filed", "student_verification_pending"]),
            (
                422,
                &[
                    "invalid_class",
                    "invalid_grade",
                    "invalid_type",
                    "material_wrong_for_stage",
                    "reconfirmation_required",
                    "required",
                    "school_not_selectable",
                ],
            ),
            (429, &["daily_submissions_exhausted"]),
            (503, &["student_registry_unavailable"]),
        ],
    ),
    ("GET /v1/student/me/timeline", &[(403, &["forbidden"])]),
    (
        "GET /v1/student/me/eligibility",
        &[(403, &["forbidden", "reconfirmation_required", "student_verification_required"])],
    ),
    // A student's deletion (注销) and copy of their data, as an account holder's.
    (
        "POST /v1/student/me/deletion",
        &[
            (401, &["login_failed"]),
            (403, &["forbidden"]),
            (409, &["conflict_retry"]),
            (422, &["invalid_type", "required"]),
            (423, &["account_locked"]),
        ],
    ),
    ("DELETE /v1/student/me/deletion", &[(403, &["forbidden"]), (409, &["conflict_retry", "no_deletion_pending"])]),
    ("GET /v1/student/me/export", &[(403, &["forbidden"])]),
    // School staff: a head teacher their class, a school admin their school.
    ("GET /v1/student-reviews", &[(403, &["forbidden", "out_of_scope"])]),
    (
        "GET /v1/student-reviews/{id}/materials/{kind}",
        &[
            (403, &["forbidden", "out_of_scope"]),
            (404, &["material_not_found", "review_not_found"]),
            (410, &["photo_deleted"]),
        ],
    ),
    (
        "POST /v1/student-reviews/{id}/decision",
        &[
            (403, &["forbidden", "out_of_scope"]),
            (404, &["review_not_found"]),
            (409, &["conflict_retry", "not_pending"]),
            (422, &["invalid_decision", "invalid_type", "reason_required", "required"]),
        ],
    ),
    (
        "POST /v1/student-reviews/{id}/registry-refresh",
        &[
            (403, &["forbidden", "out_of_scope"]),
            (404, &["review_not_found"]),
            (409, &["conflict_retry", "not_pending"]),
            (503, &["student_registry_unavailable"]),
        ],
    ),
    (
        "POST /v1/student-reviews/{id}/registry-link",
        &[
            (403, &["forbidden", "out_of_scope"]),
            (404, &["review_not_found"]),
            (409, &["conflict_retry", "not_pending"]),
            (422, &["invalid_student_number", "invalid_type", "required"]),
            (503, &["student_registry_unavailable"]),
        ],
    ),
    ("GET /v1/schools/{code}/students", &[(403, &["forbidden", "out_of_scope"])]),
    // Operations. `/readyz`'s 503 is plain JSON, not a problem.
    ("GET /healthz", &[]),
    ("GET /readyz", &[]),
    ("GET /openapi.json", &[]),
    ("GET /metrics", &[]),
];
