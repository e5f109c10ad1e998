//! The log's append path on a real database: each command's events go in all together or not
//! at all, and a command that collides with another writer is a conflict — whether the
//! appender wrote it alone or batched with others (on PostgreSQL, concurrent commands share
//! transactions).

use cqrs_es::persist::{PersistenceError, SerializedEvent};
use futures::future::join_all;
use serde_json::json;
use shenfen_projections::append::Appender;
use shenfen_projections::db::Db;

fn event(stream: &str, sequence: usize) -> SerializedEvent {
    SerializedEvent::new(
        stream.to_string(),
        sequence,
        "test".into(),
        "Happened".into(),
        "1".into(),
        json!({"Happened": {"n": sequence}}),
        json!({"request_id": "r"}),
    )
}

/// A command writing `count` events from `first` on.
fn command(stream: &str, first: usize, count: usize) -> Vec<SerializedEvent> {
    (first..first + count).map(|s| event(stream, s)).collect()
}

async fn sequences(db: &Db, stream: &str) -> Vec<i64> {
    let rows: Vec<(i64,)> = shenfen_projections::fetch_all!(
        db,
        (i64,),
        "SELECT sequence FROM events WHERE aggregate_type = 'test' AND aggregate_id = $1 ORDER BY sequence",
        stream
    )
    .expect("reading the stream");
    rows.into_iter().map(|r| r.0).collect()
}

fn conflicts(outcomes: &[Result<(), PersistenceError>]) -> usize {
    outcomes.iter().filter(|o| matches!(o, Err(PersistenceError::OptimisticLockError))).count()
}

async fn commands_go_in_whole_and_collisions_are_conflicts(db: Db) {
    let appender = Appender::new(&db);

    // 100 concurrent commands on 10 streams, none colliding: all go in.
    let mut batch = Vec::new();
    for s in 0..10 {
        for k in 0..10 {
            batch.push(command(&format!("s{s}"), 2 * k + 1, 2));
        }
    }
    let outcomes = join_all(batch.into_iter().map(|events| appender.append(events))).await;
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    for s in 0..10 {
        assert_eq!(sequences(&db, &format!("s{s}")).await, (1..=20).collect::<Vec<i64>>());
    }

    // Ten writers race for the same next sequences of each of the 10 streams: one per stream wins.
    let mut batch = Vec::new();
    for _ in 0..10 {
        for s in 0..10 {
            batch.push(command(&format!("s{s}"), 21, 2));
        }
    }
    let outcomes = join_all(batch.into_iter().map(|events| appender.append(events))).await;
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 10, "{outcomes:?}");
    assert_eq!(conflicts(&outcomes), 90);
    for s in 0..10 {
        assert_eq!(sequences(&db, &format!("s{s}")).await, (1..=22).collect::<Vec<i64>>());
    }

    // Another writer has taken sequence 2 of `partial`: a command writing 1 and 2 there is a
    // conflict and leaves no event 1 behind, while the commands beside it go in.
    appender.append(command("partial", 2, 1)).await.expect("the other writer's event");
    let mut batch = vec![command("partial", 1, 2)];
    for s in 0..30 {
        batch.push(command(&format!("beside{s}"), 1, 3));
    }
    let outcomes = join_all(batch.into_iter().map(|events| appender.append(events))).await;
    assert!(matches!(outcomes[0], Err(PersistenceError::OptimisticLockError)), "{:?}", outcomes[0]);
    assert!(outcomes[1..].iter().all(Result::is_ok), "{outcomes:?}");
    assert_eq!(sequences(&db, "partial").await, vec![2]);
    for s in 0..30 {
        assert_eq!(sequences(&db, &format!("beside{s}")).await, vec![1, 2, 3]);
    }

    // A command PostgreSQL refuses (jsonb cannot hold a NUL character) fails alone there: the
    // commands batched with it still go in. SQLite stores it.
    let mut bad = command("odd", 1, 1);
    bad[0].payload = json!({"Happened": {"text": "a\u{0}b"}});
    let mut batch = vec![bad];
    for s in 0..10 {
        batch.push(command(&format!("beside{s}"), 4, 1));
    }
    let outcomes = join_all(batch.into_iter().map(|events| appender.append(events))).await;
    assert!(outcomes[1..].iter().all(Result::is_ok), "{outcomes:?}");
    let odd = sequences(&db, "odd").await;
    match &db {
        Db::Postgres(_) => {
            assert!(matches!(outcomes[0], Err(PersistenceError::UnknownError(_))), "{:?}", outcomes[0]);
            assert!(odd.is_empty());
        }
        Db::Sqlite(_) => assert_eq!(odd, vec![1]),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_on_postgres_are_whole_and_collisions_are_conflicts() {
    let (_server, url) = shenfen_tests::start_postgres().await;
    let db = Db::open(&url, 8).await.expect("open postgres");
    commands_go_in_whole_and_collisions_are_conflicts(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_on_sqlite_are_whole_and_collisions_are_conflicts() {
    let dir = std::env::temp_dir().join(format!("shenfen-append-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("events.db");
    let _ = std::fs::remove_file(&path);
    let db = Db::open(&format!("sqlite://{}", path.display()), 4).await.expect("open sqlite");
    commands_go_in_whole_and_collisions_are_conflicts(db).await;
}
