//! Snapshots of aggregate state: where loading starts, trusted only when their MAC and the
//! event they claim to end at both hold, and written outside the command path.

use cqrs_es::persist::SerializedEvent;
use cqrs_es::Aggregate;
use serde_json::Value;
use shenfen_domain::StateVersion;

use super::{BusError, CommandBus, Loaded};

/// The fingerprint of an aggregate's state: its type, its `STATE_VERSION` and the shape (the
/// field names) of its serialized default. Snapshots with another fingerprint are ignored.
pub fn fingerprint<A: Aggregate + StateVersion>() -> String {
    use sha2::{Digest, Sha256};
    fn shape(v: &Value, out: &mut String) {
        if let Value::Object(map) = v {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for k in keys {
                out.push_str(k);
                out.push('{');
                shape(&map[k], out);
                out.push('}');
            }
        }
    }
    let mut text = format!("{}:{}:", A::TYPE, A::STATE_VERSION);
    shape(&serde_json::to_value(A::default()).unwrap_or(Value::Null), &mut text);
    hex::encode(Sha256::digest(text.as_bytes()))
}

#[derive(sqlx::FromRow)]
pub(super) struct SnapshotRow {
    pub(super) last_sequence: i64,
    pub(super) last_hash: String,
    pub(super) state: Value,
    pub(super) mac: Option<String>,
}

/// A row of [`CommandBus::cold_read`]: the snapshot's columns (null without one), and one event
/// (null when the stream has none from there on).
#[derive(sqlx::FromRow)]
struct ColdRow {
    snap_sequence: Option<i64>,
    snap_hash: Option<String>,
    snap_state: Option<Value>,
    snap_mac: Option<String>,
    sequence: Option<i64>,
    event_type: Option<String>,
    event_version: Option<String>,
    payload: Option<Value>,
    metadata: Option<Value>,
}

