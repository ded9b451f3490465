#!/usr/bin/env bash
# OpenAPI contract test: schemathesis (an independent tester, from PyPI) fuzzes the REST API
# of a live `trustbox up` against the document that very server serves, with every check
# on (`--checks all`), and this script fails on any finding or warning.
#
# The server runs on free loopback ports with a throwaway data directory, so destructive
# operations (token and certificate revocation, new tenants, issuers and profiles) are
# fuzzed too. The bootstrap admin token (read from the server's output) only fetches the
# document: schemathesis authenticates with tokens minted on the host
# (tests/contract/hooks.py), so when it revokes its own token mid-run (it lists tokens and
# fuzzes DELETE /tokens/{id} with the ids it saw) the next 401 costs a re-mint and a
# replay, not the run.
#
# A request that fails at the network level (seen once in five runs: a TLS EOF when a
# pooled keep-alive connection is reused just as the server closes it as idle) is retried
# up to twice; HTTP answers are never retried.
#
# Where a check cannot apply, and why (the rest apply as they are):
# - object_level_authorization compares what two configured identities may read; this run
#   has one (the default tenant's operator). Tenant isolation is covered by
#   tests/interop/tests/isolation.rs, which tries every route across tenants.
# - positive_data_acceptance also accepts 400 on the few operations whose validity depends
#   on rules JSON Schema cannot state (a CSR's signature, a profile's own consistency, the
#   server's clock); tests/contract/schemathesis.toml lists them, each with its reason.
#
# Usage: tests/contract/run-schemathesis.sh [SECONDS]   (default 150: the time budget of
# the schemathesis run itself; building and starting the server come on top).
# Environment: SCHEMATHESIS_SEED (reproduce a run: the seed is printed at the end),
# SCHEMATHESIS_WORKERS (default 2), SCHEMATHESIS_MAX_EXAMPLES (per operation and phase,
# default 40; the phases repeat until the budget is spent), SCHEMATHESIS (the executable).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUDGET="${1:-150}"
ST="${SCHEMATHESIS:-$(command -v schemathesis || echo "$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/schemathesis")}"
[ -x "$ST" ] || { echo "schemathesis missing: pip install 'schemathesis==4.32.5'" >&2; exit 1; }

cargo build -q -p trustbox
B="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/trustbox"
W="$(mktemp -d)"
PID=""
cleanup() {
  status=$?
  if [ -n "$PID" ]; then
    kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  fi
  if [ "$status" -ne 0 ] && [ -f "$W/server.log" ]; then
    echo "== last lines of the server log" >&2
    tail -n 40 "$W/server.log" >&2 || true
  fi
  if [ -s "$W/hooks.log" ]; then
    echo "== hooks.log (token minting)" >&2
    cat "$W/hooks.log" >&2 || true
  fi
  rm -rf "$W"
  exit "$status"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

P="$(free_port)"
H="$(free_port)"
"$B" up --data-dir "$W/data" --listen "127.0.0.1:$P" --http-listen "127.0.0.1:$H" > "$W/server.log" 2>&1 &
PID=$!
for _ in $(seq 1 200); do
  curl -sf --cacert "$W/data/ca/root.pem" "https://127.0.0.1:$P/readyz" >/dev/null 2>&1 && break
  kill -0 "$PID" 2>/dev/null || { echo "trustbox up exited" >&2; exit 1; }
  sleep 0.1
done
TOKEN="$(awk '/admin token/ {print $NF}' "$W/server.log")"
[ -n "$TOKEN" ] || { echo "no admin token in the server output" >&2; exit 1; }

# The document exactly as the live server serves it (it needs a token, so fetch it here:
# schemathesis's own token is minted when its first request needs one).
curl -sSf --cacert "$W/data/ca/root.pem" -H "Authorization: Bearer $TOKEN" \
  "https://127.0.0.1:$P/api/v1/openapi.json" -o "$W/openapi.json"

export TRUSTBOX_BIN="$B" TRUSTBOX_CONTRACT_DATA_DIR="$W/data" TRUSTBOX_CONTRACT_HOOK_LOG="$W/hooks.log" TRUSTBOX_CONTRACT_URL="https://127.0.0.1:$P"
export SCHEMATHESIS_HOOKS="$PWD/tests/contract/hooks.py"
SEED_ARGS=()
[ -n "${SCHEMATHESIS_SEED:-}" ] && SEED_ARGS=(--seed "$SCHEMATHESIS_SEED")
echo "== schemathesis $("$ST" --version | awk '{print $NF}') against https://127.0.0.1:$P (budget ${BUDGET}s)"
START=$(date +%s)
CONFIG="$PWD/tests/contract/schemathesis.toml"
# Run from the temp directory: hypothesis writes its scratch files (.hypothesis/) into the
# working directory.
cd "$W"
"$ST" --no-color --config-file "$CONFIG" run "$W/openapi.json" \
  --url "https://127.0.0.1:$P" \
  --tls-verify "$W/data/ca/root.pem" \
  --checks all \
  --workers "${SCHEMATHESIS_WORKERS:-2}" \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-40}" \
  --max-time "$BUDGET" \
  --request-timeout 60 \
  --request-retries 2 \
  --generation-database none \
  --continue-on-failure \
  --report ndjson --report-dir "$W/report" \
  "${SEED_ARGS[@]}"
# schemathesis's exit status covers failures; an error inside a stateful scenario (a
# transport failure, an exception in a hook) is counted in its summary without changing the
# status, so the event log is checked too.
python3 - "$W/report" <<'PY'
import glob, json, sys
bad = []
for path in glob.glob(f"{sys.argv[1]}/*.ndjson"):
    with open(path, encoding="utf-8") as f:
        for line in f:
            if '"NonFatalError"' not in line and '"status": "error"' not in line and '"status": "failure"' not in line:
                continue
            event = json.loads(line)
            (kind, body), = event.items()
            if kind == "NonFatalError" or body.get("status") in ("error", "failure"):
                bad.append(f"{kind}: {json.dumps(body)[:2000]}")
if bad:
    print("== schemathesis reported errors:", *bad, sep="\n", file=sys.stderr)
    sys.exit(1)
PY
echo "== schemathesis passed in $(( $(date +%s) - START ))s"
