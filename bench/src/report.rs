//! The report: the figures of every phase, the targets of the issue and whether they were met,
//! printed as Markdown and optionally written as JSON.

use std::fmt::Write as _;

use serde::Serialize;

use crate::database::ServerFacts;
use crate::stats::Summary;

/// The cheap command must reach this share of the raw INSERT rate.
pub const PROFILE_EDIT_MIN_RATIO: f64 = 0.5;
/// … with its p99 under this.
pub const PROFILE_EDIT_MAX_P99_MS: f64 = 25.0;
/// Login must reach this share of the raw Argon2id rate.
pub const LOGIN_MIN_RATIO: f64 = 0.9;

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
    pub raw_insert: Summary,
    pub argon2id: Summary,
    pub profile_edit: Summary,
    pub login: Summary,
    pub healthz_during_login: Summary,
    /// One Argon2id verification on one core (the baseline's median): a runtime worker blocked
    /// by a verification would hold `/healthz` at least this long.
    pub argon2id_verification_ms: Option<f64>,
    pub profile_edit_to_raw_insert: f64,
    pub login_to_argon2id: f64,
    pub targets: Vec<Target>,
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

impl Report {
    /// Computes the ratios and targets.
    pub fn new(
        setup: Setup,
        raw_insert: Summary,
        argon2id: Summary,
        profile_edit: Summary,
        login: Summary,
        healthz_during_login: Summary,
    ) -> Report {
        let profile_ratio = ratio(profile_edit.ops_per_sec, raw_insert.ops_per_sec);
        let login_ratio = ratio(login.ops_per_sec, argon2id.ops_per_sec);
        let verification_ms = argon2id.p50_ms;
        let p99 = |s: &Summary| s.p99_ms.map_or("—".to_string(), |v| format!("{v:.2} ms"));
        let errors = |s: &Summary| if s.errors == 0 { String::new() } else { format!(", {} errors", s.errors) };
        let targets = vec![
            Target {
                name: "profile edit throughput".into(),
                measured: format!("{profile_ratio:.2} × raw INSERT{}", errors(&profile_edit)),
                target: format!("≥ {PROFILE_EDIT_MIN_RATIO} × raw INSERT, no errors"),
                met: profile_ratio >= PROFILE_EDIT_MIN_RATIO && profile_edit.errors == 0,
            },
            Target {
                name: "profile edit p99".into(),
                measured: p99(&profile_edit),
                target: format!("< {PROFILE_EDIT_MAX_P99_MS} ms"),
                met: profile_edit.p99_ms.is_some_and(|v| v < PROFILE_EDIT_MAX_P99_MS),
            },
            Target {
                name: "login throughput".into(),
                measured: format!("{login_ratio:.2} × Argon2id{}", errors(&login)),
                target: format!("≥ {LOGIN_MIN_RATIO} × Argon2id, no errors"),
                met: login_ratio >= LOGIN_MIN_RATIO && login.errors == 0,
            },
            Target {
                name: "/healthz p99 during login (runtime not blocked)".into(),
                measured: format!("{}{}", p99(&healthz_during_login), errors(&healthz_during_login)),
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
            raw_insert,
            argon2id,
            profile_edit,
            login,
            healthz_during_login,
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
        let insert_rate = self.raw_insert.ops_per_sec;
        let argon_rate = self.argon2id.ops_per_sec;
        let rows: [(&str, &Summary, String, &str); 5] = [
            ("baseline: raw INSERT (1 row/tx)", &self.raw_insert, "—".into(), "—"),
            ("baseline: Argon2id verify", &self.argon2id, "—".into(), "—"),
            (
                "profile edit `PUT /v1/me/profile`",
                &self.profile_edit,
                format!(
                    "≥ {:.0}/s (0.5 × INSERT), p99 < {PROFILE_EDIT_MAX_P99_MS} ms",
                    insert_rate * PROFILE_EDIT_MIN_RATIO
                ),
                met(&[t(0), t(1)]),
            ),
            (
                "login `POST /v1/sessions`",
                &self.login,
                format!("≥ {:.1}/s (0.9 × Argon2id)", argon_rate * LOGIN_MIN_RATIO),
                met(&[t(2)]),
            ),
            (
                "probe `GET /healthz` during login",
                &self.healthz_during_login,
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
            self.profile_edit.ops_per_sec,
            insert_rate,
            self.profile_edit_to_raw_insert,
            ms(self.profile_edit.p99_ms) + " ms",
        );
        let _ = writeln!(
            out,
            "- login ÷ Argon2id: {:.1} / {:.1} = **{:.2}** (target ≥ {LOGIN_MIN_RATIO})",
            self.login.ops_per_sec, argon_rate, self.login_to_argon2id,
        );
        let _ = writeln!(
            out,
            "- /healthz during login: p50 {} ms, p99 {} ms, max {} ms over {} probes \
             (one Argon2id verification takes {} ms on one core)",
            ms(self.healthz_during_login.p50_ms),
            ms(self.healthz_during_login.p99_ms),
            ms(self.healthz_during_login.max_ms),
            self.healthz_during_login.ops + self.healthz_during_login.errors,
            ms(self.argon2id_verification_ms),
        );
        let _ = writeln!(out, "\n| target | measured | wanted | met? |");
        let _ = writeln!(out, "| --- | --- | --- | --- |");
        for t in &self.targets {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                t.name,
                t.measured,
                t.target,
                if t.met { "yes" } else { "**no**" }
            );
        }
        let failures: Vec<(&str, &Summary)> = [
            ("raw INSERT", &self.raw_insert),
            ("Argon2id", &self.argon2id),
            ("profile edit", &self.profile_edit),
            ("login", &self.login),
            ("/healthz probe", &self.healthz_during_login),
        ]
        .into_iter()
        .filter(|(_, s)| s.errors > 0)
        .collect();
        if !failures.is_empty() {
            let _ = writeln!(out, "\n## Errors\n");
            for (name, summary) in failures {
                let kinds: Vec<String> = summary.errors_by_kind.iter().map(|(k, n)| format!("{k} × {n}")).collect();
                let _ = writeln!(out, "- {name}: {}", kinds.join(", "));
                for sample in &summary.error_samples {
                    let _ = writeln!(out, "  - `{}`", sample.replace('`', "'"));
                }
            }
        }
        out
    }
}
