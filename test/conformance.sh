#!/usr/bin/env bash
# conformance.sh: third-party DNS conformance of multivalue in front of `file`,
# compared with the same zone served by `file` alone.
#
# Runs, inside a private network namespace where only `lo` is up (nothing can
# leave it):
#   * zonemaster-cli --test nameserver (Debian package zonemaster-cli), with
#     root hints pointing at a local root;
#   * dnsviz probe -A -E (authoritative analysis, EDNS compatibility) + dnsviz
#     grok (package dnsviz).
# CoreDNS (cmd/coredns, built once) serves, on 127.0.0.0/8 port 53 inside the
# namespace, a local root (127.0.0.10), org (127.0.0.11) and example.org on
# ns1 127.0.0.1 and ns2 127.0.0.2, twice:
#   file        example.org from test/conformance/example.org.db alone;
#   multivalue  multivalue (with fallthrough) holding www A (12 values),
#               txt TXT (2 values) and a.b A, in front of `file` serving the
#               rest of the zone (test/conformance/example.org.rest.db).
# With SIGNED=1 (default) each variant runs a second time signed on the fly by
# the `dnssec` plugin with a key made for the run, DS in org, so that dnsviz
# validates the chain from a local trust anchor.
#
# Every message both tools report is normalised (timings and random labels
# dropped, lists sorted) and the multivalue variant must add no warning or
# error (zonemaster NOTICE and above, dnsviz warnings and errors) to the file
# variant's: the diffs are printed, and the exit code is 1 if one is added.
#
#   sudo test/conformance.sh            # needs root (ip netns)
#   SIGNED=0 test/conformance.sh        # unsigned only
#   KEEP=/tmp/conf test/conformance.sh  # keep the reports there
set -euo pipefail

SIGNED=${SIGNED:-1}
[ "$(id -u)" = 0 ] || { echo "conformance.sh needs root (ip netns)" >&2; exit 2; }

need=()
command -v zonemaster-cli >/dev/null || need+=(zonemaster-cli)
command -v dnsviz >/dev/null || need+=(dnsviz)
command -v dig >/dev/null || need+=(bind9-dnsutils)
command -v jq >/dev/null || need+=(jq)
command -v ldns-keygen >/dev/null || need+=(ldnsutils)
/usr/bin/python3 -c 'import pygraphviz' 2>/dev/null || need+=(python3-pygraphviz) # dnsviz grok -t
if [ ${#need[@]} -gt 0 ]; then
	echo "installing ${need[*]}" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null ||
		{ apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null; }
fi

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA="$ROOT/test/conformance"
TMP=$(mktemp -d)
NETNS="mvconf-$$"
COREDNS_PID=""
cleanup() {
	[ -z "$COREDNS_PID" ] || { kill "$COREDNS_PID" 2>/dev/null || true; wait "$COREDNS_PID" 2>/dev/null || true; }
	ip netns del "$NETNS" 2>/dev/null || true
	if [ -n "${KEEP:-}" ]; then
		rm -f "$TMP/coredns"
		mkdir -p "$KEEP" && cp -r "$TMP"/. "$KEEP"/ 2>/dev/null || true
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "building cmd/coredns" >&2
(cd "$ROOT" && go build -o "$TMP/coredns" ./cmd/coredns)

ip netns add "$NETNS"
ip netns exec "$NETNS" ip link set lo up
in_ns() { ip netns exec "$NETNS" "$@"; }

# One DNSSEC key per run, for the signed variants: example.org's KSK/ZSK in
# one (CSK), its DS in the org zone, its DNSKEY the dnsviz trust anchor.
if [ "$SIGNED" = 1 ]; then
	(cd "$TMP" && ldns-keygen -a ECDSAP256SHA256 -k example.org >keyname)
	KEY=$(cat "$TMP/keyname")
	# ldns writes Kname.key/.private/.ds; CoreDNS's dnssec plugin reads
	# BIND-style Kname.key + Kname.private, which these are.
	DS=$(awk '{for (i = 1; i < NF; i++) if ($i == "DS") {print "example.org. IN DS", $(i+1), $(i+2), $(i+3), $(i+4); exit}}' "$TMP/$KEY.ds")
	[ -n "$DS" ] || { echo "no DS in $KEY.ds" >&2; exit 1; }
fi

# org zone: delegates example.org (and carries its DS when signed).
write_zones() { # $1: signed (0|1)
	cp "$DATA/root.db" "$TMP/root.db"
	cp "$DATA/org.db" "$TMP/org.db"
	if [ "$1" = 1 ]; then echo "$DS" >>"$TMP/org.db"; fi
}

corefile() { # $1: variant, $2: signed
	local dnssec=""
	# (dnssec's parser wants its block on several lines.)
	[ "$2" = 0 ] || dnssec="dnssec {
        key file $TMP/$KEY
    }"
	cat <<EOF
.:53 {
    bind 127.0.0.10
    file $TMP/root.db
}
org:53 {
    bind 127.0.0.11
    file $TMP/org.db
}
EOF
	case $1 in
	file)
		cat <<EOF
example.org:53 {
    bind 127.0.0.1 127.0.0.2
    $dnssec
    file $DATA/example.org.db
}
EOF
		;;
	multivalue)
		cat <<EOF
example.org:53 {
    bind 127.0.0.1 127.0.0.2
    $dnssec
    multivalue {
        ttl 300
        fallthrough
        records www A 127.0.1.1 127.0.1.2 127.0.1.3 127.0.1.4 127.0.1.5 127.0.1.6 127.0.1.7 127.0.1.8 127.0.1.9 127.0.1.10 127.0.1.11 127.0.1.12
        records txt TXT {
            "multivalue one"
            "multivalue two"
        }
        records a.b A 127.0.2.1
    }
    file $DATA/example.org.rest.db
}
EOF
		;;
	esac
}

