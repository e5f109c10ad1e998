//! `shenfen-replay-bench`: how fast `shenfen-replay rebuild` replays the log on PostgreSQL, next
//! to the raw read rate of the same rows measured in the same run, and how long loading one
//! aggregate takes as its stream grows, with and without our own snapshots.
//!
//! 1. A throwaway PostgreSQL (pgtemp) with PostgreSQL's stock durability (`fsync`,
//!    `synchronous_commit`, `full_page_writes` on: pgtemp turns them off by default).
//! 2. The log is filled by bulk SQL (`INSERT … SELECT … FROM generate_series`) with account
//!    streams: one `Registered` and then `ProfileEdited` events (each a new e-mail address), made
//!    from real serialized events, so every payload decodes as `AccountEvent` (checked on a
//!    sample). The hash chain is not computed (nothing here verifies it).
//! 3. The raw read rate: `COPY (SELECT … FROM events ORDER BY transaction_id, global_position)
//!    TO STDOUT`, twice (the best run counts, which makes the ratio conservative).
//! 4. The rebuild of every read model, through the replay tool's library in this process.
//! 5. Streams of 10, 1,000 and 10,000 events written through `CommandBus<Account>` (profile
//!    edits); the median of 20 `CommandBus::load`s without a snapshot, with a snapshot at the
//!    head, and with a snapshot whose fingerprint is stale (it must be ignored).
//!
//! Missing a target is a finding, not a failure: the exit status is non-zero only when the run
//! itself could not be carried out.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::{NaiveDate, TimeZone, Utc};
use clap::Parser;
use futures::StreamExt;
use pgtemp::{PgTempDB, PgTempDBBuilder};
use serde_json::Value;
use shenfen_bench::database::find_bin_dir;
use shenfen_domain::account::{Account, AccountCommand, ProfileInput, Registration, UpdateProfile};
use shenfen_domain::metadata::{Actor, EventMetadata};
use shenfen_domain::shared::document::check_char;
use shenfen_domain::shared::ethnicity::Ethnicity;
use shenfen_domain::shared::{DocumentNumber, DocumentType, Email, Mobile, PersonName, Validity};
use shenfen_projections::db::Db;
use shenfen_projections::store::CommandBus;
use shenfen_replay::progress::Progress;
use shenfen_replay::rebuild;
use sqlx::{Connection, Executor, PgConnection};

