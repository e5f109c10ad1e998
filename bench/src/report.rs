//! The report: the figures of every phase, the targets of the issue and whether they were met,
//! printed as Markdown and optionally written as JSON.

use std::fmt::Write as _;

use serde::Serialize;

use crate::database::ServerFacts;
use crate::stats::Summary;

/// The cheap command must reach this share of the raw INSERT rate (issue 16: group commit
/// should beat one transaction per row).
pub const PROFILE_EDIT_MIN_RATIO: f64 = 1.0;
/// … with its p99 under this.
pub const PROFILE_EDIT_MAX_P99_MS: f64 = 10.0;
/// Login must reach this share of the raw Argon2id rate.
pub const LOGIN_MIN_RATIO: f64 = 0.95;
/// Registration (code + register, one Argon2id hash) must reach this share of the Argon2id rate.
pub const REGISTRATION_MIN_RATIO: f64 = 0.9;
/// The server's resident memory must stay under this under load.
pub const MAX_RSS_MIB: f64 = 1024.0;
/// The analyst endpoints over a year of data must answer within this (p99).
pub const MAX_ANALYTICS_P99_MS: f64 = 200.0;
/// The server must be ready this soon after it was started.
pub const MAX_READY_MS: f64 = 5_000.0;

/// How the run was set up.
#[derive(Debug, Clone, Serialize)]
pub struct Setup {
    pub clients: usize,
    pub seconds_per_phase: u64,
    pub cores: usize,
    pub server: String,
    /// `pgtemp` (a throwaway server) or `given`.
    pub database: String,
    pub postgres: ServerFacts,
    pub argon2: String,
}

/// One target of the issue.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub name: String,
    pub measured: String,
    pub target: String,
    pub met: bool,
}

/// Everything the run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub generated_at: chrono::DateTime<chrono::Utc>,
    pub setup: Setup,
    #[serde(flatten)]
    pub measured: Measured,
    /// One Argon2id verification on one core (the baseline's median): a runtime worker blocked
    /// by a verification would hold `/healthz` at least this long.
    pub argon2id_verification_ms: Option<f64>,
    pub profile_edit_to_raw_insert: f64,
    pub login_to_argon2id: f64,
    pub targets: Vec<Target>,
}

/// The targets as a table: what was measured, what was wanted, whether it was met.
fn write_targets(out: &mut String, targets: &[Target]) {
    let _ = writeln!(out, "\n| target | measured | wanted | met? |");
    let _ = writeln!(out, "| --- | --- | --- | --- |");
    for t in targets {
        let met = if t.met { "yes" } else { "**no**" };
        let _ = writeln!(out, "| {} | {} | {} | {met} |", t.name, t.measured, t.target);
    }
}

