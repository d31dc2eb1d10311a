package multivalue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	golog "log"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coredns/caddy"

	// The plugins the in-process servers of these tests use.
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/file"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/whoami"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// coreDNS is a CoreDNS server started in-process from a Corefile.
type coreDNS struct {
	t    *testing.T
	inst *caddy.Instance
	udp  string // address of the first server's UDP listener
	tcp  string // and TCP listener
}

// startCoreDNS starts CoreDNS from corefile (listen on 127.0.0.1:0) and stops
// it, shutdown callbacks included, when the test ends.
func startCoreDNS(t *testing.T, corefile string) *coreDNS {
	t.Helper()
	inst, err := caddy.Start(caddy.CaddyfileInput{Contents: []byte(corefile), Filepath: "Corefile", ServerTypeName: "dns"})
	if err != nil {
		t.Fatalf("starting CoreDNS: %v", err)
	}
	s := &coreDNS{t: t, inst: inst}
	s.setAddrs()
	t.Cleanup(s.stop)
	return s
}

func (s *coreDNS) setAddrs() {
	srv := s.inst.Servers()[0]
	if a := srv.LocalAddr(); a != nil {
		s.udp = a.String()
	}
	if a := srv.Addr(); a != nil {
		s.tcp = a.String()
	}
}

// reload restarts the instance with a new Corefile, as the reload plugin or
// SIGUSR1 do: the new instance starts before the old one shuts down.
func (s *coreDNS) reload(corefile string) error {
	s.t.Helper()
	inst, err := s.inst.Restart(caddy.CaddyfileInput{Contents: []byte(corefile), Filepath: "Corefile", ServerTypeName: "dns"})
	if err != nil {
		return err
	}
	s.inst = inst
	s.setAddrs()
	return nil
}

func (s *coreDNS) stop() {
	if s.inst == nil {
		return
	}
	errs := s.inst.ShutdownCallbacks()
	if err := s.inst.Stop(); err != nil {
		errs = append(errs, err)
	}
	s.inst.Wait()
	s.inst = nil
	if err := errors.Join(errs...); err != nil {
		s.t.Errorf("stopping CoreDNS: %v", err)
	}
}

// query sends one question over UDP ("udp") or TCP ("tcp") and returns the
// reply.
func (s *coreDNS) query(t *testing.T, network, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	return s.exchange(t, network, m)
}

func (s *coreDNS) exchange(t *testing.T, network string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 2 * time.Second}
	addr := s.udp
	if network == "tcp" {
		addr = s.tcp
	}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("query %s %s over %s: %v", m.Question[0].Name, dns.TypeToString[m.Question[0].Qtype], network, err)
	}
	return r
}

// backend is a real HTTP server on a loopback address that can be made to
// fail (503) or be killed and revived on the same address.
type backend struct {
	t    *testing.T
	addr string // ip:port
	fail atomic.Bool
	srv  *httptest.Server
}

// newBackend starts an HTTP backend on ip (in 127.0.0.0/8) and a free port.
func newBackend(t *testing.T, ip string) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("listen on %s: %v", ip, err)
	}
	b := &backend{t: t, addr: ln.Addr().String()}
	b.serve(ln)
	t.Cleanup(b.kill)
	return b
}

func (b *backend) serve(ln net.Listener) {
	b.srv = &httptest.Server{
		Listener: ln,
		Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if b.fail.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			w.Write([]byte("OK"))
		})},
	}
	b.srv.Start()
}

// kill closes the listener and every connection: probes get connection refused.
func (b *backend) kill() {
	if b.srv != nil {
		b.srv.Close()
		b.srv = nil
	}
}

// revive listens again on the same address.
func (b *backend) revive() {
	b.t.Helper()
	ln, err := net.Listen("tcp", b.addr)
	if err != nil {
		b.t.Fatalf("relisten on %s: %v", b.addr, err)
	}
	b.serve(ln)
}

