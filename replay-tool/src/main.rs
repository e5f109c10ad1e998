//! `shenfen-replay`: the auditors' replay tool (see the library's docs for what each verb does).
//!
//! Exit codes: 0 success (for `verify`: every chain intact); 1 error (bad arguments, database
//! unreachable, anything unexpected); 2 `verify` found a broken chain; 3 `history`/`state` of a
//! stream with no events.

/// mimalloc: a rebuild decodes millions of events into short-lived JSON values and strings,
/// where glibc's allocator took about a quarter of the tool's CPU (its `malloc_consolidate`
/// and `unlink_chunk` on every batch's frees).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand, ValueEnum};
use shenfen_projections::chain::ChainKey;
use shenfen_projections::master_keys::MasterKeys;
use shenfen_projections::pii::Keyring;
use shenfen_projections::reanchor;
use shenfen_replay::progress::Progress;
use shenfen_replay::{exit, export, history, rebuild, stuck, verify};

const EXIT_CODES: &str = "\
Exit codes:
  0  success (verify: every hash chain is intact)
  1  error: bad arguments, database unreachable, anything unexpected
  2  verify found a broken chain or seal (one line `broken: TYPE ID at sequence N: PROBLEM` per
     stream, `broken: seal: PROBLEM` for the seal)
  3  history or state of a stream that has no events
  4  stuck found a projection stopped at an event";

/// The auditors' replay tool of Shenfen: rebuild read models, read a stream's history and its
/// state at an instant, verify the tamper-evident hash chains, export the log.
#[derive(Debug, Parser)]
#[command(name = "shenfen-replay", version, about, after_help = EXIT_CODES)]
struct Cli {
    /// The event store: `sqlite://PATH` or `postgres://…`.
    #[arg(long, global = true, env = "SHENFEN_DATABASE_URL", default_value = "sqlite://data/shenfen.db")]
    database_url: String,
    /// The server's secret key file: the chain's key and the key that unwraps the data
    /// subjects' keys derive from it (`verify` needs it; `history`, `state` and `rebuild` open
    /// personal data with it).
    #[arg(long, global = true, env = "SHENFEN_SECRET_KEY_FILE", default_value = "./data/secret.key")]
    secret_key_file: PathBuf,
    /// The master key file (as the server's `SHENFEN_MASTER_KEY_FILE`): the keys that unwrap
    /// the data subjects' keys, the current first. While it does not exist, the master key is
    /// derived from the secret key file.
    #[arg(long, global = true, env = "SHENFEN_MASTER_KEY_FILE", default_value = "./data/master.keys")]
    master_key_file: PathBuf,
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Debug, Subcommand)]
enum Verb {
    /// Rebuild read models into fresh tables and swap them in at the end (resumable).
    #[command(after_help = EXIT_CODES)]
    Rebuild {
        /// Only this read model (default: all of them).
        #[arg(long)]
        projection: Option<String>,
        /// Drop a rebuild in progress and start over instead of resuming it.
        #[arg(long)]
        restart: bool,
        /// Events per batch (one transaction per read model and batch; fewer, larger batches
        /// are faster, at a few hundred bytes of memory per event in flight).
        #[arg(long, default_value_t = rebuild::Options::default().batch_size,
              value_parser = clap::value_parser!(i64).range(1..=100_000))]
        batch_size: i64,
        /// Rows a read model may keep in memory between writes (account_view: about 1 KB each).
        #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
        cache_rows: u64,
    },
    /// Every event of one stream, readable (password and secret hashes redacted).
    #[command(after_help = EXIT_CODES)]
    History {
        /// The aggregate type: account, verification, staff, code_channel or support_case.
        #[arg(value_name = "TYPE")]
        aggregate_type: String,
        /// The aggregate id.
        #[arg(value_name = "ID")]
        aggregate_id: String,
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
    },
    /// A stream's state folded from its events up to an instant, as JSON (redacted).
    #[command(after_help = EXIT_CODES)]
    State {
        /// The aggregate type: account, verification, staff, code_channel or support_case.
        #[arg(value_name = "TYPE")]
        aggregate_type: String,
        /// The aggregate id.
        #[arg(value_name = "ID")]
        aggregate_id: String,
        /// Fold the events whose application instant is at or before this RFC 3339 instant
        /// (default: all of them).
        #[arg(long, value_name = "INSTANT", value_parser = parse_instant)]
        as_of: Option<DateTime<Utc>>,
    },
    /// Check every stream's keyed hash chain and the seal of the log (deleted events, deleted
    /// streams); name the first broken link of each broken stream.
    #[command(after_help = EXIT_CODES)]
    Verify {
        /// Events per page read.
        #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(i64).range(1..=100_000))]
        batch_size: i64,
    },
    /// The projections stopped at an event they cannot apply (an event they cannot decode,
    /// say), with that event; nothing is skipped or changed.
    #[command(after_help = EXIT_CODES)]
    Stuck {
        /// Also print the event's payload as stored (it may hold personal data).
        #[arg(long)]
        payload: bool,
    },
    /// Seal, in place, the personal data of a store written before it was sealed: each stream
    /// holding a plain personal value is rewritten in one transaction, its chain re-anchored
    /// under the key and the re-anchoring recorded (`verify` counts the records). Resumable: a
    /// second run carries on with the streams still plain. Run it with the server stopped,
    /// after a backup; the log must verify first.
    #[command(after_help = EXIT_CODES)]
    Encrypt {
        /// Stop after rewriting this many streams (run again to go on).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        max_streams: Option<u64>,
    },
    /// Rotate the master key that wraps the data subjects' keys (see the README).
    #[command(subcommand, name = "master-key")]
    MasterKey(MasterKeyVerb),
    /// Write every event in global order, one JSON object per line, all columns.
    #[command(after_help = EXIT_CODES)]
    Export {
        /// The output format.
        #[arg(long, value_enum)]
        format: Format,
        /// The file to write (default: standard output).
        #[arg(long)]
        output: Option<PathBuf>,
        /// Replace every personal value and every password or secret hash with `[redacted]`
        /// (for handing the log to a third party).
        #[arg(long)]
        redact: bool,
    },
}

