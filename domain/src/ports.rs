//! Ports: the outside systems the domain depends on, as traits. Adapters live in `api`.

use async_trait::async_trait;

use crate::shared::document::{DocumentNumber, DocumentType};
use crate::shared::name::PersonName;
use crate::shared::validity::Validity;
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
