//! The per-aggregate hash chain that makes the log tamper-evident.
//!
//! Every event's metadata carries `prev_hash` (the previous event's hash in the same stream,
//! 64 zeros for the first) and `hash` = SHA-256 over `prev_hash`, the stream's type and id,
//! the sequence, the event type and version, and the canonical JSON (keys sorted) of the
//! payload and of the metadata without `hash`. A changed payload, a deleted event or two
//! swapped events break the chain at the first affected event.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The `prev_hash` of a stream's first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Writes `value` as JSON with object keys sorted, whatever order they were stored in.
pub fn canonical(value: &Value, out: &mut String) {
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
                canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The hash of one event, given its fields and its metadata (with `prev_hash`, without `hash`).
pub fn event_hash(
    aggregate_type: &str,
    aggregate_id: &str,
    sequence: i64,
    event_type: &str,
    event_version: &str,
    payload: &Value,
    metadata: &Value,
) -> String {
    let mut text = String::new();
    for part in [aggregate_type, aggregate_id, &sequence.to_string(), event_type, event_version] {
        text.push_str(part);
        text.push('\n');
    }
    canonical(payload, &mut text);
    text.push('\n');
    let mut meta = metadata.clone();
    if let Value::Object(map) = &mut meta {
        map.remove("hash");
    }
    canonical(&meta, &mut text);
    hex::encode(Sha256::digest(text.as_bytes()))
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
    pub event_type: &'a str,
    pub event_version: &'a str,
    pub payload: &'a Value,
    pub metadata: &'a Value,
}

/// Checks one stream (events in sequence order); returns the first broken link.
pub fn verify_stream<'a>(
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
        let actual = event_hash(
            aggregate_type,
            aggregate_id,
            link.sequence,
            link.event_type,
            link.event_version,
            link.payload,
            link.metadata,
        );
        if stored != actual {
            return broken("hash does not match the event's content (it was altered)".into());
        }
        expected_prev = actual;
    }
    None
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn chain(payloads: &[Value]) -> Vec<(Value, Value)> {
        let mut prev = GENESIS.to_string();
        payloads
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mut meta = json!({"prev_hash": prev, "actor_kind": "system"});
                let hash = event_hash("account", "a1", i as i64 + 1, "E", "1", p, &meta);
                meta["hash"] = json!(hash.clone());
                prev = hash;
                (p.clone(), meta)
            })
            .collect()
    }

    fn check(events: &[(i64, Value, Value)]) -> Option<BrokenLink> {
        verify_stream(
            "account",
            "a1",
            events.iter().map(|(s, p, m)| Link {
                sequence: *s,
                event_type: "E",
                event_version: "1",
                payload: p,
                metadata: m,
            }),
        )
    }

    #[test]
    fn key_order_does_not_change_the_canonical_form() {
        let (mut a, mut b) = (String::new(), String::new());
        canonical(&json!({"b": 1, "a": {"y": [1, 2], "x": "é"}}), &mut a);
        canonical(&serde_json::from_str::<Value>(r#"{"a":{"x":"é","y":[1,2]},"b":1}"#).unwrap_or_default(), &mut b);
        assert_eq!(a, b);
    }

    #[test]
    fn an_intact_chain_verifies_and_tampering_is_found_at_its_first_link() {
        let events: Vec<(i64, Value, Value)> = chain(&[json!({"n": 1}), json!({"n": 2}), json!({"n": 3})])
            .into_iter()
            .enumerate()
            .map(|(i, (p, m))| (i as i64 + 1, p, m))
            .collect();
        assert_eq!(check(&events), None);

        let mut changed = events.clone();
        changed[1].1 = json!({"n": 20});
        assert_eq!(check(&changed).map(|b| b.sequence), Some(2));

        let mut deleted = events.clone();
        deleted.remove(1);
        assert_eq!(check(&deleted).map(|b| b.sequence), Some(3));

        let mut swapped = events.clone();
        swapped.swap(0, 1);
        swapped[0].0 = 1;
        swapped[1].0 = 2;
        assert_eq!(check(&swapped).map(|b| b.sequence), Some(1));
    }
}
