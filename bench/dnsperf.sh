#!/usr/bin/env bash
# dnsperf.sh: queries per second of CoreDNS with multivalue, as ratios to
# CoreDNS with only `whoami`, measured in the same run.
#
# CoreDNS runs pinned to CPU 0 (taskset -c 0), dnsperf and the health-check
# backends to CPU 1. Scenarios run interleaved, ROUNDS rounds of DURATION
# seconds each; the median round counts. Everything is on 127.0.0.0/8.
#
#   bench/dnsperf.sh                      # all scenarios, 3 rounds of 10 s
#   ROUNDS=5 DURATION=10 bench/dnsperf.sh whoami mv12 mv1000
#
# Scenarios (one query, www.example.org A, over UDP):
#   whoami    the baseline: CoreDNS with only `whoami`
#   hosts8    `hosts` with 8 A records for the name
#   hosts100  `hosts` with 100 A records
#   filelb8   `file` + `loadbalance` with 8 A records
#   mv12      multivalue, 12 values with live TCP health checks, 8 per answer
#   mv1000    multivalue, 1,000 values with live TCP health checks, 8 per answer
#   mv1000w   mv1000 with weights 1 to 4 (weighted sampling)
#   mv1000s   mv1000 with `sticky` (rendezvous hashing per client /24)
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
PORT=${PORT:-15353}           # CoreDNS (UDP)
READY_PORT=${READY_PORT:-15381}
BACKEND_PORT=${BACKEND_PORT:-18081}
SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=(whoami hosts8 hosts100 filelb8 mv12 mv1000 mv1000w mv1000s)
[ "$(nproc)" -ge 2 ] || { echo "needs 2 CPUs" >&2; exit 1; }

if ! command -v dnsperf >/dev/null; then
	echo "installing dnsperf" >&2
	apt-get install -y dnsperf >/dev/null || { apt-get update >/dev/null && apt-get install -y dnsperf >/dev/null; }
fi

# CoreDNS sets SO_REUSEPORT: a stale server on the port would take a share of
# the queries.
if ss -Hlun "sport = :$PORT" | grep -q .; then
	echo "UDP port $PORT is in use (a CoreDNS left running?); set PORT=" >&2
	exit 1
fi

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d)
BACKENDS_PID=""
COREDNS_PID=""
cleanup() {
	[ -z "$COREDNS_PID" ] || kill "$COREDNS_PID" 2>/dev/null || true
	[ -z "$BACKENDS_PID" ] || kill "$BACKENDS_PID" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT

echo "building into $TMP" >&2
(cd "$ROOT" && go build -o "$TMP/coredns" ./cmd/coredns && go build -o "$TMP/backends" ./bench/backends)

# Backends for the live checks: 1,000 loopback addresses 127.2.x.y, the first
# 12 of which mv12 uses.
taskset -c 1 "$TMP/backends" -net 2 -n 1000 -port "$BACKEND_PORT" >"$TMP/backends.log" 2>&1 &
BACKENDS_PID=$!

# ip I: the I-th address as benchkit.IP numbers them.
ip() { echo "127.$1.$(($2 / 250)).$((1 + $2 % 250))"; }

zonefile() { # zonefile N: example.org with N A records for www
	echo '$ORIGIN example.org.'
	echo '@ 3600 IN SOA ns.example.org. hostmaster.example.org. 1 7200 3600 1209600 60'
	echo '@ 3600 IN NS ns.example.org.'
	echo 'ns 3600 IN A 127.0.0.1'
	for ((i = 0; i < $1; i++)); do echo "www 60 IN A $(ip 1 $i)"; done
}
hostsfile() { for ((i = 0; i < $1; i++)); do echo "$(ip 1 $i) www.example.org"; done; }

corefile() { # corefile SCENARIO
	case $1 in
	whoami)
		printf '.:%s {\n bind 127.0.0.1\n ready 127.0.0.1:%s\n whoami\n}\n' "$PORT" "$READY_PORT" ;;
	hosts8 | hosts100)
		hostsfile "${1#hosts}" >"$TMP/hosts.$1"
		printf 'example.org:%s {\n bind 127.0.0.1\n ready 127.0.0.1:%s\n hosts %s {\n  reload 0\n }\n}\n' "$PORT" "$READY_PORT" "$TMP/hosts.$1" ;;
	filelb8)
		zonefile 8 >"$TMP/db.example.org"
		printf 'example.org:%s {\n bind 127.0.0.1\n ready 127.0.0.1:%s\n loadbalance\n file %s\n}\n' "$PORT" "$READY_PORT" "$TMP/db.example.org" ;;
	mv12 | mv1000 | mv1000w | mv1000s)
		local n=${1#mv} opts="" weighted=""
		case $1 in
		*w) n=${n%w}; weighted=1 ;;
		*s) n=${n%s}; opts="  sticky\n" ;;
		esac
		printf 'example.org:%s {\n bind 127.0.0.1\n ready 127.0.0.1:%s\n multivalue {\n'"$opts" "$PORT" "$READY_PORT"
		printf '  health_check tcp {\n   protocol tcp\n   port %s\n   interval 5s\n   timeout 2s\n  }\n' "$BACKEND_PORT"
		printf '  records www A {\n   health_check tcp\n'
		for ((i = 0; i < n; i++)); do
			if [ -n "$weighted" ]; then echo "   $(ip 2 $i) { weight $((1 + i % 4)) }"; else echo "   $(ip 2 $i)"; fi
		done
		printf '  }\n }\n}\n' ;;
	*) echo "unknown scenario $1" >&2; exit 1 ;;
	esac
}

