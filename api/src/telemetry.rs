//! Logging (`tracing`, to stderr; `RUST_LOG` filters) and the Prometheus recorder.
//!
//! Log lines never carry personal data: handlers log ids and outcomes, never bodies.

use std::sync::OnceLock;

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
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).try_init();
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
