//! The notifier webhook: what the server sends, as tests read it.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
};

use axum::{extract::State, http::StatusCode as AxumStatus, routing::post, Json, Router};
use serde::Deserialize;
use serde_json::Value;

use crate::*;

/// One message the server's webhook notifier delivered.
#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    pub channel: String,
    pub to: String,
    pub purpose: String,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub link: Option<String>,
    #[serde(default)]
    pub token: Option<String>,
}

impl Message {
    /// The verification code, which this message must carry.
    pub fn code(&self) -> String {
        self.code.clone().unwrap_or_else(|| panic!("message has no code: {self:?}"))
    }
}

/// The webhook endpoint the server's notifier posts to: records every message.
#[derive(Debug)]
pub struct Hooks {
    /// `http://127.0.0.1:PORT/hook`
    pub url: String,
    messages: Mutex<VecDeque<Message>>,
    raw: Mutex<Vec<Value>>,
}

impl Hooks {
    pub(crate) async fn start() -> Arc<Hooks> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind webhook listener");
        let addr = listener.local_addr().unwrap();
        let hooks = Arc::new(Hooks {
            url: format!("http://{addr}/hook"),
            messages: Mutex::new(VecDeque::new()),
            raw: Mutex::new(Vec::new()),
        });
        let app = Router::new().route("/hook", post(receive)).with_state(hooks.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        hooks
    }

    /// Waits (up to [`MESSAGE_TIMEOUT`]) for a message to `to` for `purpose`, and takes it, so
    /// that the next call waits for a newer one.
    pub async fn wait_for_message(&self, to: &str, purpose: &str) -> Message {
        let take = || async {
            let mut messages = self.messages.lock().unwrap();
            let i = messages.iter().position(|m| m.to == to && m.purpose == purpose)?;
            messages.remove(i)
        };
        eventually(MESSAGE_TIMEOUT, take, Option::is_some).await.unwrap_or_else(|| {
            let seen = self.raw.lock().unwrap().clone();
            panic!("no {purpose} message to {to} within {MESSAGE_TIMEOUT:?}; the webhook received: {seen:#?}")
        })
    }

    /// Every message body received so far, in order.
    pub fn received(&self) -> Vec<Value> {
        self.raw.lock().unwrap().clone()
    }
}

pub(crate) async fn receive(State(hooks): State<Arc<Hooks>>, Json(body): Json<Value>) -> AxumStatus {
    hooks.raw.lock().unwrap().push(body.clone());
    match serde_json::from_value::<Message>(body) {
        Ok(message) => {
            hooks.messages.lock().unwrap().push_back(message);
            AxumStatus::NO_CONTENT
        }
        // Still 2xx, so a malformed message is seen in `received` rather than retried forever.
        Err(_) => AxumStatus::ACCEPTED,
    }
}
