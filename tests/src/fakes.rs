//! Fake ports on loopback: WeChat's OAuth exchange and the identity authority.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{extract::State, http::StatusCode as AxumStatus, routing::post, Json, Router};
use serde_json::{json, Value};

use crate::*;

/// A fake WeChat open platform for the server's `http:URL` WeChat port: the OAuth code
/// `wx:OPENID` (see [`wechat_code_for`]) is exchanged for `OPENID`; any other code is refused
/// with 400, as an unknown or used code is.
pub struct FakeWechat {
    /// `http://127.0.0.1:PORT/oauth`
    pub url: String,
}

impl FakeWechat {
    pub(crate) async fn start() -> FakeWechat {
        async fn exchange(Json(body): Json<Value>) -> (AxumStatus, Json<Value>) {
            match body["oauth_code"].as_str().and_then(|c| c.strip_prefix("wx:")) {
                Some(openid) if !openid.is_empty() => (AxumStatus::OK, Json(json!({ "openid": openid }))),
                _ => (AxumStatus::BAD_REQUEST, Json(json!({ "errcode": 40029 }))),
            }
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind fake WeChat");
        let addr = listener.local_addr().unwrap();
        let app = Router::new().route("/oauth", post(exchange));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeWechat { url: format!("http://{addr}/oauth") }
    }
}

/// The OAuth code the fake WeChat exchanges for `openid`.
pub fn wechat_code_for(openid: &str) -> String {
    format!("wx:{openid}")
}

/// The name of a registry row that makes the authority answer "unavailable".
pub const UNAVAILABLE: &str = "!unavailable";

/// One person as the identity authority knows them: a row of the reference registry
/// (`document_type,document_number,name,validity_start,validity_end`).
#[derive(Debug, Clone)]
pub struct Identity {
    pub document_type: String,
    pub document_number: String,
    /// The name on record; [`UNAVAILABLE`] makes the authority unavailable for this document.
    pub name: String,
    /// Checked only when not empty.
    pub validity_start: String,
    /// Checked only when not empty.
    pub validity_end: String,
}

impl Identity {
    /// A fresh resident ID card holder on record as `name` (validity not checked).
    pub fn resident(name: &str) -> Identity {
        Identity {
            document_type: "resident_id_card".into(),
            document_number: resident_id_number(),
            name: name.into(),
            validity_start: String::new(),
            validity_end: String::new(),
        }
    }

    /// A fresh resident ID card for which the authority is unavailable.
    pub fn unavailable() -> Identity {
        Identity::resident(UNAVAILABLE)
    }

    /// A registration of this resident ID card under `name`, which may differ from the name on
    /// record (the authority then answers `name_mismatch`).
    pub fn registration(&self, name: &str) -> Registration {
        Registration {
            document_type: self.document_type.clone(),
            document_number: self.document_number.clone(),
            name: name.into(),
            ..Registration::resident()
        }
    }

    pub(crate) fn csv_line(&self) -> String {
        [&self.document_type, &self.document_number, &self.name, &self.validity_start, &self.validity_end]
            .iter()
            .map(|field| {
                if field.contains([',', '"', '\n']) {
                    format!("\"{}\"", field.replace('"', "\"\""))
                } else {
                    field.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The reference registry CSV listing `identities`.
pub fn identity_registry_csv(identities: &[Identity]) -> String {
    let mut csv = String::from("document_type,document_number,name,validity_start,validity_end\n");
    for identity in identities {
        csv.push_str(&identity.csv_line());
        csv.push('\n');
    }
    csv
}

/// A fake identity authority for the `http:URL` adapter, on loopback: answers
/// `{"result": "passed"}` when type, number and name match a known person, `failed` with
/// `name_mismatch` or `identity_not_found` otherwise, and `unavailable` for [`UNAVAILABLE`];
/// records every query.
#[derive(Debug)]
pub struct FakeAuthority {
    /// `http://127.0.0.1:PORT/check`
    pub url: String,
    people: Mutex<Vec<Identity>>,
    queries: Mutex<Vec<Value>>,
    delay: Mutex<Duration>,
}

impl FakeAuthority {
    pub(crate) async fn start(people: Vec<Identity>) -> Arc<FakeAuthority> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind fake authority");
        let addr = listener.local_addr().unwrap();
        let authority = Arc::new(FakeAuthority {
            url: format!("http://{addr}/check"),
            people: Mutex::new(people),
            queries: Mutex::new(Vec::new()),
            delay: Mutex::new(Duration::ZERO),
        });
        let app = Router::new().route("/check", post(check_identity)).with_state(authority.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        authority
    }

    /// Adds a person (takes effect at once).
    pub fn add(&self, identity: Identity) {
        self.people.lock().unwrap().push(identity);
    }

    /// Every query received so far, in order.
    pub fn queries(&self) -> Vec<Value> {
        self.queries.lock().unwrap().clone()
    }

    /// Makes every later answer take `delay` (a slow authority).
    pub fn answer_after(&self, delay: Duration) {
        *self.delay.lock().unwrap() = delay;
    }

    pub(crate) fn answer(&self, query: &Value) -> Value {
        let field = |name: &str| query[name].as_str().unwrap_or("").trim().to_string();
        let people = self.people.lock().unwrap();
        let found = people.iter().find(|p| {
            p.document_type == field("document_type")
                && p.document_number.eq_ignore_ascii_case(&field("document_number"))
        });
        match found {
            None => json!({"result": "failed", "reason": "identity_not_found"}),
            Some(p) if p.name == UNAVAILABLE => json!({"result": "unavailable"}),
            Some(p) if p.name != field("name") => json!({"result": "failed", "reason": "name_mismatch"}),
            Some(_) => json!({"result": "passed"}),
        }
    }
}

pub(crate) async fn check_identity(
    State(authority): State<Arc<FakeAuthority>>,
    Json(query): Json<Value>,
) -> Json<Value> {
    let delay = *authority.delay.lock().unwrap();
    tokio::time::sleep(delay).await;
    let answer = authority.answer(&query);
    authority.queries.lock().unwrap().push(query);
    Json(answer)
}
