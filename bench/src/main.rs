//! `shenfen-load`: drives the real HTTP API with N concurrent clients and reports throughput
//! and p50/p99 latency, each next to this machine's limit measured in the same run: single-row
//! INSERT transactions per second into an events-shaped table at the same concurrency, and
//! Argon2id verifications per second on every core with the server's parameters.
//!
//! The phases run one after the other so they never compete for the cores: the raw INSERT
//! baseline; optionally the seeding of the store (`--seed-accounts`, then the read models
//! rebuilt by the replay tool); the servers started (`--servers`, each timed to its first
//! ready `/readyz`) and left to catch up; one account per client set up; profile edits (the
//! cheap command); HTTP round trips (`GET /healthz`: the floor under every command); the
//! Argon2id baseline (the servers idle) and logins with a `/healthz` probe;
//! registrations (code + register); the mixed traffic of an exam registration opening; an
//! analyst reading a year of every analyst table. After each writing phase the log is checked
//! against what was acknowledged ([`phases::Outcome`]); at the end the servers' resident-memory
//! high-water marks are read. Over the raw INSERTs, the edits and the round trips the
//! machine's busy CPU is read from `/proc/stat` ([`cpu`]), to put all three on one scale: CPU
//! per operation. Before each phase PostgreSQL is checkpointed and vacuumed, so that
//! the background work the previous phase left does not run during the next one. Missing a
//! target is a finding, not a failure: the exit status is non-zero only when the run itself
//! could not be carried out.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use shenfen_bench::report::{CpuPerOp, Measured, Report, Scale, Setup};
use shenfen_bench::server::{Server, Webhook};
use shenfen_bench::{api, argon, cpu, database, phases, server, stats};

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
    /// Server processes on the one database; client `i` talks to process `i mod N`.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=4))]
    servers: u16,
    /// Seed the store with this many accounts (`shenfen-seed`, about ten events each) before
    /// the servers start; 0 measures an empty store.
    #[arg(long, default_value_t = 0)]
    seed_accounts: u64,
    /// Where the servers' key files are (`secret.key`, `master.keys`): a store seeded or served
    /// before must be served again under the same keys. Default: a fresh temporary directory.
    #[arg(long)]
    key_dir: Option<PathBuf>,
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
            let db = database::start_throwaway(&bin, clients + 50 + 80 * usize::from(args.servers), args.non_durable)
                .await?;
            let url = db.url.clone();
            (Some(db), url, "throwaway server via pgtemp".to_string())
        }
    };
    let outcome = measure(&args, clients, phase, cores, &server_binary, &database_url, database_kind).await;
    if let Some(db) = throwaway {
        // Stopping waits for the process and deletes its directory: keep it off the runtime.
        tokio::task::spawn_blocking(move || db.stop()).await.context("stopping the throwaway PostgreSQL")?;
    }
    let (report, scale) = outcome?;

    println!("{}{}", report.markdown(), scale.markdown());
    if let Some(path) = &args.report {
        let both = serde_json::json!({"report": report, "scale": scale});
        let json = serde_json::to_string_pretty(&both).context("serialising the report")?;
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
) -> anyhow::Result<(Report, Scale)> {
    let facts = database::facts(database_url).await?;

    settle(database_url).await?;
    say(format!("baseline: raw INSERT transactions, {clients} connections, {} s", phase.as_secs()));
    let (raw_insert, raw_insert_cpu) =
        cpu::measured(cores, database::raw_inserts(database_url, clients, phase)).await?;
    say(format!("  {:.1} inserts/s", raw_insert.ops_per_sec));

    let temporary =
        tempfile::Builder::new().prefix("shenfen-load-").tempdir().context("creating a temporary directory")?;
    let dir = match &args.key_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            std::path::absolute(dir).context("resolving --key-dir")?
        }
        None => temporary.path().to_path_buf(),
    };
    let seeded = if args.seed_accounts > 0 {
        say(format!("seeding {} accounts", args.seed_accounts));
        let target = shenfen_bench::seed::Target::at(database_url, &dir)?;
        let seeded = target.seed(0, args.seed_accounts, cores.max(2)).await.context("seeding")?;
        say(format!("  {} events in {:.0} s", seeded.events, seeded.seconds));
        settle(database_url).await?;
        say("rebuilding the read models with the replay tool");
        let (events, seconds) = target.rebuild().await?;
        say(format!("  {events} events in {seconds:.0} s ({:.0} events/s)", events as f64 / seconds.max(0.001)));
        settle(database_url).await?;
        Some(shenfen_bench::seed::Seeded { rebuild_events_per_sec: events as f64 / seconds.max(0.001), ..seeded })
    } else {
        None
    };
    let webhook = Webhook::start().await?;
    let mut servers = Vec::new();
    let mut ready_ms = Vec::new();
    let started = std::time::Instant::now();
    for n in 0..args.servers {
        say(format!("starting {} (process {})", server_binary.display(), n + 1));
        let begun = std::time::Instant::now();
        let server = Server::start(server_binary, database_url, &webhook.notifier(), &dir).await?;
        let ready = server::wait_ready(&server.base_url(), std::time::Duration::from_secs(120)).await?;
        ready_ms.push((ready - begun).as_secs_f64() * 1000.0);
        say(format!("  ready after {:.0} ms", ready_ms[ready_ms.len() - 1]));
        servers.push(server);
    }
    // After the first server migrated a fresh store.
    let events_at_start = phases::log_end(database_url).await?;
    let mut context = Running {
        servers,
        binary: server_binary,
        dir: &dir,
        webhook,
        database_url,
        clients,
        cores,
        phase,
        started,
        ready_ms,
        events_at_start,
        seeded,
        raw_insert: (raw_insert, raw_insert_cpu),
    };
    let result = server_phases(&mut context).await;
    let mut running = Ok(());
    let mut logs = Vec::new();
    for server in &mut context.servers {
        if running.is_ok() {
            running = server.ensure_running();
        }
        logs.push(server.log.clone());
    }
    for server in context.servers.drain(..) {
        server.stop().await?;
    }
    context.webhook.stop();
    let (measured, scale) = match (result, running) {
        (Ok(r), Ok(())) => r,
        (Err(e), _) | (Ok(_), Err(e)) => {
            let tails: Vec<String> = logs.iter().map(|l| server::tail(l, 20)).collect();
            return Err(e.context(format!("server log (tail):\n{}", tails.join("\n---\n"))));
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
    Ok((Report::new(setup, measured), scale))
}

/// Waits for PostgreSQL's background work from the previous phase (see [`database::quiesce`]).
async fn settle(database_url: &str) -> anyhow::Result<()> {
    let took = database::quiesce(database_url).await?;
    say(format!("  PostgreSQL checkpointed and vacuumed in {:.1} s", took.as_secs_f64()));
    Ok(())
}

/// The running servers and what the phases need.
struct Running<'a> {
    servers: Vec<Server>,
    binary: &'a std::path::Path,
    dir: &'a std::path::Path,
    webhook: Webhook,
    database_url: &'a str,
    clients: usize,
    cores: usize,
    phase: Duration,
    started: std::time::Instant,
    ready_ms: Vec<f64>,
    events_at_start: i64,
    seeded: Option<shenfen_bench::seed::Seeded>,
    /// The raw INSERT baseline, measured before the servers started, and its CPU per INSERT.
    raw_insert: (stats::Summary, Option<f64>),
}

