//! The test harness of `shenfen-replay`: a fresh store of either backend (a SQLite file in a
//! temporary directory, or a throwaway PostgreSQL server started with pgtemp, which must start:
//! a PostgreSQL test fails, never skips), a scripted workload run in-process through the real
//! event store ([`CommandBus`]), the live read models caught up, the `shenfen-replay` binary
//! spawned against it, and a dump of every read-model table for row-for-row comparisons.
#![allow(clippy::unwrap_used, dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde_json::Value;
use shenfen_domain::account::{
    Account, AccountCommand, BindWechat, Checked, ConfirmEmailChange, EmailChange, EndSession, LockoutPolicy, LogIn,
    NewSession, PasswordCheck, ProfileInput, Registration, RequestEmailChange, UpdateProfile,
};
use shenfen_domain::account::{Erase, RequestDeletion};
use shenfen_domain::metadata::{Actor, EventMetadata};
use shenfen_domain::shared::document::check_char;
use shenfen_domain::shared::ethnicity::Ethnicity;
use shenfen_domain::shared::{DocumentNumber, DocumentType, Email, Mobile, PersonName, Validity};
use shenfen_domain::staff::{CreateStaff, Role, Staff, StaffCommand, StaffLogIn};
use shenfen_domain::verification::{
    Apply, AuthorityAnswer, ClaimApplication, DecideApplication, Decision, Photos, RecordAnswer, ReviewRequest,
    StartAttempt, Verification, VerificationCommand,
};
use shenfen_projections::chain::ChainKey;
use shenfen_projections::db::Db;
use shenfen_projections::pii::Keyring;
use shenfen_projections::seal::ChainSeal;
use shenfen_projections::store::CommandBus;
use shenfen_projections::{fetch_all, fetch_optional, read_models, runner};

/// Which backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Sqlite,
    Postgres,
}

