#!/usr/bin/env bash
# The contract gate: schemathesis fuzzes the server from its own `/openapi.json`, once per
# caller role (anonymous, account holder, student, reviewer, support, auditor, analyst, admin, service,
# head teacher, school admin), each
# with a real token, with every check, a fixed seed and a bounded number of examples.
# Fails on any failure or server error. Runs alone as `scripts/fuzz.sh`; `.ci/run` runs it
# after the test suite.
#
#   FUZZ_EXAMPLES  examples per operation and phase (default 20)
#   FUZZ_SEED      the seed (default 20261202)
#   FUZZ_ROLES     the roles to run (default: all eleven)
set -euo pipefail
cd "$(dirname "$0")/.."

examples=${FUZZ_EXAMPLES:-20}
seed=${FUZZ_SEED:-20261202}
roles=${FUZZ_ROLES:-"anonymous holder student reviewer support auditor analyst admin service head_teacher school_admin"}
schemathesis_version=4.32.5

# schemathesis, in a virtual environment under target/ (installed once).
venv=target/schemathesis-$schemathesis_version
if [ ! -x "$venv/bin/st" ]; then
    if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
        echo "installing: python3 python3-venv"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq python3 python3-venv >/dev/null
    fi
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "schemathesis==$schemathesis_version"
fi

cargo build -q -p shenfen-api
shenfen=target/debug/shenfen

work=$(mktemp -d)
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# A throwaway store; no per-address limit (the fuzzer is one address sending thousands of requests).
export SHENFEN_DATABASE_URL="sqlite://$work/shenfen.db"
export SHENFEN_LISTEN=127.0.0.1:0
export SHENFEN_NOTIFIER="log:$work/messages.log"
export SHENFEN_BLOB_DIR="$work/blobs"
export SHENFEN_SECRET_KEY_FILE="$work/secret.key"
export SHENFEN_IP_RATE_LIMIT=0
export RUST_LOG=warn

# Staff members, one per role, created before the server starts (the CLI writes to the store).
staff_password='Fuzz-staff-pass-2026'
for role in reviewer support auditor analyst admin service; do
    printf '%s\n' "$staff_password" | "$shenfen" staff add --username "fuzz_$role" --role "$role" >/dev/null
done
# School staff of the demo catalogue's first school (the demo registry's students are there).
printf '%s\n' "$staff_password" |
    "$shenfen" staff add --username fuzz_head_teacher --role head_teacher --school 3201001 --grade 8 --class 3班 >/dev/null
printf '%s\n' "$staff_password" | "$shenfen" staff add --username fuzz_school_admin --role school_admin --school 3201001 >/dev/null

"$shenfen" serve >"$work/stdout" 2>"$work/stderr" &
server_pid=$!
for _ in $(seq 1 300); do
    if grep -q '^listening on ' "$work/stdout" 2>/dev/null; then break; fi
    if ! kill -0 "$server_pid" 2>/dev/null; then cat "$work/stderr" >&2; exit 1; fi
    sleep 0.1
done
base="http://$(sed -n 's/^listening on //p' "$work/stdout" | head -n 1)"
echo "server at $base"

post() { curl -sS --fail-with-body -H 'content-type: application/json' -d "$2" "$base$1"; }

staff_token() {
    post /v1/staff/sessions "{\"username\": \"fuzz_$1\", \"password\": \"$staff_password\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'
}

# An account holder of the demo identity registry: a code, registration, a session.
holder_token() {
    local mobile=13800138000 code
    post /v1/verification-codes "{\"purpose\": \"register\", \"channel\": \"sms\", \"mobile\": \"$mobile\"}" >/dev/null
    code=$(python3 -c 'import json,sys
codes=[json.loads(l) for l in open(sys.argv[1])]
print([m for m in codes if m.get("to")==sys.argv[2]][-1]["code"])' "$work/messages.log" "$mobile")
    post /v1/accounts "{\"agreement_accepted\": true, \"document_type\": \"resident_id_card\",
        \"document_number\": \"44030519900101123X\", \"name\": \"李四\",
        \"validity\": {\"period\": \"20y\", \"start\": \"2020-01-01\"},
        \"password\": \"Fuzz-holder-pass-2026\", \"password_confirmation\": \"Fuzz-holder-pass-2026\",
        \"email\": \"fuzz@example.com\", \"mobile\": \"$mobile\",
        \"verification\": {\"channel\": \"sms\", \"code\": \"$code\"}}" >/dev/null
    post /v1/sessions '{"document_number": "44030519900101123X", "password": "Fuzz-holder-pass-2026"}' |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'
}

# A student of the demo student registry: a code, registration, a session.
student_token() {
    local mobile=13900139000 code
    post /v1/verification-codes "{\"purpose\": \"student_register\", \"channel\": \"sms\", \"mobile\": \"$mobile\"}" >/dev/null
    code=$(python3 -c 'import json,sys
codes=[json.loads(l) for l in open(sys.argv[1])]
print([m for m in codes if m.get("to")==sys.argv[2]][-1]["code"])' "$work/messages.log" "$mobile")
    post /v1/students "{\"agreement_accepted\": true, \"student_number\": \"G320102201003070017\", \"mobile\": \"$mobile\",
        \"verification\": {\"channel\": \"sms\", \"code\": \"$code\"},
        \"password\": \"Fuzz-student-pass-2026\", \"password_confirmation\": \"Fuzz-student-pass-2026\"}" >/dev/null
    post /v1/student-sessions '{"login": "G320102201003070017", "password": "Fuzz-student-pass-2026"}' |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'
}

failed=()
for role in $roles; do
    auth=()
    case $role in
        anonymous) ;;
        holder) auth=(-H "Authorization: Bearer $(holder_token)") ;;
        student) auth=(-H "Authorization: Bearer $(student_token)") ;;
        *) auth=(-H "Authorization: Bearer $(staff_token "$role")") ;;
    esac
    echo "== schemathesis as $role"
    # One worker: hypothesis's lambda descriptions are not thread-safe on Python 3.11
    # ("AST constructor recursion depth mismatch").
    if ! "$venv/bin/st" --config-file scripts/schemathesis.toml run "$base/openapi.json" "${auth[@]}" \
        --checks all --seed "$seed" --max-examples "$examples" --workers 1 \
        --exclude-path-regex '/sessions/current$' \
        --report junit --report-dir "target/fuzz/$role"; then
        failed+=("$role")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "schemathesis found failures as: ${failed[*]}" >&2
    exit 1
fi
echo "schemathesis: no failures for: $roles"
