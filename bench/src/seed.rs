//! Fills a PostgreSQL store with a province's worth of accounts, quickly, by bulk SQL.
//!
//! Every stream is decided by the domain's own aggregates in memory, from the commands the
//! server would have run over a year ([`CommandBus::decide_unstored`]): a registration (with
//! the agreement accepted), the first-login profile, logins, a profile edit now and then,
//! real-name attempts (most pass at once, some fail first) with their outcome carried to the
//! account as the identity process would, and for a few a manual review claimed and decided by
//! a reviewer. So every payload has the server's shape, personal data is sealed under each
//! subject's key, and every event is hash-chained under the server's key file: the seeded log
//! verifies (`shenfen-replay verify`) and its accounts can log in (document numbers from
//! [`document_number`], password [`PASSWORD`]).
//!
//! The events are written with `COPY … FROM STDIN` in batches of whole streams, by a few
//! workers at once. The process managers' checkpoints are then set to the end of the log (what
//! they would have done is in the streams already); the read models, the snapshot writers and
//! the seal of the log catch up when the server starts (or through `shenfen-replay rebuild`).

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::persist::SerializedEvent;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use shenfen_domain::account::{
    Account, AccountCommand, Checked, Consent, IdentityOutcome, LockoutPolicy, LogIn, NewSession, PasswordCheck,
    ProfileInput, Registration, UpdateProfile,
};
use shenfen_domain::metadata::{Actor, EventMetadata};
use shenfen_domain::shared::document::check_char;
use shenfen_domain::shared::ethnicity::Ethnicity;
use shenfen_domain::shared::{DocumentNumber, DocumentType, Email, Mobile, PersonName, Validity};
use shenfen_domain::verification::{
    AuthorityAnswer, ClaimApplication, DecideApplication, Decision, DeletePhotos, Photos, RecordAnswer, ReviewRequest,
    StartAttempt, Verification, VerificationCommand,
};
use shenfen_projections::chain::GENESIS;
use shenfen_projections::store::{CommandBus, Loaded};
use sqlx::PgConnection;

/// The password of every seeded account.
pub const PASSWORD: &str = "Seed#Pass2026";

/// Accounts per `COPY` (one transaction).
const BATCH: u64 = 2_000;

/// The surnames and given names seeded people are called by.
const SURNAMES: [&str; 16] =
    ["王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭"];
const GIVEN: [&str; 16] =
    ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明"];

/// The resident ID number of seeded account `i` (0-based): Shenzhen's district 440305, born on
/// one of 3,000 days from 1960 on, sequence `i mod 1000`, with its check character. Never one
/// the load generator makes (it uses Beijing's districts, 1101xx).
pub fn document_number(i: u64) -> String {
    let day = NaiveDate::from_ymd_opt(1960, 1, 1).unwrap_or_default() + chrono::Duration::days((i / 1000) as i64);
    let first17 = format!("440305{}{:03}", day.format("%Y%m%d"), i % 1000);
    format!("{first17}{}", check_char(&first17))
}

/// What a seeding wrote.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Seeded {
    pub accounts: u64,
    pub events: u64,
    pub seconds: f64,
    /// The rebuild of the read models from the seeded log, when one ran (0 otherwise).
    pub rebuild_events_per_sec: f64,
}

/// The aggregates' command buses (for their keys and serialization) and what every stream
/// shares.
pub struct Seeder {
    accounts: CommandBus<Account>,
    verifications: CommandBus<Verification>,
    key: Vec<u8>,
    password_hash: String,
    agreement_version: String,
    now: DateTime<Utc>,
}

