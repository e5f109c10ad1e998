#!/usr/bin/env bash
# The whole test suite: unit, given/when/then and end-to-end tests on SQLite and PostgreSQL.
# Installs what a bare Debian machine lacks (the PostgreSQL server binaries; sudo, which pgtemp
# needs to run them as the postgres user when we are root; curl and jq for the README's quick
# start), then runs `cargo test`.
# Fails — never skips — when the PostgreSQL tests could not run.
set -euo pipefail
cd "$(dirname "$0")/.."

need_install=()
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then need_install+=(postgresql); fi
if [ "$(id -u)" = 0 ] && ! command -v sudo >/dev/null; then need_install+=(sudo); fi
# The README's quick start, which a test runs as written, uses curl and jq.
for tool in curl jq; do command -v "$tool" >/dev/null || need_install+=("$tool"); done
if [ ${#need_install[@]} -gt 0 ]; then
    echo "installing: ${need_install[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_install[@]}" >/dev/null
fi
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
export PATH="$pg_bin:$PATH"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
[ "$status" -eq 0 ] || exit "$status"

# Guard against a silent skip: the PostgreSQL scenarios must have run and passed.
pg_passed=$(grep -cE '^test .*postgres.* \.\.\. ok$' "$log" || true)
if [ "$pg_passed" -lt 5 ]; then
    echo "error: only $pg_passed PostgreSQL tests passed; they must run" >&2
    exit 1
fi
echo "PostgreSQL tests passed: $pg_passed"