#[derive(Debug, Subcommand)]
enum MasterKeyVerb {
    /// Put a new random master key first in the master key file (made if missing), keeping the
    /// earlier ones. Then restart every server with the file, and run `rewrap`.
    New,
    /// Wrap every subject key again under the current master key (in batches, resumable), then
    /// mark retired the masters no key is wrapped under any more: their lines may then be
    /// removed from the file.
    Rewrap {
        /// Subject keys per batch.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(i64).range(1..=100_000))]
        batch_size: i64,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    /// JSON lines.
    Jsonl,
}

fn parse_instant(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("not an RFC 3339 instant (e.g. 2026-05-10T08:00:00Z): {e}"))
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // `--help` and `--version` are not errors; everything else clap refuses is exit 1.
            return if e.use_stderr() { ExitCode::from(exit::ERROR) } else { ExitCode::from(exit::OK) };
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("shenfen-replay: starting the async runtime: {e}");
            return ExitCode::from(exit::ERROR);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("shenfen-replay: {e:#}");
            ExitCode::from(exit::ERROR)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<u8> {
    let db = shenfen_replay::open(&cli.database_url).await.context("opening the event store")?;
    let progress = Progress::stderr();
    let code = match cli.verb {
        Verb::Rebuild { projection, restart, batch_size, cache_rows } => {
            let projections = rebuild::select(projection.as_deref())?;
            let cache_rows = usize::try_from(cache_rows).unwrap_or(usize::MAX);
            let keyring = open_keyring(&db, &cli.secret_key_file, &cli.master_key_file)
                .context("rebuilding needs the server's key files to open personal data")?;
            let options = rebuild::Options {
                batch_size,
                restart,
                cache_rows,
                keyring: Some(std::sync::Arc::new(keyring)),
                ..rebuild::Options::default()
            };
            let report = rebuild::rebuild(&db, projections, &options, &progress).await.context("rebuilding")?;
            for p in &report.projections {
                println!(
                    "rebuilt {}: {} events applied{} in {:.1} s of its own, checkpoint ({}, {})",
                    p.name,
                    p.applied,
                    if p.resumed_from.pos > 0 { " (resumed)" } else { "" },
                    p.busy.as_secs_f64(),
                    p.checkpoint.tx,
                    p.checkpoint.pos
                );
            }
            let secs = report.elapsed.as_secs_f64().max(1e-9);
            println!(
                "read {} events in {:.2} s ({:.0} events/s; reading and decoding {:.1} s of it)",
                report.events_read,
                secs,
                report.events_read as f64 / secs,
                report.read_time.as_secs_f64()
            );
            exit::OK
        }
        Verb::History { aggregate_type, aggregate_id, json } => {
            let keyring = keyring(&db, &cli.secret_key_file, &cli.master_key_file);
            let events = history::events(&db, keyring.as_ref(), &aggregate_type, &aggregate_id).await?;
            if events.is_empty() {
                eprintln!("no events in {aggregate_type} {aggregate_id}");
                return Ok(exit::NO_EVENTS);
            }
            let mut out = std::io::stdout().lock();
            for event in &events {
                let text = if json { history::as_json(event).to_string() } else { history::readable(event) };
                writeln!(out, "{text}").context("writing to standard output")?;
            }
            exit::OK
        }
        Verb::State { aggregate_type, aggregate_id, as_of } => {
            let keyring = keyring(&db, &cli.secret_key_file, &cli.master_key_file);
            let events = history::events(&db, keyring.as_ref(), &aggregate_type, &aggregate_id).await?;
            if events.is_empty() {
                eprintln!("no events in {aggregate_type} {aggregate_id}");
                return Ok(exit::NO_EVENTS);
            }
            let (state, last) = history::state(&aggregate_type, &events, as_of)?;
            if last == 0 {
                eprintln!("{aggregate_type} {aggregate_id}: no event at or before that instant; the initial state");
            } else {
                eprintln!("{aggregate_type} {aggregate_id}: folded events 1 to {last} of {}", events.len());
            }
            println!("{}", serde_json::to_string_pretty(&state)?);
            exit::OK
        }
        Verb::Verify { batch_size } => {
            let key = ChainKey::from_key_file(&cli.secret_key_file)?;
            let total = shenfen_replay::event_count(&db).await.context("counting events")?;
            let bar = progress.bar("verify", total);
            let report = verify::all(&db, key, batch_size, &bar).await.context("verifying")?;
            bar.finish_and_clear();
            for broken in &report.broken {
                println!("{broken}");
            }
            for problem in &report.seal {
                println!("broken: seal: {problem}");
            }
            if report.reanchored > 0 {
                println!(
                    "{} streams were re-anchored in place by the key's holder (records intact)",
                    report.reanchored
                );
            }
            println!("{} streams, {} events checked; {} broken", report.streams, report.events, report.broken.len());
            if report.intact() {
                exit::OK
            } else {
                exit::BROKEN_CHAIN
            }
        }
        Verb::Encrypt { max_streams } => {
            let key = ChainKey::from_key_file(&cli.secret_key_file)?;
            let total = shenfen_replay::event_count(&db).await.context("counting events")?;
            let bar = progress.bar("verify", total);
            let report = verify::all(&db, key.clone(), 5000, &bar).await.context("verifying")?;
            bar.finish_and_clear();
            if !report.intact() {
                for broken in &report.broken {
                    println!("{broken}");
                }
                for problem in &report.seal {
                    println!("broken: seal: {problem}");
                }
                eprintln!("the log does not verify: nothing was rewritten (re-anchoring would hide what was changed)");
                return Ok(exit::BROKEN_CHAIN);
            }
            let keyring = open_keyring(&db, &cli.secret_key_file, &cli.master_key_file)?;
            let run_id = format!("encrypt-{}", Utc::now().format("%Y%m%dT%H%M%SZ"));
            let summary = reanchor::seal_plain_streams(&db, &key, &keyring, &run_id, max_streams)
                .await
                .context("sealing personal data in place")?;
            println!(
                "{}: {} streams looked at, {} rewritten ({} events), each re-anchored and recorded",
                run_id, summary.streams_seen, summary.streams_rewritten, summary.events_rewritten
            );
            exit::OK
        }
        Verb::MasterKey(MasterKeyVerb::New) => {
            let id = MasterKeys::add_new(&cli.master_key_file)?;
            println!(
                "master key {id} is now the first in {}: restart every server with this file, then run `master-key rewrap`",
                cli.master_key_file.display()
            );
            exit::OK
        }
        Verb::MasterKey(MasterKeyVerb::Rewrap { batch_size }) => {
            let keyring = open_keyring(&db, &cli.secret_key_file, &cli.master_key_file)?;
            let done = keyring.rewrap(batch_size).await.context("wrapping the subject keys again")?;
            println!("{} subject keys wrapped again under the current master key", done.keys);
            for id in &done.retired {
                println!("master key {id} retired: no subject key is wrapped under it any more");
            }
            exit::OK
        }
        Verb::Stuck { payload } => {
            let found = stuck::find(&db).await.context("reading the projections")?;
            for f in &found {
                let s = &f.stuck;
                println!(
                    "stuck: {} since {} at position ({}, {}){}: {}",
                    s.projection,
                    s.since.to_rfc3339(),
                    s.tx,
                    s.pos,
                    if s.exact { "" } else { " (the batch after it)" },
                    s.error
                );
                match &f.event {
                    Some(e) => {
                        println!(
                            "  event: {} {} sequence {}, {} version {}, recorded {}",
                            e.aggregate_type,
                            e.aggregate_id,
                            e.sequence,
                            e.event_type,
                            e.event_version,
                            e.recorded_at.to_rfc3339()
                        );
                        if payload {
                            println!("  payload: {}", e.payload);
                        }
                    }
                    None => println!("  event: not in the log any more"),
                }
            }
            println!("{} projection(s) stuck", found.len());
            if found.is_empty() {
                exit::OK
            } else {
                exit::STUCK
            }
        }
        Verb::Export { format: Format::Jsonl, output, redact } => {
            let total = shenfen_replay::event_count(&db).await.context("counting events")?;
            let bar = progress.bar("export", total);
            let written = match &output {
                Some(path) => {
                    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
                    export::jsonl(&db, &mut BufWriter::new(file), 2000, redact, &bar).await
                }
                None => export::jsonl(&db, &mut BufWriter::new(std::io::stdout().lock()), 2000, redact, &bar).await,
            }
            .context("exporting")?;
            bar.finish_and_clear();
            eprintln!("exported {written} events");
            exit::OK
        }
    };
    db.close().await;
    Ok(code)
}

/// The keyring of the key files.
fn open_keyring(
    db: &shenfen_projections::db::Db,
    secret: &std::path::Path,
    masters: &std::path::Path,
) -> anyhow::Result<Keyring> {
    let chain = ChainKey::from_key_file(secret)?;
    Ok(Keyring::new(db, MasterKeys::load(&chain, masters)?))
}

/// The keyring of the key files, if they can be read (else personal data is shown sealed).
fn keyring(db: &shenfen_projections::db::Db, secret: &std::path::Path, masters: &std::path::Path) -> Option<Keyring> {
    match open_keyring(db, secret, masters) {
        Ok(keyring) => Some(keyring),
        Err(e) => {
            eprintln!("note: personal data is shown sealed ({e})");
            None
        }
    }
}
