#!/usr/bin/env bash
# OCSP benchmark: TrustBox's responder (plain-HTTP listener, responses pre-signed and cached
# per serial) against `openssl ocsp -port` (signs every response, one request per connection),
# on this machine, in one run, with request pools built the same way (`openssl ocsp -reqout`),
# the same concurrency and duration. Prints each figure and the ratios.
# Usage: benches/ocsp-vs-openssl.sh [CONCURRENCY] [SECONDS]
# Environment: CERTS (certificates per pool, default 200), OPENSSL_ONLY=1 (skip TrustBox).
set -euo pipefail
cd "$(dirname "$0")/.."
CONC="${1:-64}"
DUR="${2:-10}"
CERTS="${CERTS:-200}"
OPENSSL_ONLY="${OPENSSL_ONLY:-0}"
command -v openssl >/dev/null || { echo "openssl missing" >&2; exit 1; }
cargo build --release -q -p trustbox
B="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/trustbox"
W="$(mktemp -d)"
PIDS=()
# `openssl ocsp -multi` forks responder processes; its parent notes SIGTERM but stays blocked in
# waitpid() until a child dies, so stop the children of each PID started here as well.
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; pkill -TERM -P "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
die() { echo "FAILED: $*" >&2; exit 1; }

# reqout ISSUER_PEM LEAF_PEM >> POOL: one base64 DER OCSP request (SHA-1 CertID, no nonce,
# so responders may answer from a cache), as an OCSP client would send it.
reqout() {
  openssl ocsp -issuer "$1" -cert "$2" -no_nonce -reqout "$W/one.der" >/dev/null 2>&1 || die "reqout for $2"
  base64 -w0 "$W/one.der"; echo
}

