//! Crashes under load: nothing the server acknowledged is lost. Concurrent clients edit
//! profiles (each acknowledged edit is exactly one `ProfileEdited` event) while the server is
//! killed with SIGKILL (both stores) or PostgreSQL is stopped with `-m immediate` (the same
//! server process then recovers by itself). Afterwards the stored events are counted against
//! the answers: every acknowledged edit is there, and nothing is there that was not asked for.
//! And a database that stops taking writes without dying: the commands are answered 503
//! `store_unavailable` within the write timeout, and none of them is written afterwards.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use shenfen_tests::{both_stores, Settings, Store, TestApp};

/// One client editing one account's profile until told to stop.
#[derive(Debug, Default)]
struct Tally {
    /// Edits answered 200.
    acked: usize,
    /// Edits sent (answered or not).
    attempts: usize,
    /// When each 200 arrived.
    acked_at: Vec<Instant>,
}

struct Editor {
    account_id: String,
    tally: Arc<Mutex<Tally>>,
}

/// Registers `n` accounts with complete profiles and returns their ids and tokens.
async fn accounts(app: &TestApp, n: usize) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for _ in 0..n {
        let account = app.register_account().await;
        let token = app.login_ok(&account).await;
        app.complete_profile(&token, "resident_id_card").await;
        out.push((account.account_id, token));
    }
    out
}

/// Starts one editing client per account against `base_url`; each edit sets an ethnicity code
/// different from the previous 54 (02…56 in turn; the profile starts at 01), so every edit
/// that goes in writes one event.
fn start_editors(
    base_url: &str,
    accounts: &[(String, String)],
    stop: &Arc<AtomicBool>,
) -> Vec<(Editor, tokio::task::JoinHandle<()>)> {
    accounts
        .iter()
        .map(|(account_id, token)| {
            let tally = Arc::new(Mutex::new(Tally::default()));
            let (url, token, stop, shared) =
                (format!("{base_url}/v1/me/profile"), token.clone(), stop.clone(), tally.clone());
            let task = tokio::spawn(async move {
                let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(5)).build().unwrap();
                let mut i = 0usize;
                while !stop.load(Ordering::SeqCst) {
                    let code = format!("{:02}", 2 + i % 55);
                    i += 1;
                    shared.lock().unwrap().attempts += 1;
                    let answer = client.put(&url).bearer_auth(&token).json(&json!({"ethnicity": code})).send().await;
                    match answer {
                        Ok(r) if r.status().as_u16() == 200 => {
                            let mut t = shared.lock().unwrap();
                            t.acked += 1;
                            t.acked_at.push(Instant::now());
                        }
                        // Refused or not answered (the server is down): try again shortly.
                        _ => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                }
            });
            (Editor { account_id: account_id.clone(), tally }, task)
        })
        .collect()
}

async fn stop_editors(stop: &AtomicBool, editors: Vec<(Editor, tokio::task::JoinHandle<()>)>) -> Vec<Editor> {
    stop.store(true, Ordering::SeqCst);
    let mut out = Vec::new();
    for (editor, task) in editors {
        let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        out.push(editor);
    }
    out
}

/// The `ProfileEdited` events stored for `account_id`.
async fn stored_edits(app: &TestApp, account_id: &str) -> i64 {
    app.query_i64(
        "SELECT count(*) FROM events WHERE aggregate_type = 'account' AND aggregate_id = $1 AND event_type = 'ProfileEdited'",
        &[account_id],
    )
    .await
}

/// Every acknowledged edit is stored, and no more are stored than were sent.
async fn assert_nothing_acknowledged_was_lost(app: &TestApp, editors: &[Editor]) {
    let mut total = 0;
    for editor in editors {
        let stored = stored_edits(app, &editor.account_id).await as usize;
        let t = editor.tally.lock().unwrap();
        assert!(stored >= t.acked, "{}: {} edits acknowledged, only {stored} stored", editor.account_id, t.acked);
        assert!(stored <= t.attempts, "{}: {stored} stored, only {} sent", editor.account_id, t.attempts);
        total += t.acked;
        eprintln!("{}: {} sent, {} acknowledged, {stored} stored", editor.account_id, t.attempts, t.acked);
    }
    assert!(total > 0, "the clients wrote something");
}

