//! Building the application: the store, the command buses, the projection runner, the
//! outbox worker, the router and its middleware; and `serve`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::Router;
use chrono::{DateTime, Utc};
use shenfen_domain::account::Account;
use shenfen_domain::calendar::WorkingCalendar;
use shenfen_domain::claim::Claim;
use shenfen_domain::code::CodeChannel;
use shenfen_domain::ports::{Captcha, IdentityAuthority, StudentRegistry, Wechat};
use shenfen_domain::staff::Staff;
use shenfen_domain::student::pass::PassIdOwner;
use shenfen_domain::student::{Semesters, Student};
use shenfen_domain::support_case::SupportCase;
use shenfen_domain::verification::Verification;
use shenfen_projections::chain::ChainKey;
use shenfen_projections::db::Db;
use shenfen_projections::handover::HandOver;
use shenfen_projections::identity::IdentityProcess;
use shenfen_projections::log::{EventKind, Position};
use shenfen_projections::runner::{self, Progress, RunnerConfig};
use shenfen_projections::seal::ChainSeal;
use shenfen_projections::snapshots::SnapshotWriter;
use shenfen_projections::store::CommandBus;
use tokio::sync::Notify;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::config::Settings;
use crate::crypto::PasswordHashing;
use crate::error::ApiError;
use crate::notifier::Notifier;
use crate::routes;

/// The clock port: every rule that depends on "now" asks it.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Everything a handler needs.
pub struct AppState {
    pub settings: Settings,
    pub db: Db,
    /// Where reads that tolerate lag go (the standby, when one is configured and usable).
    pub reads: crate::read_side::ReadSide,
    pub accounts: Arc<CommandBus<Account>>,
    pub codes: CommandBus<CodeChannel>,
    pub verifications: Arc<CommandBus<Verification>>,
    pub staff: CommandBus<Staff>,
    pub claims: Arc<CommandBus<Claim>>,
    pub support_cases: CommandBus<SupportCase>,
    pub students: CommandBus<Student>,
    pub pass_ids: CommandBus<PassIdOwner>,
    pub student_registry: Box<dyn StudentRegistry>,
    pub schools: crate::schools::SchoolCatalogue,
    pub semesters: Semesters,
    pub authority: Box<dyn IdentityAuthority>,
    pub wechat: Box<dyn Wechat>,
    /// The CAPTCHA port, when one is configured (`SHENFEN_CAPTCHA`).
    pub captcha: Option<Box<dyn Captcha>>,
    keyring: Arc<shenfen_projections::pii::Keyring>,
    /// Reverse proxies whose `X-Forwarded-For` is believed (`SHENFEN_TRUSTED_PROXIES`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub calendar: WorkingCalendar,
    pub blobs: crate::blobs::BlobStore,
    pub progress: Progress,
    pub key: Vec<u8>,
    /// The key of the log's hash chain and seal (derived from `key`).
    pub chain: ChainKey,
    pub hashing: PasswordHashing,
    pub clock: Arc<dyn Clock>,
    pub outbox_wake: Arc<Notify>,
    pub limiter: IpLimiter,
    /// How long recent failed logins took (an unknown document's login lasts as long).
    pub failed_logins: crate::app::sessions::FailedLoginTimes,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
}

impl AppState {
    /// The data subjects' keys (personal data in events and snapshots is sealed under them).
    pub fn keyring(&self) -> &shenfen_projections::pii::Keyring {
        self.keyring.as_ref()
    }

    /// Where a student's verification stands at `now`: an approval from before the semester in
    /// course reads as `reconfirmation_required`.
    pub fn student_status(
        &self,
        student: &shenfen_domain::student::Student,
        now: DateTime<Utc>,
    ) -> shenfen_domain::student::StudentStatus {
        student.status_at(self.semesters.current_start(now))
    }

    /// The CAPTCHA port, if one is configured.
    pub fn captcha(&self) -> Option<&dyn Captcha> {
        self.captcha.as_deref()
    }

