//! A copy of everything held about the holder (PIPL art. 45): `GET /v1/me/export`, one zip.
//!
//! What the archive holds:
//! - `README.txt`: what each file is;
//! - `profile.json`: the account as it stands, unmasked (it is the holder's own);
//! - `events/account.json` and `events/verification.json`: every event of the holder's two
//!   streams, opened, with when it happened and who caused it — the holder, the system, or
//!   staff named by their role (never by name or id: a staff id inside a payload is replaced by
//!   the role too); password, token and code hashes are redacted;
//! - `reviews.json`: the manual-review applications, with their outcomes;
//! - `photos/REVIEW_ID/{front,back,handheld}.jpg`: the photos still kept (photos of closed
//!   reviews are deleted after their retention period, and `reviews.json` says so).
//!
//! Left out: re-registration claims and support cases, which hold the personal data of
//! whoever opened them (possibly someone else), and the analyst tables, which hold none.

use std::io::Write;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use shenfen_domain::verification::Application;
use shenfen_projections::audit;
use shenfen_projections::log::StoredEvent;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use crate::error::{ApiError, ApiResult};
use crate::extract::Holder;
use crate::startup::AppState;

/// Payload members that name a member of staff, and the role shown in their place (a student
/// event's `by` carries the role beside the `staff_id`).
const STAFF_MEMBERS: [(&str, &str); 5] = [
    ("agent", "support"),
    ("approved_by", "support"),
    ("reviewer", "reviewer"),
    ("claimed_by", "reviewer"),
    ("staff_id", "school staff"),
];

const README: &str = "\
Shenfen: a copy of the personal information held about you (PIPL art. 45).
Shenfen：我们持有的您的个人信息副本（《个人信息保护法》第四十五条）。

profile.json              your account as it stands now
events/account.json       every change to your account, when, and by whom (staff by role)
events/verification.json  your real-name verification attempts and manual reviews
reviews.json              your manual-review applications and their outcomes
photos/                   the ID photos of your applications still kept
";

/// The archive's bytes.
pub async fn archive(state: &AppState, holder: &Holder, now: DateTime<Utc>) -> ApiResult<Vec<u8>> {
    let account_id = &holder.account_id;
    let mut files: Vec<(String, Vec<u8>)> = vec![
        ("README.txt".into(), README.as_bytes().to_vec()),
        ("profile.json".into(), to_json(&profile(account_id, holder.account(), now))),
    ];
    for stream in ["account", "verification"] {
        let mut events = audit::history(&state.db, stream, account_id).await.map_err(ApiError::internal)?;
        audit::open(state.keyring(), &mut events).await.map_err(ApiError::internal)?;
        let events: Vec<Value> = events.iter().map(event).collect();
        files.push((format!("events/{stream}.json"), to_json(&Value::Array(events))));
    }
    let verification = state.verifications.load(account_id).await?;
    let reviews: Vec<Value> = verification.applications.iter().map(review).collect();
    files.push(("reviews.json".into(), to_json(&Value::Array(reviews))));
    for application in verification.applications.iter().filter(|a| !a.photos_deleted) {
        let photos = &application.photos;
        for (which, digest) in [("front", &photos.front), ("back", &photos.back), ("handheld", &photos.handheld)] {
            if let Some(bytes) = state.blobs.get(digest).await.map_err(ApiError::internal)? {
                files.push((format!("photos/{}/{which}.jpg", application.review_id), bytes));
            }
        }
    }
    tokio::task::spawn_blocking(move || zip(files)).await.map_err(ApiError::internal)?.map_err(ApiError::internal)
}

fn to_json(value: &Value) -> Vec<u8> {
    serde_json::to_vec_pretty(value).unwrap_or_else(|_| unreachable!("a JSON value serialises"))
}

fn zip(files: Vec<(String, Vec<u8>)>) -> zip::result::ZipResult<Vec<u8>> {
    let mut zip = ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, bytes) in files {
        // JPEG does not compress further.
        let method = if name.ends_with(".jpg") { CompressionMethod::Stored } else { CompressionMethod::Deflated };
        zip.start_file(name, SimpleFileOptions::default().compression_method(method))?;
        zip.write_all(&bytes)?;
    }
    Ok(zip.finish()?.into_inner())
}

