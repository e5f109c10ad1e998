//! `shenfen-seed`: fills a PostgreSQL store with seeded accounts by bulk SQL (see
//! [`shenfen_bench::seed`]), under the same key files as the server that will serve it.
//!
//! ```text
//! shenfen-seed --database-url postgres://… --accounts 1000000
//! ```
//!
//! Seeded account `i` logs in with [`shenfen_bench::seed::document_number`]`(i)` and the password
//! [`shenfen_bench::seed::PASSWORD`]. Run it on a store no server is writing to. Seeding more
//! later continues with `--first` (account numbers must not repeat).

use clap::Parser;
use shenfen_bench::seed;
use std::process::ExitCode;

/// Fills a PostgreSQL store with seeded accounts.
#[derive(Debug, Parser)]
#[command(name = "shenfen-seed", version)]
struct Args {
    /// Accounts to seed.
    #[arg(long, default_value_t = 1_000_000)]
    accounts: u64,
    /// The number of the first seeded account (to add to an earlier seeding).
    #[arg(long, default_value_t = 0)]
    first: u64,
    /// Connections writing at once.
    #[arg(long, default_value_t = 4)]
    workers: usize,
    #[command(flatten)]
    target: seed::Target,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("shenfen-seed: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(args.target.seed(args.first, args.accounts, args.workers)) {
        Ok(seeded) => {
            println!("{}", serde_json::to_string(&seeded).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("shenfen-seed: {e:#}");
            ExitCode::FAILURE
        }
    }
}
