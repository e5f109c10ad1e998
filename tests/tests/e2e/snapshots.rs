//! Snapshots are trusted only when they are what the server wrote: a snapshot edited in the
//! database (its MAC under the chain key no longer holds), or one whose last event is not in
//! the log as it claims, is ignored and the stream folded from its events. On both stores.

use crate::common::{meta, registration};
use serde_json::Value;
use shenfen_domain::account::{Account, AccountCommand, Checked, LockoutPolicy, LogIn, NewSession, PasswordCheck};
use shenfen_projections::chain::ChainKey;
use shenfen_projections::commits::Commits;
use shenfen_projections::db::Db;
use shenfen_projections::store::{fingerprint, CommandBus};

async fn snapshot_row(db: &Db) -> (i64, String, Value) {
    let row: Option<(i64, String, Value)> = shenfen_projections::fetch_optional!(
        db,
        (i64, String, Value),
        "SELECT last_sequence, last_hash, state FROM aggregate_snapshots WHERE aggregate_type = 'account' AND aggregate_id = 'acc'"
    )
    .expect("read the snapshot");
    row.expect("a snapshot was written")
}

async fn set_snapshot(db: &Db, state: &Value, mac: &str) {
    shenfen_projections::exec!(
        db,
        "UPDATE aggregate_snapshots SET state = $1, mac = $2 WHERE aggregate_type = 'account' AND aggregate_id = 'acc'",
        state,
        mac
    )
    .expect("edit the snapshot");
}

/// The name an account has when a process that has not seen it loads it.
async fn name_as_loaded(db: &Db, key: &ChainKey) -> String {
    let bus = CommandBus::<Account>::new(db, (), Commits::new(db, key.clone()));
    bus.load("acc").await.expect("load").name.map(|n| n.as_str().to_string()).unwrap_or_default()
}

async fn only_snapshots_the_server_wrote_are_trusted(db: Db) {
    let key = ChainKey::derive(&[3u8; 32]);
    let bus = CommandBus::<Account>::new(&db, (), Commits::new(&db, key.clone()));
    bus.execute("acc", AccountCommand::Register(registration("张三")), &meta()).await.expect("register");
    for i in 0..5 {
        let session = NewSession {
            session_id: format!("s{i}"),
            token_hash: format!("t{i}"),
            expires_at: meta().at + chrono::Duration::hours(1),
        };
        let hash = "H".to_string();
        let password = Checked {
            checked_hash: hash,
            lockout: LockoutPolicy { threshold: 5, duration: chrono::Duration::minutes(15) },
            check: PasswordCheck::Right(session),
        };
        let login = AccountCommand::LogIn(LogIn { password, now: meta().at });
        bus.execute("acc", login, &meta()).await.expect("log in");
    }
    bus.write_snapshot("acc").await.expect("write a snapshot");
    let (last_sequence, last_hash, state) = snapshot_row(&db).await;
    assert_eq!(last_sequence, 6);
    assert_eq!(name_as_loaded(&db, &key).await, "张三");

    // A state changed with the key (only the server can): the snapshot is used, as it should.
    let mut altered = state.clone();
    altered["name"] = Value::String("王五".into());
    let fp = fingerprint::<Account>();
    let genuine_mac = key.snapshot_mac("account", "acc", last_sequence, &fp, &last_hash, &altered);
    set_snapshot(&db, &altered, &genuine_mac).await;
    assert_eq!(name_as_loaded(&db, &key).await, "王五", "a genuine snapshot is what loads start from");

    // Events after the snapshot are folded on top of it (the snapshot and its tail are read
    // with one query).
    let fresh = CommandBus::<Account>::new(&db, (), Commits::new(&db, key.clone()));
    let relogin = AccountCommand::LogIn(LogIn {
        password: Checked {
            checked_hash: "H".into(),
            lockout: LockoutPolicy { threshold: 5, duration: chrono::Duration::minutes(15) },
            check: PasswordCheck::Right(NewSession {
                session_id: "s-after".into(),
                token_hash: "t-after".into(),
                expires_at: meta().at + chrono::Duration::hours(1),
            }),
        },
        now: meta().at,
    });
    fresh.execute("acc", relogin, &meta()).await.expect("log in after the snapshot");
    let cold = CommandBus::<Account>::new(&db, (), Commits::new(&db, key.clone()));
    let (account, sequence) = cold.load_versioned("acc").await.expect("load");
    assert_eq!(sequence, last_sequence + 1, "the event after the snapshot is folded in");
    assert_eq!(account.name.map(|n| n.as_str().to_string()).unwrap_or_default(), "王五");

    // A genuine snapshot that claims to end past the log's end: nothing anchors it, ignored.
    let beyond = key.snapshot_mac("account", "acc", 50, &fp, &last_hash, &altered);
    shenfen_projections::exec!(
        &db,
        "UPDATE aggregate_snapshots SET last_sequence = 50, state = $1, mac = $2
          WHERE aggregate_type = 'account' AND aggregate_id = 'acc'",
        &altered,
        &beyond
    )
    .expect("edit the snapshot");
    let cold = CommandBus::<Account>::new(&db, (), Commits::new(&db, key.clone()));
    let (account, sequence) = cold.load_versioned("acc").await.expect("load");
    assert_eq!(sequence, last_sequence + 1, "a snapshot past the log's end is ignored, not read as the end");
    assert_eq!(account.name.map(|n| n.as_str().to_string()).unwrap_or_default(), "张三");
    shenfen_projections::exec!(
        &db,
        "UPDATE aggregate_snapshots SET last_sequence = $1 WHERE aggregate_type = 'account' AND aggregate_id = 'acc'",
        last_sequence
    )
    .expect("put the snapshot back");

    // The same change made in the database without the key: ignored.
    set_snapshot(&db, &altered, &key.snapshot_mac("account", "acc", last_sequence, &fp, &last_hash, &state)).await;
    assert_eq!(name_as_loaded(&db, &key).await, "张三", "an edited snapshot is ignored");

    // A genuine snapshot whose last event is no longer in the log as it claims: ignored.
    set_snapshot(&db, &altered, &genuine_mac).await;
    shenfen_projections::exec!(
        &db,
        "UPDATE events SET metadata = $1 WHERE aggregate_type = 'account' AND aggregate_id = 'acc' AND sequence = $2",
        serde_json::json!({"hash": "0".repeat(64), "request_id": "r"}),
        last_sequence
    )
    .expect("edit the log");
    assert_eq!(name_as_loaded(&db, &key).await, "张三", "a snapshot not anchored in the log is ignored");
}

#[tokio::test]
async fn on_sqlite_only_snapshots_the_server_wrote_are_trusted() {
    only_snapshots_the_server_wrote_are_trusted(crate::common::sqlite("snapshots").await).await;
}

#[tokio::test]
async fn on_postgres_only_snapshots_the_server_wrote_are_trusted() {
    let (_server, _, db) = crate::common::postgres().await;
    only_snapshots_the_server_wrote_are_trusted(db).await;
}
