#!/usr/bin/env bash
# CRL scale benchmark: revoke COUNT certificates (bulk-inserted through the store's group
# commit, each with its audit event) and publish ONE shard CRL listing them all, on embedded
# SQLite and then on PostgreSQL. Acceptance target per engine: publishing < 5 s and peak RSS
# while publishing < 500 MB. Each produced CRL is checked with `openssl crl` against the
# issuing CA (signature, and the entry count it parses).
#
# Usage: benches/crl-million.sh [COUNT]        (default 1000000)
# PostgreSQL: a throwaway database tbcrl_<pid> is created on $TRUSTBOX_BENCH_PG
# (default postgres://postgres@127.0.0.1:5432) with psql and dropped afterwards; when the
# server is unreachable that half is skipped with a message.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT="${1:-1000000}"
PG="${TRUSTBOX_BENCH_PG:-postgres://postgres@127.0.0.1:5432}"
cargo build --release -q -p trustbox
B="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/trustbox"
W="$(mktemp -d)"
DB="tbcrl_$$"
CREATED=0
cleanup() {
  if [ "$CREATED" = 1 ]; then psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true; fi
  rm -rf "$W"
}
trap cleanup EXIT

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"

# run LABEL [bench args...]: runs the bench, prints its JSON line, steal, openssl's verdict.
run() {
  local label="$1"; shift
  echo "== $label: $COUNT revocations, one shard CRL"
  local s0 s1 out verdict entries
  s0="$(grep '^cpu ' /proc/stat)"
  if ! out="$("$B" bench crl --count "$COUNT" --json --out "$W/$label" "$@" 2> "$W/$label.log")"; then
    tail -n 20 "$W/$label.log" >&2
    echo "$label: bench failed" >&2
    return 1
  fi
  s1="$(grep '^cpu ' /proc/stat)"
  echo "$out" | tee "$W/$label.json"
  python3 -c "a='$s0'.split()[1:9]; b='$s1'.split()[1:9]; d=[int(y)-int(x) for x,y in zip(a,b)]; print(f'(hypervisor steal during the run: {round(100*d[7]/max(sum(d),1))}%)')"
  grep -E 'slow statement' "$W/$label.log" | sed -E 's/\x1b\[[0-9;]*m//g' \
    | sed -nE 's/.*summary="([^"]{0,40}).*elapsed_secs=([0-9.]+).*/  (sqlx slow-statement log: \2 s  \1)/p' || true
  verdict="$(openssl crl -inform DER -in "$W/$label/crl.der" -noout -CAfile "$W/$label/issuer.pem" 2>&1 || true)"
  entries="$(openssl crl -inform DER -in "$W/$label/crl.der" -noout -text | grep -c 'Serial Number:' || true)"
  echo "openssl crl -CAfile issuer.pem: ${verdict:-no output}; entries openssl parsed: $entries"
  if [ "$verdict" != "verify OK" ]; then echo "$label: openssl did not verify the CRL" >&2; return 1; fi
}

run sqlite

if psql -q "$PG/postgres" -c "SELECT 1" >/dev/null 2>&1; then
  psql -q "$PG/postgres" -c "CREATE DATABASE $DB" >/dev/null
  CREATED=1
  run postgres --database "$PG/$DB"
else
  echo "== postgres: $PG unreachable (psql failed): skipped"
fi

python3 - "$W" <<'PY'
import json, os, sys
w = sys.argv[1]
print("== summary (target: publish < 5 s, peak RSS while publishing < 500 MB)")
for label in ("sqlite", "postgres"):
    p = os.path.join(w, label + ".json")
    if not os.path.exists(p):
        continue
    f = json.load(open(p))
    print(f"{label:9} insert {f['insert_per_second']:7.0f}/s | publish {f['publish_seconds']:5.2f} s "
          f"(repeat: fetch {f['fetch_seconds']:.2f} s, convert {f['convert_seconds']:.2f} s, "
          f"encode+sign {f['encode_sign_seconds']:.2f} s) | peak RSS {f['peak_rss_publish_mb']:4.0f} MB "
          f"(from {f['rss_before_publish_mb']:.0f} MB) | CRL {f['crl_bytes']} bytes, {f['entries']} entries | "
          f"{'met' if f['meets_targets'] else 'MISSED'}")
PY
