//! Security notices: what the holder is told, on the registered mobile and e-mail, when
//! something about their account's security changes — the password changed or reset, the
//! account locked, contacts changed (told to the old ones), WeChat bound, the account handed
//! over by a re-registration claim (the claim's opening is told by the claim itself). They are
//! derived from the events by the account bus ([`CommandBus::with_notices`]), so whichever
//! command writes such an event, its notice is queued in the same transaction.
//!
//! [`CommandBus::with_notices`]: shenfen_projections::store::CommandBus::with_notices

use chrono::Duration;
use serde_json::json;
use shenfen_domain::account::{Account, AccountEvent};
use shenfen_domain::metadata::EventMetadata;
use shenfen_projections::outbox::NewMessage;

/// How long a notice is tried before it is given up.
const NOTICE_DAYS: i64 = 7;

/// The notices a command's `events` call for, `before` being the account as it was.
pub fn account_notices(_: &str, before: &Account, events: &[AccountEvent], meta: &EventMetadata) -> Vec<NewMessage> {
    let mut out: Vec<NewMessage> = Vec::new();
    let mut tell = |channel: &str, to: &str, purpose: &str| {
        if !out.iter().any(|m| m.channel == channel && m.destination == to && m.purpose == purpose) {
            out.push(NewMessage {
                channel: channel.into(),
                destination: to.into(),
                purpose: purpose.into(),
                body: json!({ "at": meta.at }).to_string(),
                created_at: meta.at,
                expires_at: meta.at + Duration::days(NOTICE_DAYS),
            });
        }
    };
    let mobile = before.mobile.as_ref().map(|m| m.as_str().to_string());
    let email = before.email.as_ref().map(|e| e.as_str().to_string());
    let holder = |purpose: &str, tell: &mut dyn FnMut(&str, &str, &str)| {
        if let Some(m) = &mobile {
            tell("sms", m, purpose);
        }
        if let Some(e) = &email {
            tell("email", e, purpose);
        }
    };
    for event in events {
        match event {
            AccountEvent::PasswordChanged { .. } | AccountEvent::PasswordReset { .. } => {
                holder("password_changed", &mut tell)
            }
            AccountEvent::Locked { .. } => holder("account_locked", &mut tell),
            AccountEvent::ContactChangedBySupport { .. } | AccountEvent::EmailChanged { .. } => {
                holder("contact_changed", &mut tell)
            }
            AccountEvent::WechatBound { .. } => holder("wechat_bound", &mut tell),
            AccountEvent::Reregistered { claim_id: Some(_), .. } => holder("account_handed_over", &mut tell),
            _ => {}
        }
    }
    out
}
