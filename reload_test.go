package multivalue

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/miekg/dns"
)

// reloadCorefile is a server block with a web set of a healthy and a dead
// value (HTTP checks, failure_threshold 1) and extra lines in the plugin.
func reloadCorefile(good, dead string, extra string) string {
	return fmt.Sprintf(`example.org:0 {
    bind 127.0.0.1
    multivalue {
        health_check web {
            interval 200ms
            timeout 100ms
            failure_threshold 1
        }
        records www A {
            health_check web
            127.0.0.1 { target %s }
            127.0.0.2 { target %s }
        }
%s
    }
}
`, good, dead, extra)
}

// watchAnswers queries www.example.org. A without pause until stop is
// called, and reports answers holding a value that must not be served.
type answerWatch struct {
	stopc    chan struct{}
	done     chan struct{}
	queries  atomic.Int64
	failures atomic.Int64 // transport errors (none expected: listeners are handed over)
	mu       sync.Mutex
	bad      []string
}

func watchAnswers(addr, forbidden string) *answerWatch {
	w := &answerWatch{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		c := &dns.Client{Net: "udp", Timeout: time.Second}
		for {
			select {
			case <-w.stopc:
				return
			default:
			}
			m := new(dns.Msg)
			m.SetQuestion("www.example.org.", dns.TypeA)
			r, _, err := c.Exchange(m, addr)
			w.queries.Add(1)
			if err != nil {
				w.failures.Add(1)
				continue
			}
			if got := answerValues(r); slices.Contains(got, forbidden) || len(got) == 0 {
				w.mu.Lock()
				w.bad = append(w.bad, fmt.Sprintf("%v at %s", got, time.Now().Format("15:04:05.000")))
				w.mu.Unlock()
			}
		}
	}()
	return w
}

func (w *answerWatch) stop(t *testing.T) {
	t.Helper()
	close(w.stopc)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.bad) > 0 {
		t.Errorf("%d of %d answers served the unhealthy value (or nothing), first: %s", len(w.bad), w.queries.Load(), w.bad[0])
	}
	if w.queries.Load() == 0 {
		t.Errorf("no query answered while watching")
	}
}

// waitServed waits until the answer for www is exactly want.
func waitServed(t *testing.T, s *coreDNS, want ...string) {
	t.Helper()
	var got []string
	if !eventually(5*time.Second, func() bool {
		got = answerValues(s.query(t, "udp", "www.example.org.", dns.TypeA))
		return sameSet(got, want)
	}) {
		t.Fatalf("www.example.org. A: got %v, want %v", got, want)
	}
}

// goroutinesSettled waits for the goroutine count to stop falling and
// returns it.
func goroutinesSettled() int {
	n := runtime.NumGoroutine()
	eventually(2*time.Second, func() bool {
		time.Sleep(50 * time.Millisecond)
		m := runtime.NumGoroutine()
		stable := m >= n
		n = m
		return stable
	})
	return n
}

func registeredChecks() int {
	return defaultEngine.table.len()
}

