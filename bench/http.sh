#!/usr/bin/env bash
# Load test of the hot, cache-served endpoints (discovery, JWKS) and the readiness check, against a
# release build on loopback. Bounded: each run lasts DURATION seconds. Needs `wrk` (Debian package).
#
#   bench/http.sh              # 10 s per endpoint, 2 threads, 32 connections
#   DURATION=30 bench/http.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-10}"
command -v wrk >/dev/null || { echo "bench: install wrk (apt-get install -y wrk)" >&2; exit 1; }
cargo build --release -q
data="$(mktemp -d)"
# A service client for the grant benchmark, registered before the server starts.
secret="$(SESAME_DATA_DIR="$data" SESAME_LOG_LEVEL=warn target/release/sesame client add bench-svc \
  --grant-type client_credentials --auth-method client_secret_post | sed -n 's/^client_secret: \([^ ]*\).*/\1/p')"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
SESAME_DATA_DIR="$data" SESAME_LISTEN="127.0.0.1:$port" SESAME_PUBLIC_URL="http://127.0.0.1:$port" \
  SESAME_LOG_LEVEL=warn target/release/sesame serve --demo >/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.2; done

for path in /t/demo/.well-known/openid-configuration /t/demo/jwks /readyz; do
  echo "== GET $path"
  wrk -t2 -c32 -d"${DURATION}s" --latency "http://127.0.0.1:$port$path" | grep -E "Requests/sec|50%|99%|Non-2xx"
done

echo "== POST /t/default/token (client_credentials, ES256 access token)"
BENCH_CLIENT_ID=bench-svc BENCH_CLIENT_SECRET="$secret" \
  wrk -t2 -c32 -d"${DURATION}s" --latency -s bench/client_credentials.lua "http://127.0.0.1:$port/t/default/token" \
  | grep -E "Requests/sec|50%|99%|Non-2xx"

echo "== ES256 signing rate in-process (the grant's ceiling), one core"
openssl speed -seconds 3 ecdsap256 2>/dev/null | tail -1