/// The phases that had errors: what kinds, and the samples kept.
fn write_errors(out: &mut String, heading: &str, failures: &[(&str, &Summary)]) {
    if failures.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n{heading}\n");
    for (name, summary) in failures {
        let kinds: Vec<String> = summary.errors_by_kind.iter().map(|(k, n)| format!("{k} × {n}")).collect();
        let _ = writeln!(out, "- {name}: {}", kinds.join(", "));
        for sample in &summary.error_samples {
            let _ = writeln!(out, "  - `{}`", sample.replace('`', "'"));
        }
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

/// What the run measured before the scale phases.
#[derive(Debug, Clone, Serialize)]
pub struct Measured {
    pub raw_insert: Summary,
    pub argon2id: Summary,
    pub profile_edit: Summary,
    pub login: Summary,
    pub healthz_during_login: Summary,
    /// `GET /healthz` in a loop by every client: an HTTP round trip with nothing behind it.
    pub round_trip: Summary,
    /// The machine's busy CPU per operation of the raw INSERT, the round trip and the edit.
    pub cpu_us_per_op: CpuPerOp,
}

/// The machine's busy CPU per operation (server, PostgreSQL and load generator together, from
/// `/proc/stat`), in core-microseconds: the cheap command and what it is compared with on one
/// scale.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CpuPerOp {
    pub raw_insert: Option<f64>,
    pub round_trip: Option<f64>,
    pub profile_edit: Option<f64>,
}

impl CpuPerOp {
    /// The most a command could do per second on `cores` if it cost one HTTP round trip plus
    /// one raw INSERT transaction and nothing else (the cores all busy).
    pub fn round_trip_and_insert_ceiling(&self, cores: usize) -> Option<f64> {
        let cost = self.round_trip? + self.raw_insert?;
        (cost > 0.0).then(|| cores as f64 * 1e6 / cost)
    }
}

impl Report {
    /// Computes the ratios and targets.
    pub fn new(setup: Setup, measured: Measured) -> Report {
        let Measured { raw_insert, argon2id, profile_edit, login, healthz_during_login, .. } = &measured;
        let profile_ratio = ratio(profile_edit.ops_per_sec, raw_insert.ops_per_sec);
        let login_ratio = ratio(login.ops_per_sec, argon2id.ops_per_sec);
        let verification_ms = argon2id.p50_ms;
        let p99 = |s: &Summary| s.p99_ms.map_or("—".to_string(), |v| format!("{v:.2} ms"));
        let errors = |s: &Summary| if s.errors == 0 { String::new() } else { format!(", {} errors", s.errors) };
        let targets = vec![
            Target {
                name: "profile edit throughput".into(),
                measured: format!("{profile_ratio:.2} × raw INSERT{}", errors(profile_edit)),
                target: format!("≥ {PROFILE_EDIT_MIN_RATIO} × raw INSERT, no errors"),
                met: profile_ratio >= PROFILE_EDIT_MIN_RATIO && profile_edit.errors == 0,
            },
            Target {
                name: "profile edit p99".into(),
                measured: p99(profile_edit),
                target: format!("< {PROFILE_EDIT_MAX_P99_MS} ms"),
                met: profile_edit.p99_ms.is_some_and(|v| v < PROFILE_EDIT_MAX_P99_MS),
            },
            Target {
                name: "login throughput".into(),
                measured: format!("{login_ratio:.2} × Argon2id{}", errors(login)),
                target: format!("≥ {LOGIN_MIN_RATIO} × Argon2id, no errors"),
                met: login_ratio >= LOGIN_MIN_RATIO && login.errors == 0,
            },
            Target {
                name: "/healthz p99 during login (runtime not blocked)".into(),
                measured: format!("{}{}", p99(healthz_during_login), errors(healthz_during_login)),
                target: verification_ms.map_or("< one Argon2id verification".into(), |v| {
                    format!("< one Argon2id verification ({v:.1} ms), no errors")
                }),
                met: healthz_during_login.errors == 0
                    && matches!((healthz_during_login.p99_ms, verification_ms), (Some(p), Some(v)) if p < v),
            },
        ];
        Report {
            generated_at: chrono::Utc::now(),
            setup,
            measured,
            argon2id_verification_ms: verification_ms,
            profile_edit_to_raw_insert: profile_ratio,
            login_to_argon2id: login_ratio,
            targets,
        }
    }

    /// The report as Markdown.
    pub fn markdown(&self) -> String {
        let s = &self.setup;
        let mut out = String::new();
        let _ = writeln!(out, "# Shenfen load report ({})\n", self.generated_at.format("%Y-%m-%d %H:%M:%S UTC"));
        let _ = writeln!(
            out,
            "{} clients, {} s per phase, {} cores; server `{}`; PostgreSQL {} ({}; fsync={}, synchronous_commit={}, \
             full_page_writes={}); {}.\n",
            s.clients,
            s.seconds_per_phase,
            s.cores,
            s.server,
            s.postgres.version,
            s.database,
            s.postgres.fsync,
            s.postgres.synchronous_commit,
            s.postgres.full_page_writes,
            s.argon2,
        );
        let _ =
            writeln!(out, "| phase | concurrency | ops | errors | ops/s | p50 ms | p99 ms | max ms | target | met? |");
        let _ = writeln!(out, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |");
        let t = |i: usize| self.targets.get(i);
        let met = |targets: &[Option<&Target>]| {
            if targets.iter().all(|t| t.is_some_and(|t| t.met)) {
                "yes"
            } else {
                "**no**"
            }
        };
        let insert_rate = self.measured.raw_insert.ops_per_sec;
        let argon_rate = self.measured.argon2id.ops_per_sec;
        let rows: [(&str, &Summary, String, &str); 6] = [
            ("baseline: raw INSERT (1 row/tx)", &self.measured.raw_insert, "—".into(), "—"),
            ("baseline: HTTP round trip `GET /healthz`", &self.measured.round_trip, "—".into(), "—"),
            ("baseline: Argon2id verify", &self.measured.argon2id, "—".into(), "—"),
            (
                "profile edit `PUT /v1/me/profile`",
                &self.measured.profile_edit,
                format!(
                    "≥ {:.0}/s ({PROFILE_EDIT_MIN_RATIO} × INSERT), p99 < {PROFILE_EDIT_MAX_P99_MS} ms",
                    insert_rate * PROFILE_EDIT_MIN_RATIO
                ),
                met(&[t(0), t(1)]),
            ),
            (
                "login `POST /v1/sessions`",
                &self.measured.login,
                format!("≥ {:.1}/s ({LOGIN_MIN_RATIO} × Argon2id)", argon_rate * LOGIN_MIN_RATIO),
                met(&[t(2)]),
            ),
            (
                "probe `GET /healthz` during login",
                &self.measured.healthz_during_login,
                self.argon2id_verification_ms.map_or("—".into(), |v| format!("p99 < {v:.1} ms")),
                met(&[t(3)]),
            ),
        ];
        let ms = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.2}"));
        for (name, summary, target, met) in rows {
            let _ = writeln!(
                out,
                "| {name} | {} | {} | {} | {:.1} | {} | {} | {} | {target} | {met} |",
                summary.concurrency,
                summary.ops,
                summary.errors,
                summary.ops_per_sec,
                ms(summary.p50_ms),
                ms(summary.p99_ms),
                ms(summary.max_ms),
            );
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "- profile edit ÷ raw INSERT: {:.1} / {:.1} = **{:.2}** (target ≥ {PROFILE_EDIT_MIN_RATIO}), \
             p99 {} (target < {PROFILE_EDIT_MAX_P99_MS} ms)",
            self.measured.profile_edit.ops_per_sec,
            insert_rate,
            self.profile_edit_to_raw_insert,
            ms(self.measured.profile_edit.p99_ms) + " ms",
        );
        let us = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.0} µs"));
        let c = &self.measured.cpu_us_per_op;
        let _ = writeln!(
            out,
            "- the machine's busy CPU per operation (server, PostgreSQL and load generator): raw INSERT {}, \
             HTTP round trip {}, profile edit {}",
            us(c.raw_insert),
            us(c.round_trip),
            us(c.profile_edit),
        );
        if let Some(ceiling) = c.round_trip_and_insert_ceiling(s.cores) {
            let _ = writeln!(
                out,
                "- a command costing one HTTP round trip plus one raw INSERT and nothing else could reach \
                 {ceiling:.0}/s on {} cores = {:.2} × raw INSERT",
                s.cores,
                ratio(ceiling, insert_rate),
            );
        }
        let _ = writeln!(
            out,
            "- login ÷ Argon2id: {:.1} / {:.1} = **{:.2}** (target ≥ {LOGIN_MIN_RATIO})",
            self.measured.login.ops_per_sec, argon_rate, self.login_to_argon2id,
        );
        let _ = writeln!(
            out,
            "- /healthz during login: p50 {} ms, p99 {} ms, max {} ms over {} probes \
             (one Argon2id verification takes {} ms on one core)",
            ms(self.measured.healthz_during_login.p50_ms),
            ms(self.measured.healthz_during_login.p99_ms),
            ms(self.measured.healthz_during_login.max_ms),
            self.measured.healthz_during_login.ops + self.measured.healthz_during_login.errors,
            ms(self.argon2id_verification_ms),
        );
        write_targets(&mut out, &self.targets);
        let failures: Vec<(&str, &Summary)> = [
            ("raw INSERT", &self.measured.raw_insert),
            ("Argon2id", &self.measured.argon2id),
            ("HTTP round trip", &self.measured.round_trip),
            ("profile edit", &self.measured.profile_edit),
            ("login", &self.measured.login),
            ("/healthz probe", &self.measured.healthz_during_login),
        ]
        .into_iter()
        .filter(|(_, s)| s.errors > 0)
        .collect();
        write_errors(&mut out, "## Errors", &failures);
        out
    }
}