    /// Waits (bounded) until the named read models have applied `position`, so that the
    /// caller reads its own writes. A timeout is logged and counted, not an error: the
    /// command itself has committed.
    pub async fn caught_up(&self, position: Option<Position>, projections: &[&'static str]) {
        let Some(position) = position else { return };
        let wait = Duration::from_millis(self.settings.read_wait_ms);
        if !self.progress.wait_for(projections, position, wait).await {
            tracing::warn!(?projections, "read models did not catch up within the wait");
        }
    }

    /// Like [`caught_up`](Self::caught_up) after `committed`, waiting only for the named read
    /// models that want one of its events ([`Progress::wanting`]).
    pub async fn caught_up_after<A: cqrs_es::Aggregate>(
        &self,
        committed: &shenfen_projections::store::Committed<A>,
        projections: &[&'static str],
    ) {
        let types: Vec<String> = committed.events.iter().map(cqrs_es::DomainEvent::event_type).collect();
        let first = committed.sequence - types.len() as i64 + 1;
        let kinds: Vec<EventKind<'_>> = types
            .iter()
            .zip(first..)
            .map(|(t, sequence)| EventKind { aggregate_type: A::TYPE, event_type: t, sequence })
            .collect();
        self.caught_up(committed.position, &self.progress.wanting(projections, &kinds)).await;
    }
}

/// Opens the store, starts the background work, and returns the application state.
pub async fn build_state(settings: Settings) -> anyhow::Result<Arc<AppState>> {
    let write_timeout = Duration::from_millis(settings.write_timeout_ms);
    let db = Db::open_with(&settings.database_url, settings.db_connections, write_timeout)
        .await
        .context("opening the database")?;
    let key = crate::crypto::load_or_create_key(&settings.secret_key_file)?;
    let metrics = crate::telemetry::metrics();
    let commits = crate::crypto::commits(&db, &settings).await.context("opening the subject keys")?;
    let chain = commits.key().clone();
    let accounts =
        Arc::new(CommandBus::new(&db, (), commits.clone()).with_notices(Arc::new(crate::notices::account_notices)));
    let verifications = Arc::new(CommandBus::new(&db, (), commits.clone()));
    let claims = Arc::new(CommandBus::new(&db, (), commits.clone()));
    let blobs = crate::blobs::BlobStore::open(&settings.blob_dir)?;
    let mut projections = shenfen_projections::read_models();
    projections.push(Arc::new(IdentityProcess { accounts: accounts.clone(), verifications: verifications.clone() }));
    projections.push(Arc::new(HandOver { accounts: accounts.clone(), claims: claims.clone() }));
    projections.push(Arc::new(SnapshotWriter::new(accounts.clone(), "snapshots_account")));
    projections.push(Arc::new(SnapshotWriter::new(verifications.clone(), "snapshots_verification")));
    projections.push(Arc::new(ChainSeal::open(&db, chain.clone()).await.context("opening the seal of the log")?));
    let journal = crate::app::erasure::journal_path(&settings.secret_key_file);
    let students = CommandBus::new(&db, (), commits.clone());
    let replayed = crate::app::erasure::replay_journal(commits.keyring(), &accounts, &students, &journal)
        .await
        .context("replaying the erasure journal")?;
    if replayed > 0 {
        tracing::info!(replayed, "erasure journal replayed");
    }
    projections.push(Arc::new(crate::app::erasure::ErasureProcess {
        keyring: commits.keyring().clone(),
        db: db.clone(),
        blobs: blobs.clone(),
        journal,
    }));
    let reads = match &settings.read_database_url {
        Some(url) => {
            crate::read_side::ReadSide::with_standby(
                &db,
                url,
                settings.read_db_connections,
                Duration::from_secs(settings.read_max_lag_seconds),
            )
            .await?
        }
        None => crate::read_side::ReadSide::primary_only(&db),
    };
    let progress =
        runner::start(&db, projections, &commits, RunnerConfig::default()).await.context("starting the projections")?;
    let authority = crate::authority::from_spec(&settings.identity_authority)?;
    let wechat = crate::wechat::from_spec(&settings.wechat)?;
    let captcha = crate::captcha::from_spec(&settings.captcha)?;
    let student_registry = crate::student_registry::from_spec(&settings.student_registry)?;
    let schools = crate::schools::SchoolCatalogue::load(settings.school_catalogue.as_deref())?;
    let semesters = Semesters::parse(&settings.semester_starts).context("SHENFEN_SEMESTER_STARTS")?;
    let trusted_proxies = crate::extract::parse_trusted_proxies(&settings.trusted_proxies)?;
    let grace = Duration::from_secs(settings.blob_grace_seconds);
    tokio::spawn(crate::blobs::run_sweeper(blobs.clone(), db.clone(), grace));
    let mut calendar = WorkingCalendar::shipped();
    if let Some(path) = &settings.calendar_file {
        let csv = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        calendar.extend(WorkingCalendar::parse(&csv).with_context(|| format!("parsing {}", path.display()))?);
    }
    check_calendar(&calendar);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let notifier = Notifier::parse(&settings.notifier)?;
    let outbox_wake = Arc::new(Notify::new());
    tokio::spawn(crate::notifier::run_outbox(db.clone(), notifier, clock.clone(), outbox_wake.clone()));
    let state = Arc::new(AppState {
        accounts,
        codes: CommandBus::new(&db, (), commits.clone()),
        verifications,
        staff: CommandBus::new(&db, (), commits.clone()),
        claims,
        support_cases: CommandBus::new(&db, (), commits.clone()),
        students,
        pass_ids: CommandBus::new(&db, (), commits.clone()),
        student_registry,
        schools,
        semesters,
        authority,
        wechat,
        captcha,
        keyring: commits.keyring().clone(),
        trusted_proxies,
        calendar,
        blobs,
        limiter: IpLimiter::new(settings.ip_rate_limit),
        failed_logins: Default::default(),
        hashing: PasswordHashing::new()?,
        settings,
        db,
        reads,
        progress,
        key,
        chain,
        clock,
        outbox_wake,
        metrics,
    });
    tokio::spawn(crate::app::run_housekeeping(state.clone()));
    Ok(state)
}

/// Warns (log and metric) when this year or the next has no holiday data: due dates then
/// fall back to Monday–Friday until an operator adds the State Council's notice.
fn check_calendar(calendar: &WorkingCalendar) {
    use chrono::Datelike;
    let year = shenfen_domain::time::cst_date(Utc::now()).year();
    let missing: Vec<i32> = [year, year + 1].into_iter().filter(|y| !calendar.covers(*y)).collect();
    metrics::gauge!("shenfen_calendar_missing_years").set(missing.len() as f64);
    for y in missing {
        tracing::warn!(year = y, "no holiday calendar for this year: due dates fall back to Monday–Friday");
    }
}

/// The router with all middleware.
pub fn router(state: Arc<AppState>) -> Router {
    let public = Router::new()
        .route("/v1/verification-codes", post(routes::codes::request_code))
        .route("/v1/accounts", post(routes::accounts::register))
        .route("/v1/accounts/reregistration", post(routes::accounts::reregister))
        .route("/v1/sessions", post(routes::sessions::log_in))
        .route("/v1/password-resets", post(routes::resets::start))
        .route("/v1/password-resets/{reset_id}/deliveries", post(routes::resets::deliver))
        .route("/v1/password-resets/{reset_id}/completion", post(routes::resets::complete))
        .route(
            "/v1/support-cases",
            post(routes::support_cases::open_case).layer(DefaultBodyLimit::max(2 * 1024 * 1024)),
        )
        .route("/v1/students", post(routes::students::register))
        .route("/v1/student-sessions", post(routes::students::log_in))
        .route("/v1/schools", get(routes::students::search_schools))
        .route_layer(middleware::from_fn_with_state(state.clone(), ip_limit));
    let student = Router::new()
        .route("/v1/student/me", get(routes::students::me))
        .route("/v1/student/me/application", put(routes::students::edit_application))
        .route(
            "/v1/student/me/application/materials",
            post(routes::students::attach_materials).layer(DefaultBodyLimit::max(4 * 1024 * 1024)),
        )
        .route("/v1/student/me/guardian-verification", post(routes::students::verify_guardian))
        .route("/v1/student/me/application/submission", post(routes::students::submit))
        .route("/v1/student/me/reconfirmation", post(routes::students::reconfirm))
        .route("/v1/student/me/timeline", get(routes::students::timeline))
        .route("/v1/student/me/eligibility", get(routes::students::eligibility))
        .route(
            "/v1/student/me/deletion",
            post(routes::students::request_deletion).delete(routes::students::cancel_deletion),
        )
        .route("/v1/student/me/export", get(routes::students::export));
    let holder = Router::new()
        .route("/v1/sessions/current", delete(routes::sessions::log_out))
        .route("/v1/me", get(routes::me::get_me))
        .route("/v1/me/profile", put(routes::me::update_profile))
        .route("/v1/me/password", post(routes::me::change_password))
        .route("/v1/me/wechat", put(routes::me::bind_wechat).delete(routes::me::unbind_wechat))
        .route("/v1/me/email-confirmation", post(routes::me::confirm_email))
        .route("/v1/me/deletion", post(routes::deletion::request).delete(routes::deletion::cancel))
        .route("/v1/me/export", get(routes::export::export))
        .route("/v1/me/reregistration-claims", get(routes::claims::of_holder))
        .route("/v1/me/reregistration-claims/{claim_id}", delete(routes::claims::refuse))
        .route("/v1/me/real-name-verifications", post(routes::verification::verify))
        .route(
            "/v1/me/manual-reviews",
            post(routes::verification::apply_for_review)
                .layer(DefaultBodyLimit::max(4 * 1024 * 1024))
                .get(routes::verification::my_reviews),
        )
        .route("/v1/me/business-eligibility", get(routes::verification::eligibility));
    let claimant = Router::new().route("/v1/claims/current", get(routes::claims::current)).route(
        "/v1/claims/current/manual-review",
        post(routes::claims::submit_proof).layer(DefaultBodyLimit::max(4 * 1024 * 1024)),
    );
    let staff = Router::new()
        .route(
            "/v1/staff/sessions",
            post(routes::staff::log_in).route_layer(middleware::from_fn_with_state(state.clone(), ip_limit)),
        )
        .route("/v1/staff/sessions/current", delete(routes::staff::log_out))
        .route("/v1/staff/password", post(routes::staff::change_password))
        .route("/v1/staff/accounts", post(routes::staff::create))
        .route("/v1/staff/accounts/{username}/disable", post(routes::staff::disable))
        .route("/v1/staff/accounts/{username}/enable", post(routes::staff::enable))
        .route("/v1/staff/accounts/{username}/role", put(routes::staff::change_role))
        .route("/v1/review-queue", get(routes::reviews::queue))
        .route("/v1/manual-reviews/{id}/claim", post(routes::reviews::claim))
        .route("/v1/manual-reviews/{id}/decision", post(routes::reviews::decide))
        .route("/v1/manual-reviews/{id}/photos/{which}", get(routes::reviews::photo))
        .route("/v1/support/lookups", post(routes::support::lookup))
        .route("/v1/support/accounts/{id}/contact", post(routes::support::change_contact))
        .route("/v1/support/accounts/{id}/corrections", post(routes::support::correct))
        .route("/v1/support/requests/{request_id}/approval", post(routes::support::approve))
        .route("/v1/support/cases", get(routes::support_cases::list_cases))
        .route("/v1/support/cases/{id}/reply", post(routes::support_cases::reply_to_case))
        .route("/v1/support/cases/{id}/photo", get(routes::support_cases::case_photo))
        .route("/v1/feeds/identity-changes", get(routes::feeds::identity_changes))
        .route("/v1/audit/aggregates/{type}/{id}/events", get(routes::audit::events))
        .route("/v1/audit/aggregates/{type}/{id}/state", get(routes::audit::state))
        .route("/v1/analytics/registrations", get(routes::analytics::registrations))
        .route("/v1/analytics/verification-attempts", get(routes::analytics::verification_attempts))
        .route("/v1/analytics/verification-failures", get(routes::analytics::verification_failures))
        .route("/v1/analytics/quota-exhaustion", get(routes::analytics::quota_exhaustion))
        .route("/v1/analytics/manual-reviews", get(routes::analytics::manual_reviews))
        .route("/v1/analytics/manual-reviews/daily", get(routes::analytics::manual_reviews_daily))
        .route("/v1/analytics/manual-reviews/overdue", get(routes::analytics::overdue))
        .route("/v1/analytics/student-verifications", get(routes::analytics::student_verifications))
        .route("/v1/student-reviews", get(routes::student_reviews::list))
        .route("/v1/student-reviews/{id}/materials/{kind}", get(routes::student_reviews::material))
        .route("/v1/student-reviews/{id}/decision", post(routes::student_reviews::decide))
        .route("/v1/student-reviews/{id}/registry-refresh", post(routes::student_reviews::refresh))
        .route("/v1/student-reviews/{id}/registry-link", post(routes::student_reviews::link))
        .route("/v1/schools/{code}/students", get(routes::student_reviews::school_students));
    let mut ops = Router::new()
        .route("/healthz", get(routes::ops::healthz))
        .route("/readyz", get(routes::ops::readyz))
        .route("/openapi.json", get(routes::ops::openapi));
    // With a metrics listener of its own, the public port does not serve /metrics.
    if state.settings.metrics_listen.is_none() {
        ops = ops.route("/metrics", get(routes::ops::metrics));
    }
    Router::new()
        .merge(public)
        .merge(holder)
        .merge(claimant)
        .merge(student)
        .merge(staff)
        .merge(ops)
        .route_layer(middleware::from_fn(crate::telemetry::observe))
        .fallback(|| async { ApiError::not_found() })
        .layer(DefaultBodyLimit::max(64 * 1024))
        .layer(middleware::from_fn(crate::error::localize))
        .layer(middleware::from_fn(run_to_completion))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let request_id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
                    tracing::info_span!(
                        "request",
                        method = %req.method(),
                        route = tracing::field::Empty,
                        request_id = %request_id
                    )
                })
                .on_response(DefaultOnResponse::new().level(tracing::Level::DEBUG))
                // A failed request is logged once, by `telemetry::observe`.
                .on_failure(()),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(middleware::from_fn(drop_unacceptable_request_id))
        .with_state(state)
}

