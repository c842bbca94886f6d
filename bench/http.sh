#!/usr/bin/env bash
# Load tests against a release build on loopback, each figure beside the machine's own limit from
# the same run. The server is pinned to core 0 (unless SERVER_CORES says otherwise) and the load
# generators to core 1 (taskset), so the server has one core. Bounded: each run lasts DURATION seconds. Needs wrk (Debian package).
#
#   bench/http.sh                               # SQLite, 10 s per run
#   DURATION=5 bench/http.sh
#   SESAME_DATABASE_URL=postgres://postgres@127.0.0.1/bench bench/http.sh   # an empty database,
#                                               # given some history first (bench/history.sql;
#                                               # HISTORY=0 skips it)
#   SERVER_CORES=all bench/http.sh              # the server unpinned: both cores, one shared with
#                                               # the load generator (the issue's own setup)
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-32}"
# Where the server (and the bare routes measured beside it) may run: core 0 by default, so the
# ratios to one-core signing rates compare like with like; `all` leaves it to the scheduler.
SERVER_CORES="${SERVER_CORES:-0}"
on_server=(taskset -c "$SERVER_CORES")
[ "$SERVER_CORES" = all ] && on_server=()
command -v wrk >/dev/null || { echo "bench: install wrk (make bench, or apt-get install -y wrk)" >&2; exit 1; }
cargo build --release -q --bin sesame --example load
bin=target/release/sesame
load=target/release/examples/load
data="$(mktemp -d)"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port="$(free_port)"
hello_port="$(free_port)"
sized_port="$(free_port)"
export SESAME_DATA_DIR="$data" SESAME_LISTEN="127.0.0.1:$port" SESAME_PUBLIC_URL="http://127.0.0.1:$port" \
  SESAME_LOG_LEVEL=warn
SESAME_LOG_LEVEL=error "$bin" import bench/tenant.toml >/dev/null
case "${SESAME_DATABASE_URL:-}" in
  postgres*) [ "${HISTORY:-1}" = 0 ] || psql -q -v ON_ERROR_STOP=1 "$SESAME_DATABASE_URL" -f bench/history.sql ;;
esac

wrk_on() { taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@" | grep -E "Requests/sec|50%|99%|Non-2xx"; }

start=$(date +%s%N)
"${on_server[@]}" "$bin" serve >/dev/null &
pid=$!
"${on_server[@]}" "$load" hello "$hello_port" &
hello=$!
trap 'kill $pid $hello 2>/dev/null; wait $pid $hello 2>/dev/null || true; rm -rf "$data"' EXIT
until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; do sleep 0.005; done
echo "== start to /readyz on an existing database: $(( ($(date +%s%N) - start) / 1000000 )) ms"
sleep 1
echo "== idle resident memory: $(( $(awk '/VmRSS/ {print $2}' /proc/$pid/status) / 1024 )) MiB"
echo "== release binary: $(( $(stat -c %s "$bin") / 1024 / 1024 )) MiB"

issuer="http://127.0.0.1:$port/t/bench"
jwks_bytes="$(curl -s "$issuer/jwks" | wc -c)"
discovery_bytes="$(curl -s "$issuer/.well-known/openid-configuration" | wc -c)"
discovery_port="$(free_port)"
"${on_server[@]}" "$load" hello "$sized_port" "$jwks_bytes" &
sized=$!
"${on_server[@]}" "$load" hello "$discovery_port" "$discovery_bytes" &
sized2=$!
trap 'kill $pid $hello $sized $sized2 2>/dev/null; wait $pid $hello $sized $sized2 2>/dev/null || true; rm -rf "$data"' EXIT
sleep 0.5
echo "== GET / on a bare axum route answering 5 bytes (the HTTP ceiling of this machine and core)"
wrk_on "http://127.0.0.1:$hello_port/"
echo "== GET / on a bare axum route answering as many bytes as the JWKS ($jwks_bytes)"
wrk_on "http://127.0.0.1:$sized_port/"
echo "== GET / on a bare axum route answering as many bytes as the discovery document ($discovery_bytes)"
wrk_on "http://127.0.0.1:$discovery_port/"
for path in /.well-known/openid-configuration /jwks /saml/metadata; do
  echo "== GET $path"
  wrk_on "$issuer$path"
done

echo "== POST /token client_credentials (ES256 access token)"
BENCH_CLIENT_ID=bench-svc BENCH_CLIENT_SECRET=bench-svc-secret-0123456789-0123456789 \
  wrk_on -s bench/client_credentials.lua "$issuer/token"

echo "== POST /token client_credentials (RS256 access token)"
BENCH_CLIENT_ID=bench-svc-rs BENCH_CLIENT_SECRET=bench-svc-rs-secret-0123456789-0123456789 \
  wrk_on -s bench/client_credentials.lua "$issuer/token"

token="$("$load" token "$issuer")"
echo "== GET /userinfo"
wrk_on -H "Authorization: Bearer $token" "$issuer/userinfo"
echo "== POST /introspect"
BENCH_TOKEN="$token" BENCH_BASIC="$(printf 'bench-web:bench-web-secret-0123456789-0123456789' | base64 -w0)" \
  wrk_on -s bench/introspect.lua "$issuer/introspect"

echo "== refresh_token grants (load generator on core 1)"
taskset -c 1 "$load" refresh "$issuer" "$DURATION" "$CONNECTIONS"
echo "== authorize + token with an existing session (load generator on core 1)"
taskset -c 1 "$load" code-flow "$issuer" "$DURATION" "$CONNECTIONS"
echo "== SAML AuthnRequest to signed Response with an existing session (load generator on core 1)"
taskset -c 1 "$load" saml-sso "$issuer" "$DURATION" "$CONNECTIONS"

# Latency at half the target rates: paced requests, each latency counted from its scheduled time.
echo "== p99 at half the target rates (paced, load generator on core 1)"
for scenario in "discovery 20000" "jwks 20000" "client-credentials 5000" "userinfo 5000" \
  "introspect 5000" "refresh 1500" "code-flow 750"; do
  set -- $scenario
  taskset -c 1 "$load" "$1" "$issuer" "$DURATION" 64 "$2"
done

echo "== signing rates on one core (the grants' ceilings)"
taskset -c 0 openssl speed -seconds 3 ecdsap256 2>/dev/null | tail -1
taskset -c 0 openssl speed -seconds 3 rsa2048 2>/dev/null | tail -1
echo "== resident memory after the load: $(( $(awk '/VmRSS/ {print $2}' /proc/$pid/status) / 1024 )) MiB"
