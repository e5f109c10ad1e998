//! What one phase measured: successful operations with their latencies, and failures counted
//! by kind with a few sample bodies, mergeable across the tasks that ran the phase.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// How many failure samples a phase keeps.
const MAX_SAMPLES: usize = 8;
/// How much of a failure body a sample keeps.
const MAX_SAMPLE_CHARS: usize = 600;

/// The raw measurements of one task, or of a whole phase once merged.
#[derive(Clone)]
pub struct Recorder {
    /// Latencies of successful operations, in microseconds.
    latencies: Histogram<u64>,
    ok: u64,
    errors: BTreeMap<String, u64>,
    samples: Vec<String>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Recorder {
        // 1 µs to one hour at 3 significant digits: the bounds are constants, so this cannot fail.
        #[allow(clippy::unwrap_used)]
        let latencies = Histogram::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        Recorder { latencies, ok: 0, errors: BTreeMap::new(), samples: Vec::new() }
    }

    /// One successful operation that took `latency`.
    pub fn success(&mut self, latency: Duration) {
        self.ok += 1;
        self.latencies.saturating_record(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).max(1));
    }

    /// One failed operation: `kind` is what gets counted (`"500"`, `"transport"`), `detail`
    /// is kept as a sample while there is room.
    pub fn failure(&mut self, kind: &str, detail: impl FnOnce() -> String) {
        *self.errors.entry(kind.to_string()).or_default() += 1;
        if self.samples.len() < MAX_SAMPLES {
            let mut text = detail();
            if text.chars().count() > MAX_SAMPLE_CHARS {
                text = text.chars().take(MAX_SAMPLE_CHARS).collect::<String>() + "…";
            }
            self.samples.push(format!("{kind}: {text}"));
        }
    }

    /// Adds what `other` recorded.
    pub fn merge(&mut self, other: Recorder) {
        self.ok += other.ok;
        // Both histograms have the same bounds, so adding cannot fail; saturate if it ever did.
        if self.latencies.add(&other.latencies).is_err() {
            for v in other.latencies.iter_recorded() {
                self.latencies.saturating_record_n(v.value_iterated_to(), v.count_at_value());
            }
        }
        for (kind, n) in other.errors {
            *self.errors.entry(kind).or_default() += n;
        }
        for sample in other.samples {
            if self.samples.len() < MAX_SAMPLES {
                self.samples.push(sample);
            }
        }
    }

    /// The summary of a phase that ran with `concurrency` workers for `elapsed`.
    pub fn summary(&self, concurrency: usize, elapsed: Duration) -> Summary {
        let ms = |micros: u64| micros as f64 / 1000.0;
        let seconds = elapsed.as_secs_f64();
        let (p50, p99, max) = if self.ok == 0 {
            (None, None, None)
        } else {
            (
                Some(ms(self.latencies.value_at_quantile(0.50))),
                Some(ms(self.latencies.value_at_quantile(0.99))),
                Some(ms(self.latencies.max())),
            )
        };
        Summary {
            concurrency,
            seconds,
            ops: self.ok,
            errors: self.errors.values().sum(),
            errors_by_kind: self.errors.clone(),
            ops_per_sec: if seconds > 0.0 { self.ok as f64 / seconds } else { 0.0 },
            p50_ms: p50,
            p99_ms: p99,
            max_ms: max,
            error_samples: self.samples.clone(),
        }
    }
}

/// The published figures of one phase.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Concurrent workers (clients, connections or threads).
    pub concurrency: usize,
    /// Wall time of the phase, until the last worker finished.
    pub seconds: f64,
    /// Successful operations.
    pub ops: u64,
    /// Failed operations.
    pub errors: u64,
    /// Failed operations by kind (HTTP status, `transport`, `database`…).
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Successful operations per second of wall time.
    pub ops_per_sec: f64,
    /// Median latency of successful operations.
    pub p50_ms: Option<f64>,
    /// 99th-percentile latency of successful operations.
    pub p99_ms: Option<f64>,
    /// Slowest successful operation.
    pub max_ms: Option<f64>,
    /// A few failures, with their bodies.
    pub error_samples: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_recorders_add_up_successes_and_failures() {
        let mut a = Recorder::new();
        a.success(Duration::from_millis(1));
        a.failure("500", || "boom".into());
        let mut b = Recorder::new();
        b.success(Duration::from_millis(3));
        b.success(Duration::from_millis(5));
        a.merge(b);
        let s = a.summary(2, Duration::from_secs(1));
        assert_eq!(s.ops, 3);
        assert_eq!(s.errors, 1);
        assert_eq!(s.errors_by_kind.get("500"), Some(&1));
        assert!((s.ops_per_sec - 3.0).abs() < 1e-9);
        assert!(s.max_ms.is_some_and(|m| (m - 5.0).abs() < 0.01));
        assert_eq!(s.error_samples, vec!["500: boom".to_string()]);
    }
}
