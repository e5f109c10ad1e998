//! Snapshots of aggregate state: where loading starts, trusted only when their MAC and the
//! event they claim to end at both hold, and written outside the command path.

use cqrs_es::persist::{PersistedEventRepository, SerializedEvent};
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

impl<A> CommandBus<A>
where
    A: Aggregate + StateVersion + shenfen_domain::KeyEpoch + Clone + 'static,
    A::Command: Clone,
{
    pub(super) async fn snapshot(&self, id: &str) -> Option<SnapshotRow> {
        let row = crate::fetch_optional!(
            &self.db,
            SnapshotRow,
            "SELECT last_sequence, last_hash, state, mac FROM aggregate_snapshots
              WHERE aggregate_type = $1 AND aggregate_id = $2 AND fingerprint = $3",
            A::TYPE,
            id,
            &self.fingerprint
        );
        row.ok().flatten()
    }

    /// The stream's snapshot and the events after it, if the snapshot can be trusted: its MAC
    /// (under the chain key) holds and the event it claims to end at is in the store with the
    /// hash it names. A snapshot that fails either — edited in the database, or left from a
    /// log that was changed — is ignored and counted (`shenfen_snapshots_rejected_total`).
    pub(super) async fn trusted_snapshot(
        &self,
        id: &str,
    ) -> Result<Option<(Loaded<A>, Vec<SerializedEvent>)>, BusError<A::Error>> {
        let Some(snap) = self.snapshot(id).await else { return Ok(None) };
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
        let from = usize::try_from(snap.last_sequence - 1).unwrap_or_default();
        let mut events =
            self.repo.get_last_events::<A>(id, from).await.map_err(|e| BusError::Store(e.to_string()))?.into_iter();
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