/// Defines `NAME::on_sqlite` and `NAME::on_postgres`, each running `NAME(Fixture)` on a fresh
/// store of that backend.
#[macro_export]
macro_rules! both_stores {
    ($scenario:ident) => {
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() {
                super::$scenario(super::support::Fixture::new(super::support::Store::Sqlite).await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() {
                super::$scenario(super::support::Fixture::new(super::support::Store::Postgres).await).await;
            }
        }
    };
}

/// What one run of the binary gave.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// A fresh store with the workload in it and the live read models caught up.
pub struct Fixture {
    pub store: Store,
    pub url: String,
    pub db: Db,
    /// The SQLite file (SQLite only).
    pub file: Option<PathBuf>,
    pub workload: Workload,
    /// The secret key file (what the server's `SHENFEN_SECRET_KEY_FILE` names).
    pub key_file: PathBuf,
    // Field order is drop order: the PostgreSQL server goes before the directory.
    _pg: Option<pgtemp::PgTempDB>,
    _dir: tempfile::TempDir,
}

impl Fixture {
    /// A fresh store of `store` with [`workload`] run and the live read models caught up.
    pub async fn new(store: Store) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let (url, pg, file) = match store {
            Store::Sqlite => {
                let file = dir.path().join("shenfen.db");
                (format!("sqlite://{}", file.display()), None, Some(file))
            }
            Store::Postgres => {
                let (pg, url) = start_postgres().await;
                (url, Some(pg), None)
            }
        };
        let db = Db::open(&url, 4).await.unwrap();
        let key_file = dir.path().join("secret.key");
        std::fs::write(&key_file, rand::random::<[u8; 32]>()).unwrap();
        let key = ChainKey::from_key_file(&key_file).unwrap();
        // A server opens the seal when it starts, before it writes.
        let seal = ChainSeal::open(&db, key.clone()).await.unwrap();
        let keyring = std::sync::Arc::new(Keyring::for_chain(&db, &key));
        let workload = workload(&db, key).await;
        catch_up_live(&db, &keyring).await;
        runner::catch_up(&db, None, std::sync::Arc::new(seal), 500, |_| {}).await.unwrap();
        Fixture { store, url, db, file, workload, key_file, _pg: pg, _dir: dir }
    }

    /// The chain key of this store.
    pub fn key(&self) -> ChainKey {
        ChainKey::from_key_file(&self.key_file).unwrap()
    }

    /// The data subjects' keys of this store (as the server has them: from its key file, and
    /// its master key file once one is made).
    pub fn keyring(&self) -> std::sync::Arc<Keyring> {
        let masters = shenfen_projections::master_keys::MasterKeys::load(&self.key(), &self.master_key_file()).unwrap();
        std::sync::Arc::new(Keyring::new(&self.db, masters))
    }

    /// The master key file (`shenfen-replay master-key new` makes it).
    pub fn master_key_file(&self) -> PathBuf {
        self.key_file.with_file_name("master.keys")
    }

    /// Runs `shenfen-replay ARGS` against this store, with its key file.
    pub async fn replay(&self, args: &[&str]) -> Run {
        run_replay(&self.url, Some(&self.key_file), args).await
    }

    /// Deletes and erases account `id` as the server does (its deletion asked for with the
    /// right password and due at once, `Erased`, its keys destroyed), then runs the read
    /// models and the seal to the end of the log.
    pub async fn erase_account(&self, id: &str) {
        let commits = shenfen_projections::commits::Commits::new(&self.db, self.key());
        let accounts = CommandBus::<Account>::new(&self.db, (), commits.clone());
        let now = Utc::now();
        let hash = accounts.load(id).await.unwrap().password_hash.unwrap();
        let request = RequestDeletion { password: checked(&hash, Some(now)), now };
        let holder = Actor::Account { id: id.to_string() };
        accounts.execute(id, AccountCommand::RequestDeletion(request), &meta(holder, now)).await.unwrap();
        let key_version = commits.keyring().latest_version(id).await.unwrap();
        let erase = AccountCommand::Erase(Erase { key_version, now });
        accounts.execute(id, erase, &meta(Actor::System { id: "erasure".into() }, now)).await.unwrap();
        commits.keyring().erase(id, key_version, now).await.unwrap();
        catch_up_live(&self.db, &self.keyring()).await;
        self.seal().await;
    }

    /// Deletes and erases student `id` as the server does, then runs the read models and the
    /// seal to the end of the log.
    pub async fn erase_student(&self, id: &str) {
        use shenfen_domain::student::{Erase, RequestDeletion, Student, StudentCommand};
        let commits = shenfen_projections::commits::Commits::new(&self.db, self.key());
        let students = CommandBus::<Student>::new(&self.db, (), commits.clone());
        let now = Utc::now();
        let hash = students.load(id).await.unwrap().password_hash.unwrap();
        let request = RequestDeletion { password: checked(&hash, Some(now)), now };
        let me = Actor::Student { id: id.to_string() };
        students.execute(id, StudentCommand::RequestDeletion(request), &meta(me, now)).await.unwrap();
        let key_version = commits.keyring().latest_version(id).await.unwrap();
        let erase = StudentCommand::Erase(Erase { key_version, reapplied: false, now });
        students.execute(id, erase, &meta(Actor::System { id: "erasure".into() }, now)).await.unwrap();
        commits.keyring().erase(id, key_version, now).await.unwrap();
        catch_up_live(&self.db, &self.keyring()).await;
        self.seal().await;
    }

    /// Runs the seal as the server does, up to the end of the log.
    pub async fn seal(&self) {
        let seal = ChainSeal::open(&self.db, self.key()).await.unwrap();
        runner::catch_up(&self.db, None, std::sync::Arc::new(seal), 500, |_| {}).await.unwrap();
    }

    /// Runs one statement on the store (behind the application's back).
    pub async fn sql(&self, sql: &str) -> u64 {
        shenfen_projections::exec!(&self.db, sql).unwrap()
    }

    /// The number of events in the log.
    pub async fn event_count(&self) -> i64 {
        let row: Option<(i64,)> = fetch_optional!(&self.db, (i64,), "SELECT count(*) FROM events").unwrap();
        row.unwrap().0
    }

    /// The payload of one stored event.
    pub async fn payload(&self, ty: &str, id: &str, sequence: i64) -> Value {
        let events = shenfen_projections::audit::history(&self.db, ty, id).await.unwrap();
        events.into_iter().find(|e| e.sequence == sequence).unwrap().payload
    }

    /// Whether a rebuild in progress is left behind (the PostgreSQL schema or the SQLite sidecar).
    pub async fn rebuild_left_behind(&self) -> bool {
        match &self.file {
            Some(file) => {
                let mut sidecar = file.clone().into_os_string();
                sidecar.push(".rebuild");
                PathBuf::from(sidecar).exists()
            }
            None => {
                let row: Option<(i64,)> = fetch_optional!(
                    &self.db,
                    (i64,),
                    "SELECT count(*) FROM pg_namespace WHERE nspname = 'shenfen_rebuild'"
                )
                .unwrap();
                row.unwrap().0 > 0
            }
        }
    }
}

