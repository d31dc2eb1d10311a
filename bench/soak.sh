#!/usr/bin/env bash
# soak.sh: CoreDNS with multivalue under full dnsperf load while health checks
# flap, checking every answer of a second client.
#
# CoreDNS (cmd/coredns, built once) serves www.example.org A with 12 values,
# 127.0.0.1 .. 127.0.0.12, each with an HTTP check of its own backend on
# 127.0.0.N:BACKEND_PORT (interval 1s, timeout 500ms, failure_threshold 2).
# bench/soak serves those backends, takes up to 3 of them down (connection
# refused) for 2-8 s and back up, again and again, and queries continuously,
# checking every answer: no SERVFAIL, only configured values, none twice, and
# no value whose backend has been down longer than the detection window
# (2 x (1s + 10% jitter) + 500ms timeout + 500ms margin = 3.2s). dnsperf
# meanwhile sends as many queries as CoreDNS takes for DURATION seconds.
# Everything is on 127.0.0.0/8; every process is bounded in time.
#
#   bench/soak.sh                 # 60 s
#   DURATION=20 bench/soak.sh
#   KEEP=/tmp/soak bench/soak.sh  # keep the Corefile and the logs there
#
# Exits non-zero when the checker saw a violation.
set -euo pipefail

DURATION=${DURATION:-60}
DNS_PORT=${DNS_PORT:-15553}
READY_PORT=${READY_PORT:-15581}
BACKEND_PORT=${BACKEND_PORT:-18281}

if ! command -v dnsperf >/dev/null; then
	echo "installing dnsperf" >&2
	apt-get install -y dnsperf >/dev/null || { apt-get update >/dev/null && apt-get install -y dnsperf >/dev/null; }
fi

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d)
SOAK_PID=""
COREDNS_PID=""
cleanup() {
	[ -z "$SOAK_PID" ] || kill "$SOAK_PID" 2>/dev/null || true
	[ -z "$COREDNS_PID" ] || kill "$COREDNS_PID" 2>/dev/null || true
	wait 2>/dev/null || true
	if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp "$TMP"/*.out "$TMP"/*.log "$TMP/Corefile" "$KEEP"/ 2>/dev/null || true; fi
	rm -rf "$TMP"
}
trap cleanup EXIT

# CoreDNS listens with SO_REUSEPORT: a second CoreDNS on the same port would
# not fail to start but share the queries (the checker then counts foreign
# values), so make sure nothing listens there first.
for p in "$DNS_PORT" "$READY_PORT" "$BACKEND_PORT"; do
	if ss -Hlntu "( sport = :$p )" | grep -q .; then
		echo "port $p is in use; set DNS_PORT, READY_PORT or BACKEND_PORT" >&2
		exit 2
	fi
done

echo "building cmd/coredns and bench/soak"
(cd "$ROOT" && go build -o "$TMP/coredns" ./cmd/coredns && go build -o "$TMP/soak" ./bench/soak)

{
	cat <<EOF
example.org:$DNS_PORT {
    bind 127.0.0.1
    ready 127.0.0.1:$READY_PORT
    errors
    multivalue {
        health_check web {
            port $BACKEND_PORT
            path /health
            interval 1s
            timeout 500ms
            failure_threshold 2
        }
        records www A {
            health_check web
EOF
	for i in $(seq 1 12); do echo "            127.0.0.$i"; done
	cat <<EOF
        }
    }
}
EOF
} >"$TMP/Corefile"
echo "www.example.org A" >"$TMP/queries"

# The backends first, so that the checks' first results are healthy.
timeout $((DURATION + 120)) "$TMP/soak" -port "$BACKEND_PORT" -dns "127.0.0.1:$DNS_PORT" \
	-ready "http://127.0.0.1:$READY_PORT/ready" -duration "${DURATION}s" \
	-interval 1s -timeout 500ms -failure-threshold 2 >"$TMP/soak.out" 2>&1 &
SOAK_PID=$!
for _ in $(seq 100); do grep -q '^backends up' "$TMP/soak.out" && break; sleep 0.1; done
grep -q '^backends up' "$TMP/soak.out" || { cat "$TMP/soak.out" >&2; exit 1; }

timeout $((DURATION + 120)) "$TMP/coredns" -conf "$TMP/Corefile" >"$TMP/coredns.log" 2>&1 &
COREDNS_PID=$!
for _ in $(seq 600); do grep -q '^checking' "$TMP/soak.out" && break; kill -0 "$SOAK_PID" 2>/dev/null || break; sleep 0.1; done
if ! grep -q '^checking' "$TMP/soak.out"; then
	cat "$TMP/soak.out" "$TMP/coredns.log" >&2
	exit 1
fi
cat "$TMP/soak.out"

timeout $((DURATION + 30)) dnsperf -s 127.0.0.1 -p "$DNS_PORT" -d "$TMP/queries" -l "$DURATION" \
	-c 4 -q 200 -t 2 >"$TMP/dnsperf.out" 2>&1 || { cat "$TMP/dnsperf.out" >&2; exit 1; }

rc=0
wait "$SOAK_PID" || rc=$?
SOAK_PID=""

echo "dnsperf: $(grep -E 'Queries (sent|completed|lost)|Queries per second|Response codes' "$TMP/dnsperf.out" | sed 's/^ *//' | paste -sd';' | sed 's/;/; /g')"
sed -n '/^checker:/,$p' "$TMP/soak.out"
transitions=$(grep -c 'is now unhealthy' "$TMP/coredns.log" || true)
echo "coredns: $transitions transitions to unhealthy logged, $(grep -c '\[ERROR\]' "$TMP/coredns.log" || true) errors logged"
exit "$rc"
