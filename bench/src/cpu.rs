//! The whole machine's CPU time over a phase, read from `/proc/stat`: what one operation costs
//! when the server, PostgreSQL and the load generator share the cores. It puts a command and
//! the baselines it is compared with on one scale (CPU per operation), which shows where a
//! gap between them comes from.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::stats::Summary;

/// The machine's CPU counters at one instant (clock ticks summed over every core).
#[derive(Debug, Clone, Copy)]
struct Ticks {
    busy: u64,
    total: u64,
}

impl Ticks {
    /// The counters now; `None` where `/proc/stat` cannot be read (not Linux).
    fn now() -> Option<Ticks> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        parse(stat.lines().next()?)
    }
}

/// The aggregate `cpu` line of `/proc/stat`: user nice system idle iowait irq softirq steal
/// (guest time is already counted in user).
fn parse(line: &str) -> Option<Ticks> {
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let values: Vec<u64> = fields.take(8).map(|f| f.parse().ok()).collect::<Option<_>>()?;
    let [user, nice, system, idle, iowait, irq, softirq, steal] = values.try_into().ok()?;
    let busy = user + nice + system + irq + softirq + steal;
    Some(Ticks { busy, total: busy + idle + iowait })
}

/// Core-microseconds of busy CPU per operation, from the counters before and after a phase.
fn per_op(before: Ticks, after: Ticks, elapsed: Duration, cores: usize, ops: u64) -> Option<f64> {
    let total = after.total.checked_sub(before.total).filter(|t| *t > 0)?;
    let busy = after.busy.checked_sub(before.busy)?;
    if ops == 0 {
        return None;
    }
    let busy_core_seconds = busy as f64 / total as f64 * cores as f64 * elapsed.as_secs_f64();
    Some(busy_core_seconds * 1e6 / ops as f64)
}

/// Runs a phase and answers its summary with the machine's busy CPU per successful operation
/// over it, in core-microseconds (`None` where it cannot be read).
pub async fn measured<F>(cores: usize, phase: F) -> anyhow::Result<(Summary, Option<f64>)>
where
    F: Future<Output = anyhow::Result<Summary>>,
{
    let (before, started) = (Ticks::now(), Instant::now());
    let summary = phase.await?;
    let (after, elapsed) = (Ticks::now(), started.elapsed());
    let cpu = before.zip(after).and_then(|(b, a)| per_op(b, a, elapsed, cores, summary.ops));
    Ok((summary, cpu))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_line_counts_busy_and_idle_time() {
        let ticks = parse("cpu  100 5 20 300 10 1 2 3 0 0").expect("a cpu line");
        assert_eq!((ticks.busy, ticks.total), (131, 441));
        assert!(parse("cpu0 1 2 3 4 5 6 7 8").is_none(), "only the aggregate line");
        assert!(parse("cpu  1 2 x 4 5 6 7 8").is_none());
    }

    #[test]
    fn a_phase_that_kept_half_of_two_cores_busy_cost_its_share_per_operation() {
        let before = Ticks { busy: 1_000, total: 4_000 };
        let after = Ticks { busy: 2_000, total: 6_000 };
        // Half busy on 2 cores for 10 s = 10 core-seconds over 1,000 operations = 10 ms each.
        let cost = per_op(before, after, Duration::from_secs(10), 2, 1_000).expect("a cost");
        assert!((cost - 10_000.0).abs() < 1e-6, "{cost}");
        assert_eq!(per_op(before, after, Duration::from_secs(10), 2, 0), None);
        assert_eq!(per_op(after, before, Duration::from_secs(10), 2, 1), None);
    }
}
