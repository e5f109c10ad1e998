//! Ids that name their account: reset, review, claim and support-request ids carry the
//! account id, so no read model is needed to route them.

/// A new id that names its account: `PREFIX` + the account id's 32 hex digits + 16 random hex
/// digits. Reset and review ids are made this way, so no read model is needed to route them.
pub fn id_for(prefix: &str, account_id: &str) -> String {
    format!("{prefix}{}{}", account_id.replace('-', ""), crate::crypto::random_hex(8))
}

/// The account id named by an id made with [`id_for`].
pub fn account_of(prefix: &str, id: &str) -> Option<String> {
    let rest = id.strip_prefix(prefix)?;
    if rest.len() != 48 || !rest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let h = &rest[..32];
    Some(format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]))
}