impl Running<'_> {
    fn ensure_running(&mut self) -> anyhow::Result<()> {
        self.servers.iter_mut().try_for_each(Server::ensure_running)
    }
}

type Phases = (Measured, Scale);

async fn server_phases(c: &mut Running<'_>) -> anyhow::Result<Phases> {
    let (database_url, clients, cores, phase) = (c.database_url, c.clients, c.cores, c.phase);
    let bases: Vec<String> = c.servers.iter().map(Server::base_url).collect();
    let http = api::client(clients)?;
    let caught_up = api::settle_projections(&http, &bases[0], Duration::from_secs(3600)).await?;
    let caught_up_seconds = c.started.elapsed().as_secs_f64().max(caught_up.as_secs_f64());
    say(format!("projections caught up {caught_up_seconds:.1} s after the servers started"));
    say(format!("servers on {}; registering {clients} accounts", bases.join(", ")));
    let accounts = api::register_all(&http, &bases[0], &c.webhook.inbox, clients).await?;
    c.ensure_running()?;
    let mut outcomes = Vec::new();

    settle(database_url).await?;
    say(format!("phase: profile edits, {clients} clients, {} s", phase.as_secs()));
    let since = phases::log_end(database_url).await?;
    let (profile_edit, profile_edit_cpu) =
        cpu::measured(cores, api::profile_edits(&http, &bases, &accounts, phase)).await?;
    say(format!("  {:.1} edits/s, {} errors", profile_edit.ops_per_sec, profile_edit.errors));
    let acks = phases::Acks { edits: profile_edit.ops, ..Default::default() };
    outcomes.push(("profile edits".to_string(), phases::Outcome::check(database_url, since, &acks).await?));
    c.ensure_running()?;
    let settled = api::settle_projections(&http, &bases[0], Duration::from_secs(120)).await?;
    say(format!("  projections caught up {:.1} s after the last edit", settled.as_secs_f64()));

    settle(database_url).await?;
    say(format!("baseline: HTTP round trips (GET /healthz), {clients} clients, {} s", phase.as_secs()));
    let (round_trip, round_trip_cpu) = cpu::measured(cores, api::round_trips(&bases, &accounts, phase)).await?;
    say(format!("  {:.1} round trips/s, {} errors", round_trip.ops_per_sec, round_trip.errors));

    // The Argon2id baseline runs right before the logins it is compared with (the server is
    // idle meanwhile), so that both see the machine in the same state.
    settle(database_url).await?;
    say(format!("baseline: Argon2id verifications on {cores} threads, {} s", phase.as_secs()));
    let argon2id = tokio::task::spawn_blocking(move || argon::verifications(cores, phase))
        .await
        .context("the Argon2id baseline panicked")??;
    say(format!("  {:.1} verifications/s", argon2id.ops_per_sec));

    say(format!("phase: logins, {clients} clients, with a /healthz probe every 10 ms, {} s", phase.as_secs()));
    let since = phases::log_end(database_url).await?;
    // The logins run on a single-threaded runtime of their own: they need little of it, and
    // one thread waking itself costs the shared cores less than two waking each other.
    let (login, healthz) = {
        let (http, bases, accounts) = (http.clone(), bases.clone(), accounts.clone());
        tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the login phase's runtime")?;
            runtime.block_on(api::logins(&http, &bases, &accounts, phase))
        })
        .await
        .context("the login phase panicked")??
    };
    say(format!("  {:.1} logins/s, {} errors", login.ops_per_sec, login.errors));
    let acks = phases::Acks { logins: login.ops, ..Default::default() };
    outcomes.push(("logins".to_string(), phases::Outcome::check(database_url, since, &acks).await?));
    c.ensure_running()?;

    settle(database_url).await?;
    say(format!("phase: registrations (code + register), {clients} clients, {} s", phase.as_secs()));
    let since = phases::log_end(database_url).await?;
    let registration = phases::registrations(&bases, &c.webhook.inbox, clients, phase).await?;
    say(format!("  {:.1} registrations/s, {} errors", registration.total.ops_per_sec, registration.total.errors));
    outcomes
        .push(("registrations".to_string(), phases::Outcome::check(database_url, since, &registration.acks).await?));
    c.ensure_running()?;
    api::settle_projections(&http, &bases[0], Duration::from_secs(300)).await?;

    settle(database_url).await?;
    say(format!("phase: exam registration opens (mixed), {clients} clients, {} s", phase.as_secs()));
    let since = phases::log_end(database_url).await?;
    let mixed = phases::mixed(&bases, &c.webhook.inbox, &accounts, phase).await?;
    say(format!("  {:.1} requests/s, {} errors", mixed.total.ops_per_sec, mixed.total.errors));
    outcomes.push(("mixed".to_string(), phases::Outcome::check(database_url, since, &mixed.acks).await?));
    c.ensure_running()?;

    say("phase: an analyst reads a year of every analyst table, 20 rounds");
    let username = format!("bench-analyst-{}", std::process::id());
    let password = server::add_staff(c.binary, database_url, c.dir, &username, "analyst").await?;
    let session: serde_json::Value = http
        .post(format!("{}/v1/staff/sessions", bases[0]))
        .json(&serde_json::json!({"username": username, "password": password}))
        .send()
        .await?
        .json()
        .await?;
    let token = session["token"].as_str().context("the staff login answer has no token")?.to_string();
    let analytics = phases::analyst_reads(&bases[0], &token, 20).await?;
    say(format!("  p99 {:?} ms, {} errors", analytics.p99_ms, analytics.errors));

    let pids: Vec<u32> = c.servers.iter().filter_map(Server::pid).collect();
    let peak_rss_mib = phases::peak_rss_mib(&pids);
    let scale = Scale::new(
        c.servers.len(),
        c.seeded,
        c.events_at_start,
        c.ready_ms.clone(),
        caught_up_seconds,
        registration,
        mixed,
        analytics,
        outcomes,
        peak_rss_mib,
        &argon2id,
    );
    let (raw_insert, raw_insert_cpu) = c.raw_insert.clone();
    let cpu_us_per_op =
        CpuPerOp { raw_insert: raw_insert_cpu, round_trip: round_trip_cpu, profile_edit: profile_edit_cpu };
    let measured = Measured {
        raw_insert,
        argon2id,
        profile_edit,
        login,
        healthz_during_login: healthz,
        round_trip,
        cpu_us_per_op,
    };
    Ok((measured, scale))
}