fn profile(account_id: &str, account: &shenfen_domain::account::Account, now: DateTime<Utc>) -> Value {
    json!({
        "exported_at": now,
        "account_id": account_id,
        "document_type": account.document_type.map(|t| t.as_str()),
        "document_number": account.document_number.as_ref().map(|n| n.as_str()),
        "name": account.name.as_ref().map(|n| n.as_str()),
        "validity": account.validity,
        "email": account.email.as_ref().map(|e| e.as_str()),
        "mobile": account.mobile.as_ref().map(|m| m.as_str()),
        "wechat_openid": account.wechat_openid,
        "registered_at": account.registered_at,
        "profile": account.profile,
        "real_name_status": account.real_name_status.as_str(),
        "deletion_effective_at": account.deletion_effective_at,
    })
}

/// One event as the holder sees it: staff by role, secrets redacted.
fn event(e: &StoredEvent) -> Value {
    let meta = |key: &str| e.metadata.get(key).and_then(Value::as_str).map(str::to_string);
    let kind = meta("actor_kind");
    let actor = match kind.as_deref() {
        Some("staff") => json!({"kind": "staff", "role": meta("actor_role")}),
        _ => json!({"kind": kind}),
    };
    let mut payload = audit::redact(&e.payload);
    unname_staff(&mut payload);
    json!({"stream": e.aggregate_type, "sequence": e.sequence, "event_type": e.event_type, "at": e.at(),
           "actor": actor, "payload": payload})
}

/// Replaces every staff id in `value` with the role of the member that holds it.
fn unname_staff(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                match STAFF_MEMBERS.iter().find(|(member, _)| member == k) {
                    Some((_, role)) if v.is_string() => *v = Value::String((*role).to_string()),
                    _ => unname_staff(v),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(unname_staff),
        _ => {}
    }
}

fn review(a: &Application) -> Value {
    json!({
        "review_id": a.review_id,
        "document_type": a.document_type.as_str(),
        "name": a.name.as_str(),
        "validity": a.validity,
        "submitted_at": a.submitted_at,
        "due_by": a.due_by,
        "status": a.status.as_str(),
        "decision_reason": a.decision_reason,
        "decided_at": a.decided_at,
        "photos_deleted": a.photos_deleted,
    })
}

const STUDENT_README: &str = "\
Shenfen: a copy of the personal information held about you as a student (PIPL art. 45).
Shenfen：我们持有的您的学生身份认证个人信息副本（《个人信息保护法》第四十五条）。

student.json           your student account and application as they stand now
events/student.json    every change, when, and by whom (school staff by role)
materials/             your identity materials (household register page, ID card sides)
";

/// The student's archive: the student and application, the stream opened with its actors,
/// the materials.
pub async fn student_archive(
    state: &AppState,
    student_id: &str,
    student: &shenfen_domain::student::Student,
    now: DateTime<Utc>,
) -> ApiResult<Vec<u8>> {
    let view = json!({
        "exported_at": now,
        "student_id": student_id,
        "student_number": student.student_number,
        "pass_id": student.pass_id,
        "mobile": student.mobile,
        "education_identity": student.education_identity,
        "status": student.status.as_str(),
        "personal": student.personal,
        "enrolment": student.enrolment,
        "guardian": student.guardian,
        "guardian_verified": student.guardian_is_verified(),
        "approved_at": student.approved_at,
        "deletion_effective_at": student.deletion_effective_at,
    });
    let mut files: Vec<(String, Vec<u8>)> =
        vec![("README.txt".into(), STUDENT_README.as_bytes().to_vec()), ("student.json".into(), to_json(&view))];
    let mut events = audit::history(&state.db, "student", student_id).await.map_err(ApiError::internal)?;
    audit::open(state.keyring(), &mut events).await.map_err(ApiError::internal)?;
    let events: Vec<Value> = events.iter().map(event).collect();
    files.push(("events/student.json".into(), to_json(&Value::Array(events))));
    for (material, digest) in &student.materials {
        if let Some(bytes) = state.blobs.get(digest).await.map_err(ApiError::internal)? {
            files.push((format!("materials/{}.jpg", material.as_str()), bytes));
        }
    }
    tokio::task::spawn_blocking(move || zip(files)).await.map_err(ApiError::internal)?.map_err(ApiError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staff_ids_anywhere_in_a_payload_become_roles() {
        let mut payload = json!({"ContactChanged": {"by": {"agent": "stf_1"}, "approved_by": "stf_2", "mobile": "138"},
                                 "Approved": {"reviewer": "stf_3"}, "claimed_by": null});
        unname_staff(&mut payload);
        assert_eq!(
            payload,
            json!({"ContactChanged": {"by": {"agent": "support"}, "approved_by": "support", "mobile": "138"},
                   "Approved": {"reviewer": "reviewer"}, "claimed_by": null})
        );
    }
}
