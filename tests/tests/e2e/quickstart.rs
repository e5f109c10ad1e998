//! The README's quick start, run as written: its `sh` blocks, in order, in one
//! `bash -euo pipefail`, against a fresh server with the embedded defaults (the demo identity
//! registry, the `log` notifier writing `data/messages.log` in the directory the commands run
//! in). Only the address changes. A command that fails fails the test, so the README cannot
//! drift from the API.

use std::{path::Path, process::Stdio, time::Duration};

use serde_json::Value;
use shenfen_tests::{both_stores, Settings, TestApp};

/// The README, read when the test runs.
const README: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
/// The address the README's commands talk to (`SHENFEN_LISTEN`'s default).
const DEFAULT_ADDRESS: &str = "127.0.0.1:8080";
/// How long the whole journey may take.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// The ```` ```sh ```` blocks between `## Quick start` and the next `## ` heading, in order.
fn quick_start_blocks(readme: &str) -> Vec<String> {
    let section =
        readme.split_once("\n## Quick start\n").unwrap_or_else(|| panic!("{README} has no `## Quick start` section")).1;
    let section = section.split("\n## ").next().unwrap_or(section);
    let mut blocks = Vec::new();
    let mut lines = section.lines();
    while let Some(line) = lines.next() {
        if line.trim_end() != "```sh" {
            continue;
        }
        let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim_end() != "```").collect();
        blocks.push(body.join("\n"));
    }
    blocks
}

/// Runs `script` with `bash -euo pipefail` in `dir` (no proxies: the commands talk to
/// loopback) and returns its exit status, stdout and stderr.
async fn run_bash(script: &str, dir: &Path) -> (std::process::ExitStatus, String, String) {
    let mut cmd = tokio::process::Command::new("bash");
    cmd.args(["-euo", "pipefail", "-c", script])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .kill_on_drop(true);
    for proxy in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"] {
        cmd.env_remove(proxy);
    }
    let output = tokio::time::timeout(SCRIPT_TIMEOUT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("the quick start did not finish within {SCRIPT_TIMEOUT:?}"))
        .expect("run bash");
    (output.status, String::from_utf8_lossy(&output.stdout).into(), String::from_utf8_lossy(&output.stderr).into())
}

/// The last top-level JSON document `jq` printed: from the last line that is `{` alone.
fn last_json_document(stdout: &str) -> Value {
    let start = stdout.rfind("\n{\n").map_or(0, |i| i + 1);
    serde_json::from_str(&stdout[start..])
        .unwrap_or_else(|e| panic!("the quick start's output does not end with a JSON document ({e}):\n{stdout}"))
}

async fn the_readme_quick_start_registers_logs_in_completes_the_profile_and_verifies(app: &mut TestApp) {
    let readme = std::fs::read_to_string(README).unwrap_or_else(|e| panic!("read {README}: {e}"));
    let blocks = quick_start_blocks(&readme);
    assert!(blocks.len() >= 5, "expected the journey's sh blocks in the Quick start, found {}", blocks.len());
    let address = app.base_url.trim_start_matches("http://");
    let script = blocks.join("\n").replace(DEFAULT_ADDRESS, address);

    let (status, stdout, stderr) = run_bash(&script, app.dir()).await;

    assert!(status.success(), "the quick start failed ({status}):\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}");
    let me = last_json_document(&stdout);
    assert_eq!(me["real_name_status"], "verified", "GET /v1/me answered:\n{me:#}");
    assert_eq!(me["profile_complete"], true, "GET /v1/me answered:\n{me:#}");
    assert!(me["quotas"].is_object(), "GET /v1/me answered:\n{me:#}");
}
both_stores!(
    the_readme_quick_start_registers_logs_in_completes_the_profile_and_verifies,
    // The README's defaults: the shipped demo registry, and codes appended to
    // `./data/messages.log` beside the server (its working directory is `app.dir()`).
    Settings::defaults().env("SHENFEN_IDENTITY_AUTHORITY", "reference:").env("SHENFEN_NOTIFIER", "log")
);

#[test]
fn the_quick_start_blocks_are_the_sh_blocks_of_that_section_only() {
    let readme = "# T\n\n## Quick start\n\ntext\n\n```sh\na\nb\n```\n\n```json\n{}\n```\n\n### Sub\n\n```sh\nc\n```\n\n## Next\n\n```sh\nd\n```\n";
    assert_eq!(quick_start_blocks(readme), vec!["a\nb".to_string(), "c".to_string()]);
}
