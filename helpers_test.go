package multivalue

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
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

	"github.com/miekg/dns"
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