// TestReloadKeepsUnhealthyOut reloads with changes that leave the web checks
// as they are: the dead value stays out of every answer, during and after.
func TestReloadKeepsUnhealthyOut(t *testing.T) {
	good, dead := newBackend(t, "127.0.0.1"), newBackend(t, "127.0.0.2")
	dead.fail.Store(true)
	extras := []string{
		"",
		"        ttl 30",
		"        records api A 127.0.0.9",
		"        max_answers 4\n        records api A 127.0.0.9 127.0.0.10",
		"        health_check unused {\n            interval 1s\n            timeout 500ms\n        }",
	}
	s := startCoreDNS(t, reloadCorefile(good.addr, dead.addr, extras[0]))
	waitServed(t, s, "127.0.0.1")
	addr := s.udp

	w := watchAnswers(addr, "127.0.0.2")
	for i := range 3 * len(extras) {
		start := time.Now()
		if err := s.reload(reloadCorefile(good.addr, dead.addr, extras[(i+1)%len(extras)])); err != nil {
			w.stop(t)
			t.Fatalf("reload %d: %v", i, err)
		}
		t.Logf("reload %d took %v", i, time.Since(start).Round(time.Microsecond))
		if s.udp != addr {
			t.Fatalf("reload moved the server from %s to %s", addr, s.udp)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // several intervals after the last reload
	w.stop(t)
	t.Logf("%d queries during and after %d reloads, %d transport errors", w.queries.Load(), 3*len(extras), w.failures.Load())
	if n := registeredChecks(); n != 2 {
		t.Errorf("%d checks registered after the reloads, want 2", n)
	}
}

// TestReloadRemovesSet reloads without the api set: its probes stop, its
// healthy series goes, the kept values' series stay, and the kept check's
// counters go on counting.
func TestReloadRemovesSet(t *testing.T) {
	keep, gone := newProbeListener(t, false), newProbeListener(t, false)
	corefile := func(withAPI bool, interval string) string {
		s := `example.org:0 {
    bind 127.0.0.1
    multivalue {
        health_check tcp {
            protocol tcp
            interval ` + interval + `
            timeout 50ms
            failure_threshold 1
        }
        records www A {
            health_check tcp
            127.0.0.1 { target ` + keep.addr + ` }
        }
`
		if withAPI {
			s += `        records api A {
            health_check tcp
            127.0.0.2 { target ` + gone.addr + ` }
        }
`
		}
		return s + "    }\n}\n"
	}
	s := startCoreDNS(t, corefile(true, "100ms"))
	waitFirstResults(t)
	wwwSeries := map[string]string{"name": "www.example.org.", "type": "A", "value": "127.0.0.1"}
	apiSeries := map[string]string{"name": "api.example.org.", "type": "A", "value": "127.0.0.2"}
	for _, l := range []map[string]string{wwwSeries, apiSeries} {
		if v, ok := counterValue(t, "coredns_multivalue_healthy", l); !ok || v != 1 {
			t.Fatalf("before the reload: healthy%v = %v (exists %v), want 1", l, v, ok)
		}
	}

	start := time.Now()
	if err := s.reload(corefile(false, "100ms")); err != nil {
		t.Fatal(err)
	}
	t.Logf("reload took %v", time.Since(start).Round(time.Microsecond))
	time.Sleep(200 * time.Millisecond) // a probe in flight may still connect
	before := gone.count()
	time.Sleep(time.Second)
	if n := gone.count() - before; n > 0 {
		t.Errorf("%d probes of the removed set's target in 1s after the reload, want none", n)
	}
	if n := registeredChecks(); n != 1 {
		t.Errorf("%d checks registered after removing a set, want 1", n)
	}
	if v, ok := counterValue(t, "coredns_multivalue_healthy", apiSeries); ok {
		t.Errorf("removed value's healthy series still exported (value %v)", v)
	}
	if v, ok := counterValue(t, "coredns_multivalue_healthy", wwwSeries); !ok || v != 1 {
		t.Errorf("kept value's healthy series = %v (exists %v), want 1", v, ok)
	}
	if _, ok := counterValue(t, "coredns_multivalue_checks_total", map[string]string{"target": gone.addr}); ok {
		t.Errorf("removed check's checks_total series still exported")
	}

	// A reload that changes the kept check's settings replaces it with a
	// new check on the same target: the target's series must live on.
	if err := s.reload(corefile(false, "150ms")); err != nil {
		t.Fatal(err)
	}
	keepSeries := map[string]string{"target": keep.addr, "protocol": "tcp", "result": "success"}
	v0, ok := counterValue(t, "coredns_multivalue_checks_total", keepSeries)
	if !ok {
		t.Fatalf("checks_total for %s gone after a reload that changed its check's interval", keep.addr)
	}
	if !eventually(3*time.Second, func() bool {
		v, ok := counterValue(t, "coredns_multivalue_checks_total", keepSeries)
		return ok && v > v0+2
	}) {
		v, ok := counterValue(t, "coredns_multivalue_checks_total", keepSeries)
		t.Errorf("checks_total for %s stuck at %v (exists %v) after the check was replaced, while its target is probed (%d accepts)", keep.addr, v, ok, keep.count())
	}
	if v, ok := counterValue(t, "coredns_multivalue_healthy", wwwSeries); !ok || v != 1 {
		t.Errorf("kept value's healthy series = %v (exists %v) after its check changed, want 1", v, ok)
	}
}

// TestReloadSoak reloads 100 times between two Corefiles with checks: no
// goroutine piles up, and the dead value never comes back.
func TestReloadSoak(t *testing.T) {
	slow(t)
	good, dead := newBackend(t, "127.0.0.1"), newBackend(t, "127.0.0.2")
	dead.kill() // connection refused
	extra := newBackend(t, "127.0.0.3")
	corefiles := []string{
		reloadCorefile(good.addr, dead.addr, ""),
		reloadCorefile(good.addr, dead.addr, fmt.Sprintf(`        health_check other {
            protocol tcp
            interval 100ms
            timeout 50ms
        }
        records api A {
            health_check other
            127.0.0.3 { target %s }
        }`, extra.addr)),
	}
	s := startCoreDNS(t, corefiles[0])
	waitServed(t, s, "127.0.0.1")
	w := watchAnswers(s.udp, "127.0.0.2")

	var g10 int
	var total, longest time.Duration
	const reloads = 100
	for i := 1; i <= reloads; i++ {
		start := time.Now()
		if err := s.reload(corefiles[i%2]); err != nil {
			w.stop(t)
			t.Fatalf("reload %d: %v", i, err)
		}
		d := time.Since(start)
		total += d
		longest = max(longest, d)
		if i == 10 {
			g10 = goroutinesSettled()
		}
		time.Sleep(10 * time.Millisecond) // let some probes land between reloads
	}
	w.stop(t)
	g100 := goroutinesSettled()
	t.Logf("%d reloads: mean %v, longest %v; goroutines after 10: %d, after 100: %d; %d queries, %d transport errors",
		reloads, (total / reloads).Round(time.Microsecond), longest.Round(time.Microsecond), g10, g100, w.queries.Load(), w.failures.Load())
	if g100 > g10+10 {
		t.Errorf("goroutines grew from %d after 10 reloads to %d after 100", g10, g100)
	}
	if n := registeredChecks(); n != 2 {
		t.Errorf("%d checks registered after %d reloads, want 2", n, reloads)
	}
	if got := answerValues(s.query(t, "udp", "www.example.org.", dns.TypeA)); !sameSet(got, []string{"127.0.0.1"}) {
		t.Errorf("after the soak: got %v, want [127.0.0.1]", got)
	}
}

// TestFailedReloadKeepsRunning tries reloads that fail: the running config
// keeps answering, with its checks probing and their status kept.
func TestFailedReloadKeepsRunning(t *testing.T) {
	slow(t)
	good, dead := newBackend(t, "127.0.0.1"), newBackend(t, "127.0.0.2")
	dead.fail.Store(true)
	s := startCoreDNS(t, reloadCorefile(good.addr, dead.addr, "        records api A 127.0.0.9"))
	waitServed(t, s, "127.0.0.1")
	tests := []struct {
		name     string
		corefile string
		wantErr  string
	}{
		{"multivalue parse error", reloadCorefile(good.addr, dead.addr, "        health_check bad {\n            interval soon\n        }"), "not a duration"},
		{"undefined check", reloadCorefile(good.addr, dead.addr, "        records api A 127.0.0.9 {\n            health_check nosuch\n        }"), "not defined"},
		{"error in a later server block", reloadCorefile(good.addr, dead.addr, "") + `example.net:0 {
    bind 127.0.0.1
    multivalue {
        records www A 127.0.0.1 127.0.0.1
    }
}
`, "given twice"},
		{"unknown directive", reloadCorefile(good.addr, dead.addr, "") + "example.net:0 {\n    nosuchplugin\n}\n", "nosuchplugin"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := watchAnswers(s.udp, "127.0.0.2")
			err := s.reload(tc.corefile)
			time.Sleep(300 * time.Millisecond)
			w.stop(t)
			if err == nil {
				t.Fatalf("reload succeeded, want an error containing %q", tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("reload error %q, want it to contain %q", err, tc.wantErr)
			}
			if got := answerValues(s.query(t, "udp", "api.example.org.", dns.TypeA)); !sameSet(got, []string{"127.0.0.9"}) {
				t.Errorf("api.example.org. A after the failed reload: got %v, want the running config's [127.0.0.9]", got)
			}
			if n := registeredChecks(); n != 2 {
				t.Errorf("%d checks registered after the failed reload, want the running config's 2", n)
			}
			// The checks keep probing: a recovery is still seen.
			dead.fail.Store(false)
			waitServed(t, s, "127.0.0.1", "127.0.0.2")
			dead.fail.Store(true)
			waitServed(t, s, "127.0.0.1")
		})
	}
}

// lifecycleInstance parses a multivalue block of example.org. into a handler,
// as setup does for one server block of an instance.
func lifecycleInstance(t *testing.T, block string) *Multivalue {
	t.Helper()
	c := caddy.NewTestController("dns", block)
	c.ServerBlockKeys = []string{"example.org."}
	cfg, err := parse(c)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return newMultivalue(cfg, defaultEngine)
}

func checkRefs(addr string) int {
	refs := 0
	defaultEngine.table.each(func(c *check) {
		if c.target == addr {
			refs = c.refs
		}
	})
	return refs
}

// TestReloadFailedAfterStartup runs caddy's callbacks in the order of a
// reload whose new instance started its checks (OnStartup) and then failed
// to open its listeners: caddy runs the old instance's OnRestartFailed and
// never the new one's OnShutdown. What the new instance started must stop;
// the old instance keeps its checks. A reload that succeeds keeps the new
// instance's checks.
func TestReloadFailedAfterStartup(t *testing.T) {
	www, api := newProbeListener(t, false), newProbeListener(t, false)
	block := func(withAPI bool) string {
		s := `multivalue {
    health_check tcp {
        protocol tcp
        interval 100ms
        timeout 50ms
    }
    records www A {
        health_check tcp
        127.0.0.1 { target ` + www.addr + ` }
    }
`
		if withAPI {
			s += `    records api A {
        health_check tcp
        127.0.0.2 { target ` + api.addr + ` }
    }
`
		}
		return s + "}\n"
	}
	apiSeries := map[string]string{"name": "api.example.org.", "type": "A", "value": "127.0.0.2"}

	old := lifecycleInstance(t, block(false))
	old.start() // first startup: no reload in progress
	defer old.stop()

	tests := []struct {
		name      string
		succeeded bool
	}{
		{"listeners fail after OnStartup", false},
		{"reload succeeds", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			old.restarting() // OnRestart of the running instance
			nu := lifecycleInstance(t, block(true))
			nu.start() // OnStartup of the new one
			if got := checkRefs(www.addr); got != 2 {
				t.Fatalf("www check has %d users while both instances run, want 2", got)
			}
			if got := checkRefs(api.addr); got != 1 {
				t.Fatalf("api check has %d users, want 1", got)
			}
			if !tc.succeeded {
				old.restartFailed() // OnRestartFailed of the running instance
				if got := checkRefs(api.addr); got != 0 {
					t.Errorf("api check of the discarded instance still has %d users", got)
				}
				if got := checkRefs(www.addr); got != 1 {
					t.Errorf("www check has %d users after the failed reload, want 1 (the running instance)", got)
				}
				if _, ok := counterValue(t, "coredns_multivalue_healthy", apiSeries); ok {
					t.Errorf("discarded instance's healthy series still exported")
				}
				before := api.count()
				time.Sleep(400 * time.Millisecond)
				if n := api.count() - before; n > 1 { // one probe may have been in flight
					t.Errorf("%d probes of the discarded instance's target after the failed reload", n)
				}
				if !old.Ready() && !eventually(3*time.Second, old.Ready) {
					t.Errorf("running instance not ready after the failed reload")
				}
				return
			}
			old.stop() // OnShutdown of the old instance: the reload succeeded
			if got := checkRefs(api.addr); got != 1 {
				t.Errorf("api check has %d users after a successful reload, want 1", got)
			}
			old.restartFailed() // a later failed reload must not touch the running instance
			if got := checkRefs(api.addr); got != 1 {
				t.Errorf("api check has %d users after an unrelated restartFailed, want 1", got)
			}
			nu.stop()
		})
	}
	if !schedulerIdle() {
		t.Errorf("checks still registered after every instance stopped")
	}
}

// TestReloadChangedTimingKeepsStatus reloads with a web check whose interval,
// timeout or thresholds changed: that is a new check on the same probe, and it
// starts from the status the old one knew, so the dead value never comes back.
func TestReloadChangedTimingKeepsStatus(t *testing.T) {
	slow(t)
	good, dead := newBackend(t, "127.0.0.1"), newBackend(t, "127.0.0.2")
	dead.fail.Store(true)
	corefile := func(check string) string {
		return strings.Replace(reloadCorefile(good.addr, dead.addr, ""),
			"            interval 200ms\n            timeout 100ms\n            failure_threshold 1\n", check, 1)
	}
	base := "            interval 200ms\n            timeout 100ms\n            failure_threshold 1\n"
	s := startCoreDNS(t, corefile(base))
	waitServed(t, s, "127.0.0.1")
	tests := []struct{ name, check string }{
		{"interval", "            interval 300ms\n            timeout 100ms\n            failure_threshold 1\n"},
		{"timeout", "            interval 200ms\n            timeout 150ms\n            failure_threshold 1\n"},
		{"failure_threshold", "            interval 200ms\n            timeout 100ms\n            failure_threshold 3\n"},
		{"success_threshold", "            interval 200ms\n            timeout 100ms\n            failure_threshold 1\n            success_threshold 2\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := watchAnswers(s.udp, "127.0.0.2")
			for _, c := range []string{tc.check, base} {
				if err := s.reload(corefile(c)); err != nil {
					w.stop(t)
					t.Fatal(err)
				}
				time.Sleep(500 * time.Millisecond)
			}
			w.stop(t)
			if n := registeredChecks(); n != 2 {
				t.Errorf("%d checks registered, want 2", n)
			}
		})
	}
}
