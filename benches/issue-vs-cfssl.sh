#!/usr/bin/env bash
# Issuance benchmark: TrustBox (HTTPS, embedded SQLite, every certificate durably committed)
# against CFSSL (Debian's golang-cfssl, `cfssl serve` over plain HTTP with its SQLite certdb),
# on this machine, in one run, with the same CSRs, concurrency and duration. Prints both
# figures and the ratio. Usage: benches/issue-vs-cfssl.sh [CONCURRENCY] [SECONDS]
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

# TrustBox
P1="$(free_port)"
"$B" up --data-dir "$W/tb" --listen "127.0.0.1:$P1" > "$W/tb.log" 2>&1 & PIDS+=($!)
for _ in $(seq 1 200); do curl -sf --cacert "$W/tb/ca/root.pem" "https://127.0.0.1:$P1/readyz" >/dev/null 2>&1 && break; sleep 0.05; done
TOKEN="$(awk '/admin token/ {print $NF}' "$W/tb.log")"

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
TB="$("$B" bench issue --url "https://127.0.0.1:$P1" --token "$TOKEN" --ca-file "$W/tb/ca/root.pem" --concurrency "$CONC" --duration "$DUR" --json 2>/dev/null)"
S1="$(grep '^cpu ' /proc/stat)"
echo "$TB"
STEAL="$(python3 -c "a='$S0'.split()[1:9]; b='$S1'.split()[1:9]; d=[int(y)-int(x) for x,y in zip(a,b)]; print(round(100*d[7]/max(sum(d),1)))")"
echo "(hypervisor steal during the TrustBox run: ${STEAL}%)"
echo "== CFSSL (plain HTTP, SQLite certdb)"
CF="$("$B" bench issue --target cfssl --url "http://127.0.0.1:$P2" --concurrency "$CONC" --duration "$DUR" --json 2>/dev/null)"
echo "$CF"
STORED="$(sqlite3 "$W/certs.db" 'SELECT COUNT(*) FROM certificates')"
python3 - "$TB" "$CF" "$STORED" <<'PY'
import json, sys
tb, cf, stored = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
print(f"TrustBox: {tb['per_second']:.0f}/s p50 {tb['p50_ms']:.1f} ms p99 {tb['p99_ms']:.1f} ms errors {tb['errors']}")
print(f"CFSSL:    {cf['per_second']:.0f}/s p50 {cf['p50_ms']:.1f} ms p99 {cf['p99_ms']:.1f} ms errors {cf['errors']} (rows in its certdb: {stored})")
if cf['per_second'] > 0:
    print(f"ratio TrustBox/CFSSL: {tb['per_second']/cf['per_second']:.2f}x throughput, {cf['p99_ms']/max(tb['p99_ms'],1e-9):.2f}x lower p99")
PY