/// The router of the separate metrics listener (`SHENFEN_METRICS_LISTEN`).
pub fn metrics_router(state: Arc<AppState>) -> Router {
    Router::new().route("/metrics", get(routes::ops::metrics)).with_state(state)
}

/// Removes a client-sent `x-request-id` that is not up to 64 characters of `[A-Za-z0-9._-]`,
/// so that a new one is made in its place (see [`crate::extract::acceptable_request_id`]).
async fn drop_unacceptable_request_id(mut request: Request, next: Next) -> Response {
    let bad =
        request.headers().get("x-request-id").is_some_and(|v| !crate::extract::acceptable_request_id(v.as_bytes()));
    if bad {
        request.headers_mut().remove("x-request-id");
    }
    next.run(request).await
}

/// Runs every request in a task of its own. hyper drops a request's future when the client
/// hangs up; a handler dropped between two steps (the attempt recorded, the authority called,
/// its answer not yet recorded; photos stored, the application not yet made) would leave the
/// work half done. In its own task a request always runs to its end, whatever the client does.
async fn run_to_completion(request: Request, next: Next) -> Response {
    use tracing::Instrument;
    match tokio::spawn(next.run(request).in_current_span()).await {
        Ok(response) => response,
        Err(err) => {
            // The handler panicked: no middleware inside saw an answer, so it is logged here.
            tracing::error!(error = %err, "request task failed");
            ApiError::internal(err).into_response()
        }
    }
}

