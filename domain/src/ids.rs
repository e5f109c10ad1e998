//! Derived aggregate ids.
//!
//! An account's id is a keyed hash (HMAC-SHA-256, truncated to 128 bits and written as a UUID)
//! of its document type and number. The key stays with the operator, so an id reveals nothing
//! about the document, yet the same document always maps to the same event stream: that is
//! what makes a second registration collide in the event store.

use sha2::{Digest, Sha256};

use crate::shared::document::{DocumentNumber, DocumentType};

/// HMAC-SHA-256 over `parts`, each prefixed by its length so that no two different part
/// lists give the same input.
pub fn keyed_hash(key: &[u8], parts: &[&str]) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for part in parts {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part.as_bytes());
    }
    mac.finalize().into_bytes().into()
}

fn as_uuid(bytes: &[u8; 32]) -> String {
    let h = hex::encode(&bytes[..16]);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// The account aggregate id for a document.
pub fn account_id(key: &[u8], doc_type: DocumentType, number: &DocumentNumber) -> String {
    as_uuid(&keyed_hash(key, &["account", doc_type.as_str(), number.as_str()]))
}

/// The staff aggregate id for a username.
pub fn staff_id(key: &[u8], username: &str) -> String {
    as_uuid(&keyed_hash(key, &["staff", username]))
}

/// The student aggregate id for a student number.
pub fn student_id(key: &[u8], number: &crate::student::StudentNumber) -> String {
    as_uuid(&keyed_hash(key, &["student", number.as_str()]))
}

/// The pass-ID ownership stream's id for a pass ID.
pub fn pass_id_stream(key: &[u8], pass_id: &crate::student::PassId) -> String {
    as_uuid(&keyed_hash(key, &["pass_id", pass_id.as_str()]))
}

/// The code-channel aggregate id for a purpose and a mobile number.
pub fn code_channel_id(key: &[u8], purpose: &str, mobile: &str) -> String {
    as_uuid(&keyed_hash(key, &["code", purpose, mobile]))
}

/// SHA-256 of a high-entropy secret (session token, reset token), hex-encoded. Low-entropy
/// secrets (6-digit codes) are hashed with [`keyed_hash`] instead, so a leaked log cannot be
/// brute-forced without the key.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Keyed hash of a short code, bound to its purpose and destination.
pub fn code_hash(key: &[u8], scope: &str, code: &str) -> String {
    hex::encode(keyed_hash(key, &["secret", scope, code]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_hashes_depend_on_key_and_on_part_boundaries() {
        // Same key and parts give the same id; a different key gives a different one.
        let a = keyed_hash(b"key", &["a", "b"]);
        assert_eq!(a, keyed_hash(b"key", &["a", "b"]));
        assert_ne!(a, keyed_hash(b"other", &["a", "b"]));
        // Length prefixes keep ["ab", ""] apart from ["a", "b"].
        assert_ne!(a, keyed_hash(b"key", &["ab", ""]));
    }

    #[test]
    fn code_channel_ids_look_like_uuids() {
        let id = code_channel_id(b"k", "register", "13800000000");
        assert_eq!(id.len(), 36);
        assert_eq!(id.matches('-').count(), 4);
    }
}
