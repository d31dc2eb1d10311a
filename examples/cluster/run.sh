#!/usr/bin/env bash
# A fleet of three CoreDNS replicas that vote through etcd, all on 127.0.0.1:
#   etcd               127.0.0.1:23790 (Debian's etcd-server, installed if missing)
#   backends           127.0.0.1:18081..18083 (python3 -m http.server)
#   replicas dns1..3   DNS on 127.0.0.1:10531..10533, metrics on 127.0.0.1:9161..9163
# It kills a backend, shows each replica's vote with etcdctl and the answers with dig, then
# stops etcd (every replica decides alone, one WARNING each) and starts it again.
# Everything it starts is stopped when it exits. Run from anywhere: bash examples/cluster/run.sh
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

need() { command -v "$1" >/dev/null || { echo "installing $2"; apt-get install -y "$2" >/dev/null; }; }
need etcd etcd-server
need etcdctl etcd-client
need dig bind9-dnsutils
need python3 python3
need curl curl

export ETCDCTL_API=3
etcdctl() { command etcdctl --endpoints=http://127.0.0.1:23790 "$@"; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "building CoreDNS with multivalue"
(cd "$repo" && go build -o "$work/coredns" ./cmd/coredns)

say "starting three backends on 127.0.0.1:18081..18083"
for i in 1 2 3; do
    python3 -m http.server "1808$i" --bind 127.0.0.1 --directory "$work" >/dev/null 2>&1 &
    pids+=($!)
    eval "backend$i=$!"
done
for i in 1 2 3; do
    for _ in $(seq 50); do curl -fs "127.0.0.1:1808$i/" >/dev/null 2>&1 && break; sleep 0.1; done
done


say "starting etcd on 127.0.0.1:23790"
start_etcd() {
    etcd --name demo --data-dir "$work/etcd" \
        --listen-client-urls http://127.0.0.1:23790 --advertise-client-urls http://127.0.0.1:23790 \
        --listen-peer-urls http://127.0.0.1:23800 --initial-advertise-peer-urls http://127.0.0.1:23800 \
        --initial-cluster demo=http://127.0.0.1:23800 >"$work/etcd.log" 2>&1 &
    etcd_pid=$!
    pids+=("$etcd_pid")
    for _ in $(seq 50); do etcdctl endpoint health >/dev/null 2>&1 && return; sleep 0.2; done
    echo "etcd did not start"; cat "$work/etcd.log"; exit 1
}
start_etcd

say "starting replicas dns1, dns2, dns3"
for i in 1 2 3; do
    sed -e "s/REPLICA/dns$i/" -e "s/DNSPORT/1053$i/" -e "s/METRICSPORT/916$i/" -e "s/READYPORT/$i/" \
        "$repo/examples/cluster/Corefile.template" >"$work/Corefile.$i"
    "$work/coredns" -conf "$work/Corefile.$i" >"$work/dns$i.log" 2>&1 &
    pids+=($!)
done
ready() { curl -fs "127.0.0.1:918$1/ready" >/dev/null 2>&1; }
for i in 1 2 3; do
    for _ in $(seq 50); do ready "$i" && break; sleep 0.2; done
done
sleep 3 # the first verdicts are published on the first lease keepalive (lease/3)

answers() {
    for i in 1 2 3; do
        printf 'dns%s answers: %s\n' "$i" "$(dig @127.0.0.1 -p "1053$i" www.example.org A +short | sort | tr '\n' ' ')"
    done
}
votes() {
    etcdctl get --prefix /multivalue/obs/ | paste - - | sed 's|^/multivalue/obs/||' | sort
}
say "every replica serves the three values"
answers
say "the votes in etcd (PREFIX obs/CHECK-ID/REPLICA -> JSON)"
votes
echo; etcdctl get --prefix /multivalue/replicas/ --keys-only | grep .

say "killing backend 2 (127.0.0.12's check target, 127.0.0.1:18082)"
kill "$backend2"
sleep 4 # interval 1s, failure_threshold 2: detection in about 2-3 s, propagation milliseconds
say "every replica voted unhealthy for it"
votes | grep 18082
say "so every replica ejected 127.0.0.12"
answers
say "what the logs say"
grep -h "is now" "$work"/dns*.log
say "cluster metrics of dns1"
curl -s 127.0.0.1:9161/metrics | grep '^coredns_multivalue_cluster'

say "stopping etcd: after about a lease (5s) each replica decides alone"
kill "$etcd_pid"; wait "$etcd_pid" 2>/dev/null || true
sleep 8
grep -h "WARNING" "$work"/dns*.log
curl -s 127.0.0.1:9161/metrics | grep '^coredns_multivalue_cluster_up'
answers

say "starting etcd again: new leases, verdicts published again, the vote resumes"
start_etcd
sleep 4
grep -h "reachable again" "$work"/dns*.log
curl -s 127.0.0.1:9161/metrics | grep '^coredns_multivalue_cluster'
votes | grep 18082
answers
say "done (logs were in $work, now removed)"
