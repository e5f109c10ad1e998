//! Configuration: every setting is a flag and an environment variable.

use std::path::PathBuf;

use clap::Args;

/// Settings of the server and the operator commands.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// `sqlite://PATH` or `postgres://…`.
    #[arg(long, env = "SHENFEN_DATABASE_URL", default_value = "sqlite://data/shenfen.db")]
    pub database_url: String,
    /// Address to listen on (`127.0.0.1:0` picks a free port; the chosen address is printed).
    #[arg(long, env = "SHENFEN_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// `log` (JSON lines appended to `./data/messages.log`), `log:PATH`, or `webhook:URL`.
    #[arg(long, env = "SHENFEN_NOTIFIER", default_value = "log")]
    pub notifier: String,
    /// `reference:PATH` (a CSV registry; `reference:` alone is the shipped demo) or `http:URL`.
    #[arg(long, env = "SHENFEN_IDENTITY_AUTHORITY", default_value = "reference:")]
    pub identity_authority: String,
    /// An extra working-day calendar (same CSV as `domain/data/cn-calendar.csv`), for years the
    /// shipped data does not cover yet; its days are added to (and override) the shipped ones.
    #[arg(long, env = "SHENFEN_CALENDAR_FILE")]
    pub calendar_file: Option<PathBuf>,
    /// Where photos and materials are stored.
    #[arg(long, env = "SHENFEN_BLOB_DIR", default_value = "./data/blobs")]
    pub blob_dir: PathBuf,
    /// How long a stored photo that no event references is kept before it is deleted, in
    /// seconds (an upload whose application was refused).
    #[arg(long, env = "SHENFEN_BLOB_GRACE_SECONDS", default_value_t = 86_400)]
    pub blob_grace_seconds: u64,
    /// Key material for tokens and derived ids; created on first start if missing.
    #[arg(long, env = "SHENFEN_SECRET_KEY_FILE", default_value = "./data/secret.key")]
    pub secret_key_file: PathBuf,
    /// The master keys that wrap the data subjects' keys, one per line, the current first;
    /// while the file does not exist, the master key is derived from the secret key file.
    /// Made and rotated with `shenfen-replay master-key`.
    #[arg(long, env = "SHENFEN_MASTER_KEY_FILE", default_value = "./data/master.keys")]
    pub master_key_file: PathBuf,
    /// Requests per minute per client address on the public endpoints; 0 turns it off.
    #[arg(long, env = "SHENFEN_IP_RATE_LIMIT", default_value_t = 600)]
    pub ip_rate_limit: u32,
    /// Consecutive failed logins that lock an account.
    #[arg(long, env = "SHENFEN_LOCKOUT_THRESHOLD", default_value_t = 5)]
    pub lockout_threshold: u32,
    /// How long a lock lasts, in seconds.
    #[arg(long, env = "SHENFEN_LOCKOUT_SECONDS", default_value_t = 900)]
    pub lockout_seconds: i64,
    /// How long a verification code or reset secret stays valid, in seconds.
    #[arg(long, env = "SHENFEN_CODE_TTL_SECONDS", default_value_t = 86_400)]
    pub code_ttl_seconds: i64,
    /// How long a session lasts, in seconds.
    #[arg(long, env = "SHENFEN_SESSION_TTL_SECONDS", default_value_t = 43_200)]
    pub session_ttl_seconds: i64,
    /// Accounts registered before this date (China time) are legacy accounts.
    #[arg(long, env = "SHENFEN_LEGACY_CUTOVER", default_value = "2019-03-01")]
    pub legacy_cutover: chrono::NaiveDate,
    /// The public base URL used in e-mailed reset links.
    #[arg(long, env = "SHENFEN_PUBLIC_URL", default_value = "http://127.0.0.1:8080")]
    pub public_url: String,
    /// How long a command's answer waits for the read models it affects, in milliseconds.
    #[arg(long, env = "SHENFEN_READ_WAIT_MS", default_value_t = 3000)]
    pub read_wait_ms: u64,
    /// Database connections per process.
    #[arg(long, env = "SHENFEN_DB_CONNECTIONS", default_value_t = 32)]
    pub db_connections: u32,
    /// How long the database may take to write a command's events, in milliseconds (PostgreSQL:
    /// the appender's `statement_timeout`; SQLite: the busy timeout): a write not done by then
    /// is given up, nothing of it written, and the command answered 503 `store_unavailable`.
    #[arg(long, env = "SHENFEN_WRITE_TIMEOUT_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub write_timeout_ms: u64,
    /// A PostgreSQL streaming standby of `SHENFEN_DATABASE_URL` for the reads that tolerate lag
    /// (analyst tables, audit reads, staff queues and lists, the change feed); unset, every
    /// read goes to the primary.
    #[arg(long, env = "SHENFEN_READ_DATABASE_URL")]
    pub read_database_url: Option<String>,
    /// Connections per process to the read standby.
    #[arg(long, env = "SHENFEN_READ_DB_CONNECTIONS", default_value_t = 16)]
    pub read_db_connections: u32,
    /// How far behind (seconds of replay) the standby may be and still serve reads; further
    /// behind, or not answering, and the reads go to the primary until it catches up.
    #[arg(long, env = "SHENFEN_READ_MAX_LAG_SECONDS", default_value_t = 30)]
    pub read_max_lag_seconds: u64,
    /// The WeChat port: `reference:PATH` (CSV `oauth_code,openid`; `reference:` alone is the
    /// demo file `api/data/wechat-oauth.csv`) or `http:URL`.
    #[arg(long, env = "SHENFEN_WECHAT", default_value = "reference:")]
    pub wechat: String,
    /// The version of the user agreement registrants accept (recorded in `Registered`).
    #[arg(long, env = "SHENFEN_AGREEMENT_VERSION", default_value = "2026-01")]
    pub agreement_version: String,
    /// Days the ID photos of a decided manual review are kept; then they are deleted.
    #[arg(long, env = "SHENFEN_PHOTO_RETENTION_DAYS", default_value_t = 180)]
    pub photo_retention_days: u32,
    /// Seconds between the housekeeping rounds (erasures that fell due, photos past their
    /// retention).
    #[arg(long, env = "SHENFEN_HOUSEKEEPING_SECONDS", default_value_t = 60)]
    pub housekeeping_seconds: u64,
    /// Days between a deletion request (注销) and the erasure; `0` erases at once.
    #[arg(long, env = "SHENFEN_DELETION_COOLING_OFF_DAYS", default_value_t = 15)]
    pub deletion_cooling_off_days: u32,
    /// The CAPTCHA port: `none` (no CAPTCHA), `reference:PATH` (CSV `token,valid`) or `http:URL`
    /// (POST `{"token"}` → `{"valid": bool}`, 3 s timeout). When set, code requests,
    /// registrations and logins need a `captcha_token`.
    #[arg(long, env = "SHENFEN_CAPTCHA", default_value = "none")]
    pub captcha: String,
    /// Comma-separated CIDRs of reverse proxies: only a request from one of them has its client
    /// address taken from `X-Forwarded-For` (the right-most address that is not a trusted proxy).
    #[arg(long, env = "SHENFEN_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: String,
    /// The student registry (学籍库): `reference:PATH` (CSV; `reference:` alone is the demo file
    /// `api/data/student-registry.csv`) or `http:URL` (5 s timeout).
    #[arg(long, env = "SHENFEN_STUDENT_REGISTRY", default_value = "reference:")]
    pub student_registry: String,
    /// The school catalogue, CSV `school_code,school_name,region,filed`; unset, the demo file
    /// `api/data/schools.csv`.
    #[arg(long, env = "SHENFEN_SCHOOL_CATALOGUE")]
    pub school_catalogue: Option<PathBuf>,
    /// Month-days (China time) on which a semester starts: approved students reconfirm then.
    #[arg(long, env = "SHENFEN_SEMESTER_STARTS", default_value = "03-01,09-01")]
    pub semester_starts: String,
    /// The version of the guardian consent text (recorded when a guardian consents).
    #[arg(long, env = "SHENFEN_GUARDIAN_CONSENT_VERSION", default_value = "2026-01")]
    pub guardian_consent_version: String,
    /// A separate address for `/metrics`; when set, the public listener answers 404 there.
    #[arg(long, env = "SHENFEN_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
}

impl Settings {
    /// How many consecutive failures lock an account or staff member, and for how long.
    pub fn lockout(&self) -> shenfen_domain::account::LockoutPolicy {
        shenfen_domain::account::LockoutPolicy {
            threshold: self.lockout_threshold,
            duration: chrono::Duration::seconds(self.lockout_seconds),
        }
    }
}
