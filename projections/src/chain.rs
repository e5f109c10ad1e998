//! The keyed hash chain that makes the log tamper-evident, and the keyed records that make a
//! truncation or a deleted stream visible.
//!
//! Every event's metadata carries `prev_hash` (the previous event's hash in the same stream,
//! 64 zeros for the first) and `hash` = HMAC-SHA-256, under the [`ChainKey`], over
//! `prev_hash`, the stream's type and id, the sequence, the event type and version, and the
//! canonical JSON (keys sorted) of the payload and of the metadata without `hash`. The key is
//! derived from `SHENFEN_SECRET_KEY_FILE` and never stored in the database, so someone who can
//! write to the database cannot recompute a hash after changing an event: a changed payload, a
//! deleted event or two swapped events break the chain at the first affected event.
//!
//! Events written before the chain was keyed carry a plain SHA-256 over the same text. They
//! are accepted as such only at positions up to the one recorded, under the key, when keying
//! began (`keyed_from` of the [`seal`](crate::seal)); the keyed stream heads recorded since
//! anchor them, so they cannot be rewritten unseen either.
//!
//! Deleting a stream's last events, or a whole stream, leaves an intact chain behind. The
//! [`seal`](crate::seal) catches that: it records each stream's head under the key, and a keyed
//! digest over all heads.

use std::path::Path;

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::log::Position;

/// The `prev_hash` of a stream's first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The key of the chain and of the records that protect it (stream heads, the seal,
/// snapshots): derived from the operator's secret key, never stored in the database.
#[derive(Clone)]
pub struct ChainKey([u8; 32]);

impl std::fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChainKey([hidden])")
    }
}

/// The key file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("reading the key file {0}: {1}")]
    Read(String, std::io::Error),
    #[error("the key file {0} holds fewer than 32 bytes")]
    Short(String),
}

impl ChainKey {
    /// The chain key derived from the operator's secret key material.
    pub fn derive(secret: &[u8]) -> ChainKey {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
        mac.update(b"shenfen chain key v1");
        ChainKey(mac.finalize().into_bytes().into())
    }

    /// The chain key of the secret key file at `path` (as the server reads it; not created).
    pub fn from_key_file(path: &Path) -> Result<ChainKey, KeyError> {
        let secret = std::fs::read(path).map_err(|e| KeyError::Read(path.display().to_string(), e))?;
        if secret.len() < 32 {
            return Err(KeyError::Short(path.display().to_string()));
        }
        Ok(ChainKey::derive(&secret))
    }

    /// The key's bytes, from which the subject keys' master key is derived
    /// ([`Keyring`](crate::pii::Keyring)).
    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// HMAC-SHA-256 of `parts` (each followed by a line break), as hex.
    pub fn mac(&self, parts: &[&[u8]]) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!());
        for part in parts {
            mac.update(part);
            mac.update(b"\n");
        }
        hex::encode(mac.finalize().into_bytes())
    }

    /// The hash of one event, given its fields and its metadata (with `prev_hash`, without
    /// `hash`).
    pub fn event_hash(&self, link: &Link<'_>, aggregate_type: &str, aggregate_id: &str) -> String {
        let text = link_text(link, aggregate_type, aggregate_id);
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!());
        mac.update(&text);
        hex::encode(mac.finalize().into_bytes())
    }

    /// The keyed record of a stream's head (also its element of the seal's digest).
    pub fn head_mac(&self, aggregate_type: &str, aggregate_id: &str, sequence: i64, hash: &str) -> String {
        self.mac(&[
            b"head",
            aggregate_type.as_bytes(),
            aggregate_id.as_bytes(),
            sequence.to_string().as_bytes(),
            hash.as_bytes(),
        ])
    }

    /// The keyed record of a snapshot: everything it claims, its state in canonical JSON.
    pub fn snapshot_mac(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        last_sequence: i64,
        fingerprint: &str,
        last_hash: &str,
        state: &Value,
    ) -> String {
        let mut text = Vec::new();
        canonical(state, &mut text);
        self.mac(&[
            b"snapshot",
            aggregate_type.as_bytes(),
            aggregate_id.as_bytes(),
            last_sequence.to_string().as_bytes(),
            fingerprint.as_bytes(),
            last_hash.as_bytes(),
            &text,
        ])
    }
}

/// Writes `value` as JSON with object keys sorted, whatever order they were stored in.
///
/// Written straight into `out` (no string per key or value): it runs for every event a
/// command writes and every event a verifier or the seal reads.
pub fn canonical(value: &Value, out: &mut Vec<u8>) {
    canonical_without(value, None, out);
}

/// [`canonical`], leaving out the top-level member `skip` of an object.
fn canonical_without(value: &Value, skip: Option<&str>, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().filter(|(k, _)| Some(k.as_str()) != skip).collect();
            members.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (key, value)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(key, out);
                out.push(b':');
                canonical_without(value, None, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical_without(item, None, out);
            }
            out.push(b']');
        }
        other => write_json(other, out),
    }
}

