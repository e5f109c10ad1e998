//! `shenfen-load`: drives the real HTTP API with N concurrent clients and reports throughput
//! and p50/p99 latency for a cheap command (a profile edit) and for login, on PostgreSQL, next
//! to this machine's limits measured in the same run: single-row INSERT transactions per second
//! into an events-shaped table at the same concurrency, and Argon2id verifications per second
//! on every core with the server's parameters.
//!
//! The phases run one after the other so they never compete for the cores: the raw INSERT
//! baseline, then the server is started, one account per client is set up, the profile-edit
//! phase runs, then the Argon2id baseline (the server idle) and the login phase. Before each phase PostgreSQL is checkpointed and vacuumed, so that the
//! background work the previous phase left does not run during the next one. Missing a target
//! is a finding, not a failure: the exit status is non-zero only when the run itself could not
//! be carried out.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use shenfen_bench::report::{Report, Setup};
use shenfen_bench::server::{Server, Webhook};
use shenfen_bench::{api, argon, database, server, stats};

/// Load generator for the Shenfen HTTP API.
#[derive(Debug, Parser)]
#[command(name = "shenfen-load", version, about)]
struct Args {
    /// The server binary (run as `PATH serve`).
    #[arg(long, default_value = "target/release/shenfen")]
    server: PathBuf,
    /// Concurrent clients (and connections and accounts) in every phase.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=500))]
    clients: u16,
    /// Duration of each phase, in seconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    seconds: u64,
    /// A PostgreSQL URL to use; by default a throwaway server is started with pgtemp. The
    /// database must be empty of Shenfen data or hold only data the server can migrate.
    #[arg(long)]
    database_url: Option<String>,
    /// Where the throwaway server's binaries are (default: the newest /usr/lib/postgresql/*/bin).
    #[arg(long)]
    pg_bin: Option<PathBuf>,
    /// Keep pgtemp's test settings (fsync, synchronous_commit and full_page_writes off) instead
    /// of PostgreSQL's stock durable ones.
    #[arg(long)]
    non_durable: bool,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    report: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let pg_bin = if args.database_url.is_none() { args.pg_bin.clone().or_else(database::find_bin_dir) } else { None };
    if let Some(bin) = &pg_bin {
        // pgtemp and its helpers look up PostgreSQL's tools on PATH; done before any thread starts.
        let old = std::env::var_os("PATH").unwrap_or_default();
        let joined = std::env::join_paths(std::iter::once(bin.clone()).chain(std::env::split_paths(&old)));
        if let Ok(path) = joined {
            std::env::set_var("PATH", path);
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("shenfen-load: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args, pg_bin)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shenfen-load: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn say(line: impl AsRef<str>) {
    eprintln!("shenfen-load: {}", line.as_ref());
}

async fn run(args: Args, pg_bin: Option<PathBuf>) -> anyhow::Result<()> {
    let clients = usize::from(args.clients);
    let phase = Duration::from_secs(args.seconds);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let server_binary = std::path::absolute(&args.server).context("resolving --server")?;
    anyhow::ensure!(
        server_binary.is_file(),
        "no server binary at {} (build it with `cargo build --release -p shenfen-api`)",
        server_binary.display()
    );

    let (throwaway, database_url, database_kind) = match &args.database_url {
        Some(url) => (None, url.clone(), "given URL".to_string()),
        None => {
            let bin = pg_bin.context("no PostgreSQL found under /usr/lib/postgresql: install it or pass --pg-bin")?;
            say(format!("starting a throwaway PostgreSQL from {}", bin.display()));
            let db = database::start_throwaway(&bin, clients + 50, args.non_durable).await?;
            let url = db.url.clone();
            (Some(db), url, "throwaway server via pgtemp".to_string())
        }
    };
    let outcome = measure(&args, clients, phase, cores, &server_binary, &database_url, database_kind).await;
    if let Some(db) = throwaway {
        // Stopping waits for the process and deletes its directory: keep it off the runtime.
        tokio::task::spawn_blocking(move || db.stop()).await.context("stopping the throwaway PostgreSQL")?;
    }
    let report = outcome?;

    println!("{}", report.markdown());
    if let Some(path) = &args.report {
        let json = serde_json::to_string_pretty(&report).context("serialising the report")?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
        say(format!("report written to {}", path.display()));
    }
    Ok(())
}

async fn measure(
    args: &Args,
    clients: usize,
    phase: Duration,
    cores: usize,
    server_binary: &std::path::Path,
    database_url: &str,
    database_kind: String,
) -> anyhow::Result<Report> {
    let facts = database::facts(database_url).await?;

    settle(database_url).await?;
    say(format!("baseline: raw INSERT transactions, {clients} connections, {} s", phase.as_secs()));
    let raw_insert = database::raw_inserts(database_url, clients, phase).await?;
    say(format!("  {:.1} inserts/s", raw_insert.ops_per_sec));

    let dir = tempfile::Builder::new().prefix("shenfen-load-").tempdir().context("creating a temporary directory")?;
    let webhook = Webhook::start().await?;
    say(format!("starting {}", server_binary.display()));
    let mut server = Server::start(server_binary, database_url, &webhook.notifier(), dir.path()).await?;
    let result = server_phases(&mut server, &webhook, database_url, clients, cores, phase).await;
    let running = server.ensure_running();
    let log = server.log.clone();
    server.stop().await?;
    webhook.stop();
    let (profile_edit, argon2id, login, healthz) = match (result, running) {
        (Ok(r), Ok(())) => r,
        (Err(e), _) | (Ok(_), Err(e)) => {
            return Err(e.context(format!("server log (tail):\n{}", server::tail(&log, 20))));
        }
    };

    let setup = Setup {
        clients,
        seconds_per_phase: args.seconds,
        cores,
        server: server_binary.display().to_string(),
        database: database_kind,
        postgres: facts,
        argon2: argon::params(),
    };
    Ok(Report::new(setup, raw_insert, argon2id, profile_edit, login, healthz))
}

/// Waits for PostgreSQL's background work from the previous phase (see [`database::quiesce`]).
async fn settle(database_url: &str) -> anyhow::Result<()> {
    let took = database::quiesce(database_url).await?;
    say(format!("  PostgreSQL checkpointed and vacuumed in {:.1} s", took.as_secs_f64()));
    Ok(())
}

async fn server_phases(
    server: &mut Server,
    webhook: &Webhook,
    database_url: &str,
    clients: usize,
    cores: usize,
    phase: Duration,
) -> anyhow::Result<(stats::Summary, stats::Summary, stats::Summary, stats::Summary)> {
    let base = server.base_url();
    let http = api::client(clients)?;
    say(format!("server on {base}; registering {clients} accounts"));
    let accounts = api::register_all(&http, &base, &webhook.inbox, clients).await?;
    server.ensure_running()?;

    settle(database_url).await?;
    say(format!("phase: profile edits, {clients} clients, {} s", phase.as_secs()));
    let profile_edit = api::profile_edits(&http, &base, &accounts, phase).await?;
    say(format!("  {:.1} edits/s, {} errors", profile_edit.ops_per_sec, profile_edit.errors));
    server.ensure_running()?;
    let settled = api::settle_projections(&http, &base, Duration::from_secs(120)).await?;
    say(format!("  projections caught up {:.1} s after the last edit", settled.as_secs_f64()));

    // The Argon2id baseline runs right before the logins it is compared with (the server is
    // idle meanwhile), so that both see the machine in the same state.
    settle(database_url).await?;
    say(format!("baseline: Argon2id verifications on {cores} threads, {} s", phase.as_secs()));
    let argon2id = tokio::task::spawn_blocking(move || argon::verifications(cores, phase))
        .await
        .context("the Argon2id baseline panicked")??;
    say(format!("  {:.1} verifications/s", argon2id.ops_per_sec));

    say(format!("phase: logins, {clients} clients, with a /healthz probe every 10 ms, {} s", phase.as_secs()));
    // The logins run on a single-threaded runtime of their own: they need little of it, and
    // one thread waking itself costs the shared cores less than two waking each other.
    let (login, healthz) = {
        let (http, base, accounts) = (http.clone(), base.clone(), accounts.clone());
        tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the login phase's runtime")?;
            runtime.block_on(api::logins(&http, &base, &accounts, phase))
        })
        .await
        .context("the login phase panicked")??
    };
    say(format!("  {:.1} logins/s, {} errors", login.ops_per_sec, login.errors));
    Ok((profile_edit, argon2id, login, healthz))
}