start_coredns() { # $1: corefile, $2: number of www A values the variant answers
	# Not through in_ns: $! must be CoreDNS itself (ip netns exec and timeout
	# exec it or pass signals on), else a kill leaves it serving the next
	# variant's queries.
	ip netns exec "$NETNS" timeout 900 "$TMP/coredns" -conf "$1" >"$1.log" 2>&1 &
	COREDNS_PID=$!
	for _ in $(seq 100); do
		if in_ns dig +short +time=1 +tries=1 @127.0.0.1 example.org SOA 2>/dev/null | grep -q ns1 &&
			in_ns dig +short +time=1 +tries=1 @127.0.0.10 . SOA 2>/dev/null | grep -q .; then
			# Make sure the variant that answers is the one just started.
			local n
			n=$(in_ns dig +short +time=1 +tries=1 @127.0.0.2 www.example.org A | wc -l)
			[ "$n" = "$2" ] || { echo "www A has $n values, want $2: wrong server answering" >&2; exit 1; }
			return 0
		fi
		kill -0 "$COREDNS_PID" 2>/dev/null || break
		sleep 0.1
	done
	cat "$1.log" >&2
	echo "CoreDNS did not start" >&2
	exit 1
}

stop_coredns() {
	kill "$COREDNS_PID" 2>/dev/null || true
	wait "$COREDNS_PID" 2>/dev/null || true
	COREDNS_PID=""
	for _ in $(seq 50); do
		in_ns ss -Hlnu 'sport = :53' | grep -q . || return 0
		sleep 0.1
	done
	echo "CoreDNS still listens after it was stopped" >&2
	exit 1
}

