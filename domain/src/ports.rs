//! Ports: the outside systems the domain depends on, as traits. Adapters live in `api`.

use async_trait::async_trait;

use crate::shared::document::{DocumentNumber, DocumentType};
use crate::shared::name::PersonName;
use crate::shared::validity::Validity;
use crate::student::{RegistryAnswer, StudentNumber};
use crate::verification::AuthorityAnswer;

/// What is asked of the identity authority.
#[derive(Debug, Clone, PartialEq)]
pub struct IdentityQuery {
    pub document_type: DocumentType,
    pub document_number: DocumentNumber,
    pub name: PersonName,
    pub validity: Option<Validity>,
}

/// The identity authority (公安身份核验, CTID): pass, fail with a reason, or unavailable.
/// Adapters must bound their time; a timeout is "unavailable".
#[async_trait]
pub trait IdentityAuthority: Send + Sync {
    /// Checks one identity.
    async fn check(&self, query: &IdentityQuery) -> AuthorityAnswer;
}

/// What the CAPTCHA service answered for a token the client got by solving the challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptchaAnswer {
    /// Solved: the request may go on.
    Passed,
    /// Unknown, used, expired or failed.
    Refused,
    /// The service could not be asked (the request is refused: the check fails closed).
    Unavailable,
}

/// The CAPTCHA port (the slider in front of codes, registrations and logins, source document
/// 000). Adapters must bound their time; a timeout is "unavailable".
#[async_trait]
pub trait Captcha: Send + Sync {
    /// Checks one token.
    async fn check(&self, token: &str) -> CaptchaAnswer;
}

/// What the WeChat open platform answered for an OAuth code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WechatAnswer {
    /// The user's openid at the service account.
    Openid(String),
    /// The code is unknown, used or expired.
    InvalidCode,
    /// WeChat could not be asked.
    Unavailable,
}

/// The WeChat port: exchanges an OAuth code (obtained by the user's own WeChat) for the openid
/// to bind, so that a client can never bind an openid it merely names. Adapters must bound
/// their time; a timeout is "unavailable".
#[async_trait]
pub trait Wechat: Send + Sync {
    /// Exchanges one OAuth code.
    async fn openid(&self, oauth_code: &str) -> WechatAnswer;
}

/// The student registry (学籍库): the record of a student number, "not found", "school not
/// synchronised", or unavailable. Adapters must bound their time; a timeout is "unavailable".
#[async_trait]
pub trait StudentRegistry: Send + Sync {
    /// Looks one student number up.
    async fn lookup(&self, number: &StudentNumber) -> RegistryAnswer;
}
