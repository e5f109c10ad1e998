//! Logging (`tracing`, to stderr; `RUST_LOG` filters) and the Prometheus recorder.
//!
//! Log lines never carry personal data: handlers log ids and outcomes, never bodies.

use std::sync::OnceLock;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

/// Installs the log subscriber. Lines are written to stderr by a thread of their own, in
/// bursts (one write for all the lines waiting), not by the request's thread; none is dropped
/// (a full queue makes the logger wait). Keep the returned guard until the process ends: it
/// writes out what is still queued when dropped.
pub fn init() -> tracing_appender::non_blocking::WorkerGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("shenfen-log")
        .finish(std::io::BufWriter::new(std::io::stderr()));
    // Colours only on a terminal: a log file or collector gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(writer).try_init();
    guard
}

/// The process-wide Prometheus recorder.
pub fn metrics() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new();
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Around every routed request: records the matched route on the request's span, counts the
/// request and its duration by route and status, and writes the one log line of a failed
/// request — 5xx at ERROR with the cause the [`ApiError`](crate::error::ApiError) carries,
/// 4xx at INFO with the problem's code. Nothing else logs a failed request.
pub async fn observe(request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method = request.method().to_string();
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_string();
    tracing::Span::current().record("route", tracing::field::display(&route));
    let response = next.run(request).await;
    let status = response.status();
    metrics::counter!("shenfen_http_requests_total", "method" => method.clone(), "path" => route.clone(), "status" => status.as_str().to_string())
        .increment(1);
    metrics::histogram!("shenfen_http_request_duration_seconds", "method" => method, "path" => route)
        .record(started.elapsed().as_secs_f64());
    let problem = response.extensions().get::<crate::error::ApiError>();
    let code = problem.map_or("", |p| p.code.as_str());
    if status.is_server_error() {
        match problem.and_then(|p| p.cause.as_deref()) {
            Some(cause) => tracing::error!(status = status.as_u16(), code, cause, "request failed"),
            None => tracing::error!(status = status.as_u16(), code, "request failed"),
        }
    } else if status.is_client_error() {
        tracing::info!(status = status.as_u16(), code, "request refused");
    }
    response
}
