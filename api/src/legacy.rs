//! Operator commands: `shenfen import-legacy FILE.csv` (accounts from before the cut-over
//! date) and `shenfen staff add`.
//!
//! CSV header `document_type,document_number,name,registered_at` (`registered_at` a date or
//! an RFC 3339 instant, before the cut-over). Each row becomes a `LegacyImported` event on the
//! document's account stream; such accounts can neither log in nor reset their password and
//! must register again. Rows that are invalid, after the cut-over, or already present are
//! reported and skipped; the exit code is 0 when every row was imported or already present,
//! 2 when some were refused.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use shenfen_domain::account::{Account, AccountCommand, AccountError};
use shenfen_domain::metadata::{Actor, EventMetadata};
use shenfen_domain::shared::document::{DocumentNumber, DocumentType};
use shenfen_domain::shared::name::PersonName;
use shenfen_domain::time::{cst_date, cst_midnight};
use shenfen_projections::db::Db;
use shenfen_projections::store::{BusError, CommandBus};

fn parse_instant(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().map(cst_midnight))
}

/// Imports the file; returns the exit code.
pub async fn import(settings: &crate::config::Settings, file: &Path) -> anyhow::Result<ExitCode> {
    let db = Db::open(&settings.database_url, 4).await.context("opening the database")?;
    let key = crate::crypto::load_or_create_key(&settings.secret_key_file)?;
    let bus: CommandBus<Account> = CommandBus::new(&db, (), crate::crypto::commits(&db, settings).await?);
    let mut reader = csv::Reader::from_path(file).with_context(|| format!("opening {}", file.display()))?;
    let now = Utc::now();
    let meta = EventMetadata {
        actor: Actor::System { id: "import-legacy".into() },
        request_id: format!("import-legacy-{}", uuid::Uuid::new_v4()),
        at: now,
    };
    let (mut imported, mut present, mut refused) = (0usize, 0usize, 0usize);
    for (index, record) in reader.records().enumerate() {
        let line = index + 2;
        let record = record.with_context(|| format!("reading line {line}"))?;
        let field = |i: usize| record.get(i).unwrap_or("").trim().to_string();
        let parsed = (|| {
            let doc_type = DocumentType::parse(&field(0)).ok_or("unknown document_type")?;
            let number =
                DocumentNumber::parse(doc_type, &field(1), cst_date(now)).map_err(|_| "invalid document_number")?;
            let name = PersonName::parse(&field(2)).map_err(|_| "invalid name")?;
            let registered_at = parse_instant(&field(3)).ok_or("invalid registered_at")?;
            if cst_date(registered_at) >= settings.legacy_cutover {
                return Err("registered_at is not before the cut-over date");
            }
            Ok((doc_type, number, name, registered_at))
        })();
        let (document_type, document_number, name, registered_at) = match parsed {
            Ok(p) => p,
            Err(why) => {
                eprintln!("line {line}: refused: {why}");
                refused += 1;
                continue;
            }
        };
        let id = shenfen_domain::ids::account_id(&key, document_type, &document_number);
        let command = AccountCommand::ImportLegacy(shenfen_domain::account::ImportLegacy {
            document_type,
            document_number,
            name,
            registered_at,
            now,
        });
        match bus.execute(&id, command, &meta).await {
            Ok(_) => imported += 1,
            Err(BusError::Domain(AccountError::AlreadyRegistered)) => present += 1,
            Err(err) => anyhow::bail!("line {line}: {err}"),
        }
    }
    println!("imported {imported}, already present {present}, refused {refused}");
    db.close().await;
    Ok(if refused == 0 { ExitCode::SUCCESS } else { ExitCode::from(2) })
}

/// `shenfen staff add --username NAME --role ROLE`, the password on standard input.
pub async fn add_staff(
    settings: crate::config::Settings,
    username: String,
    role: String,
    school: crate::cli::SchoolArgs,
) -> anyhow::Result<ExitCode> {
    let mut password = String::new();
    std::io::stdin().read_line(&mut password).context("reading the password from standard input")?;
    let password = password.trim_end_matches(['\r', '\n']).to_string();
    let state = crate::startup::build_state(settings).await?;
    let now = Utc::now();
    let body = crate::routes::staff::NewStaff {
        username: Some(username),
        role: Some(role),
        password: Some(password),
        own_document_type: None,
        own_document_number: None,
        school_code: school.school,
        grade: school.grade,
        class: school.class,
    };
    let meta = EventMetadata {
        actor: Actor::System { id: "cli".into() },
        request_id: format!("staff-add-{}", uuid::Uuid::new_v4()),
        at: now,
    };
    let result = match crate::routes::staff::validate_staff(&state, &body, cst_date(now)) {
        Ok(input) => crate::routes::staff::create_staff(&state, input, "cli", &meta).await,
        Err(e) => Err(e),
    };
    state.db.close().await;
    match result {
        Ok(created) => {
            println!("created staff {} ({}) with role {}", created.username, created.staff_id, created.role);
            Ok(ExitCode::SUCCESS)
        }
        Err(problem) => {
            let fields: Vec<String> = problem.errors.iter().map(|e| format!("{}: {}", e.field, e.code)).collect();
            eprintln!("error: {} {}", problem.code, fields.join(", "));
            Ok(ExitCode::from(2))
        }
    }
}
