//! `shenfen-replay` end to end, on SQLite and PostgreSQL: a scripted workload through the real
//! event store, then the binary against the store, with tampering done in SQL behind the
//! application's back.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::Value;
use shenfen_projections::log::Position;
use shenfen_projections::{fetch_all, read_models, runner};
use shenfen_replay::progress::Progress;
use shenfen_replay::rebuild;
use support::{dump, replay_with, Fixture, Store};

// ---------------------------------------------------------------------------------------------
// verify
// ---------------------------------------------------------------------------------------------

async fn an_intact_store_verifies_with_exit_code_zero(app: Fixture) {
    let run = app.replay(&["verify"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(!run.stdout.contains("broken:"), "{run:?}");
    assert!(run.stdout.contains(&format!("{} events checked; 0 broken", app.event_count().await)), "{run:?}");
}
both_stores!(an_intact_store_verifies_with_exit_code_zero);

async fn a_changed_payload_is_named_with_its_stream_and_sequence(app: Fixture) {
    // acc-2's second event is its failed login: move its instant by an hour.
    let mut payload = app.payload("account", "acc-2", 2).await;
    let at = payload["LoginFailed"]["at"].as_str().unwrap().replacen("T01:", "T00:", 1);
    payload["LoginFailed"]["at"] = Value::String(at);
    let changed =
        shenfen_projections::exec!(&app.db,
        "UPDATE events SET payload = $1 WHERE aggregate_type = 'account' AND aggregate_id = 'acc-2' AND sequence = 2",
        payload)
        .unwrap();
    assert_eq!(changed, 1);

    let run = app.replay(&["verify"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stdout.contains("broken: account acc-2 at sequence 2: hash does not match the event's content"),
        "{run:?}"
    );
    assert_eq!(run.stdout.matches("broken:").count(), 1, "{run:?}");
}
both_stores!(a_changed_payload_is_named_with_its_stream_and_sequence);

async fn a_deleted_middle_event_breaks_the_chain_of_its_stream(app: Fixture) {
    let deleted = app
        .sql("DELETE FROM events WHERE aggregate_type = 'account' AND aggregate_id = 'acc-3' AND sequence = 2")
        .await;
    assert_eq!(deleted, 1);

    let run = app.replay(&["verify"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stdout.contains("broken: account acc-3 at sequence 3: sequence 3 where 2 was expected"), "{run:?}");
    assert_eq!(run.stdout.matches("broken:").count(), 1, "{run:?}");
}
both_stores!(a_deleted_middle_event_breaks_the_chain_of_its_stream);

async fn two_swapped_events_break_the_chain_at_the_first_of_them(app: Fixture) {
    // The key (type, id, sequence) is unique, so the swap goes through a free number.
    for sql in [
        "UPDATE events SET sequence = 1000 WHERE aggregate_type = 'account' AND aggregate_id = 'acc-4' AND sequence = 2",
        "UPDATE events SET sequence = 2 WHERE aggregate_type = 'account' AND aggregate_id = 'acc-4' AND sequence = 3",
        "UPDATE events SET sequence = 3 WHERE aggregate_type = 'account' AND aggregate_id = 'acc-4' AND sequence = 1000",
    ] {
        assert_eq!(app.sql(sql).await, 1);
    }

    let run = app.replay(&["verify"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stdout.contains("broken: account acc-4 at sequence 2: prev_hash does not match"), "{run:?}");
    assert_eq!(run.stdout.matches("broken:").count(), 1, "{run:?}");
}
both_stores!(two_swapped_events_break_the_chain_at_the_first_of_them);

/// The last sequence of a stream.
async fn last_sequence(app: &Fixture, ty: &str, id: &str) -> i64 {
    let rows: Vec<(i64,)> = fetch_all!(
        &app.db,
        (i64,),
        "SELECT sequence FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence DESC LIMIT 1",
        ty,
        id
    )
    .unwrap();
    rows[0].0
}

async fn a_changed_event_with_its_chain_recomputed_without_the_key_is_found(app: Fixture) {
    // The intruder changes acc-5's last event and recomputes its hash the only way they can:
    // without the key (the plain SHA-256 of the chain's text, as earlier versions did).
    let last = last_sequence(&app, "account", "acc-5").await;
    let events = shenfen_projections::audit::history(&app.db, "account", "acc-5").await.unwrap();
    let event = events.iter().find(|e| e.sequence == last).unwrap();
    let mut payload = event.payload.clone();
    let variant = payload.as_object().and_then(|o| o.keys().next().cloned()).unwrap();
    payload[&variant]["at"] = Value::String("2026-05-10T00:00:00Z".into());
    let mut metadata = event.metadata.clone();
    let link = shenfen_projections::chain::Link {
        sequence: last,
        position: event.position(),
        event_type: &event.event_type,
        event_version: &event.event_version,
        payload: &payload,
        metadata: &metadata,
    };
    let forged = shenfen_projections::chain::unkeyed_hash(&link, "account", "acc-5");
    metadata["hash"] = Value::String(forged);
    let changed = shenfen_projections::exec!(&app.db,
        "UPDATE events SET payload = $1, metadata = $2 WHERE aggregate_type = 'account' AND aggregate_id = 'acc-5' AND sequence = $3",
        &payload, &metadata, last)
    .unwrap();
    assert_eq!(changed, 1);

    let run = app.replay(&["verify"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stdout
            .contains(&format!("broken: account acc-5 at sequence {last}: hash does not match the event's content")),
        "{run:?}"
    );
}
both_stores!(a_changed_event_with_its_chain_recomputed_without_the_key_is_found);

async fn deleting_a_streams_last_events_is_found(app: Fixture) {
    let last = last_sequence(&app, "account", "acc-1").await;
    assert!(last > 2);
    let deleted = app
        .sql(&format!(
            "DELETE FROM events WHERE aggregate_type = 'account' AND aggregate_id = 'acc-1' AND sequence >= {}",
            last - 1
        ))
        .await;
    assert_eq!(deleted, 2);

    let run = app.replay(&["verify"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stdout.contains(&format!(
            "broken: account acc-1 at sequence {}: the stream ends at sequence {} but was sealed at {last}",
            last - 1,
            last - 2
        )),
        "{run:?}"
    );
    assert_eq!(run.stdout.matches("broken:").count(), 1, "{run:?}");
}
both_stores!(deleting_a_streams_last_events_is_found);

async fn deleting_a_whole_stream_is_found_even_with_its_head_record(app: Fixture) {
    let last = last_sequence(&app, "account", "acc-2").await;
    app.sql("DELETE FROM events WHERE aggregate_type = 'account' AND aggregate_id = 'acc-2'").await;
    let run = app.replay(&["verify"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stdout.contains(&format!(
            "broken: account acc-2 at sequence 1: the stream was sealed at sequence {last} and has no events left"
        )),
        "{run:?}"
    );

    // The intruder deletes the head record too: the heads no longer add up to the seal.
    app.sql("DELETE FROM chain_heads WHERE aggregate_type = 'account' AND aggregate_id = 'acc-2'").await;
    let run = app.replay(&["verify"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stdout.contains("broken: seal: the stream heads do not add up to the seal"), "{run:?}");

    // Nor can the seal be adjusted to match without the key.
    app.sql("UPDATE chain_seal SET streams = streams - 1").await;
    let run = app.replay(&["verify"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stdout.contains("broken: seal: the seal was changed outside the application"), "{run:?}");
}
both_stores!(deleting_a_whole_stream_is_found_even_with_its_head_record);

async fn verify_needs_the_servers_key(app: Fixture) {
    let other = app.key_file.with_file_name("other.key");
    std::fs::write(&other, [9u8; 32]).unwrap();
    let run = support::run_replay(&app.url, Some(&other), &["verify"]).await;
    assert_eq!(run.code, 2, "another key verifies nothing: {run:?}");
    let missing = app.key_file.with_file_name("missing.key");
    let run = support::run_replay(&app.url, Some(&missing), &["verify"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("missing.key"), "{run:?}");
}
both_stores!(verify_needs_the_servers_key);

// ---------------------------------------------------------------------------------------------
// stuck
// ---------------------------------------------------------------------------------------------

async fn stuck_names_a_projection_stopped_at_an_event_and_shows_the_event(app: Fixture) {
    let run = app.replay(&["stuck"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("0 projection(s) stuck"), "{run:?}");

    let next = last_sequence(&app, "account", "acc-0").await + 1;
    let payload = serde_json::json!({"ProfileEdited": {"validity": "not a validity", "at": "2026-05-10T01:00:00Z"}});
    let metadata = serde_json::json!({"at": "2026-05-10T01:00:00Z", "request_id": "poison"});
    shenfen_projections::exec!(
        &app.db,
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('account', 'acc-0', $1, 'ProfileEdited', '1', $2, $3)",
        next,
        &payload,
        &metadata
    )
    .unwrap();
    // A server's runners meet it.
    let commits = shenfen_projections::commits::Commits::new(&app.db, app.key());
    let config = runner::RunnerConfig { batch_size: 500, poll_interval: std::time::Duration::from_millis(50) };
    runner::start(&app.db, read_models(), &commits, config).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while shenfen_projections::checkpoint::stuck(&app.db).await.unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "no projection was recorded as stuck");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    let run = app.replay(&["stuck", "--payload"]).await;
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.stdout.contains("stuck: account_view since "), "{run:?}");
    assert!(run.stdout.contains(&format!("event: account acc-0 sequence {next}, ProfileEdited version 1")), "{run:?}");
    assert!(run.stdout.contains("not a validity"), "the payload on request: {run:?}");
}
both_stores!(stuck_names_a_projection_stopped_at_an_event_and_shows_the_event);

// ---------------------------------------------------------------------------------------------
// history, state, export
// ---------------------------------------------------------------------------------------------

async fn history_shows_every_event_readably_with_secrets_redacted(app: Fixture) {
    let events = shenfen_projections::audit::history(&app.db, "account", "acc-0").await.unwrap();
    let run = app.replay(&["history", "account", "acc-0"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    for event in &events {
        assert!(run.stdout.contains(&format!("#{}  ", event.sequence)), "{run:?}");
        assert!(run.stdout.contains(&format!("{} v{}", event.event_type, event.event_version)), "{run:?}");
    }
    assert!(run.stdout.contains("Registered v1"), "{run:?}");
    assert!(run.stdout.contains("actor anonymous"), "{run:?}");
    assert!(run.stdout.contains("actor account:acc-0"), "{run:?}");
    assert!(run.stdout.contains("request req-"), "{run:?}");
    assert!(run.stdout.contains("[redacted]"), "{run:?}");
    assert!(!run.stdout.contains("argon-hash-0"), "a password hash leaked: {run:?}");
    assert!(!run.stdout.contains("tok-0"), "a token hash leaked: {run:?}");

    let json = app.replay(&["history", "account", "acc-0", "--json"]).await;
    assert_eq!(json.code, 0, "{json:?}");
    let lines: Vec<Value> = json.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), events.len());
    assert_eq!(lines[0]["event_type"], "Registered");
    assert_eq!(lines[0]["payload"]["Registered"]["password_hash"], "[redacted]");
    assert_eq!(lines[0]["sequence"], 1);
}
both_stores!(history_shows_every_event_readably_with_secrets_redacted);

async fn history_and_state_of_a_stream_without_events_exit_with_three(app: Fixture) {
    assert_eq!(app.replay(&["history", "account", "nobody"]).await.code, 3);
    assert_eq!(app.replay(&["state", "account", "nobody"]).await.code, 3);
    let unknown = app.replay(&["history", "spaceship", "acc-0"]).await;
    assert_eq!(unknown.code, 1, "{unknown:?}");
    assert!(unknown.stderr.contains("unknown aggregate type"), "{unknown:?}");
}
both_stores!(history_and_state_of_a_stream_without_events_exit_with_three);

async fn state_as_of_an_instant_shows_the_stream_as_it_was_then(app: Fixture) {
    let w = &app.workload;
    let before = (w.edited_at - chrono::Duration::seconds(1)).to_rfc3339();
    let after = w.edited_at.to_rfc3339();

    let then = app.replay(&["state", "account", "acc-0", "--as-of", &before]).await;
    assert_eq!(then.code, 0, "{then:?}");
    let then: Value = serde_json::from_str(&then.stdout).unwrap();
    assert_eq!(then["email"], w.email_before.as_str());
    assert!(then["profile"].is_object(), "the profile was completed before the edit: {then}");
    assert_eq!(then["password_hash"], "[redacted]");

    let now = app.replay(&["state", "account", "acc-0", "--as-of", &after]).await;
    assert_eq!(now.code, 0, "{now:?}");
    let now: Value = serde_json::from_str(&now.stdout).unwrap();
    assert_eq!(now["email"], w.email_after.as_str());

    let first = app.replay(&["state", "account", "acc-0", "--as-of", "2000-01-01T00:00:00Z"]).await;
    assert_eq!(first.code, 0, "{first:?}");
    let first: Value = serde_json::from_str(&first.stdout).unwrap();
    assert!(first["email"].is_null(), "nothing had happened yet: {first}");

    let verification = app.replay(&["state", "verification", "acc-0"]).await;
    assert_eq!(verification.code, 0, "{verification:?}");
}
both_stores!(state_as_of_an_instant_shows_the_stream_as_it_was_then);

async fn export_writes_one_json_line_per_event_in_global_order(app: Fixture) {
    let file = tempfile::NamedTempFile::new().unwrap();
    let path = file.path().to_str().unwrap();
    let run = app.replay(&["export", "--format", "jsonl", "--output", path]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len() as i64, app.event_count().await);
    let positions: Vec<(i64, i64)> =
        lines.iter().map(|l| (l["transaction_id"].as_i64().unwrap(), l["global_position"].as_i64().unwrap())).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "not in global order");
    for line in &lines {
        for key in
            ["aggregate_type", "aggregate_id", "sequence", "event_type", "event_version", "payload", "recorded_at"]
        {
            assert!(!line[key].is_null(), "{key} missing in {line}");
        }
        assert!(line["metadata"]["hash"].is_string(), "metadata missing in {line}");
    }

    let stdout = app.replay(&["export", "--format", "jsonl"]).await;
    assert_eq!(stdout.code, 0, "{stdout:?}");
    assert_eq!(stdout.stdout, text);
    assert_eq!(app.replay(&["export", "--format", "csv"]).await.code, 1);
    // A copy of the log: personal data sealed as stored.
    assert!(text.contains("enc:") && !text.contains("张三"), "{text}");

    // Redacted, for a third party: no personal value, sealed or plain, and no password hash.
    let redacted = app.replay(&["export", "--format", "jsonl", "--redact"]).await;
    assert_eq!(redacted.code, 0, "{redacted:?}");
    assert_eq!(redacted.stdout.lines().count(), lines.len());
    assert!(redacted.stdout.contains("[redacted]"), "{redacted:?}");
    for secret in ["enc:", "张三", "argon-hash-"] {
        assert!(!redacted.stdout.contains(secret), "{secret} in a redacted export");
    }
}
both_stores!(export_writes_one_json_line_per_event_in_global_order);

// ---------------------------------------------------------------------------------------------
// rebuild
// ---------------------------------------------------------------------------------------------

async fn rebuilt_read_models_equal_the_live_ones_row_for_row(app: Fixture) {
    let live = dump(&app.db).await;
    for table in ["account_view", "verification_quotas", "review_queue", "students", "analytics_student_verifications"]
    {
        assert!(!live[table].is_empty(), "the workload left {table} empty");
    }
    assert!(!live["analytics_reviews"].is_empty());

    let run = app.replay(&["rebuild"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    for projection in read_models() {
        assert!(run.stdout.contains(&format!("rebuilt {}:", projection.name())), "{run:?}");
    }
    assert_eq!(dump(&app.db).await, live);
    assert!(!app.rebuild_left_behind().await);

    // The live checkpoints were set to the rebuild's: the end of the log.
    let events = shenfen_projections::log::read_after(&app.db, Position::default(), 100_000).await.unwrap();
    let head = events.last().unwrap().position();
    for projection in read_models() {
        assert_eq!(
            shenfen_projections::checkpoint::read(&app.db, projection.name()).await.unwrap(),
            head,
            "{}",
            projection.name()
        );
    }
    // A server's runner carries on from there: nothing left to apply.
    for projection in read_models() {
        let mut applied = 0;
        runner::catch_up(&app.db, Some(app.keyring()), projection, 500, |n| applied = n).await.unwrap();
        assert_eq!(applied, 0);
    }

    if app.store == Store::Postgres {
        let indexes: Vec<(String,)> = fetch_all!(
            &app.db,
            (String,),
            "SELECT indexname::text FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'review_queue'"
        )
        .unwrap();
        let names: Vec<&str> = indexes.iter().map(|(n,)| n.as_str()).collect();
        for name in ["review_queue_pkey", "review_queue_pending", "review_queue_account"] {
            assert!(names.contains(&name), "index {name} lost its name: {names:?}");
        }
    }

    // A second rebuild works the same.
    let again = app.replay(&["rebuild"]).await;
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(dump(&app.db).await, live);
    assert!(!app.rebuild_left_behind().await);
}
both_stores!(rebuilt_read_models_equal_the_live_ones_row_for_row);

/// An erased account (PIPL): the chain still verifies (it covers the sealed text), its history
/// shows `[erased]` where its personal data was, and a rebuild equals the live read models.
async fn after_an_erasure_the_chain_verifies_the_history_is_erased_and_a_rebuild_equals_live(app: Fixture) {
    let before = app.replay(&["history", "account", "acc-0"]).await;
    assert!(before.stdout.contains("张三"), "{before:?}");
    app.erase_account("acc-0").await;

    let verified = app.replay(&["verify"]).await;
    assert_eq!(verified.code, 0, "{verified:?}");
    let history = app.replay(&["history", "account", "acc-0"]).await;
    assert_eq!(history.code, 0, "{history:?}");
    assert!(history.stdout.contains("[erased]") && history.stdout.contains("Erased"), "{history:?}");
    assert!(!history.stdout.contains("张三"), "the name is still readable: {history:?}");
    let other = app.replay(&["history", "account", "acc-1"]).await;
    assert!(other.stdout.contains("张三"), "another account is untouched: {other:?}");
    // A student is erased the same way, under their own key.
    app.erase_student("stu-1").await;
    assert_eq!(app.replay(&["verify"]).await.code, 0);
    let student = app.replay(&["history", "student", "stu-1"]).await;
    assert!(student.stdout.contains("[erased]") && !student.stdout.contains("李小明"), "{student:?}");
    let other = app.replay(&["history", "student", "stu-0"]).await;
    assert!(other.stdout.contains("李小明"), "another student is untouched: {other:?}");

    let live = dump(&app.db).await;
    let rebuilt = app.replay(&["rebuild"]).await;
    assert_eq!(rebuilt.code, 0, "{rebuilt:?}");
    assert_eq!(dump(&app.db).await, live);
}
both_stores!(after_an_erasure_the_chain_verifies_the_history_is_erased_and_a_rebuild_equals_live);

async fn rebuilding_one_projection_leaves_the_others_alone(app: Fixture) {
    let live = dump(&app.db).await;
    app.sql("UPDATE account_view SET name = 'tampered'").await;
    app.sql("DELETE FROM verification_quotas").await;

    let run = app.replay(&["rebuild", "--projection", "account_view"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("rebuilt account_view:"), "{run:?}");
    assert!(!run.stdout.contains("rebuilt verification_quotas"), "{run:?}");

    let after = dump(&app.db).await;
    assert_eq!(after["account_view"], live["account_view"]);
    assert!(after["verification_quotas"].is_empty(), "verification_quotas was rebuilt too");
    assert!(!app.rebuild_left_behind().await);

    let unknown = app.replay(&["rebuild", "--projection", "nope"]).await;
    assert_eq!(unknown.code, 1, "{unknown:?}");
    assert!(unknown.stderr.contains("unknown projection nope"), "{unknown:?}");
}
both_stores!(rebuilding_one_projection_leaves_the_others_alone);

async fn an_interrupted_rebuild_is_resumed_by_the_next_one(app: Fixture) {
    let live = dump(&app.db).await;
    // Stop after the first batches: tables and checkpoints stay behind, nothing is swapped.
    let options = rebuild::Options {
        batch_size: 5,
        restart: false,
        stop_after: Some(10),
        keyring: Some(app.keyring()),
        ..rebuild::Options::default()
    };
    let report = rebuild::rebuild(&app.db, read_models(), &options, &Progress::hidden()).await.unwrap();
    assert_eq!(report.events_read, 10);
    assert!(report.projections.iter().all(|p| !p.swapped && p.checkpoint.pos > 0), "{report:?}");
    assert!(app.rebuild_left_behind().await);
    assert_eq!(dump(&app.db).await, live, "the live tables changed before the swap");

    // Change a live row, so the swap is seen.
    app.sql("UPDATE account_view SET name = 'tampered'").await;
    let run = app.replay(&["rebuild"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout.matches("(resumed)").count(), read_models().len(), "{run:?}");
    assert_eq!(dump(&app.db).await, live);
    assert!(!app.rebuild_left_behind().await);

    // And --restart starts over from nothing.
    let report = rebuild::rebuild(&app.db, read_models(), &options, &Progress::hidden()).await.unwrap();
    assert!(report.projections.iter().all(|p| !p.swapped));
    let restart = app.replay(&["rebuild", "--restart"]).await;
    assert_eq!(restart.code, 0, "{restart:?}");
    assert!(!restart.stdout.contains("(resumed)"), "{restart:?}");
    assert_eq!(dump(&app.db).await, live);
    assert!(!app.rebuild_left_behind().await);
}
both_stores!(an_interrupted_rebuild_is_resumed_by_the_next_one);

async fn a_rebuild_that_writes_back_after_every_batch_and_evicts_every_row_is_exact(app: Fixture) {
    let live = dump(&app.db).await;
    let events = app.event_count().await as u64;
    // account_view keeps at most one row in memory and writes after every batch, so most
    // batches read their rows back from the copy table.
    let tiny = rebuild::Options {
        batch_size: 3,
        restart: false,
        stop_after: Some(events / 2),
        cache_rows: 1,
        flush_every: std::time::Duration::ZERO,
        keyring: Some(app.keyring()),
    };
    let report = rebuild::rebuild(&app.db, read_models(), &tiny, &Progress::hidden()).await.unwrap();
    assert!(report.projections.iter().all(|p| !p.swapped), "{report:?}");
    app.sql("UPDATE account_view SET name = 'tampered'").await;
    let rest = rebuild::Options { stop_after: None, ..tiny };
    let report = rebuild::rebuild(&app.db, read_models(), &rest, &Progress::hidden()).await.unwrap();
    assert!(report.projections.iter().all(|p| p.swapped && p.resumed_from.pos > 0), "{report:?}");
    assert_eq!(dump(&app.db).await, live);

    // Interrupted with everything still in memory: the stop writes it with the checkpoint.
    let roomy = rebuild::Options {
        stop_after: Some(events / 2),
        flush_every: std::time::Duration::from_secs(3600),
        keyring: Some(app.keyring()),
        ..rebuild::Options::default()
    };
    rebuild::rebuild(&app.db, read_models(), &roomy, &Progress::hidden()).await.unwrap();
    app.sql("UPDATE account_view SET name = 'tampered'").await;
    let run = app.replay(&["rebuild"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(dump(&app.db).await, live);
    assert!(!app.rebuild_left_behind().await);
}
both_stores!(a_rebuild_that_writes_back_after_every_batch_and_evicts_every_row_is_exact);

/// The rebuild's COPY reader gives exactly what the paged reader gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_copy_reader_reads_what_the_paged_reader_reads() {
    let app = Fixture::new(support::Store::Postgres).await;
    // Odd rows too: escapes and non-ASCII in the payload, metadata without `at`.
    app.sql(
        r#"INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
           VALUES ('odd', 'o-1', 1, 'Odd', '1', '{"text": "tab\t quote\" backslash\\ 中文 \u0001"}', '{"request_id": "r"}'),
                  ('odd', 'o-1', 2, 'Odd', '1', '[1, 2.5, null, true]', '{"at": 5}')"#,
    )
    .await;
    let shenfen_projections::db::Db::Postgres(pool) = &app.db else { unreachable!() };
    let mut conn = pool.acquire().await.unwrap();
    async fn copied(conn: &mut sqlx::PgConnection, after: Position, limit: i64) -> Vec<String> {
        let mut page = shenfen_projections::log::copy_for_projections(conn, after, limit).await.unwrap();
        let mut events = Vec::new();
        while let Some(e) = page.next().await.unwrap() {
            events.push(format!("{e:?}"));
        }
        events
    }
    async fn paged(db: &shenfen_projections::db::Db, after: Position, limit: i64) -> Vec<String> {
        let events = shenfen_projections::log::read_for_projections(db, after, limit).await.unwrap();
        events.iter().map(|e| format!("{e:?}")).collect()
    }
    let all = paged(&app.db, Position::default(), 100_000).await;
    assert_eq!(all.len() as i64, app.event_count().await);
    assert!(all.iter().any(|e| e.contains("中文")), "{all:?}");
    assert_eq!(copied(&mut conn, Position::default(), 100_000).await, all);
    let events = shenfen_projections::log::read_for_projections(&app.db, Position::default(), 100_000).await.unwrap();
    let middle = events[events.len() / 2].position();
    assert_eq!(copied(&mut conn, middle, 3).await, paged(&app.db, middle, 3).await);
    assert_eq!(copied(&mut conn, events.last().unwrap().position(), 10).await, Vec::<String>::new());
    assert_eq!(copied(&mut conn, middle, 0).await, Vec::<String>::new());

    // Decoding only some kinds: the others keep their place, with nothing decoded.
    let decode: shenfen_projections::log::Decode = std::sync::Arc::new(|kind| kind.aggregate_type != "odd");
    let mut page = shenfen_projections::log::copy_for_projections(&mut conn, Position::default(), 100_000)
        .await
        .unwrap()
        .decoding_only(decode);
    let mut partly = Vec::new();
    while let Some(e) = page.next().await.unwrap() {
        partly.push(e);
    }
    assert_eq!(partly.len(), events.len());
    for (got, full) in partly.iter().zip(&events) {
        assert_eq!((got.position(), got.kind()), (full.position(), full.kind()));
        if full.aggregate_type == "odd" {
            assert_eq!((&got.payload, &got.metadata), (&serde_json::Value::Null, &serde_json::Value::Null));
        } else {
            assert_eq!(format!("{got:?}"), format!("{full:?}"));
        }
    }
    assert_eq!(partly.iter().filter(|e| e.payload.is_null()).count(), 2);
}

// ---------------------------------------------------------------------------------------------
// errors
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn bad_arguments_and_a_missing_database_exit_with_one() {
    let dir = tempfile::tempdir().unwrap();
    let missing = format!("sqlite://{}", dir.path().join("missing.db").display());
    assert_eq!(replay_with(&missing, &["frobnicate"]).await.code, 1);
    assert_eq!(replay_with(&missing, &["state", "account", "x", "--as-of", "yesterday"]).await.code, 1);
    assert_eq!(replay_with(&missing, &["history", "account"]).await.code, 1);
    let run = replay_with(&missing, &["verify"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("does not exist"), "{run:?}");
    assert!(!dir.path().join("missing.db").exists(), "the tool created a database");
    let help = replay_with(&missing, &["--help"]).await;
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("Exit codes:"), "{help:?}");
}

#[tokio::test]
async fn an_unreachable_postgres_exits_with_one() {
    let run = replay_with("postgres://nobody:secret@127.0.0.1:1/shenfen", &["verify"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("opening the event store"), "{run:?}");
    assert!(!run.stderr.contains("secret"), "the password leaked: {run:?}");
}

// ---------------------------------------------------------------------------------------------
// encrypt
// ---------------------------------------------------------------------------------------------

/// Turns the fixture's store into one as a version before sealing wrote it: every payload
/// opened back to plain text, every chain recomputed under the key, no re-anchoring recorded.
async fn write_plain(app: &Fixture) {
    let mut events = shenfen_projections::log::read_after(&app.db, Position::default(), 1_000_000).await.unwrap();
    app.keyring().open_events(&mut events).await.unwrap();
    let mut streams: std::collections::BTreeMap<(String, String), Vec<Value>> = Default::default();
    for e in events {
        streams.entry((e.aggregate_type, e.aggregate_id)).or_default().push(e.payload);
    }
    for ((ty, id), plain) in streams {
        let opened = |events: &mut [shenfen_projections::log::StoredEvent]| {
            events.iter_mut().zip(plain).for_each(|(e, p)| e.payload = p);
            true
        };
        shenfen_projections::reanchor::rewrite_stream(&app.db, &app.key(), (&ty, &id), ("fixture", "test"), opened)
            .await
            .unwrap();
    }
    app.sql("DELETE FROM chain_reanchors").await;
}

async fn payloads(app: &Fixture) -> String {
    let rows: Vec<(String,)> = fetch_all!(&app.db, (String,), "SELECT CAST(payload AS TEXT) FROM events").unwrap();
    rows.into_iter().map(|r| r.0).collect::<Vec<_>>().join("\n")
}

/// A store written before sealing existed: `encrypt` seals it in place, stream by stream
/// (resumable), the chains re-anchored and the re-anchoring recorded; everything verifies and
/// reads as before, and a rebuild equals the live read models.
async fn encrypt_seals_a_plain_store_in_place_resumably_and_it_still_verifies(app: Fixture) {
    write_plain(&app).await;
    let secrets = ["张三", "user1@example.com", "13800138001"];
    let before = payloads(&app).await;
    for secret in secrets {
        assert!(before.contains(secret), "the fixture is plain: {secret}");
    }
    assert_eq!(app.replay(&["verify"]).await.code, 0);
    let live = dump(&app.db).await;

    // Interrupted after one stream: what is done verifies, and is recorded.
    let first = app.replay(&["encrypt", "--max-streams", "1"]).await;
    assert_eq!(first.code, 0, "{first:?}");
    assert!(first.stdout.contains(" 1 rewritten"), "{first:?}");
    let verified = app.replay(&["verify"]).await;
    assert_eq!(verified.code, 0, "{verified:?}");
    assert!(verified.stdout.contains("1 streams were re-anchored"), "{verified:?}");

    // Resumed: the rest.
    let rest = app.replay(&["encrypt"]).await;
    assert_eq!(rest.code, 0, "{rest:?}");
    let after = payloads(&app).await;
    assert!(after.contains("enc:"), "{after}");
    for secret in secrets {
        assert!(!after.contains(secret), "{secret} is still in plain text");
    }
    let verified = app.replay(&["verify"]).await;
    assert_eq!(verified.code, 0, "{verified:?}");
    let recorded = app.sql("UPDATE chain_reanchors SET reason = reason").await;
    assert!(recorded > 1, "every rewritten stream is recorded: {recorded}");
    assert!(verified.stdout.contains(&format!("{recorded} streams were re-anchored")), "{verified:?}");
    let again = app.replay(&["encrypt"]).await;
    assert!(again.stdout.contains(" 0 rewritten"), "nothing is left to seal: {again:?}");

    // Readers open it as before; a rebuild from the sealed log equals the live read models.
    let history = app.replay(&["history", "account", "acc-1"]).await;
    assert!(history.stdout.contains("张三") && history.stdout.contains("user1@example.com"), "{history:?}");
    let rebuilt = app.replay(&["rebuild"]).await;
    assert_eq!(rebuilt.code, 0, "{rebuilt:?}");
    assert_eq!(dump(&app.db).await, live);

    // A record changed behind the application's back is found.
    app.sql("UPDATE chain_reanchors SET events = events + 1 WHERE aggregate_id = 'acc-1'").await;
    let verified = app.replay(&["verify"]).await;
    assert_eq!(verified.code, 2, "{verified:?}");
    assert!(verified.stdout.contains("re-anchoring of account acc-1"), "{verified:?}");
}
both_stores!(encrypt_seals_a_plain_store_in_place_resumably_and_it_still_verifies);

/// A log that does not verify is not re-anchored: that would hide what was changed.
async fn encrypt_refuses_a_log_that_does_not_verify(app: Fixture) {
    write_plain(&app).await;
    let mut payload = app.payload("account", "acc-2", 1).await;
    payload["Registered"]["name"] = Value::String("李四".into());
    let sql = format!(
        "UPDATE events SET payload = '{}' WHERE aggregate_type = 'account' AND aggregate_id = 'acc-2' AND sequence = 1",
        payload
    );
    app.sql(&sql).await;
    let run = app.replay(&["encrypt"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stdout.contains("broken: account acc-2"), "{run:?}");
    assert!(payloads(&app).await.contains("李四"), "nothing was rewritten");
    assert_eq!(app.sql("DELETE FROM chain_reanchors").await, 0);
}
both_stores!(encrypt_refuses_a_log_that_does_not_verify);

// ---------------------------------------------------------------------------------------------
// master-key
// ---------------------------------------------------------------------------------------------

async fn live_keys_under(app: &Fixture, master: &str) -> i64 {
    let sql = format!("SELECT count(*) FROM subject_keys WHERE wrapped IS NOT NULL AND master = '{master}'");
    let rows: Vec<(i64,)> = fetch_all!(&app.db, (i64,), &sql).unwrap();
    rows[0].0
}

/// Rotating the master key: a new one first in the file, every subject key wrapped again under
/// it, the old one retired; personal data reads as before, and without the new master key the
/// subject keys are not opened (the tools refuse, as the server refuses to start).
async fn the_master_key_rotates_and_personal_data_reads_as_before(app: Fixture) {
    let keys = live_keys_under(&app, "secret").await;
    assert!(keys > 1, "the workload's subjects have keys under the derived master");
    let new = app.replay(&["master-key", "new"]).await;
    assert_eq!(new.code, 0, "{new:?}");
    let id = new.stdout.split_whitespace().nth(2).unwrap().to_string();
    assert!(id.starts_with("m-"), "{new:?}");
    // Before the rewrap the earlier master still opens what it wraps.
    let history = app.replay(&["history", "account", "acc-1"]).await;
    assert!(history.stdout.contains("user1@example.com"), "{history:?}");

    let rewrapped = app.replay(&["master-key", "rewrap", "--batch-size", "2"]).await;
    assert_eq!(rewrapped.code, 0, "{rewrapped:?}");
    assert!(rewrapped.stdout.contains(&format!("{keys} subject keys wrapped again")), "{rewrapped:?}");
    assert!(rewrapped.stdout.contains("master key secret retired"), "{rewrapped:?}");
    assert_eq!(live_keys_under(&app, "secret").await, 0);
    assert_eq!(live_keys_under(&app, &id).await, keys);
    let again = app.replay(&["master-key", "rewrap"]).await;
    assert!(again.stdout.contains("0 subject keys wrapped again"), "resumable, idempotent: {again:?}");

    let history = app.replay(&["history", "account", "acc-1"]).await;
    assert!(history.stdout.contains("张三") && history.stdout.contains("user1@example.com"), "{history:?}");
    let live = dump(&app.db).await;
    let rebuilt = app.replay(&["rebuild"]).await;
    assert_eq!(rebuilt.code, 0, "{rebuilt:?}");
    assert_eq!(dump(&app.db).await, live);

    // The master key file lost: the subject keys are not opened, and the tools say why.
    std::fs::rename(app.master_key_file(), app.master_key_file().with_extension("away")).unwrap();
    let refused = app.replay(&["master-key", "rewrap"]).await;
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(refused.stderr.contains(&id), "names the missing master: {refused:?}");
    let rebuilt = app.replay(&["rebuild", "--restart"]).await;
    assert_eq!(rebuilt.code, 1, "{rebuilt:?}");
}
both_stores!(the_master_key_rotates_and_personal_data_reads_as_before);

/// The queries of the hot paths (a command's stream load and head check, the runners' tail, the
/// subject keys, the chain heads, the snapshots, the staff queues, the due work of the
/// housekeeping and the outbox) use an index: with sequential scans priced out, no plan of
/// them reads a table whole. PostgreSQL only (its planner is the one that matters at size).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hot_path_queries_use_an_index() {
    let app = Fixture::new(Store::Postgres).await;
    let shenfen_projections::db::Db::Postgres(pool) = &app.db else { unreachable!("a PostgreSQL fixture") };
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query("SET enable_seqscan = off").execute(&mut *conn).await.unwrap();
    let queries = [
        "SELECT * FROM events WHERE aggregate_type = 'account' AND aggregate_id = 'acc-0' ORDER BY sequence",
        "SELECT sequence FROM events WHERE aggregate_type = 'account' AND aggregate_id = 'acc-0'
          ORDER BY sequence DESC LIMIT 1",
        "SELECT * FROM events WHERE (transaction_id, global_position) > ('1'::xid8, 0)
          ORDER BY transaction_id, global_position LIMIT 500",

        "SELECT * FROM subject_keys WHERE subject = 'acc-0'",
        "SELECT * FROM chain_heads WHERE aggregate_type = 'account' AND aggregate_id = 'acc-0'",
        "SELECT * FROM aggregate_snapshots WHERE aggregate_type = 'account' AND aggregate_id = 'acc-0'",
        // A cold load: the snapshot and the events from it on, in one query.
        "SELECT s.last_sequence, s.state, e.sequence, e.payload FROM (SELECT 1 AS one) AS o
           LEFT JOIN aggregate_snapshots AS s
             ON s.aggregate_type = 'account' AND s.aggregate_id = 'acc-0' AND s.fingerprint = 'f'
           LEFT JOIN events AS e
             ON e.aggregate_type = 'account' AND e.aggregate_id = 'acc-0' AND e.sequence >= COALESCE(s.last_sequence, 0)
          ORDER BY e.sequence",
        "SELECT * FROM review_queue WHERE status = 'pending' ORDER BY due_by, submitted_at, review_id LIMIT 50",
        "SELECT account_id FROM pending_deletions WHERE effective_at <= now() ORDER BY effective_at LIMIT 100",
        "SELECT * FROM support_cases ORDER BY reply_due_by, case_id LIMIT 50",
        "SELECT id FROM outbox WHERE delivered_at IS NULL AND expired_at IS NULL AND next_attempt_at <= now()
           AND (expires_at IS NULL OR expires_at > now()) ORDER BY next_attempt_at LIMIT 10",
        "SELECT * FROM students WHERE school_code = '3201001' AND grade = 8 AND class = '3班'
           AND status = 'pending_head_teacher' ORDER BY due_by, submitted_at, student_id LIMIT 500",
        "SELECT * FROM students WHERE school_code = '3201001' AND status IN ('pending_head_teacher', 'registry_failed')
          ORDER BY CASE WHEN due_by IS NULL THEN 1 ELSE 0 END, due_by, submitted_at, student_id LIMIT 500",
        "SELECT * FROM students WHERE review_id = 'srv-1'",
        "SELECT * FROM students WHERE school_code = '3201001' AND (pass_id = 'P90000000001' OR student_number = 'P90000000001')
           AND status <> 'erased'",
        "SELECT student_id FROM students WHERE deletion_effective_at <= now() ORDER BY deletion_effective_at LIMIT 100",
        // The analyst tables over a date range, and the projection's own lookups.
        "SELECT day, document_type, registrations FROM analytics_registrations
          WHERE day >= '2026-01-01' AND day <= '2026-12-31' ORDER BY day, document_type",
        "SELECT day, outcome, reason, attempts FROM analytics_verification_attempts
          WHERE day >= '2026-01-01' AND day <= '2026-12-31' ORDER BY day, outcome, reason",
        "SELECT day, quota, accounts FROM analytics_quota_exhaustion
          WHERE day >= '2026-01-01' AND day <= '2026-12-31' AND accounts > 0 ORDER BY day, quota",
        "SELECT review_id, submitted_day, due_by, decision, turnaround_working_days FROM analytics_reviews
          WHERE submitted_day >= '2026-01-01' AND submitted_day <= '2026-12-31' ORDER BY submitted_day, review_id",
        "SELECT account_id, day, counted FROM analytics_attempt_counts WHERE account_id = ANY('{acc-0,acc-1}')",
        "SELECT account_id, period_start, count(*) FROM analytics_reviews WHERE account_id = ANY('{acc-0,acc-1}')
          GROUP BY account_id, period_start",
        "SELECT * FROM analytics_reviews WHERE review_id = ANY('{rev-0,rev-1}')",
        "SELECT * FROM analytics_student_verifications WHERE day >= '2026-01-01' AND day <= '2026-12-31'
          ORDER BY day, school_code",
        // The change feed's page, the holder's claims and support cases, the account view.
        "SELECT cursor, account_id, kind, at FROM identity_changes WHERE cursor > 10 ORDER BY cursor LIMIT 100",
        "SELECT claim_id, status, created_at, expires_at FROM reregistration_claims
          WHERE account_id = 'acc-0' ORDER BY created_at DESC, claim_id",
        "SELECT case_id FROM support_cases WHERE account_id = 'acc-0'",
        "SELECT * FROM support_cases WHERE status = 'open' ORDER BY reply_due_by, case_id LIMIT 50",
        "SELECT * FROM account_view WHERE account_id IN ('acc-0', 'acc-1')",
    ];
    for query in queries {
        let plan = plan_of(&mut conn, query).await;
        assert!(!plan.contains("Seq Scan"), "reads a table whole: {query}\n{plan}");
    }
    // Reads of the log's head or tail walk the index in its order: no sort of the whole log
    // (an index scan feeding a sort passes the check above and still reads every row). Sorts
    // priced out too, so that only a query no index can serve in order keeps one, whatever
    // the planner would pick for this small table.
    sqlx::query("SET enable_sort = off").execute(&mut *conn).await.unwrap();
    let in_index_order = [
        // Where the log ends, as the seal reads it when it first opens (at start-up).
        "SELECT transaction_id::text::bigint, global_position FROM events
          WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())
          ORDER BY events.transaction_id DESC, events.global_position DESC LIMIT 1",
        "SELECT * FROM events WHERE (transaction_id, global_position) > ('1'::xid8, 0)
          ORDER BY transaction_id, global_position LIMIT 500",
    ];
    for query in in_index_order {
        let plan = plan_of(&mut conn, query).await;
        assert!(!plan.contains("\"Sort\""), "sorts the log: {query}\n{plan}");
    }
}

/// PostgreSQL's plan for `query`, as JSON text.
async fn plan_of(conn: &mut sqlx::PgConnection, query: &str) -> String {
    let (plan,): (serde_json::Value,) =
        sqlx::query_as(&format!("EXPLAIN (FORMAT JSON) {query}")).fetch_one(conn).await.unwrap();
    plan.to_string()
}