impl Seeder {
    /// Seeds with the server's key (`key`, for account ids) and commit path (`commits`, for the
    /// subject keys and the chain), the agreement version the server records, as of `now`.
    pub async fn new(
        db: &shenfen_projections::db::Db,
        commits: Arc<shenfen_projections::commits::Commits>,
        key: Vec<u8>,
        agreement_version: String,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Seeder> {
        let hashing = shenfen_api::crypto::PasswordHashing::new()?;
        let password_hash = hashing.hash(PASSWORD.to_string()).await?;
        Ok(Seeder {
            accounts: CommandBus::new(db, (), commits.clone()),
            verifications: CommandBus::new(db, (), commits),
            key,
            password_hash,
            agreement_version,
            now,
        })
    }

    /// Writes accounts `from..to` (their streams), in batches, with `workers` writing at once.
    pub async fn seed(self: &Arc<Self>, url: &str, from: u64, to: u64, workers: usize) -> anyhow::Result<Seeded> {
        let started = Instant::now();
        let next = Arc::new(std::sync::atomic::AtomicU64::new(from));
        let mut tasks = Vec::new();
        for _ in 0..workers.max(1) {
            let (seeder, next, url) = (self.clone(), next.clone(), url.to_string());
            tasks.push(tokio::spawn(async move {
                use sqlx::Connection;
                let mut conn = PgConnection::connect(&url).await.context("connecting to seed")?;
                let mut events = 0u64;
                loop {
                    let first = next.fetch_add(BATCH, std::sync::atomic::Ordering::SeqCst);
                    if first >= to {
                        return anyhow::Ok(events);
                    }
                    let last = (first + BATCH).min(to);
                    let mut rows = Vec::new();
                    for i in first..last {
                        rows.extend(seeder.streams(i).await.with_context(|| format!("seeding account {i}"))?);
                    }
                    events += rows.len() as u64;
                    copy_events(&mut conn, &rows).await?;
                }
            }));
        }
        let mut events = 0;
        for task in tasks {
            events += task.await.context("a seeding worker panicked")??;
        }
        Ok(Seeded {
            accounts: to - from,
            events,
            seconds: started.elapsed().as_secs_f64(),
            rebuild_events_per_sec: 0.0,
        })
    }

    /// The account and verification streams of seeded account `i`, in order.
    async fn streams(&self, i: u64) -> anyhow::Result<Vec<SerializedEvent>> {
        let mut rng = StdRng::seed_from_u64(i);
        let number = document_number(i);
        let today = shenfen_domain::time::cst_date(self.now);
        let document = DocumentNumber::parse(DocumentType::ResidentIdCard, &number, today)
            .map_err(|e| anyhow::anyhow!("seeded number {number}: {e:?}"))?;
        let id = shenfen_domain::ids::account_id(&self.key, DocumentType::ResidentIdCard, &document);
        let name =
            format!("{}{}{}", SURNAMES[rng.gen_range(0..16)], GIVEN[rng.gen_range(0..16)], GIVEN[rng.gen_range(0..16)]);
        let name = PersonName::parse(&name).map_err(|e| anyhow::anyhow!("seeded name: {e:?}"))?;
        let issued = today - chrono::Duration::days(rng.gen_range(30..3650));
        let validity = Validity::parse("20y", issued, DocumentType::ResidentIdCard, None, today)
            .map_err(|e| anyhow::anyhow!("seeded validity: {e:?}"))?;
        let mobile = Mobile::parse(&format!("13{:09}", i)).map_err(|e| anyhow::anyhow!("seeded mobile: {e:?}"))?;
        let email = Email::parse(&format!("p{i}@example.com")).map_err(|e| anyhow::anyhow!("seeded e-mail: {e:?}"))?;

        // The account's life, over the year before `now`.
        let mut at = self.now - chrono::Duration::seconds(rng.gen_range(7_200..365 * 86_400));
        let step = |rng: &mut StdRng, at: &mut DateTime<Utc>| {
            *at += chrono::Duration::seconds(rng.gen_range(60..86_400 * 7));
            // An hour before `now` at the latest, so that no event of a stream is in the future.
            if *at > self.now - chrono::Duration::seconds(3_600) {
                *at = self.now - chrono::Duration::seconds(3_600);
            }
            *at
        };
        let meta =
            |actor: Actor, at: DateTime<Utc>, rng: &mut StdRng| EventMetadata { actor, request_id: uuid_from(rng), at };
        let holder = || Actor::Account { id: id.clone() };
        let mut out = Vec::new();
        let mut account = Loaded { state: Account::default(), sequence: 0, last_hash: GENESIS.to_string() };
        let mut verification = Loaded { state: Verification::default(), sequence: 0, last_hash: GENESIS.to_string() };

        let register = Registration {
            document_type: DocumentType::ResidentIdCard,
            document_number: document,
            name: name.clone(),
            validity,
            email,
            mobile,
            password_hash: self.password_hash.clone(),
            consent: Some(Consent { agreement_version: self.agreement_version.clone(), accepted_at: at }),
            now: at,
        };
        let m = meta(Actor::Anonymous, at, &mut rng);
        out.extend(self.account(&id, &mut account, AccountCommand::Register(register), &m).await?);
        let logins = rng.gen_range(0..=8);
        let login = |rng: &mut StdRng, at: DateTime<Utc>| {
            let session = NewSession {
                session_id: uuid_from(rng),
                token_hash: format!("{:064x}", rng.gen::<u128>()),
                expires_at: at + chrono::Duration::hours(12),
            };
            AccountCommand::LogIn(LogIn {
                password: Checked {
                    checked_hash: self.password_hash.clone(),
                    lockout: LockoutPolicy { threshold: 5, duration: chrono::Duration::minutes(15) },
                    check: PasswordCheck::Right(session),
                },
                now: at,
            })
        };
        let t = step(&mut rng, &mut at);
        let m = meta(Actor::Anonymous, t, &mut rng);
        out.extend(self.account(&id, &mut account, login(&mut rng, t), &m).await?);
        let profile = UpdateProfile {
            profile: ProfileInput { ethnicity: Ethnicity::parse("01").ok(), ..ProfileInput::default() },
            validity: None,
            now: t,
        };
        let m = meta(holder(), t, &mut rng);
        out.extend(self.account(&id, &mut account, AccountCommand::UpdateProfile(profile), &m).await?);

        // Real-name verification: most try and pass (some after a failure); a few fail three
        // times and go to manual review, approved; the rest never try.
        let roll = rng.gen_range(0..100);
        let (failures, pass) = match roll {
            0..10 => (1, true),
            10..85 => (0, true),
            85..88 => (3, false),
            _ => (0, false),
        };
        let mut t = step(&mut rng, &mut at);
        for attempt in 0..failures + u32::from(pass) {
            t += chrono::Duration::seconds(90);
            let attempt_id = uuid_from(&mut rng);
            let start = StartAttempt {
                account_id: id.clone(),
                attempt_id: attempt_id.clone(),
                name: name.clone(),
                validity: Some(validity),
                abandon_before: t - chrono::Duration::seconds(30),
                now: t,
            };
            let m = meta(holder(), t, &mut rng);
            out.extend(self.verification(&id, &mut verification, VerificationCommand::StartAttempt(start), &m).await?);
            let answer = if attempt < failures {
                AuthorityAnswer::Failed { reason: "name_mismatch".into() }
            } else {
                AuthorityAnswer::Passed
            };
            let record = RecordAnswer { attempt_id, answer, now: t };
            out.extend(self.verification(&id, &mut verification, VerificationCommand::RecordAnswer(record), &m).await?);
            let proved = (attempt >= failures).then_some((&name, &validity));
            out.extend(self.carry(&id, &mut account, &verification, proved, t, &mut rng).await?);
        }
        at = at.max(t);
        if failures == 3 {
            let t = step(&mut rng, &mut at);
            let review_id = shenfen_api::ids::id_for("rev_", &id);
            let digest = |rng: &mut StdRng| format!("{:064x}", rng.gen::<u128>());
            let request = ReviewRequest {
                document_type: DocumentType::ResidentIdCard,
                name: name.clone(),
                validity,
                photos: Photos { front: digest(&mut rng), back: digest(&mut rng), handheld: digest(&mut rng) },
            };
            let due_by = shenfen_domain::time::cst_date(t) + chrono::Duration::days(9);
            let apply = shenfen_domain::verification::Apply {
                account_id: id.clone(),
                review_id: review_id.clone(),
                request,
                due_by,
                now: t,
            };
            let m = meta(holder(), t, &mut rng);
            out.extend(self.verification(&id, &mut verification, VerificationCommand::Apply(apply), &m).await?);
            out.extend(self.carry(&id, &mut account, &verification, None, t, &mut rng).await?);
            let t = step(&mut rng, &mut at);
            let reviewer = "seed-reviewer".to_string();
            let staff = || Actor::Staff { id: reviewer.clone(), role: "reviewer".into() };
            let claim = ClaimApplication {
                review_id: review_id.clone(),
                reviewer: reviewer.clone(),
                reviewer_account: None,
                now: t,
            };
            let m = meta(staff(), t, &mut rng);
            out.extend(self.verification(&id, &mut verification, VerificationCommand::Claim(claim), &m).await?);
            let decide = DecideApplication {
                review_id: review_id.clone(),
                reviewer: reviewer.clone(),
                decision: Decision::Approve,
                now: t,
            };
            out.extend(self.verification(&id, &mut verification, VerificationCommand::Decide(decide), &m).await?);
            out.extend(self.carry(&id, &mut account, &verification, Some((&name, &validity)), t, &mut rng).await?);
            // Photos of a decision older than the retention are gone, as the server's
            // housekeeping would have deleted them.
            let retention = chrono::Duration::days(180);
            if t + retention < self.now {
                let delete = DeletePhotos { review_id, retention, now: t + retention };
                let m = meta(Actor::System { id: "retention".into() }, t + retention, &mut rng);
                out.extend(
                    self.verification(&id, &mut verification, VerificationCommand::DeletePhotos(delete), &m).await?,
                );
            }
        }

        // Logins over the year, and now and then a profile edit.
        for n in 0..logins {
            let t = step(&mut rng, &mut at);
            let m = meta(Actor::Anonymous, t, &mut rng);
            out.extend(self.account(&id, &mut account, login(&mut rng, t), &m).await?);
            if n == 2 {
                let edit = UpdateProfile {
                    profile: ProfileInput { ethnicity: Ethnicity::parse("02").ok(), ..ProfileInput::default() },
                    validity: None,
                    now: t,
                };
                let m = meta(holder(), t, &mut rng);
                out.extend(self.account(&id, &mut account, AccountCommand::UpdateProfile(edit), &m).await?);
            }
        }
        Ok(out)
    }

    async fn account(
        &self,
        id: &str,
        loaded: &mut Loaded<Account>,
        command: AccountCommand,
        meta: &EventMetadata,
    ) -> anyhow::Result<Vec<SerializedEvent>> {
        self.accounts.decide_unstored(id, loaded, command, meta).await.map_err(|e| anyhow::anyhow!("account: {e}"))
    }

    async fn verification(
        &self,
        id: &str,
        loaded: &mut Loaded<Verification>,
        command: VerificationCommand,
        meta: &EventMetadata,
    ) -> anyhow::Result<Vec<SerializedEvent>> {
        self.verifications
            .decide_unstored(id, loaded, command, meta)
            .await
            .map_err(|e| anyhow::anyhow!("verification: {e}"))
    }

    /// What the identity process does with the verification stream's last event: the outcome
    /// recorded on the account.
    async fn carry(
        &self,
        id: &str,
        account: &mut Loaded<Account>,
        verification: &Loaded<Verification>,
        proved: Option<(&PersonName, &Validity)>,
        at: DateTime<Utc>,
        rng: &mut StdRng,
    ) -> anyhow::Result<Vec<SerializedEvent>> {
        let outcome = IdentityOutcome {
            verification_sequence: verification.sequence,
            generation: verification.state.generation,
            status: verification.state.status,
            name: proved.map(|(n, _)| n.clone()),
            validity: proved.map(|(_, v)| *v),
            now: at,
        };
        let meta = EventMetadata {
            actor: Actor::System { id: shenfen_projections::identity::IdentityProcess::NAME.into() },
            request_id: uuid_from(rng),
            at,
        };
        self.account(id, account, AccountCommand::RecordIdentity(outcome), &meta).await
    }
}

/// A random (version 4 shaped) UUID from `rng`, so a seeding is reproducible.
fn uuid_from(rng: &mut StdRng) -> String {
    let h = format!("{:032x}", rng.gen::<u128>());
    format!("{}-{}-4{}-a{}-{}", &h[0..8], &h[8..12], &h[13..16], &h[17..20], &h[20..32])
}

/// Writes `rows` with one `COPY` (one transaction).
async fn copy_events(conn: &mut PgConnection, rows: &[SerializedEvent]) -> anyhow::Result<()> {
    let mut text = String::with_capacity(rows.len() * 900);
    for e in rows {
        for field in [&e.aggregate_type, &e.aggregate_id] {
            text.push_str(field);
            text.push('\t');
        }
        text.push_str(&e.sequence.to_string());
        text.push('\t');
        text.push_str(&e.event_type);
        text.push('\t');
        text.push_str(&e.event_version);
        text.push('\t');
        push_copy_json(&mut text, &e.payload);
        text.push('\t');
        push_copy_json(&mut text, &e.metadata);
        text.push('\n');
    }
    let mut copy = conn
        .copy_in_raw(
            "COPY events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) FROM STDIN",
        )
        .await
        .context("starting COPY")?;
    copy.send(text.into_bytes()).await.context("sending the rows")?;
    copy.finish().await.context("COPY into events")?;
    Ok(())
}

/// JSON in COPY's text format: serde_json never writes a raw tab or newline, so only the
/// backslash needs escaping.
fn push_copy_json(out: &mut String, value: &Value) {
    let json = value.to_string();
    for c in json.chars() {
        if c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
}

/// Sets the checkpoints of `projections` to the end of the log: the process managers, whose
/// work is in the seeded streams already.
pub async fn skip_to_end(conn: &mut PgConnection, projections: &[&str]) -> anyhow::Result<()> {
    for projection in projections {
        sqlx::query(
            "INSERT INTO projection_checkpoints (projection, transaction_id, position)
             SELECT $1, transaction_id::text::bigint, global_position FROM events
              ORDER BY events.transaction_id DESC, events.global_position DESC LIMIT 1
             ON CONFLICT (projection) DO UPDATE
                SET transaction_id = EXCLUDED.transaction_id, position = EXCLUDED.position, updated_at = now()",
        )
        .bind(*projection)
        .execute(&mut *conn)
        .await
        .with_context(|| format!("moving the checkpoint of {projection}"))?;
    }
    Ok(())
}

/// The process managers, whose work the seeded streams already hold.
const PROCESS_MANAGERS: [&str; 5] = [
    shenfen_projections::identity::IdentityProcess::NAME,
    shenfen_projections::handover::HandOver::NAME,
    "erasure",
    "snapshots_account",
    "snapshots_verification",
];

/// Where to seed: the store and the server's key files and agreement version.
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    /// The server's settings (its database, key files and agreement version are used).
    #[command(flatten)]
    pub settings: shenfen_api::config::Settings,
}

impl Target {
    /// The store at `url` with the key files in `dir` (as a server started there with
    /// `SHENFEN_SECRET_KEY_FILE=DIR/secret.key`, `SHENFEN_MASTER_KEY_FILE=DIR/master.keys`).
    pub fn at(url: &str, dir: &std::path::Path) -> anyhow::Result<Target> {
        #[derive(clap::Parser)]
        struct Wrap {
            #[command(flatten)]
            target: Target,
        }
        use clap::Parser;
        let secret = dir.join("secret.key");
        let master = dir.join("master.keys");
        let args = ["seed", "--database-url", url, "--secret-key-file"]
            .into_iter()
            .map(std::ffi::OsString::from)
            .chain([secret.into_os_string(), "--master-key-file".into(), master.into_os_string()]);
        Ok(Wrap::try_parse_from(args)?.target)
    }