/// Rebuild and load-time benchmark of the replay tool, on PostgreSQL.
#[derive(Debug, Parser)]
#[command(name = "shenfen-replay-bench", version)]
struct Args {
    /// Account streams in the generated log.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1..))]
    accounts: u32,
    /// Events per generated stream (one `Registered`, the rest `ProfileEdited`).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    events_per_account: u32,
    /// Events per rebuild batch.
    #[arg(long, default_value_t = rebuild::Options::default().batch_size)]
    batch_size: i64,
    /// Rows a read model may keep in memory between writes during the rebuild.
    #[arg(long, default_value_t = rebuild::Options::default().cache_rows)]
    cache_rows: usize,
    /// Loads timed per stream length and mode (the median is reported).
    #[arg(long, default_value_t = 20)]
    loads: usize,
    /// Stream lengths for the load-time part (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [10u32, 1_000, 10_000])]
    streams: Vec<u32>,
    /// Where PostgreSQL's binaries are (default: the newest /usr/lib/postgresql/*/bin).
    #[arg(long)]
    pg_bin: Option<PathBuf>,
    /// Keep pgtemp's test settings (fsync, synchronous_commit and full_page_writes off).
    #[arg(long)]
    non_durable: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let Some(bin) = args.pg_bin.clone().or_else(find_bin_dir) else {
        eprintln!("shenfen-replay-bench: no PostgreSQL under /usr/lib/postgresql (apt-get install postgresql)");
        return ExitCode::FAILURE;
    };
    // pgtemp and its helpers look PostgreSQL's tools up on PATH; set before any thread starts.
    let old = std::env::var_os("PATH").unwrap_or_default();
    if let Ok(path) = std::env::join_paths(std::iter::once(bin.clone()).chain(std::env::split_paths(&old))) {
        std::env::set_var("PATH", path);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("shenfen-replay-bench: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args, bin)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shenfen-replay-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Starts the throwaway server; unless `non_durable`, with PostgreSQL's stock durability.
/// Returns the server, its TCP URL and its Unix-socket URL.
async fn start_postgres(bin: &Path, non_durable: bool) -> anyhow::Result<(PgTempDB, String, String)> {
    let mut builder = PgTempDBBuilder::new()
        .with_bin_path(bin)
        .with_initdb_arg("encoding", "UTF8")
        .with_initdb_arg("locale", "C")
        .with_config_param("listen_addresses", "127.0.0.1")
        // pgtemp pipes the server's stderr without reading it; a full pipe would block every
        // backend that logs. The logging collector writes the log to files instead.
        .with_config_param("logging_collector", "on");
    if !non_durable {
        for key in ["fsync", "synchronous_commit", "full_page_writes", "autovacuum"] {
            builder = builder.with_config_param(key, "on");
        }
    }
    let db = tokio::task::spawn_blocking(move || builder.start())
        .await
        .map_err(|e| anyhow::anyhow!("starting PostgreSQL with pgtemp failed: {e}"))?;
    let url = format!("postgres://{}:{}@127.0.0.1:{}/{}", db.db_user(), db.db_pass(), db.db_port(), db.db_name());
    // pgtemp puts the server's socket in its data directory.
    let socket = format!(
        "postgres://{}:{}@localhost/{}?host={}&port={}",
        db.db_user(),
        db.db_pass(),
        db.db_name(),
        db.data_dir().display(),
        db.db_port()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match PgConnection::connect(&url).await {
            Ok(conn) => {
                let _ = conn.close().await;
                return Ok((db, url, socket));
            }
            Err(e) if Instant::now() >= deadline => return Err(e).context("PostgreSQL did not accept connections"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

async fn run(args: Args, bin: PathBuf) -> anyhow::Result<()> {
    let (server, url, socket) = start_postgres(&bin, args.non_durable).await?;
    let result = bench(&args, &url, &socket).await;
    tokio::task::spawn_blocking(move || drop(server)).await.context("stopping PostgreSQL")?;
    result
}

async fn bench(args: &Args, url: &str, socket: &str) -> anyhow::Result<()> {
    let db = Db::open(url, 16).await.context("opening the event store")?;
    let mut admin = PgConnection::connect(url).await.context("connecting to PostgreSQL")?;
    let mut facts = Vec::new();
    for key in ["server_version", "fsync", "synchronous_commit", "full_page_writes"] {
        let value: String = sqlx::query_scalar(&format!("SHOW {key}")).fetch_one(&mut admin).await?;
        facts.push(format!("{key}={value}"));
    }
    let cores = std::thread::available_parallelism().map_or(0, usize::from);

    let t = Instant::now();
    let events = shenfen_bench::replay_log::generate(&mut admin, args.accounts, args.events_per_account).await?;
    let generated = t.elapsed();
    eprintln!("generated {events} events in {:.1} s", generated.as_secs_f64());

    let mut raw = Vec::new();
    for _ in 0..2 {
        raw.push(raw_read(&mut admin).await?);
    }
    let (rows, _, best) = raw.iter().copied().min_by(|a, b| a.2.cmp(&b.2)).context("no raw read was measured")?;
    if rows != events {
        bail!("COPY read {rows} rows, the log has {events}");
    }
    let raw_rate = rows as f64 / best.as_secs_f64();

    let projections = rebuild::select(None)?;
    let names: Vec<&str> = projections.iter().map(|p| p.name()).collect();
    let options = rebuild::Options {
        batch_size: args.batch_size,
        restart: true,
        cache_rows: args.cache_rows,
        ..rebuild::Options::default()
    };
    let report =
        rebuild::rebuild(&db, projections.clone(), &options, &Progress::hidden()).await.context("rebuilding")?;
    if report.events_read != events {
        bail!("the rebuild read {} events, the log has {events}", report.events_read);
    }
    let rebuild_rate = events as f64 / report.elapsed.as_secs_f64();
    let floor = statement_floor(&mut admin).await?;

    // The same over the server's Unix socket: what the round trip costs.
    let socket_db = Db::open(socket, 16).await.context("opening the event store over the Unix socket")?;
    let mut socket_conn = PgConnection::connect(socket).await.context("connecting over the Unix socket")?;
    let socket_report =
        rebuild::rebuild(&socket_db, projections, &options, &Progress::hidden()).await.context("rebuilding")?;
    let socket_rate = events as f64 / socket_report.elapsed.as_secs_f64();
    let socket_floor = statement_floor(&mut socket_conn).await?;
    let _ = socket_conn.close().await;
    socket_db.close().await;

    println!("## Rebuild on PostgreSQL ({})", facts.join(", "));
    println!();
    println!(
        "{cores} cores; {} account streams x {} events; generated in {:.1} s; rebuild row cache {} rows.",
        args.accounts,
        args.events_per_account,
        generated.as_secs_f64(),
        args.cache_rows
    );
    println!();
    println!("| measure | events | seconds | events/s | / raw read |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (i, (rows, bytes, time)) in raw.iter().enumerate() {
        println!(
            "| raw read over TCP, `COPY (SELECT … ORDER BY transaction_id, global_position) TO STDOUT`, run {} ({:.0} MB) | {rows} | {:.2} | {:.0} | |",
            i + 1,
            *bytes as f64 / 1e6,
            time.as_secs_f64(),
            *rows as f64 / time.as_secs_f64()
        );
    }
    for (how, report, rate) in [("TCP", &report, rebuild_rate), ("the Unix socket", &socket_report, socket_rate)] {
        println!(
            "| `shenfen-replay rebuild` of all {} read models ({}) over {how}, batch {} | {events} | {:.2} | {rate:.0} | **{:.3}** |",
            names.len(),
            names.join(", "),
            args.batch_size,
            report.elapsed.as_secs_f64(),
            rate / raw_rate
        );
    }
    println!();
    println!("Target: rebuild >= 0.25 x raw read (raw = the faster COPY run).");
    println!();
    println!("Where the rebuild's time goes (TCP run; the read models run in parallel, one connection each):");
    println!();
    println!("| part | seconds | events/s of that part |");
    println!("| --- | ---: | ---: |");
    println!(
        "| shared reader: `log::copy_for_projections` (binary `COPY`) pages of 50,000, decoded into batches of {} \
         (waiting for the read models excluded) | {:.2} | {:.0} |",
        args.batch_size,
        report.read_time.as_secs_f64(),
        events as f64 / report.read_time.as_secs_f64().max(1e-9)
    );
    for p in &report.projections {
        println!(
            "| `{}` applying {} events (its batches and writes, commits included) | {:.2} | {:.0} |",
            p.name,
            p.applied,
            p.busy.as_secs_f64(),
            events as f64 / p.busy.as_secs_f64().max(1e-9)
        );
    }
    println!();
    println!(
        "The floor of one statement: a single-row `UPDATE … WHERE id = $1` through sqlx, 20,000 in one \
         transaction on a temporary table, takes {:.1} µs over TCP and {:.1} µs over the Unix socket, so a \
         read model that issues one statement per event cannot apply more than {:.0} (TCP) or {:.0} (socket) \
         events/s on one connection.",
        floor.as_secs_f64() * 1e6,
        socket_floor.as_secs_f64() * 1e6,
        1.0 / floor.as_secs_f64(),
        1.0 / socket_floor.as_secs_f64()
    );
    println!();

    load_times(args, &db).await?;
    db.close().await;
    let _ = admin.close().await;
    Ok(())
}

/// Reads every event with COPY in the global order; returns (rows, bytes, time).
async fn raw_read(conn: &mut PgConnection) -> anyhow::Result<(u64, u64, Duration)> {
    let t = Instant::now();
    let mut stream = conn
        .copy_out_raw(
            "COPY (SELECT transaction_id, global_position, aggregate_type, aggregate_id, sequence, event_type,
                          event_version, payload, metadata, recorded_at
                     FROM events ORDER BY transaction_id, global_position) TO STDOUT",
        )
        .await
        .context("starting COPY")?;
    let (mut rows, mut bytes) = (0u64, 0u64);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.context("reading COPY data")?;
        bytes += chunk.len() as u64;
        // Text COPY escapes newlines inside values: every raw newline ends a row.
        rows += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
    }
    Ok((rows, bytes, t.elapsed()))
}

/// The time of one single-row UPDATE round trip through sqlx inside a transaction.
async fn statement_floor(conn: &mut PgConnection) -> anyhow::Result<Duration> {
    conn.execute("CREATE TEMPORARY TABLE probe (id integer PRIMARY KEY, v text NOT NULL)").await?;
    conn.execute("INSERT INTO probe SELECT i, 'x' FROM generate_series(1, 10000) AS i").await?;
    const N: u32 = 20_000;
    let mut tx = conn.begin().await?;
    let t = Instant::now();
    for i in 0..N {
        sqlx::query("UPDATE probe SET v = $1 WHERE id = $2")
            .bind(format!("value {i}"))
            .bind((i % 10_000 + 1) as i32)
            .execute(&mut *tx)
            .await?;
    }
    let per = t.elapsed() / N;
    tx.commit().await?;
    conn.execute("DROP TABLE probe").await?;
    Ok(per)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

/// The median time of `loads` loads of `id` from the store (snapshot and events, never the
/// bus's in-memory cache), and the state loaded.
async fn time_loads(bus: &CommandBus<Account>, id: &str, loads: usize) -> anyhow::Result<(Duration, Value)> {
    let mut samples = Vec::with_capacity(loads);
    let mut state = Value::Null;
    for _ in 0..loads.max(1) {
        let t = Instant::now();
        let loaded = bus.load_uncached(id).await.map_err(|e| anyhow::anyhow!("loading {id}: {e}"))?;
        samples.push(t.elapsed());
        state = serde_json::to_value(&loaded.state)?;
    }
    Ok((median(samples), state))
}

/// The median time of `loads` loads of `id` through `CommandBus::load`, which a stream this
/// process has seen answers from memory after one indexed query.
async fn time_cached_loads(bus: &CommandBus<Account>, id: &str, loads: usize) -> anyhow::Result<Duration> {
    bus.load(id).await.map_err(|e| anyhow::anyhow!("loading {id}: {e}"))?;
    let mut samples = Vec::with_capacity(loads);
    for _ in 0..loads.max(1) {
        let t = Instant::now();
        bus.load(id).await.map_err(|e| anyhow::anyhow!("loading {id}: {e}"))?;
        samples.push(t.elapsed());
    }
    Ok(median(samples))
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Part 2: one stream per length, written through the command bus; load times.
async fn load_times(args: &Args, db: &Db) -> anyhow::Result<()> {
    let key = shenfen_projections::chain::ChainKey::derive(&rand::random::<[u8; 32]>());
    let bus = CommandBus::<Account>::new(db, (), shenfen_projections::commits::Commits::new(db, key));
    let today = NaiveDate::from_ymd_opt(2026, 5, 10).context("a fixed date")?;
    let start = NaiveDate::from_ymd_opt(2020, 1, 1).context("a fixed date")?;
    let mut rows = Vec::new();
    for (n, &length) in args.streams.iter().enumerate() {
        let id = format!("load-{length}");
        let mut now = Utc.with_ymd_and_hms(2026, 5, 10, 1, 0, 0).single().context("a fixed instant")?;
        let meta = |at| EventMetadata { actor: Actor::Account { id: id.clone() }, request_id: "bench".into(), at };
        let first17 = format!("31010419800101{n:03}");
        let registration = Registration {
            document_type: DocumentType::ResidentIdCard,
            document_number: DocumentNumber::parse(
                DocumentType::ResidentIdCard,
                &format!("{first17}{}", check_char(&first17)),
                today,
            )
            .map_err(|e| anyhow::anyhow!("document number: {e:?}"))?,
            name: PersonName::parse("李四").map_err(|e| anyhow::anyhow!("name: {e:?}"))?,
            validity: Validity::parse("20y", start, DocumentType::ResidentIdCard, None, today)
                .map_err(|e| anyhow::anyhow!("validity: {e:?}"))?,
            email: Email::parse("load@example.com").map_err(|e| anyhow::anyhow!("e-mail: {e:?}"))?,
            mobile: Mobile::parse("13900139000").map_err(|e| anyhow::anyhow!("mobile: {e:?}"))?,
            password_hash: "argon".into(),
            consent: None,
            now,
        };
        bus.execute(&id, AccountCommand::Register(registration), &meta(now))
            .await
            .map_err(|e| anyhow::anyhow!("registering {id}: {e}"))?;
        let t = Instant::now();
        let mut sequence = 1i64;
        while sequence < i64::from(length) {
            now += chrono::Duration::seconds(1);
            // Completion, then edits that alternate the ethnicity: one event each.
            let code = if sequence % 2 == 1 { "01" } else { "02" };
            let ethnicity = Ethnicity::parse(code).map_err(|e| anyhow::anyhow!("ethnicity: {e:?}"))?;
            let profile = ProfileInput { ethnicity: Some(ethnicity), ..ProfileInput::default() };
            let command = AccountCommand::UpdateProfile(UpdateProfile { profile, validity: None, now });
            let committed =
                bus.execute(&id, command, &meta(now)).await.map_err(|e| anyhow::anyhow!("editing {id}: {e}"))?;
            sequence += committed.events.len() as i64;
            // As the snapshot writer does (every 100 events), so writing stays linear.
            if sequence % 100 == 0 {
                bus.write_snapshot(&id).await.map_err(|e| anyhow::anyhow!("snapshot of {id}: {e}"))?;
            }
        }
        eprintln!("wrote {id} ({sequence} events) through the command bus in {:.1} s", t.elapsed().as_secs_f64());

        let Db::Postgres(pool) = db else { bail!("the benchmark runs on PostgreSQL") };
        sqlx::query("DELETE FROM aggregate_snapshots WHERE aggregate_id = $1").bind(&id).execute(pool).await?;
        let (cold, full) = time_loads(&bus, &id, args.loads).await?;
        bus.write_snapshot(&id).await.map_err(|e| anyhow::anyhow!("snapshot of {id}: {e}"))?;
        let (snap, from_snapshot) = time_loads(&bus, &id, args.loads).await?;
        sqlx::query(
            "UPDATE aggregate_snapshots SET fingerprint = 'a-state-shape-of-an-older-version' WHERE aggregate_id = $1",
        )
        .bind(&id)
        .execute(pool)
        .await?;
        let (stale, from_stale) = time_loads(&bus, &id, args.loads).await?;
        if full != from_snapshot || full != from_stale {
            bail!("{id}: the state loaded from a snapshot differs from the state replayed from the events");
        }
        let cached = time_cached_loads(&bus, &id, args.loads).await?;
        rows.push((sequence, cold, snap, stale, cached));
    }
    println!(
        "## Loading one aggregate from the store (`CommandBus::load_uncached`: snapshot, then events; median of {} loads)",
        args.loads
    );
    println!();
    println!(
        "| events in the stream | no snapshot | snapshot at the head | snapshot with a stale fingerprint (ignored) \
         | `CommandBus::load`, stream already in the bus's memory |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: |");
    for (events, cold, snap, stale, cached) in rows {
        println!("| {events} | {} | {} | {} | {} |", ms(cold), ms(snap), ms(stale), ms(cached));
    }
    println!();
    println!("The three states are checked equal; a stale fingerprint falls back to replaying every event.");
    Ok(())
}
