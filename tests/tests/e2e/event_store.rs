//! The log's append path on a real database: each command's events go in all together or not
//! at all, and a command that collides with another writer is a conflict — whether the
//! appender wrote it alone or batched with others (on PostgreSQL, concurrent commands share
//! transactions). And the wakes that follow a commit: the runners that want its events read
//! them even when they become readable late, and a wait for a read model makes its runner read
//! events it was not woken for.

use std::sync::Arc;
use std::time::Duration;

use cqrs_es::persist::{PersistenceError, SerializedEvent};
use futures::future::join_all;
use serde_json::json;

use crate::common::{postgres, sqlite};
use shenfen_projections::chain::ChainKey;
use shenfen_projections::commits::Commits;
use shenfen_projections::db::{Db, DbTx};
use shenfen_projections::log::{EventKind, Position, StoredEvent};
use shenfen_projections::outbox::NewMessage;
use shenfen_projections::runner::{self, Projection, ProjectionError, RunnerConfig};
use shenfen_tests::eventually;

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

/// Where an event stands in the global order.
async fn position(db: &Db, stream: &str, sequence: i64) -> Position {
    let sql = match db {
        Db::Postgres(_) => {
            "SELECT transaction_id::text::bigint AS tx, global_position AS pos FROM events
                             WHERE aggregate_type = 'test' AND aggregate_id = $1 AND sequence = $2"
        }
        Db::Sqlite(_) => {
            "SELECT 0 AS tx, global_position AS pos FROM events
                           WHERE aggregate_type = 'test' AND aggregate_id = $1 AND sequence = $2"
        }
    };
    match db {
        Db::Postgres(p) => sqlx::query_as(sql).bind(stream).bind(sequence).fetch_one(p).await,
        Db::Sqlite(p) => sqlx::query_as(sql).bind(stream).bind(sequence).fetch_one(p).await,
    }
    .expect("the event is stored")
}

fn conflicts(outcomes: &[Result<Position, PersistenceError>]) -> usize {
    outcomes.iter().filter(|o| matches!(o, Err(PersistenceError::OptimisticLockError))).count()
}

async fn commands_go_in_whole_and_collisions_are_conflicts(db: Db) {
    let appender = Commits::new(&db, ChainKey::derive(&[0u8; 32]));

    // 100 concurrent commands on 10 streams, none colliding: all go in.
    let mut batch = Vec::new();
    for s in 0..10 {
        for k in 0..10 {
            batch.push(command(&format!("s{s}"), 2 * k + 1, 2));
        }
    }
    let outcomes = join_all(batch.into_iter().map(|events| appender.append(events, Vec::new(), Duration::ZERO))).await;
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    for s in 0..10 {
        assert_eq!(sequences(&db, &format!("s{s}")).await, (1..=20).collect::<Vec<i64>>());
    }
    // Each append answers a position in its own transaction, at or after its last event (a
    // batch answers its last event's): what read-your-writes waits for.
    for (i, outcome) in outcomes.iter().enumerate() {
        let (s, k) = (i / 10, i % 10);
        let at = *outcome.as_ref().expect("appended");
        let last = position(&db, &format!("s{s}"), 2 * k as i64 + 2).await;
        assert!(at >= last && at.tx == last.tx, "command {i}: answered {at:?}, its last event is at {last:?}");
    }

    // Ten writers race for the same next sequences of each of the 10 streams: one per stream wins.
    let mut batch = Vec::new();
    for _ in 0..10 {
        for s in 0..10 {
            batch.push(command(&format!("s{s}"), 21, 2));
        }
    }
    let outcomes = join_all(batch.into_iter().map(|events| appender.append(events, Vec::new(), Duration::ZERO))).await;
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 10, "{outcomes:?}");
    assert_eq!(conflicts(&outcomes), 90);
    for s in 0..10 {
        assert_eq!(sequences(&db, &format!("s{s}")).await, (1..=22).collect::<Vec<i64>>());
    }

    // Another writer has taken sequence 2 of `partial`: a command writing 1 and 2 there is a
    // conflict and leaves no event 1 behind, while the commands beside it go in.
    appender.append(command("partial", 2, 1), Vec::new(), Duration::ZERO).await.expect("the other writer's event");
    let mut batch = vec![command("partial", 1, 2)];
    for s in 0..30 {
        batch.push(command(&format!("beside{s}"), 1, 3));
    }
    let outcomes = join_all(batch.into_iter().map(|events| appender.append(events, Vec::new(), Duration::ZERO))).await;
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
    let outcomes = join_all(batch.into_iter().map(|events| appender.append(events, Vec::new(), Duration::ZERO))).await;
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
    let (_server, _, db) = postgres().await;
    commands_go_in_whole_and_collisions_are_conflicts(db).await;
}