# zonemaster: every message of level INFO or above, as "LEVEL MODULE TESTCASE
# TAG args" with the items of list arguments sorted (their order varies from
# run to run) and in lower case (queries' names are in random case), sorted. INFO messages are the checks that passed.
run_zonemaster() { # $1: out prefix, $2: signed
	local extra=()
	if [ "$2" = 1 ]; then
		extra=(--test dnssec --ds "$(awk '{print $4 "," $5 "," $6 "," $7}' <<<"$DS")")
	fi
	in_ns timeout 600 zonemaster-cli --test nameserver "${extra[@]}" --hints "$DATA/root.hints" \
		--ns ns1.example.org/127.0.0.1 --ns ns2.example.org/127.0.0.2 \
		--no-ipv6 --level INFO --raw --show-module --show-testcase --no-time --no-progress \
		example.org >"$1.zonemaster.raw" 2>&1 || true
	sed -Ei 's/date=[^;]*;/date=D;/' "$1.zonemaster.raw" # signature expiry: seconds differ
	grep -E '^ *([0-9.]+ +)?(INFO|NOTICE|WARNING|ERROR|CRITICAL) ' "$1.zonemaster.raw" |
		perl -lane 'shift @F if $F[0] =~ /^[0-9.]+$/;
			print join " ", @F[0..3], map { my ($k, $v) = split /=/, $_, 2;
				defined $v ? "$k=" . join(";", sort map { lc } split /[;,]/, $v) : $_ } @F[4..$#F]' |
		sort -u >"$1.zonemaster" || true
	grep -q NAMESERVER01 "$1.zonemaster" || { cat "$1.zonemaster.raw" >&2; echo "zonemaster-cli ran no nameserver test" >&2; exit 1; }
}

# dnsviz: probe the zone's names authoritatively, from the local root down
# (-x gives the root servers, so no hints of the real root are used), grok at
# warning level with example.org's key as trust anchor when signed, and list every warning and error
# as "path: code description", sorted.
run_dnsviz() { # $1: out prefix, $2: signed
	local names="example.org www.example.org txt.example.org a.b.example.org b.example.org nonexistent.example.org mail.example.org"
	local ta=()
	[ "$2" = 0 ] || ta=(-t "$TMP/$KEY.key")
	# shellcheck disable=SC2086
	in_ns timeout 600 dnsviz probe -4 -A -E -a . -x .:a.root-servers.net=127.0.0.10 \
		-R A,AAAA,TXT,MX,NS,SOA,CNAME,SRV,CAA,DNSKEY,DS \
		-o "$1.probe.json" $names 2>"$1.probe.err" || { cat "$1.probe.err" >&2; exit 1; }
	dnsviz_grok -l warning "${ta[@]}" -r "$1.probe.json" -o "$1.grok.json" 2>"$1.grok.err" || { cat "$1.grok.err" >&2; exit 1; }
	jq -r '
		[paths(type == "object") as $p | getpath($p) as $o
		 | ($o.errors // [] | .[] | {l: "ERROR", p: $p, e: .}),
		   ($o.warnings // [] | .[] | {l: "WARNING", p: $p, e: .})]
		| .[] | "\(.l) \(.p | map(tostring) | join("/")): \(.e.code // "") \(.e.description) \(.e.servers // [] | sort | join(","))"
		' "$1.grok.json" | sed -E "$RANDOM_LABEL" | sort -u >"$1.dnsviz"
	# What was looked at: the status of every name, delegation and RRSIG
	# (signatures are checked even without a trust anchor), and the kind of
	# reply (answer, nodata, nxdomain) of every query. Without -t: with it,
	# grok of dnsviz 0.9.4 crashes (KeyError on the SOA or NSEC of a negative
	# answer) at any level below warning, file alone or not.
	dnsviz_grok -r "$1.probe.json" -o "$1.grok.all.json" 2>>"$1.grok.err"
	jq -r '
		([paths(type == "object" and has("status")) as $p | "\($p | map(tostring) | join("/")) \(getpath($p).status)"] | .[]),
		(to_entries[] | select(.value | type == "object") | (.value.queries // {}) | to_entries[]
		 | "\(.key) \(.value | keys | join(","))")
		' "$1.grok.all.json" | sed -E "$RANDOM_LABEL" | sort -u >"$1.dnsviz.status"
}

# dnsviz grok -t checks that pygraphviz >= 1.3 is installed by importing
# pygraphviz.release, which pygraphviz 1.7 (Debian 12) no longer has: dnsviz
# 0.9.4 then refuses to run. Give it the version it looks for.
dnsviz_grok() {
	in_ns /usr/bin/python3 -c '
import runpy, sys, types
import pygraphviz
if not hasattr(pygraphviz, "release"):
    m = types.ModuleType("pygraphviz.release")
    m.version = pygraphviz.__version__
    sys.modules["pygraphviz.release"] = pygraphviz.release = m
sys.argv[0] = "/usr/bin/dnsviz"
runpy.run_path("/usr/bin/dnsviz", run_name="__main__")
' grok "$@"
}

# dnsviz asks for a random name under each zone: name it the same every run.
RANDOM_LABEL='s/(^|[ /])[a-z0-9]{10}\.(example\.)?org\./\1RANDOM.\2org./g'

variants_for() { echo 0; [ "$SIGNED" = 0 ] || echo 1; }

fail=0
for signed in $(variants_for); do
	label=unsigned
	[ "$signed" = 0 ] || label=signed
	write_zones "$signed"
	for variant in file multivalue; do
		out="$TMP/$label.$variant"
		corefile "$variant" "$signed" >"$out.Corefile"
		want=12
		[ "$variant" = file ] || want=8 # max_answers
		start_coredns "$out.Corefile" "$want"
		echo "== $label $variant: zonemaster-cli --test nameserver" >&2
		run_zonemaster "$out" "$signed"
		echo "== $label $variant: dnsviz probe + grok" >&2
		run_dnsviz "$out" "$signed"
		stop_coredns
		printf '%s %s: zonemaster %d messages (INFO and above), dnsviz %d warnings and errors\n' "$label" "$variant" \
			"$(wc -l <"$out.zonemaster")" "$(wc -l <"$out.dnsviz")"
	done
	for tool in zonemaster dnsviz; do
		added=$(comm -13 "$TMP/$label.file.$tool" "$TMP/$label.multivalue.$tool")
		gone=$(comm -23 "$TMP/$label.file.$tool" "$TMP/$label.multivalue.$tool")
		echo "-- $label $tool, messages of file alone:"
		sed 's/^/   /' "$TMP/$label.file.$tool"
		if [ -n "$added" ]; then
			echo "-- $label $tool: ADDED by multivalue:"
			sed 's/^/ + /' <<<"$added"
			# Any added warning or error fails; an added INFO (a passed
			# check) is shown only.
			if grep -qvE '^INFO ' <<<"$added"; then fail=1; fi
		fi
		if [ -n "$gone" ]; then
			echo "-- $label $tool: only with file alone:"
			sed 's/^/ - /' <<<"$gone"
		fi
	done
	if ! diff -u "$TMP/$label.file.dnsviz.status" "$TMP/$label.multivalue.dnsviz.status" >"$TMP/$label.status.diff"; then
		echo "-- $label dnsviz status, file alone vs multivalue:"
		grep '^[+-][^+-]' "$TMP/$label.status.diff" | sed 's/^/   /'
	fi
done

if [ "$fail" = 0 ]; then
	echo "PASS: multivalue adds no warning or error"
else
	echo "FAIL: multivalue adds warnings or errors (above)"
fi
exit "$fail"
