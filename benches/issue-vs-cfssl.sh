#!/usr/bin/env bash
# Issuance benchmark: TrustBox (HTTPS, embedded SQLite, every certificate durably committed)
# against CFSSL (Debian's golang-cfssl, `cfssl serve` over plain HTTP with its SQLite certdb),
# on this machine, in one run, with the same CSRs, concurrency and duration. Prints both
# figures, the ratio and the TrustBox server's CPU time per issuance. With BASELINE_BIN set
# to another build of `trustbox` (an older commit), that build is measured in the same run
# too, for a before/after ratio. Usage: benches/issue-vs-cfssl.sh [CONCURRENCY] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
CONC="${1:-64}"
DUR="${2:-10}"
command -v cfssl >/dev/null || { echo "cfssl missing: apt-get install golang-cfssl" >&2; exit 1; }
cargo build --release -q -p trustbox
B="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/trustbox"
W="$(mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# CPU seconds (user + system) a process has used so far.
cpu_s() { python3 -c "import os; f=open('/proc/$1/stat').read().rsplit(')',1)[1].split(); print((int(f[11])+int(f[12]))/os.sysconf('SC_CLK_TCK'))"; }

# TrustBox: starts BIN with data in DIR on a free port; sets PORT, TOKEN and SPID.
start_tb() {
  PORT="$(free_port)"
  "$1" up --data-dir "$W/$2" --listen "127.0.0.1:$PORT" --http-listen "127.0.0.1:$(free_port)" > "$W/$2.log" 2>&1 & SPID=$!; PIDS+=($SPID)
  for _ in $(seq 1 200); do curl -sf --cacert "$W/$2/ca/root.pem" "https://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break; sleep 0.05; done
  TOKEN="$(awk '/admin token/ {print $NF}' "$W/$2.log")"
}
# Measures the server started last; prints its figures with "cpu_us" (server CPU per issuance).
bench_tb() {
  local c0 c1 out
  c0="$(cpu_s "$SPID")"
  out="$("$B" bench issue --url "https://127.0.0.1:$PORT" --token "$TOKEN" --ca-file "$W/$1/ca/root.pem" --concurrency "$CONC" --duration "$DUR" --json 2>/dev/null)"
  c1="$(cpu_s "$SPID")"
  python3 -c "import json,sys; f=json.loads(sys.argv[1]); f['cpu_us']=1e6*(float(sys.argv[3])-float(sys.argv[2]))/max(f['ok'],1); print(json.dumps(f))" "$out" "$c0" "$c1"
}
start_tb "$B" tb
P1="$PORT"; TB_PID="$SPID"; TB_TOKEN="$TOKEN"
if [ -n "${BASELINE_BIN:-}" ]; then start_tb "$BASELINE_BIN" base; BASE_PORT="$PORT"; BASE_PID="$SPID"; BASE_TOKEN="$TOKEN"; fi

# CFSSL with a SQLite certificate database (its schema: certificates + ocsp_responses)
P2="$(free_port)"
openssl ecparam -name prime256v1 -genkey -noout -out "$W/ca-key.pem" 2>/dev/null
openssl req -x509 -new -key "$W/ca-key.pem" -subj /CN=cfssl-bench-ca -days 30 -out "$W/ca.pem" 2>/dev/null
sqlite3 "$W/certs.db" <<'SQL'
CREATE TABLE certificates (serial_number blob NOT NULL, authority_key_identifier blob NOT NULL, ca_label blob,
  status blob NOT NULL, reason int, expiry timestamp, revoked_at timestamp, pem blob NOT NULL,
  PRIMARY KEY(serial_number, authority_key_identifier));
CREATE TABLE ocsp_responses (serial_number blob NOT NULL, authority_key_identifier blob NOT NULL, body blob NOT NULL,
  expiry timestamp, PRIMARY KEY(serial_number, authority_key_identifier));
SQL
echo '{"signing":{"default":{"expiry":"168h","usages":["digital signature","server auth"]}}}' > "$W/config.json"
echo "{\"driver\":\"sqlite3\",\"data_source\":\"$W/certs.db\"}" > "$W/db.json"
cfssl serve -address 127.0.0.1 -port "$P2" -ca "$W/ca.pem" -ca-key "$W/ca-key.pem" \
  -config "$W/config.json" -db-config "$W/db.json" -loglevel 5 > "$W/cfssl.log" 2>&1 & PIDS+=($!)
for _ in $(seq 1 200); do curl -s -o /dev/null "http://127.0.0.1:$P2/" && break; sleep 0.05; done

echo "== TrustBox (HTTPS, SQLite WAL synchronous=FULL, group commit)"
S0="$(grep '^cpu ' /proc/stat)"
PORT="$P1"; SPID="$TB_PID"; TOKEN="$TB_TOKEN"
TB="$(bench_tb tb)"
S1="$(grep '^cpu ' /proc/stat)"
echo "$TB"
STEAL="$(python3 -c "a='$S0'.split()[1:9]; b='$S1'.split()[1:9]; d=[int(y)-int(x) for x,y in zip(a,b)]; print(round(100*d[7]/max(sum(d),1)))")"
echo "(hypervisor steal during the TrustBox run: ${STEAL}%)"
BASE='{}'
if [ -n "${BASELINE_BIN:-}" ]; then
  echo "== TrustBox baseline ($BASELINE_BIN)"
  PORT="$BASE_PORT"; SPID="$BASE_PID"; TOKEN="$BASE_TOKEN"
  BASE="$(bench_tb base)"
  echo "$BASE"
fi
echo "== CFSSL (plain HTTP, SQLite certdb)"
CF="$("$B" bench issue --target cfssl --url "http://127.0.0.1:$P2" --concurrency "$CONC" --duration "$DUR" --json 2>/dev/null)"
echo "$CF"
STORED="$(sqlite3 "$W/certs.db" 'SELECT COUNT(*) FROM certificates')"
python3 - "$TB" "$CF" "$STORED" "$BASE" <<'PY'
import json, sys
tb, cf, stored, base = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])
print(f"TrustBox: {tb['per_second']:.0f}/s p50 {tb['p50_ms']:.1f} ms p99 {tb['p99_ms']:.1f} ms errors {tb['errors']}, server CPU {tb['cpu_us']:.0f} us per issuance")
if base:
    print(f"Baseline: {base['per_second']:.0f}/s p50 {base['p50_ms']:.1f} ms p99 {base['p99_ms']:.1f} ms errors {base['errors']}, server CPU {base['cpu_us']:.0f} us per issuance")
    print(f"ratio TrustBox/baseline: {tb['per_second']/max(base['per_second'],1e-9):.2f}x throughput")
print(f"CFSSL:    {cf['per_second']:.0f}/s p50 {cf['p50_ms']:.1f} ms p99 {cf['p99_ms']:.1f} ms errors {cf['errors']} (rows in its certdb: {stored})")
if cf['per_second'] > 0:
    print(f"ratio TrustBox/CFSSL: {tb['per_second']/cf['per_second']:.2f}x throughput, {cf['p99_ms']/max(tb['p99_ms'],1e-9):.2f}x lower p99")
PY
