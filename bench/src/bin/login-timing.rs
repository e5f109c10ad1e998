//! `shenfen-login-timing`: whether the time of a failed login tells if a document is
//! registered. It starts a throwaway PostgreSQL (durable) and the release server, registers a
//! few accounts, then sends failed logins one at a time, alternating between a wrong password
//! for a registered document (which costs a hash verification and the commit of a
//! `LoginFailed` event) and a document nobody registered (a dummy verification, then a pause as
//! long as a recent failed login's commit). It prints both latency distributions and their
//! Kolmogorov–Smirnov distance. The lockout is raised for the run, so every wrong password
//! takes the same path.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use reqwest::StatusCode;
use serde_json::json;
use shenfen_bench::server::{Server, Webhook};
use shenfen_bench::{api, database, identity};

/// Failed-login timing for registered and unknown documents.
#[derive(Debug, Parser)]
#[command(name = "shenfen-login-timing", version)]
struct Args {
    /// The server binary (run as `PATH serve`).
    #[arg(long, default_value = "target/release/shenfen")]
    server: PathBuf,
    /// Failed logins of each kind.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(10..=100_000))]
    samples: u32,
    /// Registered accounts the wrong passwords go to.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=500))]
    accounts: u16,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let Some(bin) = database::find_bin_dir() else {
        eprintln!("shenfen-login-timing: no PostgreSQL under /usr/lib/postgresql");
        return ExitCode::FAILURE;
    };
    let old = std::env::var_os("PATH").unwrap_or_default();
    if let Ok(path) = std::env::join_paths(std::iter::once(bin.clone()).chain(std::env::split_paths(&old))) {
        std::env::set_var("PATH", path);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("shenfen-login-timing: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args, bin)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shenfen-login-timing: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args, bin: PathBuf) -> anyhow::Result<()> {
    let server_binary = std::path::absolute(&args.server).context("resolving --server")?;
    let db = database::start_throwaway(&bin, 60, false).await?;
    let outcome = measure(&args, &server_binary, &db.url).await;
    tokio::task::spawn_blocking(move || db.stop()).await.context("stopping PostgreSQL")?;
    outcome
}

async fn measure(args: &Args, binary: &std::path::Path, url: &str) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("a directory for the server")?;
    let webhook = Webhook::start().await?;
    let env = [("SHENFEN_LOCKOUT_THRESHOLD", "1000000000")];
    let server = Server::start_with(binary, url, &webhook.notifier(), dir.path(), &env).await?;
    let base = server.base_url();
    let http = api::client(4)?;
    let accounts = api::register_all(&http, &base, &webhook.inbox, usize::from(args.accounts)).await?;
    let mut rng = rand::thread_rng();
    let unknown: Vec<String> = (0..args.samples).map(|_| identity::resident_id(&mut rng)).collect();
    let login = |number: &str| {
        http.post(format!("{base}/v1/sessions")).json(&json!({"document_number": number, "password": "Wrong#Guess1"}))
    };
    // Warm up both paths (and the failed-login commit times the unknown path pauses by).
    for account in &accounts {
        login(&account.document_number).send().await?;
        login(&identity::resident_id(&mut rng)).send().await?;
    }
    let (mut known, mut absent) = (Vec::new(), Vec::new());
    for (i, number) in unknown.iter().enumerate() {
        let account = &accounts[i % accounts.len()];
        for (target, into) in [(account.document_number.as_str(), &mut known), (number.as_str(), &mut absent)] {
            let started = Instant::now();
            let response = login(target).send().await?;
            let status = response.status();
            response.bytes().await?;
            anyhow::ensure!(status == StatusCode::UNAUTHORIZED, "a failed login answered {status}");
            into.push(started.elapsed());
        }
    }
    server.stop().await?;
    webhook.stop();
    known.sort();
    absent.sort();
    println!("# Failed-login timing ({} of each, one at a time)\n", args.samples);
    println!("| | p10 | p25 | p50 | p75 | p90 | p99 |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (label, times) in [("registered document, wrong password", &known), ("unknown document", &absent)] {
        let cells: Vec<String> = [0.10, 0.25, 0.50, 0.75, 0.90, 0.99].iter().map(|q| ms(quantile(times, *q))).collect();
        println!("| {label} | {} |", cells.join(" | "));
    }
    println!(
        "\nKolmogorov–Smirnov distance between the two: {:.3} (0: the same distribution; at this size, above {:.3} would be unlikely by chance at the 1% level)",
        ks_distance(&known, &absent),
        1.63 * (2.0 / f64::from(args.samples)).sqrt()
    );
    Ok(())
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// The largest gap between the two empirical distribution functions (both sorted).
fn ks_distance(a: &[Duration], b: &[Duration]) -> f64 {
    let (mut i, mut j, mut d) = (0usize, 0usize, 0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / a.len() as f64 - j as f64 / b.len() as f64).abs());
    }
    d
}