    /// Seeds accounts `first..first + accounts` (the store migrated first), with `workers`
    /// connections writing at once, and moves the process managers past them.
    pub async fn seed(&self, first: u64, accounts: u64, workers: usize) -> anyhow::Result<Seeded> {
        let settings = &self.settings;
        let url = &settings.database_url;
        anyhow::ensure!(url.starts_with("postgres"), "seeding writes to PostgreSQL only (COPY)");
        let db = shenfen_projections::db::Db::open(url, workers as u32 + 2).await.context("opening the store")?;
        let key = shenfen_api::crypto::load_or_create_key(&settings.secret_key_file)?;
        let commits = shenfen_api::crypto::commits(&db, settings).await?;
        let seeder = Arc::new(Seeder::new(&db, commits, key, settings.agreement_version.clone(), Utc::now()).await?);
        let seeded = seeder.seed(url, first, first + accounts, workers).await?;
        use sqlx::Connection;
        let mut conn = PgConnection::connect(url).await.context("connecting")?;
        skip_to_end(&mut conn, &PROCESS_MANAGERS).await?;
        sqlx::query("ANALYZE").execute(&mut conn).await.context("ANALYZE")?;
        db.close().await;
        Ok(seeded)
    }

    /// Builds every read model from the log with the replay tool (`shenfen-replay rebuild`, in
    /// this process): what a server started on the seeded store would otherwise catch up with
    /// event by event. Returns the events read and the seconds it took.
    pub async fn rebuild(&self) -> anyhow::Result<(u64, f64)> {
        use shenfen_replay::rebuild;
        let settings = &self.settings;
        let db = shenfen_projections::db::Db::open(&settings.database_url, 16).await.context("opening the store")?;
        let keyring = shenfen_projections::pii::Keyring::from_key_file(&db, &settings.secret_key_file)?;
        let options =
            rebuild::Options { restart: true, keyring: Some(Arc::new(keyring)), ..rebuild::Options::default() };
        let report =
            rebuild::rebuild(&db, rebuild::select(None)?, &options, &shenfen_replay::progress::Progress::hidden())
                .await
                .context("rebuilding the read models")?;
        db.close().await;
        Ok((report.events_read, report.elapsed.as_secs_f64()))
    }
}