/// Fixed one-minute windows of requests per client address.
pub struct IpLimiter {
    per_minute: u32,
    windows: Mutex<HashMap<IpAddr, (i64, u32)>>,
}

impl IpLimiter {
    fn new(per_minute: u32) -> Self {
        IpLimiter { per_minute, windows: Mutex::new(HashMap::new()) }
    }

    /// Counts one request; returns the seconds to wait when over the limit.
    fn hit(&self, ip: IpAddr, now: DateTime<Utc>) -> Option<i64> {
        if self.per_minute == 0 {
            return None;
        }
        let minute = now.timestamp() / 60;
        let mut windows = self.windows.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if windows.len() > 100_000 {
            windows.retain(|_, (m, _)| *m == minute);
        }
        let entry = windows.entry(ip).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        entry.1 += 1;
        (entry.1 > self.per_minute).then(|| 60 - now.timestamp() % 60)
    }
}

async fn ip_limit(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let client = crate::extract::client_address(&parts, &state.trusted_proxies);
    let request = Request::from_parts(parts, body);
    {
        if let Some(wait) = state.limiter.hit(client, state.clock.now()) {
            metrics::counter!("shenfen_ip_rate_limited_total").increment(1);
            let mut response = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "Too many requests from this address; slow down.",
                "请求过于频繁，请稍后再试。",
            )
            .with("retry_after_seconds", wait)
            .into_response();
            if let Ok(v) = wait.to_string().parse() {
                response.headers_mut().insert("retry-after", v);
            }
            return response;
        }
    }
    next.run(request).await
}

/// Runs the API until SIGINT/SIGTERM.
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let listen = settings.listen.clone();
    let state = build_state(settings).await?;
    let listener = tokio::net::TcpListener::bind(&listen).await.with_context(|| format!("listening on {listen}"))?;
    let addr = listener.local_addr().context("local address")?;
    println!("listening on {addr}");
    tracing::info!(%addr, "shenfen is serving");
    if let Some(metrics_listen) = state.settings.metrics_listen.clone() {
        let metrics = tokio::net::TcpListener::bind(&metrics_listen)
            .await
            .with_context(|| format!("listening on {metrics_listen}"))?;
        let metrics_addr = metrics.local_addr().context("metrics address")?;
        println!("metrics on {metrics_addr}");
        let app = metrics_router(state.clone());
        tokio::spawn(async move {
            if let Err(err) = axum::serve(metrics, app).await {
                tracing::error!(error = %err, "the metrics listener stopped");
            }
        });
    }
    let app = router(state.clone());
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving")?;
    state.db.close().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