/// Runs `shenfen-replay ARGS` with `SHENFEN_DATABASE_URL=url`.
pub async fn replay_with(url: &str, args: &[&str]) -> Run {
    run_replay(url, None, args).await
}

/// Runs `shenfen-replay ARGS` with `SHENFEN_DATABASE_URL=url` and, when given,
/// `SHENFEN_SECRET_KEY_FILE=key_file` (and the master key file beside it).
pub async fn run_replay(url: &str, key_file: Option<&std::path::Path>, args: &[&str]) -> Run {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_shenfen-replay"));
    command.args(args).env("SHENFEN_DATABASE_URL", url);
    if let Some(file) = key_file {
        command.env("SHENFEN_SECRET_KEY_FILE", file).env("SHENFEN_MASTER_KEY_FILE", file.with_file_name("master.keys"));
    }
    let output = command.output().await.unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs every live read model to the end of the log, as a server would.
pub async fn catch_up_live(db: &Db, keyring: &std::sync::Arc<Keyring>) {
    for projection in read_models() {
        runner::catch_up(db, Some(keyring.clone()), projection, 500, |_| {}).await.unwrap();
    }
}

/// Every row of every read-model table, as JSON arrays ordered by all columns.
pub async fn dump(db: &Db) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for projection in read_models() {
        for &table in projection.tables() {
            let columns: Vec<(String,)> = match db {
                Db::Postgres(_) => fetch_all!(
                    db,
                    (String,),
                    "SELECT column_name::text FROM information_schema.columns
                      WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
                    table
                )
                .unwrap(),
                Db::Sqlite(_) => {
                    fetch_all!(db, (String,), "SELECT name FROM pragma_table_info($1) ORDER BY cid", table).unwrap()
                }
            };
            assert!(!columns.is_empty(), "table {table} has no columns");
            let list = columns.iter().map(|(c,)| c.as_str()).collect::<Vec<_>>().join(", ");
            let sql = match db {
                Db::Postgres(_) => format!("SELECT json_build_array({list})::text FROM {table} ORDER BY {list}"),
                Db::Sqlite(_) => format!("SELECT json_array({list}) FROM {table} ORDER BY {list}"),
            };
            let rows: Vec<(String,)> = fetch_all!(db, (String,), &sql).unwrap();
            out.insert(table.to_string(), rows.into_iter().map(|(r,)| r).collect());
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The workload
// ---------------------------------------------------------------------------------------------

/// What the workload did, for the assertions.
#[derive(Debug, Clone)]
pub struct Workload {
    /// The account ids, `acc-0` …
    pub accounts: Vec<String>,
    /// `acc-0`'s e-mail before and after its profile edit, and the edit's instant.
    pub email_before: String,
    pub email_after: String,
    pub edited_at: DateTime<Utc>,
}

pub const ACCOUNTS: usize = 6;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 5, 10).unwrap()
}

/// A clock that moves one minute per command, from 2026-05-10 09:00 China time.
struct Clock(DateTime<Utc>);

impl Clock {
    fn tick(&mut self) -> DateTime<Utc> {
        self.0 += chrono::Duration::minutes(1);
        self.0
    }
}

fn meta(actor: Actor, at: DateTime<Utc>) -> EventMetadata {
    EventMetadata { actor, request_id: format!("req-{}", at.timestamp()), at }
}

fn document(i: usize) -> DocumentNumber {
    let first17 = format!("11010519800101{i:03}");
    DocumentNumber::parse(DocumentType::ResidentIdCard, &format!("{first17}{}", check_char(&first17)), today()).unwrap()
}

fn validity() -> Validity {
    Validity::parse("20y", NaiveDate::from_ymd_opt(2020, 1, 1).unwrap(), DocumentType::ResidentIdCard, None, today())
        .unwrap()
}

/// A password checked against `hash`: right (then `then`) or wrong.
fn checked<T>(hash: &str, right: Option<T>) -> Checked<T> {
    Checked {
        checked_hash: hash.into(),
        lockout: LockoutPolicy { threshold: 5, duration: chrono::Duration::minutes(15) },
        check: right.map_or(PasswordCheck::Wrong, PasswordCheck::Right),
    }
}

fn login(i: usize, matched: bool, now: DateTime<Utc>) -> AccountCommand {
    let session = NewSession {
        session_id: format!("s-{i}"),
        token_hash: format!("tok-{i}"),
        expires_at: now + chrono::Duration::hours(12),
    };
    let password = checked(&format!("argon-hash-{i}"), matched.then_some(session));
    AccountCommand::LogIn(LogIn { password, now })
}

/// Registers accounts, logs in and fails, completes and edits profiles, ends sessions, binds
/// WeChat, runs real-name attempts (failed, passed, authority unavailable), two manual-review
/// applications (one approved, one rejected) and a staff member's login, all through the real
/// event store.
pub async fn workload(db: &Db, key: ChainKey) -> Workload {
    let written = shenfen_projections::commits::Commits::new(db, key);
    let accounts_bus = CommandBus::<Account>::new(db, (), written.clone());
    let verification_bus = CommandBus::<Verification>::new(db, (), written.clone());
    let students_bus = CommandBus::<shenfen_domain::student::Student>::new(db, (), written.clone());
    let staff_bus = CommandBus::<Staff>::new(db, (), written);
    let mut clock = Clock(Utc.with_ymd_and_hms(2026, 5, 10, 1, 0, 0).single().unwrap());
    let ids: Vec<String> = (0..ACCOUNTS).map(|i| format!("acc-{i}")).collect();
    let mut edited_at = clock.0;

    for (i, id) in ids.iter().enumerate() {
        let holder = Actor::Account { id: id.clone() };
        let now = clock.tick();
        let registration = Registration {
            document_type: DocumentType::ResidentIdCard,
            document_number: document(i),
            name: PersonName::parse("张三").unwrap(),
            validity: validity(),
            email: Email::parse(&format!("user{i}@example.com")).unwrap(),
            mobile: Mobile::parse(&format!("138001380{i:02}")).unwrap(),
            password_hash: format!("argon-hash-{i}"),
            consent: None,
            now,
        };
        accounts_bus.execute(id, AccountCommand::Register(registration), &meta(Actor::Anonymous, now)).await.unwrap();
        let now = clock.tick();
        accounts_bus.execute(id, login(i, false, now), &meta(Actor::Anonymous, now)).await.unwrap();
        let now = clock.tick();
        accounts_bus.execute(id, login(i, true, now), &meta(Actor::Anonymous, now)).await.unwrap();
        let now = clock.tick();
        let profile = ProfileInput { ethnicity: Some(Ethnicity::parse("01").unwrap()), ..ProfileInput::default() };
        let complete = AccountCommand::UpdateProfile(UpdateProfile { profile, validity: None, now });
        accounts_bus.execute(id, complete, &meta(holder.clone(), now)).await.unwrap();
        let now = clock.tick();
        let change = EmailChange {
            email: Email::parse(&format!("new{i}@example.com")).unwrap(),
            code_hash: format!("code-{i}"),
            ttl: chrono::Duration::hours(1),
        };
        let password = checked(&format!("argon-hash-{i}"), Some(change));
        let request = AccountCommand::RequestEmailChange(RequestEmailChange { password, now });
        accounts_bus.execute(id, request, &meta(holder.clone(), now)).await.unwrap();
        let now = clock.tick();
        if i == 0 {
            edited_at = now;
        }
        let confirm = AccountCommand::ConfirmEmailChange(ConfirmEmailChange { code_hash: format!("code-{i}"), now });
        accounts_bus.execute(id, confirm, &meta(holder.clone(), now)).await.unwrap();
        if i % 2 == 0 {
            let now = clock.tick();
            let end = AccountCommand::EndSession(EndSession { session_id: format!("s-{i}"), now });
            accounts_bus.execute(id, end, &meta(holder.clone(), now)).await.unwrap();
        }
        if i == 1 {
            let now = clock.tick();
            let password = checked("argon-hash-1", Some("openid-1".to_string()));
            let bind = AccountCommand::BindWechat(BindWechat { password, now });
            accounts_bus.execute(id, bind, &meta(holder.clone(), now)).await.unwrap();
        }
    }

    let staff = "staff-1";
    let now = clock.tick();
    let create = StaffCommand::Create(CreateStaff {
        username: "reviewer1".into(),
        role: Role::Reviewer,
        password_hash: "argon-staff".into(),
        account_id: None,
        school: None,
        created_by: "admin".into(),
        now,
    });
    let admin = Actor::System { id: "bootstrap".into() };
    staff_bus.execute(staff, create, &meta(admin, now)).await.unwrap();
    let now = clock.tick();
    let session = NewSession {
        session_id: "ss-1".into(),
        token_hash: "stok-1".into(),
        expires_at: now + chrono::Duration::hours(8),
    };
    let staff_login = StaffCommand::LogIn(StaffLogIn { password: checked("argon-staff", Some(session)), now });
    staff_bus.execute(staff, staff_login, &meta(Actor::Anonymous, now)).await.unwrap();

    let reviewer = Actor::Staff { id: staff.into(), role: "reviewer".into() };
    for (i, id) in ids.iter().enumerate().take(4) {
        let holder = Actor::Account { id: id.clone() };
        let now = clock.tick();
        let start = VerificationCommand::StartAttempt(StartAttempt {
            account_id: id.clone(),
            attempt_id: format!("att-{i}"),
            name: PersonName::parse("张三").unwrap(),
            validity: None,
            abandon_before: now - chrono::Duration::minutes(2),
            now,
        });
        verification_bus.execute(id, start, &meta(holder.clone(), now)).await.unwrap();
        let answer = match i {
            2 => AuthorityAnswer::Passed,
            3 => AuthorityAnswer::Unavailable,
            _ => AuthorityAnswer::Failed { reason: "mismatch".into() },
        };
        let now = clock.tick();
        let record = VerificationCommand::RecordAnswer(RecordAnswer { attempt_id: format!("att-{i}"), answer, now });
        verification_bus.execute(id, record, &meta(Actor::System { id: "authority".into() }, now)).await.unwrap();
        if i < 2 {
            let review = format!("rev-{i}");
            let now = clock.tick();
            let request = ReviewRequest {
                document_type: DocumentType::ResidentIdCard,
                name: PersonName::parse("张三").unwrap(),
                validity: validity(),
                photos: Photos { front: "f".repeat(64), back: "b".repeat(64), handheld: "h".repeat(64) },
            };
            let apply = VerificationCommand::Apply(Apply {
                account_id: id.clone(),
                review_id: review.clone(),
                request,
                due_by: NaiveDate::from_ymd_opt(2026, 5, 20).unwrap(),
                now,
            });
            verification_bus.execute(id, apply, &meta(holder.clone(), now)).await.unwrap();
            clock.0 += chrono::Duration::days(1);
            let now = clock.tick();
            let claim = VerificationCommand::Claim(ClaimApplication {
                review_id: review.clone(),
                reviewer: staff.into(),
                reviewer_account: None,
                now,
            });
            verification_bus.execute(id, claim, &meta(reviewer.clone(), now)).await.unwrap();
            clock.0 += chrono::Duration::days(1);
            let now = clock.tick();
            let decision = if i == 0 { Decision::Approve } else { Decision::Reject { reason: "blurry photo".into() } };
            let decide = VerificationCommand::Decide(DecideApplication {
                review_id: review,
                reviewer: staff.into(),
                decision,
                now,
            });
            verification_bus.execute(id, decide, &meta(reviewer.clone(), now)).await.unwrap();
        }
    }

    students(&students_bus, &mut clock).await;

    Workload {
        accounts: ids,
        email_before: "user0@example.com".into(),
        email_after: "new0@example.com".into(),
        edited_at,
    }
}

/// Three students: one approved at once, one returned by the head teacher, one the registry
/// does not know, linked by the school admin.
async fn students(bus: &CommandBus<shenfen_domain::student::Student>, clock: &mut Clock) {
    use shenfen_domain::student::{
        AttachMaterials, ClassName, Decide, Edit, EducationIdentity, Enrolment, Grade, Guardian, Material, PassId,
        Personal, Recompare, RecordRegistryAnswer, Register, RegistryAnswer, RegistryRecord, Scope, StudentCommand,
        StudentNumber, Submit, VerifyGuardian,
    };
    let grade = Grade::new(8).unwrap();
    let record = |name: &str| RegistryRecord {
        name: name.into(),
        id_number: None,
        birth_date: NaiveDate::from_ymd_opt(2012, 5, 1).unwrap(),
        school_code: "3201001".into(),
        grade,
        class: "3班".into(),
        head_teacher_mobile: "13700000001".into(),
    };
    for (i, answer) in
        [RegistryAnswer::Found(record("李小明")), RegistryAnswer::Found(record("李晓明")), RegistryAnswer::NotFound]
            .into_iter()
            .enumerate()
    {
        let id = format!("stu-{i}");
        let number = StudentNumber::parse(&format!("L32010000000000000{i}")).unwrap();
        let me = Actor::Student { id: id.clone() };
        let now = clock.tick();
        let register = StudentCommand::Register(Register {
            pass_id: PassId::parse(&format!("P9000000000{i}")).unwrap(),
            student_number: number,
            mobile: format!("1390000000{i}"),
            password_hash: "argon-student".into(),
            education_identity: EducationIdentity::Student,
            consent: shenfen_domain::account::Consent { agreement_version: "2026-01".into(), accepted_at: now },
            now,
        });
        bus.execute(&id, register, &meta(Actor::Anonymous, now)).await.unwrap();
        let now = clock.tick();
        let edit = StudentCommand::Edit(Edit {
            personal: Some(Personal {
                name: "李小明".into(),
                id_number: None,
                minor_uses_guardian_id: true,
                birth_date: "2012-05-01".into(),
                email: None,
            }),
            enrolment: Some(Enrolment { school_code: "3201001".into(), grade, class: "3班".into() }),
            guardian: Some(Guardian {
                name: "李大明".into(),
                id_number: "110105198001010016".into(),
                mobile: "13800000009".into(),
                address: "南京".into(),
            }),
            now,
        });
        bus.execute(&id, edit, &meta(me.clone(), now)).await.unwrap();
        let now = clock.tick();
        let attach = StudentCommand::AttachMaterials(AttachMaterials {
            materials: vec![(Material::HouseholdRegister, "m".repeat(64))],
            now,
        });
        bus.execute(&id, attach, &meta(me.clone(), now)).await.unwrap();
        let now = clock.tick();
        let verify = StudentCommand::VerifyGuardian(VerifyGuardian {
            mobile: "13800000009".into(),
            consent_version: "g1".into(),
            now,
        });
        bus.execute(&id, verify, &meta(me.clone(), now)).await.unwrap();
        let now = clock.tick();
        let submit = StudentCommand::Submit(Submit {
            submission_id: format!("sub-{i}"),
            school_filed: true,
            abandon_before: now - chrono::Duration::seconds(30),
            now,
        });
        bus.execute(&id, submit, &meta(me.clone(), now)).await.unwrap();
        let now = clock.tick();
        let due_by = NaiveDate::from_ymd_opt(2026, 5, 14).unwrap();
        let record_answer = StudentCommand::RecordRegistryAnswer(RecordRegistryAnswer {
            submission_id: format!("sub-{i}"),
            answer,
            review_id: format!("srv-{i}"),
            due_by,
            now,
        });
        bus.execute(&id, record_answer, &meta(me.clone(), now)).await.unwrap();
        let now = clock.tick();
        let head_teacher =
            Scope::HeadTeacher { school_code: "3201001".into(), grade, class: ClassName::parse("3班").unwrap() };
        match i {
            1 => {
                let decide = StudentCommand::Decide(Decide {
                    review_id: format!("srv-{i}"),
                    staff_id: "ht-1".into(),
                    scope: head_teacher,
                    decision: shenfen_domain::student::Decision::Return { reason: "姓名有误".into() },
                    now,
                });
                let actor = Actor::Staff { id: "ht-1".into(), role: "head_teacher".into() };
                bus.execute(&id, decide, &meta(actor, now)).await.unwrap();
            }
            2 => {
                let link = StudentCommand::Recompare(Recompare {
                    staff_id: "sa-1".into(),
                    scope: Scope::SchoolAdmin { school_code: "3201001".into() },
                    link: Some(StudentNumber::parse("L320100000000000009").unwrap()),
                    answer: RegistryAnswer::Found(record("李小明")),
                    review_id: format!("srv-{i}-b"),
                    due_by,
                    now,
                });
                let actor = Actor::Staff { id: "sa-1".into(), role: "school_admin".into() };
                bus.execute(&id, link, &meta(actor, now)).await.unwrap();
            }
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------------------------

/// Starts a throwaway PostgreSQL server (the end-to-end harness's, shared).
async fn start_postgres() -> (pgtemp::PgTempDB, String) {
    shenfen_test_postgres::start_postgres().await
}