func (b *backend) host() string { h, _, _ := net.SplitHostPort(b.addr); return h }
func (b *backend) port() string { _, p, _ := net.SplitHostPort(b.addr); return p }

// answerValues returns the RDATA of the answer's RRs as text.
func answerValues(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		out = append(out, rdataText(rr))
	}
	return out
}

// eventually polls cond every 20ms until it holds or d passes.
func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}

// waitFirstResults waits until every running check has a first result, so a
// test that then breaks a backend measures thresholds, not the first probe.
func waitFirstResults(t *testing.T) {
	t.Helper()
	if !eventually(5*time.Second, defaultEngine.table.allHaveResults) {
		t.Fatal("checks have no first result after 5s")
	}
}

// freeTCPPort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freeTCPPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// newTestCheck builds a check as the engine would, without scheduling it: the
// test runs its probes or records its results. Its series go when the test
// ends.
func newTestCheck(t testing.TB, s *checkSpec) *check {
	t.Helper()
	c := newCheck(s, newProber(s, defaultEngine.dialer), defaultEngine.metrics)
	t.Cleanup(func() {
		c.cancel()
		defaultEngine.metrics.releaseCheck(c.target, s.protocol)
	})
	return c
}

// fixedSource is a source whose verdict the test sets.
type fixedSource struct {
	mu sync.Mutex
	v  verdict
	w  watchers
}

func (f *fixedSource) verdict() verdict {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.v
}

func (f *fixedSource) watch(fn func()) func() { return f.w.add(fn) }

// set changes the verdict and tells the watchers, as a transition would.
func (f *fixedSource) set(healthy bool) {
	f.mu.Lock()
	changed := f.v.healthy != healthy || !f.v.known
	f.v = verdict{healthy: healthy, known: true, since: time.Now(), reason: "set by the test"}
	f.mu.Unlock()
	if changed {
		f.w.notify()
	}
}

// slow skips a test in the fast lane, `go test -short ./...`: soaks, stress
// and tests that wait seconds for probes. CI and the README's command run
// them.
func slow(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("slow: runs without -short")
	}
}

// logCapture collects what CoreDNS's log package writes (it writes through
// the standard library's log) for the duration of a test.
type logCapture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logCapture) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// lines returns the captured lines that contain every one of subs.
func (l *logCapture) lines(subs ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range strings.Split(l.buf.String(), "\n") {
		ok := line != ""
		for _, s := range subs {
			ok = ok && strings.Contains(line, s)
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}

func captureLog(t *testing.T) *logCapture {
	t.Helper()
	l := &logCapture{}
	prev := golog.Writer()
	golog.SetOutput(l)
	t.Cleanup(func() { golog.SetOutput(prev) })
	return l
}

// counterValue reads one counter or gauge series from the default registry;
// ok is false when the series does not exist.
func counterValue(t *testing.T, family string, want map[string]string) (v float64, ok bool) {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != family {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range want {
				if got[k] != v {
					continue metrics
				}
			}
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue(), true
			}
			return m.GetCounter().GetValue(), true
		}
	}
	return 0, false
}

// newTestHandler parses a `multivalue` block (server block example.org.) into
// a handler, without starting checks: every value starts healthy.
func newTestHandler(t testing.TB, block string, next plugin.Handler) *Multivalue {
	t.Helper()
	c := caddy.NewTestController("dns", block)
	c.ServerBlockKeys = []string{"example.org."}
	cfg, err := parse(c)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	m := newMultivalue(cfg, defaultEngine)
	m.Next = next
	return m
}

// setHealth marks the values of name/qtype whose RDATA text is in values as
// healthy or not, as a check transition would.
func setHealth(t testing.TB, m *Multivalue, name string, qtype uint16, healthy bool, values ...string) {
	t.Helper()
	set := m.nodes[name].set(qtype)
	found := 0
	set.mu.Lock()
	for _, v := range set.values {
		if slices.Contains(values, v.text) {
			v.src = &fixedSource{v: verdict{healthy: healthy, known: true}}
			found++
		}
	}
	set.mu.Unlock()
	if found != len(values) {
		t.Fatalf("setHealth: found %d of %v in %s", found, values, name)
	}
	set.refresh()
}