# cputicks PID: user + system CPU time of PID, in 1/100 s.
cputicks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# run SCENARIO: one round; writes "qps latency_us queries_per_cpu_second" to
# $TMP/result.
run() {
	corefile "$1" >"$TMP/Corefile.$1"
	taskset -c 0 "$TMP/coredns" -conf "$TMP/Corefile.$1" >"$TMP/coredns.$1.log" 2>&1 &
	COREDNS_PID=$!
	# Ready: every plugin (multivalue: every check has a first result).
	for ((i = 0; i < 200; i++)); do
		curl -sf "http://127.0.0.1:$READY_PORT/ready" >/dev/null 2>&1 && break
		sleep 0.05
	done
	local answers=-
	[ "$1" = whoami ] || answers=$(dig +short +tries=1 +time=1 -p "$PORT" @127.0.0.1 www.example.org A | grep -c '^127\.' || true)
	local out cpu0 cpu1
	cpu0=$(cputicks "$COREDNS_PID")
	out=$(taskset -c 1 dnsperf -s 127.0.0.1 -p "$PORT" -d "$TMP/queries" -l "$DURATION" -c 8 -q 200 -t 2 2>&1)
	cpu1=$(cputicks "$COREDNS_PID")
	# Health of the live checks while loaded: were all values still served?
	local unhealthy=0
	if [[ $1 == mv* ]]; then
		unhealthy=$(grep -c 'is now unhealthy' "$TMP/coredns.$1.log" || true)
	fi
	kill "$COREDNS_PID"
	wait "$COREDNS_PID" 2>/dev/null || true
	COREDNS_PID=""
	local qps lat noerror qpc
	qps=$(awk '/Queries per second:/ {print $4}' <<<"$out")
	qpc=$(awk -v t=$((cpu1 - cpu0)) '/Queries completed:/ {printf "%.0f", $3 / (t / 100)}' <<<"$out")
	lat=$(awk '/Average Latency/ {printf "%.0f", $4 * 1e6}' <<<"$out")
	noerror=$(grep -o 'NOERROR [0-9]* ([0-9.]*%)' <<<"$out" | grep -o '([0-9.]*%)' || echo '(none)')
	if [ -z "$qps" ]; then
		echo "$1: dnsperf failed: $out" >&2
		exit 1
	fi
	echo "$1 round: qps $qps latency ${lat}us queries/cpu-s $qpc answers $answers NOERROR $noerror unhealthy_transitions $unhealthy" >&2
	echo "$qps $lat $qpc" >"$TMP/result"
}

echo "www.example.org A" >"$TMP/queries"
for _ in $(seq 50); do grep -q listening "$TMP/backends.log" 2>/dev/null && break; sleep 0.1; done

declare -A QPS LAT QPC
for ((r = 1; r <= ROUNDS; r++)); do
	for s in "${SCENARIOS[@]}"; do
		run "$s"
		read -r q l c <"$TMP/result"
		QPS[$s]="${QPS[$s]:-} $q"
		LAT[$s]="${LAT[$s]:-} $l"
		QPC[$s]="${QPC[$s]:-} $c"
	done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

# qps: queries per second with CoreDNS on its core. q/cpu-s: queries per CPU
# second of CoreDNS, the same measure when CoreDNS gets its whole core, and
# the robust one when other work shares that core.
base="" cbase=""
if [ -n "${QPS[whoami]:-}" ]; then
	base=$(median <<<"${QPS[whoami]}")
	cbase=$(median <<<"${QPC[whoami]}")
fi
printf '\n%-10s %9s %8s %7s %10s %7s   %s\n' scenario qps lat_us ratio q/cpu-s ratio "rounds (qps)"
for s in "${SCENARIOS[@]}"; do
	q=$(median <<<"${QPS[$s]}")
	l=$(median <<<"${LAT[$s]}")
	c=$(median <<<"${QPC[$s]}")
	ratio="-" cratio="-"
	if [ -n "$base" ]; then
		ratio=$(awk -v q="$q" -v b="$base" 'BEGIN {printf "%.3f", q / b}')
		cratio=$(awk -v q="$c" -v b="$cbase" 'BEGIN {printf "%.3f", q / b}')
	fi
	printf '%-10s %9.0f %8.0f %7s %10.0f %7s  %s\n' "$s" "$q" "$l" "$ratio" "$c" "$cratio" "$(awk '{for (i = 1; i <= NF; i++) printf " %.0f", $i}' <<<"${QPS[$s]}")"
done