/// A string or scalar as compact JSON (what `Value::to_string` gives).
fn write_json<T: serde::Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    // Writing into a Vec cannot fail, and strings and JSON scalars always serialize.
    let _ = serde_json::to_writer(&mut *out, value);
}

/// The text an event's hash is computed over.
fn link_text(link: &Link<'_>, aggregate_type: &str, aggregate_id: &str) -> Vec<u8> {
    let mut text = Vec::with_capacity(256 + link.payload.as_object().map_or(0, |m| m.len() * 48));
    for part in [aggregate_type, aggregate_id, &link.sequence.to_string(), link.event_type, link.event_version] {
        text.extend_from_slice(part.as_bytes());
        text.push(b'\n');
    }
    canonical(link.payload, &mut text);
    text.push(b'\n');
    canonical_without(link.metadata, Some("hash"), &mut text);
    text
}

/// The plain SHA-256 of the chain of earlier versions (unkeyed): what anyone can compute.
/// Accepted only for events written before the chain was keyed.
pub fn unkeyed_hash(link: &Link<'_>, aggregate_type: &str, aggregate_id: &str) -> String {
    hex::encode(Sha256::digest(link_text(link, aggregate_type, aggregate_id)))
}

/// The first link that does not hold in a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenLink {
    pub sequence: i64,
    pub problem: String,
}

/// One stored event, as far as the chain is concerned.
pub struct Link<'a> {
    pub sequence: i64,
    /// Where it stands in the global order.
    pub position: Position,
    pub event_type: &'a str,
    pub event_version: &'a str,
    pub payload: &'a Value,
    pub metadata: &'a Value,
}

impl<'a> From<&'a crate::log::StoredEvent> for Link<'a> {
    fn from(e: &'a crate::log::StoredEvent) -> Self {
        Link {
            sequence: e.sequence,
            position: e.position(),
            event_type: &e.event_type,
            event_version: &e.event_version,
            payload: &e.payload,
            metadata: &e.metadata,
        }
    }
}

/// How a stream is checked: the key, and up to where unkeyed (legacy) links are accepted.
#[derive(Debug, Clone)]
pub struct Verifier {
    pub key: ChainKey,
    /// Events at or before this position may carry the plain SHA-256 chain of earlier
    /// versions; every later event must be keyed.
    pub keyed_from: Position,
}