// zoneHandler stands for `file` after multivalue: it serves example.org's SOA,
// "other.example.org. A", and NXDOMAIN with the SOA for the rest, and counts
// the SOA queries it gets.
type zoneHandler struct{ soaQueries atomic.Int32 }

func (z *zoneHandler) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	if len(r.Question) != 1 {
		return dns.RcodeFormatError, nil
	}
	q := r.Question[0]
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	soa := test.SOA(testSOA)
	switch {
	case q.Name == "example.org." && q.Qtype == dns.TypeSOA:
		z.soaQueries.Add(1)
		m.Answer = []dns.RR{soa}
	case strings.EqualFold(q.Name, "other.example.org.") && q.Qtype == dns.TypeA:
		m.Answer = []dns.RR{test.A("other.example.org. 300 IN A 127.0.0.99")}
	case strings.EqualFold(q.Name, "other.example.org."):
		m.Ns = []dns.RR{soa}
	default:
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{soa}
	}
	w.WriteMsg(m)
	return m.Rcode, nil
}

func (z *zoneHandler) Name() string { return "file" }

func serve(t testing.TB, m plugin.Handler, req *dns.Msg) (*dns.Msg, int) {
	t.Helper()
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	rc, err := m.ServeDNS(context.Background(), rec, req)
	if err != nil {
		t.Fatalf("ServeDNS: %v", err)
	}
	return rec.Msg, rc
}

// chiSquare returns Pearson's statistic of observed counts against a uniform
// expectation.
func chiSquare(counts map[string]int, categories int, expected float64) float64 {
	var x2 float64
	seen := 0
	for _, c := range counts {
		d := float64(c) - expected
		x2 += d * d / expected
		seen++
	}
	// Categories never observed count fully.
	x2 += float64(categories-seen) * expected
	return x2
}

func setBlock(n, max int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "multivalue {\n max_answers %d\n records www A {\n", max)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "127.0.%d.%d\n", i/250, i%250+1)
	}
	b.WriteString("}\n}")
	return b.String()
}

type labels map[string]string

// scrape gathers one metric family from the default registry, where promauto
// registers the collectors and the prometheus plugin exports them.
func scrape(t *testing.T, name string) samples {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var out samples
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			s := sample{labels: labels{}}
			for _, lp := range m.GetLabel() {
				s.labels[lp.GetName()] = lp.GetValue()
			}
			switch {
			case m.Counter != nil:
				s.value = m.GetCounter().GetValue()
			case m.Gauge != nil:
				s.value = m.GetGauge().GetValue()
			case m.Histogram != nil:
				s.value = float64(m.GetHistogram().GetSampleCount())
			}
			out = append(out, s)
		}
	}
	return out
}

// seriesValue is the value of the only series of name matching l; it fails the
// test when there is none or more than one.
func seriesValue(t *testing.T, name string, l labels) float64 {
	t.Helper()
	m := scrape(t, name).match(l)
	if len(m) != 1 {
		t.Fatalf("%s%v: %d series (%v), want 1", name, l, len(m), m)
	}
	return m[0].value
}

// sample is one series: its labels and its value (a histogram's count).
type sample struct {
	labels labels
	value  float64
}

type samples []sample

// match returns the series whose labels include l.
func (ss samples) match(l labels) samples {
	var out samples
next:
	for _, s := range ss {
		for k, v := range l {
			if s.labels[k] != v {
				continue next
			}
		}
		out = append(out, s)
	}
	return out
}

// one returns the value of the only series whose labels include l.
func (ss samples) one(l labels) (float64, bool) {
	m := ss.match(l)
	if len(m) != 1 {
		return 0, false
	}
	return m[0].value, true
}
