package multivalue

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// testLease is the lease of the tests' replicas: short, so that outages and
// crashes are seen within seconds. The tests' etcd ticks fast enough to grant
// it (its shortest lease is 1.5 election timeouts).
const testLease = 2 * time.Second

// probeOnce is the interval of checks whose results the test sets with
// record: after the first probe, the next comes at a random point of the
// interval, which this makes unlikely (by 24h) to fall within a test.
const probeOnce = 24 * time.Hour

// etcdServer is a one-member etcd embedded in the test process, on loopback
// ports of its own and a data directory of the test's. It can be stopped and
// started again on the same ports and data, as an etcd that restarts.
type etcdServer struct {
	t   *testing.T
	cfg *embed.Config
	e   *embed.Etcd
	url string
}

func newEtcd(t *testing.T) *etcdServer {
	t.Helper()
	cfg := embed.NewConfig()
	cfg.Name = "test"
	cfg.Dir = t.TempDir()
	cu := url.URL{Scheme: "http", Host: "127.0.0.1:" + freeTCPPort(t)}
	pu := url.URL{Scheme: "http", Host: "127.0.0.1:" + freeTCPPort(t)}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.TickMs, cfg.ElectionMs = 50, 500
	cfg.UnsafeNoFsync = true // a test's data need not survive a power cut
	s := &etcdServer{t: t, cfg: cfg, url: cu.String()}
	t.Cleanup(s.stop)
	return s
}

// startEtcd starts a new etcd and waits until it serves.
func startEtcd(t *testing.T) *etcdServer {
	t.Helper()
	s := newEtcd(t)
	s.start()
	return s
}

func (s *etcdServer) start() {
	s.t.Helper()
	e, err := embed.StartEtcd(s.cfg)
	if err != nil {
		s.t.Fatalf("starting etcd: %v", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(20 * time.Second):
		e.Close()
		s.t.Fatal("etcd not ready after 20s")
	}
	s.e = e
}

func (s *etcdServer) stop() {
	if s.e != nil {
		s.e.Close()
		s.e = nil
	}
}

// client is a client of the test's own, to read and watch what replicas
// store.
func (s *etcdServer) client() *clientv3.Client {
	s.t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{s.url}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { c.Close() })
	return c
}

// keys returns the keys under prefix, and their leases.
func (s *etcdServer) keys(c *clientv3.Client, prefix string) map[string]clientv3.LeaseID {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		s.t.Fatal(err)
	}
	out := map[string]clientv3.LeaseID{}
	for _, kv := range resp.Kvs {
		out[string(kv.Key)] = clientv3.LeaseID(kv.Lease)
	}
	return out
}

// errReplicaNetwork is what a replica whose own network is broken gets from
// every probe.
var errReplicaNetwork = errors.New("this replica's network is down")

// replica is one CoreDNS process of a fleet, in the test process: its own
// engine (check table, scheduler, metrics registry, dialer, cluster member).
type replica struct {
	t      *testing.T
	id     string
	e      *engine
	reg    *prometheus.Registry
	m      *Multivalue
	refuse atomic.Bool // every probe of this replica fails
}

func newReplica(t *testing.T, id string) *replica {
	r := &replica{t: t, id: id, reg: prometheus.NewRegistry()}
	r.e = newEngine(r.reg)
	r.e.dialer = defaultEngine.dialer
	r.e.dialer.Control = func(network, address string, c syscall.RawConn) error {
		if r.refuse.Load() {
			return errReplicaNetwork
		}
		return loopbackOnly(network, address, c)
	}
	return r
}

// startReplica starts a replica on a Corefile's multivalue block; %[1]s in
// it is the replica's ID.
func startReplica(t *testing.T, id, corefile string) *replica {
	t.Helper()
	r := newReplica(t, id)
	r.m = r.instance(corefile)
	if err := r.m.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.stop() })
	return r
}

// instance parses corefile for this replica, without starting it.
func (r *replica) instance(corefile string) *Multivalue {
	r.t.Helper()
	c := caddy.NewTestController("dns", fmt.Sprintf(corefile, r.id))
	c.ServerBlockKeys = []string{"example.org."}
	cfg, err := parse(c)
	if err != nil {
		r.t.Fatal(err)
	}
	return newMultivalue(cfg, r.e)
}