impl Verifier {
    /// Checks one stream (events in sequence order); returns the first broken link.
    pub fn verify_stream<'a>(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        events: impl IntoIterator<Item = Link<'a>>,
    ) -> Option<BrokenLink> {
        let mut expected_prev = GENESIS.to_string();
        for (expected_sequence, link) in (1i64..).zip(events) {
            let broken = |problem: String| Some(BrokenLink { sequence: link.sequence, problem });
            if link.sequence != expected_sequence {
                return broken(format!(
                    "sequence {} where {} was expected (an event is missing or moved)",
                    link.sequence, expected_sequence
                ));
            }
            let prev = link.metadata.get("prev_hash").and_then(Value::as_str).unwrap_or_default();
            if prev != expected_prev {
                return broken("prev_hash does not match the previous event's hash".into());
            }
            let stored = link.metadata.get("hash").and_then(Value::as_str).unwrap_or_default();
            if stored != self.key.event_hash(&link, aggregate_type, aggregate_id) {
                let legacy =
                    link.position <= self.keyed_from && stored == unkeyed_hash(&link, aggregate_type, aggregate_id);
                if !legacy {
                    return broken("hash does not match the event's content (it was altered)".into());
                }
            }
            expected_prev = stored.to_string();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn key() -> ChainKey {
        ChainKey::derive(&[7u8; 32])
    }

    fn chain_with(payloads: &[Value], hash: impl Fn(&Link<'_>) -> String) -> Vec<(i64, Value, Value)> {
        let mut prev = GENESIS.to_string();
        payloads
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mut meta = json!({"prev_hash": prev, "actor_kind": "system"});
                let sequence = i as i64 + 1;
                let link = Link {
                    sequence,
                    position: Position { tx: 0, pos: sequence },
                    event_type: "E",
                    event_version: "1",
                    payload: p,
                    metadata: &meta,
                };
                let h = hash(&link);
                meta["hash"] = json!(h.clone());
                prev = h;
                (sequence, p.clone(), meta)
            })
            .collect()
    }

    fn chain(payloads: &[Value]) -> Vec<(i64, Value, Value)> {
        chain_with(payloads, |l| key().event_hash(l, "account", "a1"))
    }

    fn check(verifier: &Verifier, events: &[(i64, Value, Value)]) -> Option<BrokenLink> {
        verifier.verify_stream(
            "account",
            "a1",
            events.iter().map(|(s, p, m)| Link {
                sequence: *s,
                position: Position { tx: 0, pos: *s },
                event_type: "E",
                event_version: "1",
                payload: p,
                metadata: m,
            }),
        )
    }

    fn keyed() -> Verifier {
        Verifier { key: key(), keyed_from: Position::default() }
    }

    #[test]
    fn key_order_does_not_change_the_canonical_form() {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        canonical(&json!({"b": 1, "a": {"y": [1, 2], "x": "é"}}), &mut a);
        canonical(&serde_json::from_str::<Value>(r#"{"a":{"x":"é","y":[1,2]},"b":1}"#).unwrap_or_default(), &mut b);
        assert_eq!(a, b);
    }

    /// The canonical form as it was first written (a string per key and value): every hash
    /// in every store was computed over it, so the faster one must give the same bytes.
    fn canonical_as_first_written(value: &Value, out: &mut String) {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, key) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(key.clone()).to_string());
                    out.push(':');
                    canonical_as_first_written(&map[key], out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    canonical_as_first_written(item, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }

    #[test]
    fn the_canonical_form_and_the_hashes_are_those_of_the_first_implementation() {
        let values = [
            json!({"z": "quote \" backslash \\ newline \n tab \t nul \u{0} bell \u{7}", "a": null}),
            json!({"名字": "张三", "emoji": "😀", "n": [1, -2, 3.5, 1e300, 0.1, 12345678901234567_i64], "t": true, "f": false}),
            json!([[], {}, [{}], {"": ""}, "enc:1:AAAA", 0, -0.0]),
            json!({"hash": "kept when nested", "meta": {"hash": "also kept"}, "b": {"y": {"x": [null]}}}),
            json!("just a string"),
            json!(42),
        ];
        for value in &values {
            let (mut now, mut first) = (Vec::new(), String::new());
            canonical(value, &mut now);
            canonical_as_first_written(value, &mut first);
            assert_eq!(String::from_utf8(now).unwrap_or_default(), first, "{value}");
        }
        // The metadata's own `hash` (top level only) is left out, as removing it was.
        let metadata = json!({"prev_hash": GENESIS, "hash": "x", "nested": {"hash": "y"}, "request_id": "r\u{1}"});
        let link = Link {
            sequence: 7,
            position: Position::default(),
            event_type: "ProfileUpdated",
            event_version: "1",
            payload: &values[1],
            metadata: &metadata,
        };
        let mut expected = String::from("account\na1\n7\nProfileUpdated\n1\n");
        canonical_as_first_written(&values[1], &mut expected);
        expected.push('\n');
        let mut without = metadata.clone();
        if let Some(members) = without.as_object_mut() {
            members.remove("hash");
        }
        canonical_as_first_written(&without, &mut expected);
        assert_eq!(String::from_utf8(link_text(&link, "account", "a1")).unwrap_or_default(), expected);
        assert_eq!(unkeyed_hash(&link, "account", "a1"), hex::encode(Sha256::digest(expected.as_bytes())));
    }

    #[test]
    fn an_intact_chain_verifies_and_tampering_is_found_at_its_first_link() {
        let events = chain(&[json!({"n": 1}), json!({"n": 2}), json!({"n": 3})]);
        assert_eq!(check(&keyed(), &events), None);

        let mut changed = events.clone();
        changed[1].1 = json!({"n": 20});
        assert_eq!(check(&keyed(), &changed).map(|b| b.sequence), Some(2));

        let mut deleted = events.clone();
        deleted.remove(1);
        assert_eq!(check(&keyed(), &deleted).map(|b| b.sequence), Some(3));

        let mut swapped = events.clone();
        swapped.swap(0, 1);
        swapped[0].0 = 1;
        swapped[1].0 = 2;
        assert_eq!(check(&keyed(), &swapped).map(|b| b.sequence), Some(1));
    }

    #[test]
    fn a_chain_recomputed_without_the_key_does_not_verify() {
        // Someone with database access changes an event and recomputes every hash, with the
        // plain SHA-256 of earlier versions or with a key of their own.
        let forged = chain_with(&[json!({"n": 1}), json!({"n": 2})], |l| unkeyed_hash(l, "account", "a1"));
        assert_eq!(check(&keyed(), &forged).map(|b| b.sequence), Some(1));
        let other_key = ChainKey::derive(&[8u8; 32]);
        let forged = chain_with(&[json!({"n": 1})], |l| other_key.event_hash(l, "account", "a1"));
        assert_eq!(check(&keyed(), &forged).map(|b| b.sequence), Some(1));
    }

    #[test]
    fn unkeyed_links_are_accepted_only_up_to_where_keying_began() {
        let legacy = chain_with(&[json!({"n": 1}), json!({"n": 2})], |l| unkeyed_hash(l, "account", "a1"));
        let before = Verifier { key: key(), keyed_from: Position { tx: 0, pos: 2 } };
        assert_eq!(check(&before, &legacy), None, "written before the chain was keyed");
        let partly = Verifier { key: key(), keyed_from: Position { tx: 0, pos: 1 } };
        assert_eq!(check(&partly, &legacy).map(|b| b.sequence), Some(2), "an unkeyed link after keying began");
    }

    #[test]
    fn the_key_is_never_shown() {
        assert_eq!(format!("{:?}", key()), "ChainKey([hidden])");
    }
}
