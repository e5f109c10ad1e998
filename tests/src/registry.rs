//! A fake student registry (学籍库) for the server's `http:URL` adapter, shared by every test of
//! the binary: one HTTP server on a thread of its own (so it outlives each test's runtime),
//! answering for the student numbers the tests put in it. Student numbers are unique per test
//! ([`student_number`]), so tests never see each other's records.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::generate::next_unique;

/// What the registry answers for one student number.
#[derive(Debug, Clone)]
pub enum RegistryEntry {
    /// The record (`student_number,name,id_number,birth_date,school_code,grade,class,
    /// head_teacher_mobile`).
    Found(StudentRecord),
    SchoolNotSynced,
    Unavailable,
}

/// A registry record.
#[derive(Debug, Clone, PartialEq)]
pub struct StudentRecord {
    pub student_number: String,
    pub name: String,
    /// Empty for a student with no ID number.
    pub id_number: String,
    pub birth_date: String,
    pub school_code: String,
    pub grade: u8,
    pub class: String,
    pub head_teacher_mobile: String,
}

type Entries = Arc<Mutex<HashMap<String, RegistryEntry>>>;

struct Fake {
    url: String,
    entries: Entries,
}

fn fake() -> &'static Fake {
    static FAKE: OnceLock<Fake> = OnceLock::new();
    FAKE.get_or_init(|| {
        let entries: Entries = Arc::default();
        let served = entries.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the fake registry");
                tx.send(listener.local_addr().expect("address")).expect("report the address");
                let app = Router::new().route("/lookup", post(lookup)).with_state(served);
                let _ = axum::serve(listener, app).await;
            });
        });
        let addr = rx.recv().expect("the fake registry started");
        Fake { url: format!("http://{addr}/lookup"), entries }
    })
}

async fn lookup(State(entries): State<Entries>, Json(body): Json<Value>) -> Json<Value> {
    let number = body["student_number"].as_str().unwrap_or_default().to_string();
    let entry = entries.lock().expect("registry").get(&number).cloned();
    Json(match entry {
        None => json!({"result": "not_found"}),
        Some(RegistryEntry::SchoolNotSynced) => json!({"result": "school_not_synced"}),
        Some(RegistryEntry::Unavailable) => json!({"result": "unavailable"}),
        Some(RegistryEntry::Found(r)) => json!({"result": "found", "record": {
            "student_number": r.student_number, "name": r.name, "id_number": r.id_number,
            "birth_date": r.birth_date, "school_code": r.school_code, "grade": r.grade.to_string(),
            "class": r.class, "head_teacher_mobile": r.head_teacher_mobile}}),
    })
}

/// `http:URL` of the shared fake registry, for `SHENFEN_STUDENT_REGISTRY`.
pub fn student_registry_spec() -> String {
    format!("http:{}", fake().url)
}

/// Makes the registry answer `entry` for `student_number` from now on.
pub fn set_registry_entry(student_number: &str, entry: RegistryEntry) {
    fake().entries.lock().expect("registry").insert(student_number.to_string(), entry);
}

/// Removes `student_number` from the registry (it then answers `not_found`).
pub fn remove_registry_entry(student_number: &str) {
    fake().entries.lock().expect("registry").remove(student_number);
}

/// A fresh `L` student number (L + 18 digits), unique in this process.
pub fn student_number() -> String {
    use rand::Rng;
    format!("L{:06}{:012}", rand::thread_rng().gen_range(0..1_000_000), next_unique() % 1_000_000_000_000)
}