func (r *replica) stop() {
	if r.m != nil {
		r.m.stop()
	}
}

// set is the replica's set of NAME A.
func (r *replica) set(name string) *recordSet {
	return r.m.nodes[name+".example.org."].set(1)
}

// served is how many values of NAME A the replica would answer with.
func (r *replica) served(name string) int { return len(r.set(name).healthyRRs()) }

// member is the replica's cluster member.
func (r *replica) member() *member {
	r.m.life.mu.Lock()
	defer r.m.life.mu.Unlock()
	return r.m.member
}

func (r *replica) up() bool {
	m := r.member()
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.up
}

// gauge reads one of the replica's cluster gauges (-1: no series).
func (r *replica) gauge(g *prometheus.GaugeVec) float64 {
	if testutil.CollectAndCount(g) == 0 {
		return -1
	}
	return testutil.ToFloat64(g.WithLabelValues())
}

// check returns the replica's running check of a value (its only one).
func (r *replica) check(name string) *check {
	r.t.Helper()
	s := r.set(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if cs := s.values[0].checks; len(cs) > 0 {
		return cs[0]
	}
	r.t.Fatalf("%s has no check", name)
	return nil
}

// voteOf returns the source of a value of NAME: the cluster's vote.
func (r *replica) voteOf(name string) *vote {
	r.t.Helper()
	s := r.set(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	src := s.values[0].src
	if o, ok := src.(*overridden); ok {
		src = o.inner // overrides wrap the vote
	}
	v, ok := src.(*vote)
	if !ok {
		r.t.Fatalf("%s is bound to a %T, not a cluster vote", name, s.values[0].src)
	}
	return v
}

// crash ends the replica's connection to etcd without revoking its lease, as
// a process that died: its keys stay until the lease expires.
func (r *replica) crash() {
	m := r.member()
	m.mu.Lock()
	started := m.started
	m.mu.Unlock()
	if started == 0 {
		r.t.Fatal("crash before the replica's first session")
	}
	// cli was set before the first session started, which we observed
	// under mu.
	m.cli.Close()
}

// clusterCorefile is a multivalue block with a cluster on endpoint and one
// checked value per name of names, each with its own check (a tcp check
// of the backend at port, told apart by its timeout), probed every interval.
// extra goes into the cluster block.
func clusterCorefile(endpoint, port string, interval time.Duration, extra string, names ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "multivalue {\n    cluster etcd %s {\n        replica %%[1]s\n        lease %s\n%s\n    }\n", endpoint, testLease, extra)
	for i, n := range names {
		fmt.Fprintf(&b, "    health_check c%d {\n        protocol tcp\n        port %s\n        interval %s\n        timeout %dms\n        failure_threshold 1\n    }\n",
			i, port, interval, 50+i%50000)
		fmt.Fprintf(&b, "    records %s A {\n        health_check c%d\n        127.0.0.1\n    }\n", n, i)
	}
	b.WriteString("}\n")
	return b.String()
}

// fleet starts three replicas r1, r2, r3 on corefile and waits until each
// check has a first result and every replica sees every other's verdicts.
func fleet(t *testing.T, corefile string, names ...string) []*replica {
	t.Helper()
	rs := []*replica{startReplica(t, "r1", corefile), startReplica(t, "r2", corefile), startReplica(t, "r3", corefile)}
	waitVoters(t, rs, 3, names...)
	return rs
}

// waitVoters waits until, on every replica, every name's vote counts n
// voters.
func waitVoters(t *testing.T, rs []*replica, n int, names ...string) {
	t.Helper()
	if !eventually(20*time.Second, func() bool {
		for _, r := range rs {
			if !r.m.Ready() || !r.up() {
				return false
			}
			for _, name := range names {
				if len(r.voteOf(name).votes()) != n {
					return false
				}
			}
		}
		return true
	}) {
		for _, r := range rs {
			for _, name := range names {
				t.Logf("%s %s: ready %v up %v votes %v", r.id, name, r.m.Ready(), r.up(), r.voteOf(name).votes())
			}
		}
		t.Fatalf("replicas do not see %d voters of every check after 20s", n)
	}
}

// TestClusterPropagation: one replica's verdict changes; the others' consensus
// follows. Two replicas already see the value down; the third's verdict
// decides (with Route 53's 18 %, one healthy vote of three keeps a value).
// It measures the propagation time, from the verdict change on one replica
// (after its thresholds) to the consensus on the others, over 20 changes.
func TestClusterPropagation(t *testing.T) {
	etcd := startEtcd(t)
	b := newBackend(t, "127.0.0.1")
	rs := fleet(t, clusterCorefile(etcd.url, b.port(), probeOnce, "", "www"), "www")
	for _, r := range rs {
		if r.served("www") != 1 || r.gauge(r.e.metrics.clusterReplicas) != 3 || r.gauge(r.e.metrics.clusterUp) != 1 {
			t.Fatalf("%s: serves %d, replicas %v, up %v; want 1, 3, 1", r.id, r.served("www"),
				r.gauge(r.e.metrics.clusterReplicas), r.gauge(r.e.metrics.clusterUp))
		}
	}
	// r2 and r3 see it down (their own thresholds passed): still served
	// everywhere, since r1 sees it up.
	for _, r := range rs[1:] {
		r.refuse.Store(true) // should a probe come, it agrees
		r.check("www").record(false, "connection refused")
	}
	if !eventually(5*time.Second, func() bool {
		return rs[0].gauge(rs[0].e.metrics.clusterDisagreements) == 0 && rs[1].gauge(rs[1].e.metrics.clusterDisagreements) == 1 &&
			rs[2].gauge(rs[2].e.metrics.clusterDisagreements) == 1
	}) {
		t.Fatal("r2 and r3 do not count their outvoted verdict as a disagreement")
	}
	for _, r := range rs {
		if r.served("www") != 1 {
			t.Fatalf("%s stopped serving the value that one replica of three sees up", r.id)
		}
	}

	// Each vote tells its watchers when its verdict changes: timestamps to
	// the microsecond, not eventually's 20 ms polls.
	changed := make(chan time.Time, 16)
	for _, r := range rs[1:] {
		unwatch := r.voteOf("www").watch(func() { changed <- time.Now() })
		defer unwatch()
	}
	var times []time.Duration
	for i := range 20 {
		healthy := i%2 == 1
		start := time.Now()
		rs[0].check("www").record(healthy, "test")
		var last time.Time
		for range 2 {
			select {
			case last = <-changed:
			case <-time.After(5 * time.Second):
				t.Fatalf("change %d: r2 and r3 did not follow r1 to %s within 5s", i, statusName(healthy))
			}
		}
		for _, r := range rs[1:] {
			if r.voteOf("www").verdict().healthy != healthy {
				t.Fatalf("change %d: %s's consensus is not %s", i, r.id, statusName(healthy))
			}
		}
		times = append(times, last.Sub(start))
	}
	t.Logf("propagation (verdict on r1 -> consensus on r2 and r3), 20 changes: median %v, max %v", median(times), slicesMax(times))
	if v := rs[1].voteOf("www").verdict(); !strings.HasPrefix(v.reason, "1 of 3 replicas report healthy (test; tcp check ") {
		t.Errorf("r2's reason %q: want it to say how the replicas voted", v.reason)
	}
	rs[0].check("www").record(false, "connection refused")
	if !eventually(5*time.Second, func() bool { return rs[1].served("www") == 0 }) {
		t.Fatal("r2 still serves the value all three replicas see down")
	}
	if v := rs[1].voteOf("www").verdict(); !strings.HasPrefix(v.reason, "3 of 3 replicas report unhealthy (connection refused") {
		t.Errorf("r2's reason %q: want 3 of 3 replicas report unhealthy (connection refused...", v.reason)
	}
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[len(s)/2]
}

func slicesMax(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

// TestClusterPartition: one replica's probes all fail (its own network is
// broken) while two succeed: all three keep serving the value, and the
// broken replica counts its outvoted verdict as a disagreement.
func TestClusterPartition(t *testing.T) {
	slow(t)
	etcd := startEtcd(t)
	b := newBackend(t, "127.0.0.1")
	rs := fleet(t, clusterCorefile(etcd.url, b.port(), 200*time.Millisecond, "", "www"), "www")
	rs[0].refuse.Store(true)
	if !eventually(5*time.Second, func() bool { return !rs[0].check("www").isHealthy() }) {
		t.Fatal("r1's own check did not turn unhealthy")
	}
	if !eventually(5*time.Second, func() bool { return rs[0].gauge(rs[0].e.metrics.clusterDisagreements) == 1 }) {
		t.Fatalf("r1 disagreements %v, want 1", rs[0].gauge(rs[0].e.metrics.clusterDisagreements))
	}
	// A few rounds of probes: nobody ejects it.
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		for _, r := range rs {
			if n := r.served("www"); n != 1 {
				t.Fatalf("%s serves %d values, want 1: two replicas of three see the value up", r.id, n)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, r := range rs[1:] {
		if d := r.gauge(r.e.metrics.clusterDisagreements); d != 0 {
			t.Errorf("%s disagreements %v, want 0", r.id, d)
		}
	}
	if v := rs[0].voteOf("www").verdict(); !v.healthy || !strings.HasPrefix(v.reason, "2 of 3 replicas report healthy") {
		t.Errorf("r1's verdict %+v: want healthy, 2 of 3 replicas report healthy", v)
	}
	// Healed: no disagreement left.
	rs[0].refuse.Store(false)
	if !eventually(5*time.Second, func() bool { return rs[0].gauge(rs[0].e.metrics.clusterDisagreements) == 0 }) {
		t.Error("r1 still counts a disagreement after its network healed")
	}
}

// TestClusterOutage: the backend dies; every replica sees it: all three
// eject it within detection (interval + timeout, failure_threshold 1) and
// propagation.
func TestClusterOutage(t *testing.T) {
	slow(t)
	etcd := startEtcd(t)
	b := newBackend(t, "127.0.0.1")
	const interval = 200 * time.Millisecond
	rs := fleet(t, clusterCorefile(etcd.url, b.port(), interval, "", "www"), "www")
	start := time.Now()
	b.kill()
	// Detection takes up to interval + jitter + timeout on the slowest
	// replica; propagation milliseconds; the rest is slack for a loaded
	// machine.
	if !eventually(3*time.Second, func() bool {
		for _, r := range rs {
			if r.served("www") != 0 {
				return false
			}
		}
		return true
	}) {
		t.Fatal("not every replica ejected the dead backend within 3s")
	}
	t.Logf("outage: all three replicas ejected the value %v after the backend died (interval %v, timeout 50ms, failure_threshold 1)", time.Since(start), interval)
	b.revive()
	if !eventually(3*time.Second, func() bool {
		for _, r := range rs {
			if r.served("www") != 1 {
				return false
			}
		}
		return true
	}) {
		t.Fatal("not every replica serves the value again within 3s of the backend's return")
	}
}

// TestClusterCrashAndShutdown: a replica that dies without revoking its
// lease votes on until the lease expires; one that shuts down cleanly stops
// voting at once.
func TestClusterCrashAndShutdown(t *testing.T) {
	slow(t)
	etcd := startEtcd(t)
	cli := etcd.client()
	b := newBackend(t, "127.0.0.1")
	// min_voters 3: once r3's vote is gone, r2 decides alone.
	rs := fleet(t, clusterCorefile(etcd.url, b.port(), probeOnce, "        min_voters 3", "www"), "www")
	for _, r := range rs[1:] {
		r.refuse.Store(true) // should a probe come, it agrees
		r.check("www").record(false, "connection refused")
	}
	waitVoters(t, rs, 3, "www")
	if !eventually(5*time.Second, func() bool { return rs[1].served("www") == 1 }) {
		t.Fatal("r2 does not serve the value r1 sees up")
	}

	crashed := time.Now()
	rs[2].crash()
	// r3's vote counts on for about a lease: r2 still follows the vote.
	for time.Since(crashed) < testLease/2 {
		if rs[1].served("www") != 1 {
			t.Fatalf("r2 decided alone %v after r3 crashed, before r3's lease (%v) expired", time.Since(crashed), testLease)
		}
		time.Sleep(20 * time.Millisecond)
	}
	r3Keys := func() int {
		n := 0
		for k := range etcd.keys(cli, "/multivalue/") {
			if strings.HasSuffix(k, "/r3") {
				n++
			}
		}
		return n
	}
	if r3Keys() != 2 {
		t.Fatalf("r3's keys: %d, want its vote and its presence until its lease expires", r3Keys())
	}
	if !eventually(4*testLease, func() bool { return rs[1].served("www") == 0 }) {
		t.Fatal("r2 still counts r3's vote 4 leases after r3 crashed")
	}
	t.Logf("crash: r3's vote went %v after it crashed (lease %v)", time.Since(crashed), testLease)
	if n := r3Keys(); n != 0 {
		t.Errorf("r3 still has %d keys after its lease expired", n)
	}
	for _, r := range rs[:2] {
		if !eventually(2*time.Second, func() bool { return r.gauge(r.e.metrics.clusterReplicas) == 2 }) {
			t.Errorf("%s counts %v replicas, want 2", r.id, r.gauge(r.e.metrics.clusterReplicas))
		}
	}

	// r1 shuts down cleanly: its lease is revoked, its vote goes at once.
	stopped := time.Now()
	rs[0].stop()
	if !eventually(testLease/2, func() bool { return len(etcd.keys(cli, "/multivalue/")) == 2 }) {
		t.Fatalf("r1's keys are still there %v after a clean shutdown: %v", time.Since(stopped), etcd.keys(cli, "/multivalue/"))
	}
	if !eventually(testLease/2, func() bool { return rs[1].gauge(rs[1].e.metrics.clusterReplicas) == 1 }) {
		t.Errorf("r2 counts %v replicas after r1's shutdown, want 1", rs[1].gauge(rs[1].e.metrics.clusterReplicas))
	}
	t.Logf("clean shutdown: r1's votes went within %v", time.Since(stopped))
}

// TestClusterStoreDown: etcd goes away: within about a lease every replica
// decides on its own verdicts, says so in cluster_up, and warns once for
// the outage however long it lasts; when etcd is back, each takes a new
// lease, publishes its verdicts again and the consensus resumes.
func TestClusterStoreDown(t *testing.T) {
	slow(t)
	etcd := startEtcd(t)
	b := newBackend(t, "127.0.0.1")
	rs := fleet(t, clusterCorefile(etcd.url, b.port(), probeOnce, "", "www"), "www")
	rs[0].refuse.Store(true)
	rs[0].check("www").record(false, "connection refused")
	if !eventually(5*time.Second, func() bool { return rs[0].gauge(rs[0].e.metrics.clusterDisagreements) == 1 }) {
		t.Fatal("r1 is not outvoted")
	}
	if rs[0].served("www") != 1 {
		t.Fatal("r1 does not serve the value the others see up")
	}
	leases := map[clientv3.LeaseID]bool{}
	for _, l := range etcd.keys(etcd.client(), "/multivalue/") {
		leases[l] = true
	}

	down := time.Now()
	etcd.stop() // a graceful stop: it may answer for a moment
	stopped := time.Now()
	if !eventually(3*testLease, func() bool {
		for _, r := range rs {
			if r.gauge(r.e.metrics.clusterUp) != 0 {
				return false
			}
		}
		return true
	}) {
		t.Fatal("cluster_up still 1 three leases after etcd stopped")
	}
	t.Logf("store down: every replica on its own verdicts %v after etcd began to stop, %v after it had stopped (lease %v)",
		time.Since(down), time.Since(stopped), testLease)
	if rs[0].served("www") != 0 {
		t.Error("r1 still serves what it sees down with etcd gone: it must decide alone")
	}
	for _, r := range rs[1:] {
		if r.served("www") != 1 {
			t.Errorf("%s stopped serving what it sees up", r.id)
		}
	}
	if d := rs[0].gauge(rs[0].e.metrics.clusterDisagreements); d != 0 {
		t.Errorf("disagreements %v while alone, want 0", d)
	}
	time.Sleep(2 * testLease) // a long outage: still one warning
	for _, r := range rs {
		m := r.member()
		m.mu.Lock()
		outages, started := m.outages, m.started
		m.mu.Unlock()
		if outages != 1 || started != 1 {
			t.Errorf("%s: %d outages warned of, %d sessions; want 1 and 1", r.id, outages, started)
		}
	}

	back := time.Now()
	etcd.start()
	waitVoters(t, rs, 3, "www")
	if !eventually(5*time.Second, func() bool { return rs[0].served("www") == 1 }) {
		t.Fatal("r1 does not follow the consensus again after etcd came back")
	}
	t.Logf("store back: consensus again %v after etcd started", time.Since(back))
	for k, l := range etcd.keys(etcd.client(), "/multivalue/") {
		if leases[l] {
			t.Errorf("%s is still under a lease from before the outage", k)
		}
	}
	for _, r := range rs {
		m := r.member()
		m.mu.Lock()
		outages, started := m.outages, m.started
		m.mu.Unlock()
		if outages != 1 || started != 2 || r.gauge(r.e.metrics.clusterUp) != 1 {
			t.Errorf("%s: %d outages, %d sessions, up %v; want 1, 2, 1", r.id, outages, started, r.gauge(r.e.metrics.clusterUp))
		}
	}
}

// TestClusterJoinLater: a replica started while etcd is down is ready and
// serves on its own verdicts, and joins the cluster when etcd comes up.
func TestClusterJoinLater(t *testing.T) {
	slow(t)
	etcd := newEtcd(t) // not started
	b := newBackend(t, "127.0.0.1")
	r := startReplica(t, "r1", clusterCorefile(etcd.url, b.port(), 200*time.Millisecond, "", "www"))
	if !eventually(5*time.Second, r.m.Ready) {
		t.Fatal("not ready with etcd down: readiness must not depend on etcd")
	}
	if r.up() || r.served("www") != 1 {
		t.Fatalf("up %v, serves %d: want down and serving on its own verdict", r.up(), r.served("www"))
	}
	b.kill()
	if !eventually(3*time.Second, func() bool { return r.served("www") == 0 }) {
		t.Fatal("the replica does not act on its own verdict with etcd down")
	}
	etcd.start()
	if !eventually(5*time.Second, r.up) {
		t.Fatal("the replica did not join when etcd came up")
	}
	cli := etcd.client()
	if !eventually(5*time.Second, func() bool { return len(etcd.keys(cli, "/multivalue/obs/")) == 1 }) {
		t.Fatalf("its verdict is not in etcd: %v", etcd.keys(cli, "/multivalue/"))
	}
}

// TestClusterReload: reloads through CoreDNS (the new instance starts before
// the old one stops) keep the member, its lease and every vote: peers see no
// delete, not even when a reload changes a check's thresholds (a new check
// with the same cluster id). The last shutdown revokes the lease.
func TestClusterReload(t *testing.T) {
	slow(t)
	etcd := startEtcd(t)
	cli := etcd.client()
	b := newBackend(t, "127.0.0.1")
	corefile := func(ttl, threshold int) string {
		return fmt.Sprintf(`example.org:0 {
    bind 127.0.0.1
    multivalue {
        ttl %d
        cluster etcd %s {
            replica solo
            lease %s
        }
        health_check web {
            port %s
            interval 200ms
            timeout 100ms
            failure_threshold %d
        }
        records www A {
            health_check web
            127.0.0.1
        }
    }
}
`, ttl, etcd.url, testLease, b.port(), threshold)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := cli.Watch(ctx, "/multivalue/", clientv3.WithPrefix())

	s := startCoreDNS(t, corefile(60, 1))
	if !eventually(5*time.Second, func() bool { return len(etcd.keys(cli, "/multivalue/obs/")) == 1 }) {
		t.Fatalf("no vote in etcd: %v", etcd.keys(cli, "/multivalue/"))
	}
	before := etcd.keys(cli, "/multivalue/")
	defaultEngine.cluster.mu.Lock()
	m := defaultEngine.cluster.members[0]
	defaultEngine.cluster.mu.Unlock()

	for i, cf := range []string{corefile(61, 1), corefile(62, 2), corefile(63, 2)} {
		if err := s.reload(cf); err != nil {
			t.Fatalf("reload %d: %v", i+1, err)
		}
	}
	time.Sleep(testLease) // keepalives, publishing: anything that would churn
	after := etcd.keys(cli, "/multivalue/")
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("keys and leases changed over the reloads:\nbefore %v\nafter  %v", before, after)
	}
	defaultEngine.cluster.mu.Lock()
	members := slices.Clone(defaultEngine.cluster.members)
	defaultEngine.cluster.mu.Unlock()
	m.mu.Lock()
	sessions := m.started
	m.mu.Unlock()
	if len(members) != 1 || members[0] != m || sessions != 1 {
		t.Errorf("members %d (same: %v), sessions %d: want the one member and its one session", len(members), len(members) == 1 && members[0] == m, sessions)
	}
	for drained := false; !drained; {
		select {
		case resp := <-events:
			for _, ev := range resp.Events {
				if ev.Type == mvccpb.DELETE {
					t.Errorf("a reload deleted %s", ev.Kv.Key)
				}
			}
		default:
			drained = true
		}
	}

	s.stop()
	if !eventually(time.Second, func() bool { return len(etcd.keys(cli, "/multivalue/")) == 0 }) {
		t.Errorf("keys left after the last shutdown: %v", etcd.keys(cli, "/multivalue/"))
	}
	defaultEngine.cluster.mu.Lock()
	defer defaultEngine.cluster.mu.Unlock()
	if len(defaultEngine.cluster.members) != 0 {
		t.Error("a member is left after the last shutdown")
	}
}

// TestClusterBurst: 2,000 checks flip at once on each of three replicas (a
// shared dependency dies): every replica's consensus follows for all of
// them. The replicas publish in transactions of at most 128 operations
// (etcd's default limit: a larger one would fail). It measures the time from
// the flips to the last consensus on the last replica.
func TestClusterBurst(t *testing.T) {
	slow(t)
	const n = 2000
	etcd := startEtcd(t)
	b := newBackend(t, "127.0.0.1")
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("v%d", i)
	}
	// Checks probe once (interval 1h): the flips are the test's.
	// A longer lease than the other tests': 6,000 checks, three replicas and
	// etcd share this process (and, under -race, a loaded machine); what is
	// measured is convergence, not how soon a dead replica is noticed.
	corefile := strings.Replace(clusterCorefile(etcd.url, b.port(), probeOnce, "", names...), "lease "+testLease.String(), "lease 5s", 1)
	rs := []*replica{startReplica(t, "r1", corefile), startReplica(t, "r2", corefile), startReplica(t, "r3", corefile)}
	settled := func(healthy bool, voters int) bool {
		for _, r := range rs {
			if !r.up() {
				return false
			}
			for _, name := range names {
				v := r.voteOf(name)
				if v.verdict().healthy != healthy || len(v.votes()) != voters {
					return false
				}
			}
		}
		return true
	}
	if !eventually(60*time.Second, func() bool { return settled(true, 3) }) {
		burstState(t, rs, names)
		t.Fatal("the replicas do not all see 3 healthy votes of every check after 60s")
	}
	if got := len(etcd.keys(etcd.client(), "/multivalue/obs/")); got != 3*n {
		t.Fatalf("%d votes in etcd, want %d", got, 3*n)
	}
	// A listing reads them page by page, at one revision.
	if kvs, _, err := rs[0].member().getAll(); err != nil || len(kvs) != 3*n+3 {
		t.Fatalf("listing: %d keys (%v), want %d votes and 3 replicas", len(kvs), err, 3*n)
	}

	// The backend dies (a later probe agrees with the flips), and every
	// check flips at once.
	b.kill()
	start := time.Now()
	var wg sync.WaitGroup
	for _, r := range rs {
		checks := make([]*check, n)
		for i, name := range names {
			checks[i] = r.check(name)
		}
		wg.Go(func() {
			for _, c := range checks {
				c.record(false, "connection refused")
			}
		})
	}
	wg.Wait()
	flipped := time.Since(start)
	if !eventually(20*time.Second, func() bool {
		for _, r := range rs {
			for _, name := range names {
				if r.served(name) != 0 {
					return false
				}
			}
		}
		return true
	}) {
		burstState(t, rs, names)
		t.Fatal("the replicas did not converge on 2,000 unhealthy checks within 60s")
	}
	t.Logf("burst: %d checks flipped on 3 replicas (flips took %v); every replica ejected all of them %v after the first flip", n, flipped, time.Since(start))
	for _, r := range rs {
		if d := r.gauge(r.e.metrics.clusterDisagreements); d != 0 {
			t.Errorf("%s: %v disagreements after converging, want 0", r.id, d)
		}
	}
}

// TestClusterReloadNewSettings: a reload that changes how the replica
// connects (here its lease) starts a new member, with a lease of its own,
// before the old one stops; while both run, both publish the check's
// changes to the same key, and whichever put it last holds it under its
// lease. When the old member's revoke deletes it, the new member sees the
// delete and puts its vote back at once: the vote is missing for
// milliseconds, not until the check next changes.
func TestClusterReloadNewSettings(t *testing.T) {
	slow(t)
	etcd := startEtcd(t)
	cli := etcd.client()
	b := newBackend(t, "127.0.0.1")
	r := startReplica(t, "r1", clusterCorefile(etcd.url, b.port(), probeOnce, "", "www"))
	const key = "/multivalue/obs/"
	if !eventually(5*time.Second, func() bool { return len(etcd.keys(cli, key)) == 1 }) {
		t.Fatal("no vote in etcd")
	}
	old := r.m
	next := r.instance(strings.Replace(clusterCorefile(etcd.url, b.port(), probeOnce, "", "www"), "lease 2s", "lease 3s", 1))
	if err := next.start(); err != nil {
		t.Fatal(err)
	}
	r.m = next
	if next.member == old.member {
		t.Fatal("a new lease setting kept the old member")
	}
	// Let the new member put its vote (its first keepalive) before the
	// old one goes, as a reload that runs for a moment would.
	if !eventually(5*time.Second, func() bool {
		next.member.mu.Lock()
		defer next.member.mu.Unlock()
		return len(next.member.pub) == 1
	}) {
		t.Fatal("the new member did not publish")
	}
	// A change while both run: both publish it.
	r.refuse.Store(true)
	r.check("www").record(false, "connection refused")
	if !eventually(5*time.Second, func() bool {
		for _, m := range []*member{old.member, next.member} {
			m.mu.Lock()
			p, ok := m.pub[clusterID(r.check("www").spec)]
			m.mu.Unlock()
			if !ok || p.healthy {
				return false
			}
		}
		return true
	}) {
		t.Fatal("the members did not both publish the change")
	}
	old.stop()
	gone := time.Now()
	for time.Since(gone) < testLease {
		if len(etcd.keys(cli, key)) == 1 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	keys := etcd.keys(cli, key)
	if len(keys) != 1 {
		t.Fatalf("the vote is missing %v after the old member stopped", time.Since(gone))
	}
	next.member.mu.Lock()
	lease := next.member.leaseID
	next.member.mu.Unlock()
	for k, l := range keys {
		if l != lease {
			t.Errorf("%s is under lease %x, not the new member's %x", k, l, lease)
		}
	}
	t.Logf("vote back under the new lease %v after the old member stopped", time.Since(gone))
}

// burstState logs, per replica, how far it got: for a failing burst test.
func burstState(t *testing.T, rs []*replica, names []string) {
	for _, r := range rs {
		served, few := 0, 0
		var example string
		for _, name := range names {
			v := r.voteOf(name)
			if r.served(name) != 0 {
				served++
			}
			if n := len(v.votes()); n != 3 {
				few++
				if example == "" {
					example = fmt.Sprintf("%s: %+v votes %v", name, v.verdict(), v.votes())
				}
			}
		}
		m := r.member()
		m.mu.Lock()
		t.Logf("%s: %d served, %d without 3 votes (%s); up %v, sessions %d, dirty %d, published %d, stale %d",
			r.id, served, few, example, m.up, m.started, len(m.dirty), len(m.pub), len(m.stale))
		m.mu.Unlock()
	}
}