async fn a_server_killed_mid_write_loses_nothing_it_acknowledged(app: &mut TestApp) {
    let accounts = accounts(app, 6).await;
    let stop = Arc::new(AtomicBool::new(false));
    let editors = start_editors(&app.base_url, &accounts, &stop);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    app.stop().await; // SIGKILL, in the middle of the writes
    let editors = stop_editors(&stop, editors).await;

    app.start().await;
    assert_nothing_acknowledged_was_lost(app, &editors).await;
    // The sessions and the accounts survived: every client may go on.
    for (_, token) in &accounts {
        app.put_json_as(token, "/v1/me/profile", &json!({"ethnicity": "01"})).await.assert_status(200);
    }
}

both_stores!(a_server_killed_mid_write_loses_nothing_it_acknowledged);

/// PostgreSQL dies under load and comes back: the same server process writes again within
/// seconds, without a restart, and lost nothing it acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_mid_write_and_started_again_loses_nothing_and_the_server_recovers() {
    shenfen_tests::use_server_binary(env!("CARGO_BIN_EXE_shenfen-server"));
    let app = TestApp::spawn(Store::Postgres, Settings::defaults()).await;
    let accounts = accounts(&app, 6).await;
    let stop = Arc::new(AtomicBool::new(false));
    let editors = start_editors(&app.base_url, &accounts, &stop);
    tokio::time::sleep(Duration::from_millis(1500)).await;

    app.crash_postgres();
    tokio::time::sleep(Duration::from_secs(2)).await;
    app.start_postgres_again().await;
    let back = Instant::now();

    // Every client gets an edit through again, on the same server process.
    let recovered =
        || async { editors.iter().all(|(e, _)| e.tally.lock().unwrap().acked_at.iter().any(|t| *t > back)) };
    let recovered = shenfen_tests::eventually(Duration::from_secs(20), recovered, |done| *done).await;
    assert!(recovered, "the server did not write again within 20 s of PostgreSQL's return");
    let recovered_after = back.elapsed();
    eprintln!("every client wrote again {recovered_after:?} after PostgreSQL came back");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let editors = stop_editors(&stop, editors).await;
    assert!(recovered_after < Duration::from_secs(10), "writing again took {recovered_after:?}");
    assert_nothing_acknowledged_was_lost(&app, &editors).await;

    // The read side recovered too.
    let ready = async {
        loop {
            let r = app.get("/readyz").await;
            if r.body["status"] == json!("ready") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), ready).await.expect("/readyz answers ready again");
}

/// A database that takes no writes for a while (a DBA's `LOCK TABLE`, a stalled disk on
/// PostgreSQL; another writer keeping SQLite's write lock) while clients edit: each edit is
/// answered 503 `store_unavailable` once the write timeout has passed, not when the lock goes;
/// none of them is in the log after the lock is released (nothing waits to commit late), and
/// the same edits then go in, once each.
async fn writes_held_up_past_the_write_timeout_are_refused_whole_and_never_land_later(app: &mut TestApp) {
    let accounts = accounts(app, 4).await;
    let mut before = Vec::new();
    for (id, _) in &accounts {
        before.push(stored_edits(app, id).await);
    }

    // Reads go on; every write waits.
    let hold = app.hold_writes().await;
    let started = Instant::now();
    let edit = json!({"ethnicity": "07"});
    let answers =
        futures::future::join_all(accounts.iter().map(|(_, token)| app.put_json_as(token, "/v1/me/profile", &edit)))
            .await;
    let answered_after = started.elapsed();
    for answer in &answers {
        answer.assert_problem(503, "store_unavailable");
    }
    assert!(answered_after < Duration::from_secs(8), "answered after {answered_after:?}, the lock still held");
    // Held a while longer, then let go: a write still waiting behind it would go in now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    hold.release().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for ((id, _), before) in accounts.iter().zip(&before) {
        assert_eq!(stored_edits(app, id).await, *before, "{id}: an edit refused with 503 was written after all");
    }

    // The same server writes again: the same edits, each once.
    for ((id, token), before) in accounts.iter().zip(&before) {
        app.put_json_as(token, "/v1/me/profile", &edit).await.assert_status(200);
        assert_eq!(stored_edits(app, id).await, before + 1, "{id}: the edit went in once");
    }
}

both_stores!(
    writes_held_up_past_the_write_timeout_are_refused_whole_and_never_land_later,
    Settings::defaults().env("SHENFEN_WRITE_TIMEOUT_MS", "1000")
);