impl<A> CommandBus<A>
where
    A: Aggregate + StateVersion + shenfen_domain::KeyEpoch + Clone + 'static,
    A::Command: Clone,
{
    /// What loading a stream this process does not hold starts from, in one query: the
    /// stream's snapshot of this fingerprint if it has one, and its events from the one the
    /// snapshot ends at (every event when there is no snapshot). Nothing here is trusted yet:
    /// see [`trust`](Self::trust).
    pub(super) async fn cold_read(
        &self,
        id: &str,
    ) -> Result<(Option<SnapshotRow>, Vec<SerializedEvent>), BusError<A::Error>> {
        // One row at least (the snapshot's, or nulls), joined with the events from there on.
        let rows = crate::fetch_all!(
            &self.db,
            ColdRow,
            "SELECT s.last_sequence AS snap_sequence, s.last_hash AS snap_hash, s.state AS snap_state,
                    s.mac AS snap_mac, e.sequence, e.event_type, e.event_version, e.payload, e.metadata
               FROM (SELECT 1 AS one) AS o
               LEFT JOIN aggregate_snapshots AS s
                 ON s.aggregate_type = $1 AND s.aggregate_id = $2 AND s.fingerprint = $3
               LEFT JOIN events AS e
                 ON e.aggregate_type = $1 AND e.aggregate_id = $2 AND e.sequence >= COALESCE(s.last_sequence, 0)
              ORDER BY e.sequence",
            A::TYPE,
            id,
            &self.fingerprint
        )
        .map_err(|e| BusError::Store(e.to_string()))?;
        let mut snapshot = None;
        let mut events = Vec::with_capacity(rows.len());
        for row in rows {
            if snapshot.is_none() {
                if let (Some(last_sequence), Some(last_hash), Some(state)) =
                    (row.snap_sequence, row.snap_hash, row.snap_state)
                {
                    snapshot = Some(SnapshotRow { last_sequence, last_hash, state, mac: row.snap_mac });
                }
            }
            let (Some(sequence), Some(event_type), Some(event_version), Some(payload), Some(metadata)) =
                (row.sequence, row.event_type, row.event_version, row.payload, row.metadata)
            else {
                continue;
            };
            let sequence = usize::try_from(sequence)
                .map_err(|_| BusError::Store(format!("{} event of {id} with sequence {sequence}", A::TYPE)))?;
            events.push(SerializedEvent::new(
                id.to_string(),
                sequence,
                A::TYPE.to_string(),
                event_type,
                event_version,
                payload,
                metadata,
            ));
        }
        Ok((snapshot, events))
    }

    /// The snapshot as a start and the events after it, if it can be trusted: its MAC (under
    /// the chain key) holds and `tail`, the events from the one it claims to end at, begins
    /// with that event, in the store with the hash it names. A snapshot that fails either —
    /// edited in the database, or left from a log that was changed — is ignored and counted
    /// (`shenfen_snapshots_rejected_total`), and the caller reads the whole stream.
    pub(super) async fn trust(
        &self,
        id: &str,
        snap: SnapshotRow,
        tail: Vec<SerializedEvent>,
    ) -> Result<Option<(Loaded<A>, Vec<SerializedEvent>)>, BusError<A::Error>> {
        let key = self.commits.key();
        let genuine = snap.mac.as_deref()
            == Some(
                key.snapshot_mac(A::TYPE, id, snap.last_sequence, &self.fingerprint, &snap.last_hash, &snap.state)
                    .as_str(),
            );
        let mut opened = snap.state;
        if genuine {
            self.commits.keyring().open(id, &mut opened).await.map_err(|e| BusError::Store(e.to_string()))?;
        }
        let state = if genuine { serde_json::from_value::<A>(opened).ok() } else { None };
        let Some(state) = state else {
            if !genuine {
                Self::reject_snapshot(id, "its MAC does not hold");
            }
            return Ok(None);
        };
        let mut events = tail.into_iter();
        let anchored = events.next().is_some_and(|e| {
            e.sequence as i64 == snap.last_sequence
                && e.metadata.get("hash").and_then(Value::as_str) == Some(snap.last_hash.as_str())
        });
        if !anchored {
            Self::reject_snapshot(id, "the event it ends at is not in the log as it claims");
            return Ok(None);
        }
        Ok(Some((Loaded { state, sequence: snap.last_sequence, last_hash: snap.last_hash }, events.collect())))
    }

    fn reject_snapshot(id: &str, why: &str) {
        metrics::counter!("shenfen_snapshots_rejected_total", "aggregate" => A::TYPE).increment(1);
        tracing::warn!(aggregate = A::TYPE, aggregate_id = %id, why, "snapshot ignored");
    }

    /// Stores a snapshot of the aggregate's current state (outside the command path).
    pub async fn write_snapshot(&self, id: &str) -> Result<(), BusError<A::Error>> {
        let loaded = self.load_context(id).await?;
        if loaded.sequence == 0 {
            return Ok(());
        }
        let mut state = serde_json::to_value(&loaded.state).map_err(|e| BusError::Store(e.to_string()))?;
        self.commits.keyring().seal(id, &mut state).await.map_err(|e| BusError::Store(e.to_string()))?;
        let mac =
            self.commits.key().snapshot_mac(A::TYPE, id, loaded.sequence, &self.fingerprint, &loaded.last_hash, &state);
        let sql = "INSERT INTO aggregate_snapshots (aggregate_type, aggregate_id, last_sequence, fingerprint, last_hash, state, mac)
                   VALUES ($1, $2, $3, $4, $5, $6, $7)
                   ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE SET last_sequence = excluded.last_sequence,
                       fingerprint = excluded.fingerprint, last_hash = excluded.last_hash, state = excluded.state,
                       mac = excluded.mac
                   WHERE aggregate_snapshots.last_sequence < excluded.last_sequence
                      OR aggregate_snapshots.fingerprint <> excluded.fingerprint
                      OR aggregate_snapshots.mac IS NULL OR aggregate_snapshots.mac <> excluded.mac";
        crate::exec!(&self.db, sql, A::TYPE, id, loaded.sequence, &self.fingerprint, &loaded.last_hash, &state, &mac)
            .map_err(|e| BusError::Store(e.to_string()))?;
        Ok(())
    }
}