# sanity NAME URL ISSUER_PEM CA_PEM POOL GOOD_LEAF REVOKED_LEAF: before loading a responder,
# check that it answers one pool line (verifying the signature) and reports a good and a
# revoked certificate as such, so a broken pool or responder fails here, not as errors later.
sanity() {
  local name="$1" url="$2" issuer="$3" ca="$4" pool="$5" good="$6" revoked="$7" out
  head -n1 "$pool" | base64 -d > "$W/first.der"
  out="$(openssl ocsp -reqin "$W/first.der" -url "$url" -CAfile "$ca" -verify_other "$issuer" -resp_text 2>&1)" \
    || die "$name: openssl ocsp -reqin: $out"
  grep -q 'Response verify OK' <<<"$out" || die "$name: response to the first pool line does not verify: $out"
  grep -q 'OCSP Response Status: successful' <<<"$out" || die "$name: first pool line: $out"
  for pair in "good:$good" "revoked:$revoked"; do
    out="$(openssl ocsp -issuer "$issuer" -cert "${pair#*:}" -no_nonce -url "$url" -CAfile "$ca" -verify_other "$issuer" 2>&1)" \
      || die "$name: openssl ocsp: $out"
    grep -q "Response verify OK" <<<"$out" && grep -q ": ${pair%%:*}\$" <<<"$out" \
      || die "$name: expected ${pair%%:*} for ${pair#*:}: $out"
  done
  echo "$name: pool of $(wc -l < "$pool") requests checked (signature verifies, good and revoked reported)"
}

# measure NAME URL POOL [bench flags...]: one `trustbox bench ocsp` run; prints its JSON line
# and the hypervisor steal time during it.
measure() {
  local name="$1" url="$2" pool="$3" s0 s1 out steal
  shift 3
  s0="$(grep '^cpu ' /proc/stat)"
  out="$("$B" bench ocsp --url "$url" --requests "$pool" --concurrency "$CONC" --duration "$DUR" --json "$@" 2>"$W/bench.err")" \
    || die "$name: bench: $(cat "$W/bench.err")"
  s1="$(grep '^cpu ' /proc/stat)"
  steal="$(python3 -c "a='$s0'.split()[1:9]; b='$s1'.split()[1:9]; d=[int(y)-int(x) for x,y in zip(a,b)]; print(round(100*d[7]/max(sum(d),1)))")"
  echo "== $name" >&2
  echo "$out" >&2
  grep -q 'errors; the first seen' "$W/bench.err" && sed 's/^/   /' "$W/bench.err" >&2
  echo "(hypervisor steal during the run: ${steal}%)" >&2
  echo "$out"
}

# ---- openssl ocsp over its own small CA (P-256, like TrustBox's default hierarchy)
mkdir -p "$W/ossl"
O="$W/ossl"
openssl ecparam -name prime256v1 -genkey -noout -out "$O/ca.key"
openssl req -x509 -new -key "$O/ca.key" -subj /CN=ocsp-bench-ca -days 30 -out "$O/ca.pem" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$O/resp.key"
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=OCSPSigning\n' > "$O/resp.ext"
openssl req -new -key "$O/resp.key" -subj /CN=ocsp-bench-responder 2>/dev/null \
  | openssl x509 -req -CA "$O/ca.pem" -CAkey "$O/ca.key" -set_serial 0x7f01 -days 30 -extfile "$O/resp.ext" -out "$O/resp.pem" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$O/leaf.key"
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' > "$O/leaf.ext"
EXP="$(date -u -d '+7 days' +%y%m%d%H%M%SZ)"
NOW="$(date -u +%y%m%d%H%M%SZ)"
: > "$O/index.txt"
: > "$O/pool.txt"
echo "making $CERTS openssl leaf certificates and their OCSP requests ..." >&2
for i in $(seq 1 "$CERTS"); do
  # 16 random bytes with the top bit clear: a positive serial of the usual size
  SERIAL="$(openssl rand -hex 16 | sed 's/^./3/')"
  openssl req -new -key "$O/leaf.key" -subj "/CN=leaf-$i.example.com" 2>/dev/null \
    | openssl x509 -req -CA "$O/ca.pem" -CAkey "$O/ca.key" -set_serial "0x$SERIAL" -days 7 \
        -extfile "$O/leaf.ext" -out "$O/leaf-$i.pem" 2>/dev/null
  # index.txt as `openssl ca` writes it: status, expiry, revocation[,reason], serial in
  # uppercase hex, file name ("unknown"), subject; every 10th certificate revoked
  HEX="$(openssl x509 -in "$O/leaf-$i.pem" -noout -serial | cut -d= -f2)"
  if (( i % 10 == 0 )); then
    printf 'R\t%s\t%s,keyCompromise\t%s\tunknown\t/CN=leaf-%s.example.com\n' "$EXP" "$NOW" "$HEX" "$i" >> "$O/index.txt"
  else
    printf 'V\t%s\t\t%s\tunknown\t/CN=leaf-%s.example.com\n' "$EXP" "$HEX" "$i" >> "$O/index.txt"
  fi
  reqout "$O/ca.pem" "$O/leaf-$i.pem" >> "$O/pool.txt"
done
# -nmin: give responses a nextUpdate like a caching responder's (without it openssl omits
# nextUpdate, "newer information is always available"); -ignore_err: keep serving after a bad
# request or a reset connection (without it the responder exits).
OSSL_ARGS=(-index "$O/index.txt" -rsigner "$O/resp.pem" -rkey "$O/resp.key" -CA "$O/ca.pem" -ignore_err -nmin 60)
start_openssl() { # PORT [extra args]: start a responder and wait until it answers
  local port="$1"
  shift
  openssl ocsp "${OSSL_ARGS[@]}" -port "$port" "$@" > "$W/openssl-$port.log" 2>&1 & PIDS+=($!)
  head -n1 "$O/pool.txt" | base64 -d > "$W/probe.der"
  for _ in $(seq 1 200); do
    curl -sf -o /dev/null --data-binary "@$W/probe.der" -H 'Content-Type: application/ocsp-request' "http://127.0.0.1:$port/" && return 0
    sleep 0.05
  done
  die "openssl ocsp on port $port did not answer: $(cat "$W/openssl-$port.log")"
}
P3="$(free_port)"
start_openssl "$P3"
sanity "openssl ocsp" "http://127.0.0.1:$P3" "$O/ca.pem" "$O/ca.pem" "$O/pool.txt" "$O/leaf-1.pem" "$O/leaf-10.pem"

# ---- TrustBox
if [[ "$OPENSSL_ONLY" != 1 ]]; then
  P1="$(free_port)"
  P2="$(free_port)"
  "$B" up --data-dir "$W/tb" --listen "127.0.0.1:$P1" --http-listen "127.0.0.1:$P2" > "$W/tb.log" 2>&1 & PIDS+=($!)
  for _ in $(seq 1 200); do curl -sf --cacert "$W/tb/ca/root.pem" "https://127.0.0.1:$P1/readyz" >/dev/null 2>&1 && break; sleep 0.05; done
  TOKEN="$(awk '/admin token/ {print $NF}' "$W/tb.log")"
  [[ -n "$TOKEN" ]] || die "no admin token in the TrustBox banner: $(cat "$W/tb.log")"
  T="$W/tbpki"
  mkdir -p "$T"
  echo "issuing $CERTS TrustBox certificates (every 10th revoked) and their OCSP requests ..." >&2
  openssl ecparam -name prime256v1 -genkey -noout -out "$T/leaf.key"
  for i in $(seq 1 "$CERTS"); do
    openssl req -new -key "$T/leaf.key" -subj "/CN=leaf-$i.example.com" \
      -addext "subjectAltName=DNS:leaf-$i.example.com" -out "$T/csr-$i.pem" 2>/dev/null
  done
  # Issue, revoke and find the issuing CA over one HTTPS connection.
  python3 - "$P1" "$W/tb/ca/root.pem" "$TOKEN" "$T" "$CERTS" <<'PY' || die "TrustBox issuance (see above)"
import http.client, json, ssl, sys
port, ca, token, out, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
conn = http.client.HTTPSConnection("127.0.0.1", int(port), context=ssl.create_default_context(cafile=ca), timeout=30)
def call(method, path, body=None, expect=200):
    conn.request(method, path, body=None if body is None else json.dumps(body),
                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    if r.status != expect:
        sys.exit(f"{method} {path}: HTTP {r.status}: {data[:300]!r}")
    return json.loads(data)
first = None
for i in range(1, n + 1):
    csr = open(f"{out}/csr-{i}.pem").read()
    c = call("POST", "/api/v1/certificates", {"csr": csr, "validity_days": 7}, 201)
    open(f"{out}/leaf-{i}.pem", "w").write(c["certificate"])
    first = first or c["id"]
    if i % 10 == 0:
        call("POST", f"/api/v1/certificates/{c['id']}/revoke", {"reason": "keyCompromise"})
issuer_id = call("GET", f"/api/v1/certificates/{first}")["issuer"]
issuers = call("GET", "/api/v1/issuers")
issuers = issuers["items"] if isinstance(issuers, dict) else issuers
mine = [x for x in issuers if x["id"] == issuer_id]
if not mine or mine[0]["is_root"]:
    sys.exit(f"issuer {issuer_id} of the leaves is not a listed intermediate: {[(x['id'], x['is_root']) for x in issuers]}")
open(f"{out}/int.pem", "w").write(mine[0]["certificate"])
open(f"{out}/issuer_id", "w").write(issuer_id)
print(f"TrustBox: issuing CA {mine[0]['name']} ({issuer_id}, {mine[0].get('key_algorithm')})", file=sys.stderr)
PY
  ISSUER_ID="$(cat "$T/issuer_id")"
  : > "$T/pool.txt"
  for i in $(seq 1 "$CERTS"); do reqout "$T/int.pem" "$T/leaf-$i.pem" >> "$T/pool.txt"; done
  TB_URL="http://127.0.0.1:$P2/ocsp/$ISSUER_ID"
  AIA="$(openssl x509 -in "$T/leaf-1.pem" -noout -ocsp_uri)"
  [[ "$AIA" == "$TB_URL" ]] || echo "note: the leaves' AIA OCSP URL is '$AIA', measuring $TB_URL" >&2
  sanity "TrustBox" "$TB_URL" "$T/int.pem" "$W/tb/ca/root.pem" "$T/pool.txt" "$T/leaf-1.pem" "$T/leaf-10.pem"
fi

# ---- load: same concurrency and duration for each
echo "== load: concurrency $CONC, ${DUR}s each (after a 1 s warm-up), $(nproc) cores" >&2
TB_KA=null TB_PC=null OS_MULTI=null
if [[ "$OPENSSL_ONLY" != 1 ]]; then
  TB_KA="$(measure "TrustBox, keep-alive" "$TB_URL" "$T/pool.txt")"
  TB_PC="$(measure "TrustBox, a connection per request" "$TB_URL" "$T/pool.txt" --connection-per-request)"
fi
OS="$(measure "openssl ocsp -port (a connection per request; it closes after each answer)" "http://127.0.0.1:$P3" "$O/pool.txt" --connection-per-request)"
if openssl ocsp -help 2>&1 | grep -q -- '-multi'; then
  P4="$(free_port)"
  start_openssl "$P4" -multi 2
  OS_MULTI="$(measure "openssl ocsp -port -multi 2 (two responder processes)" "http://127.0.0.1:$P4" "$O/pool.txt" --connection-per-request)"
else
  echo "(this openssl has no -multi; skipping the two-process measurement)" >&2
fi
python3 - "$TB_KA" "$TB_PC" "$OS" "$OS_MULTI" <<'PY'
import json, sys
tb_ka, tb_pc, os1, os2 = (json.loads(a) for a in sys.argv[1:5])
def line(name, f):
    if f:
        print(f"{name:<36} {f['per_second']:8.0f}/s p50 {f['p50_ms']:6.2f} ms p99 {f['p99_ms']:6.2f} ms errors {f['errors']}")
print("== summary")
line("TrustBox keep-alive:", tb_ka)
line("TrustBox connection per request:", tb_pc)
print(f"{'openssl keep-alive:':<36}      N/A (closes after every answer)")
line("openssl connection per request:", os1)
line("openssl -multi 2, conn. per request:", os2)
for peer_name, peer in (("openssl", os1), ("openssl -multi 2", os2)):
    if not peer or peer["per_second"] <= 0:
        continue
    for name, tb in (("TrustBox keep-alive", tb_ka), ("TrustBox per-connection", tb_pc)):
        if tb:
            print(f"ratio {name} / {peer_name}: {tb['per_second']/peer['per_second']:.2f}x throughput, "
                  f"p99 {tb['p99_ms']:.2f} ms vs {peer['p99_ms']:.2f} ms")
PY
