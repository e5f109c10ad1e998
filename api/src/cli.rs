//! The command line: `shenfen serve`, `shenfen import-legacy FILE.csv`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Settings;

#[derive(Debug, Parser)]
#[command(name = "shenfen", version, about = "Real-name accounts for public education portals")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP API.
    Serve(Settings),
    /// Staff accounts.
    #[command(subcommand)]
    Staff(StaffCommand),
    /// Import accounts from before the cut-over (CSV: document_type,document_number,name,registered_at).
    ImportLegacy {
        /// The CSV file.
        file: PathBuf,
        #[command(flatten)]
        settings: Settings,
    },
}

#[derive(Debug, Subcommand)]
enum StaffCommand {
    /// Create a staff account; the password is read from standard input (first line).
    Add {
        #[arg(long)]
        username: String,
        /// reviewer, support, auditor, analyst, head_teacher, school_admin, admin or service.
        #[arg(long)]
        role: String,
        #[command(flatten)]
        school: SchoolArgs,
        #[command(flatten)]
        settings: Settings,
    },
}

/// A head teacher's or school admin's scope.
#[derive(Debug, Clone, clap::Args)]
pub struct SchoolArgs {
    /// The school's catalogue code (head_teacher, school_admin).
    #[arg(long)]
    pub school: Option<String>,
    /// The grade, 1–12 (head_teacher).
    #[arg(long)]
    pub grade: Option<i64>,
    /// The class as the registry writes it, e.g. 3班 (head_teacher).
    #[arg(long)]
    pub class: Option<String>,
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let _log = crate::telemetry::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(settings) => crate::startup::serve(settings).await.map(|()| ExitCode::SUCCESS),
            Command::ImportLegacy { file, settings } => crate::legacy::import(&settings, &file).await,
            Command::Staff(StaffCommand::Add { username, role, school, settings }) => {
                crate::legacy::add_staff(settings, username, role, school).await
            }
        }
    });
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