/// Commands that may linger share a transaction with the commands that come within their
/// linger; a command that cannot wait ends the wait for all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lingering_appends_on_postgres_share_a_transaction() {
    let (_server, _, db) = postgres().await;
    let commits = Commits::new(&db, ChainKey::derive(&[0u8; 32]));
    // Warm up the appender's connections.
    commits.append(command("warm", 1, 1), Vec::new(), Duration::ZERO).await.expect("append");

    let started = std::time::Instant::now();
    let first = commits.append(command("a", 1, 1), Vec::new(), Duration::from_secs(30));
    let second = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        commits.append(command("b", 1, 2), Vec::new(), Duration::from_secs(30)).await
    };
    let urgent = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        commits.append(command("c", 1, 1), Vec::new(), Duration::ZERO).await
    };
    let (first, second, urgent) = tokio::join!(first, second, urgent);
    let elapsed = started.elapsed();
    let (first, second, urgent) = (first.expect("a"), second.expect("b"), urgent.expect("c"));
    assert!(elapsed >= Duration::from_millis(300), "the lingering commands waited for company ({elapsed:?})");
    assert!(elapsed < Duration::from_secs(10), "the urgent command ended the wait ({elapsed:?})");
    assert_eq!(first.tx, second.tx, "one transaction");
    assert_eq!(first.tx, urgent.tx, "one transaction");
    assert_eq!(first, position(&db, "c", 1).await.max(position(&db, "b", 2).await));
    assert_eq!(position(&db, "a", 1).await.tx, first.tx);

    // Alone, a command that may linger waits out its linger and goes in.
    let started = std::time::Instant::now();
    let alone = commits.append(command("d", 1, 1), Vec::new(), Duration::from_millis(200)).await.expect("d");
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_ne!(alone.tx, first.tx);
    assert_eq!(sequences(&db, "d").await, vec![1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_on_sqlite_are_whole_and_collisions_are_conflicts() {
    let db = sqlite("append").await;
    commands_go_in_whole_and_collisions_are_conflicts(db).await;
}

/// A command's events with their hash chain, as the command bus writes them.
fn hashed(stream: &str, first: usize, count: usize, request: &str) -> Vec<SerializedEvent> {
    (first..first + count)
        .map(|s| {
            let mut e = event(stream, s);
            e.metadata = json!({"request_id": request, "hash": format!("{request}-{stream}-{s}")});
            e
        })
        .collect()
}

fn message(code: &str) -> NewMessage {
    let now = chrono::Utc::now();
    NewMessage {
        channel: "sms".into(),
        destination: "13800138000".into(),
        purpose: "register".into(),
        body: json!({ "code": code }).to_string(),
        created_at: now,
        expires_at: now + chrono::Duration::hours(24),
    }
}

async fn outbox_bodies(db: &Db) -> Vec<String> {
    let rows: Vec<(Option<String>,)> =
        shenfen_projections::fetch_all!(db, (Option<String>,), "SELECT body FROM outbox ORDER BY id").expect("outbox");
    rows.into_iter().filter_map(|r| r.0).collect()
}

/// A command tried again after its commit's answer was lost finds its own events in the log
/// and is answered as committed, with their position; other events at its sequences are still
/// a conflict. Its messages are queued once, by the same transaction as its events, and not
/// at all when its events do not go in.
async fn a_command_whose_events_are_already_stored_is_answered_as_committed(db: Db) {
    let commits = Commits::new(&db, ChainKey::derive(&[0u8; 32]));
    let first =
        commits.append(hashed("r", 1, 2, "req-1"), vec![message("111111")], Duration::ZERO).await.expect("first try");
    let again =
        commits.append(hashed("r", 1, 2, "req-1"), vec![message("111111")], Duration::ZERO).await.expect("the retry");
    assert_eq!(again, position(&db, "r", 2).await, "answered with where its events stand");
    assert!(first >= again);
    assert_eq!(sequences(&db, "r").await, vec![1, 2], "nothing was written twice");
    assert_eq!(outbox_bodies(&db).await.len(), 1, "its message was queued once");

    let other = commits.append(hashed("r", 2, 1, "req-2"), vec![message("222222")], Duration::ZERO).await;
    assert!(matches!(other, Err(PersistenceError::OptimisticLockError)), "another command's events: {other:?}");
    let partly = commits.append(hashed("r", 2, 2, "req-1"), Vec::new(), Duration::ZERO).await;
    assert!(matches!(partly, Err(PersistenceError::OptimisticLockError)), "only some of them stored: {partly:?}");
    assert_eq!(outbox_bodies(&db).await, vec![json!({"code": "111111"}).to_string()], "no message without its events");

    // Many commands at once (batched on PostgreSQL), half of them retries of stored ones.
    let stored: Vec<Vec<SerializedEvent>> = (0..20).map(|i| hashed(&format!("m{i}"), 1, 1, "req-m")).collect();
    for events in &stored {
        commits.append(events.clone(), Vec::new(), Duration::ZERO).await.expect("first write");
    }
    let mixed = stored.iter().cloned().chain((20..40).map(|i| hashed(&format!("m{i}"), 1, 1, "req-m")));
    let outcomes = join_all(mixed.map(|events| commits.append(events, vec![message("333333")], Duration::ZERO))).await;
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    for i in 0..40 {
        assert_eq!(sequences(&db, &format!("m{i}")).await, vec![1]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_command_whose_events_are_already_stored_is_answered_as_committed() {
    let (_server, _, db) = postgres().await;
    a_command_whose_events_are_already_stored_is_answered_as_committed(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_a_command_whose_events_are_already_stored_is_answered_as_committed() {
    a_command_whose_events_are_already_stored_is_answered_as_committed(sqlite("stored").await).await;
}

// ---------------------------------------------------------------------------------------------
// Waking the projection runners
// ---------------------------------------------------------------------------------------------

/// A projection that only counts what it is given: it wants events of one type.
struct Wanting(&'static str, &'static str);

#[async_trait::async_trait]
impl Projection for Wanting {
    fn name(&self) -> &'static str {
        self.0
    }
    async fn apply(&self, _: &mut DbTx, _: &StoredEvent) -> Result<(), ProjectionError> {
        Ok(())
    }
    fn wants(&self, e: EventKind<'_>) -> bool {
        e.event_type == self.1
    }
}

/// Runners that poll only every minute: whatever they do sooner, a wake made them do.
fn slow_polling() -> RunnerConfig {
    RunnerConfig { batch_size: 500, poll_interval: Duration::from_secs(60) }
}

async fn checkpoint_reaches(db: &Db, name: &str, at: Position, within: Duration) -> bool {
    eventually(
        within,
        || async { (shenfen_projections::checkpoint::read(db, name).await.expect("checkpoint") >= at).then_some(()) },
        Option::is_some,
    )
    .await
    .is_some()
}

/// A runner woken for events that are committed but not readable yet (an older transaction is
/// still open) keeps trying, and applies them once that transaction ends — without another
/// commit and long before its next poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_woken_runner_reads_its_events_once_an_older_transaction_ends() {
    use sqlx::{Connection, Executor};
    let (_server, url, db) = postgres().await;
    let commits = Commits::new(&db, ChainKey::derive(&[0u8; 32]));
    let wanting: Arc<dyn Projection> = Arc::new(Wanting("wants_happened", "Happened"));
    runner::start(&db, vec![wanting], &commits, slow_polling()).await.expect("runners");

    let mut older = sqlx::PgConnection::connect(&url).await.expect("connect");
    older.execute("BEGIN").await.expect("begin");
    older.execute("SELECT pg_current_xact_id()").await.expect("an xid for the open transaction");
    let at = commits.append(command("late", 1, 1), Vec::new(), Duration::ZERO).await.expect("append");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        shenfen_projections::checkpoint::read(&db, "wants_happened").await.expect("checkpoint") < at,
        "not readable yet"
    );

    older.execute("COMMIT").await.expect("commit");
    assert!(checkpoint_reaches(&db, "wants_happened", at, Duration::from_secs(10)).await);
}

/// A read-your-writes wait on a projection that wants none of the command's events makes its
/// runner read that far (it was not woken by the commit).
async fn a_wait_makes_a_runner_read_events_it_does_not_want(db: Db) {
    let commits = Commits::new(&db, ChainKey::derive(&[0u8; 32]));
    let never: Arc<dyn Projection> = Arc::new(Wanting("wants_nothing", "NeverWritten"));
    let progress = runner::start(&db, vec![never], &commits, slow_polling()).await.expect("runners");
    tokio::time::sleep(Duration::from_millis(200)).await;

    let at = commits.append(command("unwanted", 1, 2), Vec::new(), Duration::ZERO).await.expect("append");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        shenfen_projections::checkpoint::read(&db, "wants_nothing").await.expect("checkpoint") < at,
        "the commit woke nobody"
    );
    assert!(progress.wait_for(&["wants_nothing"], at, Duration::from_secs(10)).await, "the wait was answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_wait_makes_a_runner_read_events_it_does_not_want() {
    let (_server, _, db) = postgres().await;
    a_wait_makes_a_runner_read_events_it_does_not_want(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_a_wait_makes_a_runner_read_events_it_does_not_want() {
    let db = sqlite("wait").await;
    a_wait_makes_a_runner_read_events_it_does_not_want(db).await;
}

/// A caller that stops waiting for its append (a client that hung up) does not keep the
/// runners that want the events from being woken once they are committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_whose_caller_stopped_waiting_still_wakes_its_runners() {
    let (_server, _, db) = postgres().await;
    let commits = Commits::new(&db, ChainKey::derive(&[0u8; 32]));
    let wanting: Arc<dyn Projection> = Arc::new(Wanting("wants_happened", "Happened"));
    runner::start(&db, vec![wanting], &commits, slow_polling()).await.expect("runners");
    tokio::time::sleep(Duration::from_millis(200)).await;

    // The command lingers for 1 s; its caller gives up after 100 ms.
    let gave_up = tokio::time::timeout(
        Duration::from_millis(100),
        commits.append(command("abandoned", 1, 1), Vec::new(), Duration::from_secs(1)),
    )
    .await;
    assert!(gave_up.is_err(), "the caller stopped waiting before the commit");
    let committed = eventually(
        Duration::from_secs(10),
        || async { (!sequences(&db, "abandoned").await.is_empty()).then_some(()) },
        Option::is_some,
    );
    committed.await.expect("the abandoned command committed");
    let at = position(&db, "abandoned", 1).await;
    assert!(checkpoint_reaches(&db, "wants_happened", at, Duration::from_secs(10)).await);
}

/// When the LISTEN connection is lost, notices sent meanwhile are lost with it: the listener
/// reconnects and wakes every runner to catch up, so a commit made elsewhere in the gap (here
/// an INSERT without any NOTIFY) is read without waiting for a poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_losing_its_listen_connection_a_process_reconnects_and_catches_up() {
    let (_server, _, db) = postgres().await;
    let Db::Postgres(pool) = &db else { unreachable!("a PostgreSQL URL") };
    let commits = Commits::new(&db, ChainKey::derive(&[0u8; 32]));
    let wanting: Arc<dyn Projection> = Arc::new(Wanting("wants_happened", "Happened"));
    runner::start(&db, vec![wanting], &commits, slow_polling()).await.expect("runners");

    let listener = || async {
        let sql = "SELECT pid FROM pg_stat_activity WHERE query ILIKE 'LISTEN%' AND datname = current_database()";
        sqlx::query_as::<_, (i32,)>(sql).fetch_optional(pool).await.expect("pg_stat_activity").map(|(pid,)| pid)
    };
    let old = eventually(Duration::from_secs(5), listener, Option::is_some).await.expect("the listener connected");

    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('test', 'elsewhere', 1, 'Happened', '1', '{}', '{}')",
    )
    .execute(pool)
    .await
    .expect("a commit that notifies nobody");
    sqlx::query("SELECT pg_terminate_backend($1)").bind(old).execute(pool).await.expect("terminate");

    let at = position(&db, "elsewhere", 1).await;
    assert!(checkpoint_reaches(&db, "wants_happened", at, Duration::from_secs(10)).await, "caught up");
    let new = eventually(Duration::from_secs(10), listener, Option::is_some).await.expect("listening again");
    assert_ne!(new, old);
}

/// On PostgreSQL the last event in the readers' order, `(transaction_id, global_position)`,
/// need not hold the highest position: a transaction that took its id first may write last.
/// A projection that has read everything reports no lag all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caught_up_projection_has_no_lag_when_the_last_event_read_is_not_the_highest_position() {
    let (_server, _, db) = postgres().await;
    let Db::Postgres(pool) = &db else { unreachable!("a PostgreSQL store") };
    let insert =
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
                  VALUES ('test', $1, 1, 'Happened', '1', '{}', '{}')";
    let mut early = pool.begin().await.expect("begin");
    sqlx::query("SELECT pg_current_xact_id()").execute(&mut *early).await.expect("take a transaction id");
    let mut late = pool.begin().await.expect("begin");
    sqlx::query(insert).bind("late").execute(&mut *late).await.expect("insert");
    late.commit().await.expect("commit");
    sqlx::query(insert).bind("early").execute(&mut *early).await.expect("insert");
    early.commit().await.expect("commit");

    runner::catch_up(&db, None, Arc::new(Wanting("lagless", "Happened")), 100, |_| {}).await.expect("catch up");
    let checkpoint = shenfen_projections::checkpoint::read(&db, "lagless").await.expect("checkpoint");
    let highest: (i64,) = sqlx::query_as("SELECT max(global_position) FROM events").fetch_one(pool).await.expect("max");
    assert!(highest.0 > checkpoint.pos, "the highest position is not the last event read");
    assert_eq!(shenfen_projections::checkpoint::lag(&db, "lagless").await.expect("lag"), 0, "caught up");

    sqlx::query(insert).bind("next").execute(pool).await.expect("insert");
    assert_eq!(shenfen_projections::checkpoint::lag(&db, "lagless").await.expect("lag"), 1, "one event to read");
}