/// What the scale run adds: the seeded store, the processes, the exam-opening phases and the
/// outcome checks.
#[derive(Debug, Clone, Serialize)]
pub struct Scale {
    pub servers: usize,
    /// The seeding before the server started (none: an empty store).
    pub seeded: Option<crate::seed::Seeded>,
    /// Events in the log when the servers started.
    pub events_at_start: i64,
    /// From starting each process to its first `200` from `/readyz`.
    pub ready_ms: Vec<f64>,
    /// From the servers' start until every projection had caught up with the log.
    pub caught_up_seconds: f64,
    pub registration: crate::phases::PhaseResult,
    pub mixed: crate::phases::PhaseResult,
    /// An analyst reading a year of every analyst table, one request at a time.
    pub analytics: Summary,
    /// Per phase: the log checked against what was acknowledged.
    pub outcomes: Vec<(String, crate::phases::Outcome)>,
    /// Each process's resident-memory high-water mark, MiB.
    pub peak_rss_mib: Vec<f64>,
    pub registration_to_argon2id: f64,
    pub targets: Vec<Target>,
}

impl Scale {
    /// Computes the targets against `argon2id`, the run's Argon2id baseline.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        servers: usize,
        seeded: Option<crate::seed::Seeded>,
        events_at_start: i64,
        ready_ms: Vec<f64>,
        caught_up_seconds: f64,
        registration: crate::phases::PhaseResult,
        mixed: crate::phases::PhaseResult,
        analytics: Summary,
        outcomes: Vec<(String, crate::phases::Outcome)>,
        peak_rss_mib: Vec<f64>,
        argon2id: &Summary,
    ) -> Scale {
        let ratio_ = ratio(registration.total.ops_per_sec, argon2id.ops_per_sec);
        let most_rss = peak_rss_mib.iter().copied().fold(0.0, f64::max);
        let slowest = ready_ms.iter().copied().fold(0.0, f64::max);
        let exact = outcomes.iter().all(|(_, o)| o.exact);
        let targets = vec![
            Target {
                name: "registration throughput".into(),
                measured: format!("{ratio_:.2} × Argon2id, {} errors", registration.total.errors),
                target: format!("≥ {REGISTRATION_MIN_RATIO} × Argon2id"),
                met: ratio_ >= REGISTRATION_MIN_RATIO && registration.total.errors == 0,
            },
            Target {
                name: "analyst endpoints over a year, p99".into(),
                measured: format!(
                    "{} ms, {} errors",
                    analytics.p99_ms.map_or("—".into(), |v| format!("{v:.1}")),
                    analytics.errors
                ),
                target: format!("< {MAX_ANALYTICS_P99_MS} ms"),
                met: analytics.errors == 0 && analytics.p99_ms.is_some_and(|v| v < MAX_ANALYTICS_P99_MS),
            },
            Target {
                name: "server resident memory under load".into(),
                measured: format!("{most_rss:.0} MiB"),
                target: format!("< {MAX_RSS_MIB:.0} MiB"),
                met: most_rss > 0.0 && most_rss < MAX_RSS_MIB,
            },
            Target {
                name: "ready after start".into(),
                measured: format!("{slowest:.0} ms"),
                target: format!("< {MAX_READY_MS:.0} ms"),
                met: slowest < MAX_READY_MS,
            },
            Target {
                name: "outcome: acknowledged writes present once, quotas exact".into(),
                measured: if exact { "exact".into() } else { "**differs**".into() },
                target: "exact".into(),
                met: exact,
            },
        ];
        Scale {
            servers,
            seeded,
            events_at_start,
            ready_ms,
            caught_up_seconds,
            registration,
            mixed,
            analytics,
            outcomes,
            peak_rss_mib,
            registration_to_argon2id: ratio_,
            targets,
        }
    }

    /// The scale part of the report, as Markdown.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let store = if self.events_at_start > 0 {
            format!("a store given with {} events", self.events_at_start)
        } else {
            "an empty store".to_string()
        };
        let seeded = self.seeded.map_or(store, |s| {
            format!(
                "a store seeded with {} accounts / {} events in {:.0} s ({:.0} events/s; read models rebuilt at {:.0} \
                 events/s)",
                s.accounts,
                s.events,
                s.seconds,
                s.events as f64 / s.seconds.max(0.001),
                s.rebuild_events_per_sec,
            )
        });
        let _ = writeln!(
            out,
            "\n## Exam registration opens\n\n{} server process(es) on {seeded}; {} events in the log at start; ready \
             after {} ms; projections caught up {:.1} s after start; resident memory peak {} MiB.\n",
            self.servers,
            self.events_at_start,
            self.ready_ms.iter().map(|v| format!("{v:.0}")).collect::<Vec<_>>().join(" / "),
            self.caught_up_seconds,
            self.peak_rss_mib.iter().map(|v| format!("{v:.0}")).collect::<Vec<_>>().join(" / "),
        );
        let _ = writeln!(out, "| phase / request | ops | errors | ops/s | p50 ms | p99 ms | max ms |");
        let _ = writeln!(out, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        let ms = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.2}"));
        let mut row = |name: &str, s: &Summary| {
            let _ = writeln!(
                out,
                "| {name} | {} | {} | {:.1} | {} | {} | {} |",
                s.ops,
                s.errors,
                s.ops_per_sec,
                ms(s.p50_ms),
                ms(s.p99_ms),
                ms(s.max_ms)
            );
        };
        row("registration phase (code + register)", &self.registration.total);
        row("mixed phase, all requests", &self.mixed.total);
        for (name, s) in &self.mixed.by_op {
            row(&format!("  mixed: {name}"), s);
        }
        row("analyst: a year of each analyst table", &self.analytics);
        let _ = writeln!(
            out,
            "\n| outcome check | registered | sessions | edits | attempts | most attempts / account | exact? |"
        );
        let _ = writeln!(out, "| --- | ---: | ---: | ---: | ---: | ---: | --- |");
        for (name, o) in &self.outcomes {
            let _ = writeln!(
                out,
                "| {name} | {} | {} | {} | {} | {} | {} |",
                o.registered,
                o.sessions,
                o.edits,
                o.attempts,
                o.most_attempts_per_account,
                if o.exact { "yes" } else { "**no**" }
            );
        }
        write_targets(&mut out, &self.targets);
        let failures: Vec<(&str, &Summary)> = std::iter::once(("registration", &self.registration.total))
            .chain(self.mixed.by_op.iter().map(|(n, s)| (*n, s)))
            .chain(std::iter::once(("analyst", &self.analytics)))
            .filter(|(_, s)| s.errors > 0)
            .collect();
        write_errors(&mut out, "### Errors", &failures);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(ops_per_sec: f64) -> Summary {
        Summary {
            concurrency: 32,
            seconds: 10.0,
            ops: (ops_per_sec * 10.0) as u64,
            errors: 0,
            errors_by_kind: Default::default(),
            ops_per_sec,
            p50_ms: Some(1.0),
            p99_ms: Some(5.0),
            max_ms: Some(9.0),
            error_samples: Vec::new(),
        }
    }

    fn report() -> Report {
        let postgres = ServerFacts {
            version: "15".into(),
            fsync: "on".into(),
            synchronous_commit: "on".into(),
            full_page_writes: "on".into(),
            max_connections: "100".into(),
        };
        let setup = Setup {
            clients: 32,
            seconds_per_phase: 10,
            cores: 2,
            server: "shenfen".into(),
            database: "given URL".into(),
            postgres,
            argon2: "argon2id".into(),
        };
        let measured = Measured {
            raw_insert: summary(10_000.0),
            argon2id: summary(100.0),
            profile_edit: summary(5_000.0),
            login: summary(96.0),
            healthz_during_login: summary(100.0),
            round_trip: summary(40_000.0),
            cpu_us_per_op: CpuPerOp { raw_insert: Some(150.0), round_trip: Some(50.0), profile_edit: Some(300.0) },
        };
        Report::new(setup, measured)
    }

    #[test]
    fn the_json_keeps_every_phase_at_the_top_level() {
        let json = serde_json::to_value(report()).expect("serialises");
        for key in ["raw_insert", "argon2id", "profile_edit", "login", "round_trip", "cpu_us_per_op"] {
            assert!(json.get(key).is_some(), "{key} in {json}");
        }
        assert_eq!(json["cpu_us_per_op"]["round_trip"], 50.0);
        assert_eq!(json["profile_edit_to_raw_insert"], 0.5);
    }

    #[test]
    fn the_markdown_puts_the_edit_and_its_baselines_on_one_scale() {
        let text = report().markdown();
        assert!(text.contains("raw INSERT 150 µs, HTTP round trip 50 µs, profile edit 300 µs"), "{text}");
        // Two cores over 150 + 50 µs: 10,000/s, 1.00 × the raw INSERT rate.
        assert!(text.contains("could reach 10000/s on 2 cores = 1.00 × raw INSERT"), "{text}");
        assert!(text.contains("| baseline: HTTP round trip `GET /healthz` | 32 | 400000 | 0 | 40000.0 |"), "{text}");
        let none = CpuPerOp { raw_insert: None, ..CpuPerOp::default() };
        assert_eq!(none.round_trip_and_insert_ceiling(2), None);
    }
}
