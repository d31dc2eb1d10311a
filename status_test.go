package multivalue

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// scriptedProber returns the results it is given, in order.
type scriptedProber struct {
	mu      sync.Mutex
	results []bool
}

func (p *scriptedProber) probe(context.Context) (bool, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ok := p.results[0]
	p.results = p.results[1:]
	if ok {
		return true, "status 200"
	}
	return false, "status 503"
}

// stateSet is a one-value record set on check c, as an instance builds it.
func stateSet(t *testing.T, name, ip string, c *check) *recordSet {
	t.Helper()
	rr, err := dns.NewRR(name + " 60 IN A " + ip)
	if err != nil {
		t.Fatal(err)
	}
	s := &recordSet{name: name, zone: "example.org.", qtype: dns.TypeA, typeName: "A"}
	v := &value{rr: rr, text: ip, specs: []*checkSpec{c.spec}}
	s.values = []*value{v}
	s.all = []dns.RR{rr}
	s.refresh()
	// As an instance's start does: the value's series exist while it runs.
	st := defaultEngine.metrics.acquireValue(s.label(v), c.verdict())
	s.bind(v, c, []*check{c}, st)
	t.Cleanup(func() {
		if _, st := s.unbind(v); st != nil {
			defaultEngine.metrics.releaseValue(st)
		}
	})
	return s
}

// newStateCheck builds a check that is not scheduled, and cleans its series up.
func newStateCheck(t *testing.T, fth, sth int, invert bool, results []bool) *check {
	t.Helper()
	tpl := newCheckTemplate("state", 1)
	tpl.failureThreshold, tpl.successThreshold, tpl.invert = fth, sth, invert
	tpl.interval, tpl.timeout = time.Second, 100*time.Millisecond
	c := newTestCheck(t, tpl.spec("127.0.0.1", 1, 0))
	c.prober = &scriptedProber{results: results}
	return c
}

func TestStatusMachine(t *testing.T) {
	const H, U = true, false
	tests := []struct {
		name        string
		fth, sth    int
		invert      bool
		results     []bool   // what the target does
		want        []bool   // the status after each result
		transitions []string // logged, in order
		reason      string   // of the last transition
	}{
		{name: "first failure is unhealthy at once", fth: 3, sth: 3,
			results: []bool{false}, want: []bool{U}, transitions: []string{"unhealthy"}, reason: "status 503"},
		{name: "first success stays healthy, no transition", fth: 3, sth: 3,
			results: []bool{true}, want: []bool{H}},
		{name: "third failure in a row flips", fth: 3, sth: 3,
			results: []bool{true, false, false, false}, want: []bool{H, H, H, U},
			transitions: []string{"unhealthy"}, reason: "status 503"},
		{name: "a success resets the failure count", fth: 3, sth: 3,
			results: []bool{true, false, false, true, false, false, true}, want: []bool{H, H, H, H, H, H, H}},
		{name: "success_threshold 2 turns healthy on the second success", fth: 3, sth: 2,
			results: []bool{false, true, false, true, true}, want: []bool{U, U, U, U, H},
			transitions: []string{"unhealthy", "healthy"}, reason: "status 200"},
		{name: "flapping below both thresholds never transitions", fth: 2, sth: 2,
			results: []bool{true, false, true, false, true, false, true}, want: []bool{H, H, H, H, H, H, H}},
		{name: "flapping while unhealthy stays unhealthy", fth: 2, sth: 2,
			results: []bool{false, true, false, true, false, true}, want: []bool{U, U, U, U, U, U},
			transitions: []string{"unhealthy"}, reason: "status 503"},
		{name: "thresholds 1 follow every result", fth: 1, sth: 1,
			results: []bool{true, false, true, false}, want: []bool{H, U, H, U},
			transitions: []string{"unhealthy", "healthy", "unhealthy"}, reason: "status 503"},
		{name: "failure_threshold 10", fth: 10, sth: 1,
			results:     []bool{true, false, false, false, false, false, false, false, false, false, false},
			want:        []bool{H, H, H, H, H, H, H, H, H, H, U},
			transitions: []string{"unhealthy"}, reason: "status 503"},
		{name: "invert: a passing target is unhealthy at once", fth: 3, sth: 3, invert: true,
			results: []bool{true}, want: []bool{U}, transitions: []string{"unhealthy"}, reason: "inverted: status 200"},
		{name: "invert: a failing target is healthy", fth: 3, sth: 3, invert: true,
			results: []bool{false, false}, want: []bool{H, H}},
		{name: "invert with thresholds", fth: 2, sth: 1, invert: true,
			results: []bool{false, true, true, false}, want: []bool{H, H, U, H},
			transitions: []string{"unhealthy", "healthy"}, reason: "inverted: status 503"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logs := captureLog(t)
			c := newStateCheck(t, tc.fth, tc.sth, tc.invert, tc.results)
			ip := fmt.Sprintf("127.0.3.%d", i+1)
			name := "state.example.org."
			set := stateSet(t, name, ip, c)
			l := valueLabel{name, "A", ip}
			t.Cleanup(func() { defaultEngine.metrics.transitions.DeletePartialMatch(prometheus.Labels{"name": name}) })

			if !c.isHealthy() || c.hasResult() {
				t.Fatalf("before any result: healthy %v, has result %v; want healthy, no result", c.isHealthy(), c.hasResult())
			}
			for j, want := range tc.want {
				c.run()
				if got := c.isHealthy(); got != want {
					t.Fatalf("after results %v: healthy = %v, want %v", tc.results[:j+1], got, want)
				}
				if served := len(set.healthyRRs()) == 1; served != want {
					t.Fatalf("after results %v: value served = %v, want %v", tc.results[:j+1], served, want)
				}
			}
			got := logs.lines(l.String() + " is now ")
			if len(got) != len(tc.transitions) {
				t.Fatalf("logged %d transitions %q, want %v", len(got), got, tc.transitions)
			}
			for j, to := range tc.transitions {
				if !strings.Contains(got[j], "[INFO] ") || !strings.Contains(got[j], " is now "+to+": ") {
					t.Errorf("transition %d logged as %q, want an INFO line saying it is now %s", j, got[j], to)
				}
			}
			if len(got) > 0 && !strings.Contains(got[len(got)-1], "is now "+tc.transitions[len(got)-1]+": "+tc.reason) {
				t.Errorf("last transition logged as %q, want reason %q", got[len(got)-1], tc.reason)
			}
			for _, to := range []string{"healthy", "unhealthy"} {
				want := 0
				for _, tr := range tc.transitions {
					if tr == to {
						want++
					}
				}
				v, _ := counterValue(t, "coredns_multivalue_transitions_total", map[string]string{"name": name, "type": "A", "value": ip, "to": to})
				if int(v) != want {
					t.Errorf("transitions_total{to=%q} = %v, want %d", to, v, want)
				}
			}
		})
	}
}

// TestTransitionOncePerValue subscribes the same value twice, as the old and
// the new instance do during a reload, and another value once: each value's
// transition is logged and counted once.
func TestTransitionOncePerValue(t *testing.T) {
	logs := captureLog(t)
	c := newStateCheck(t, 1, 1, false, []bool{true, false, true})
	name := "shared.example.org."
	t.Cleanup(func() { defaultEngine.metrics.transitions.DeletePartialMatch(prometheus.Labels{"name": name}) })
	oldSet := stateSet(t, name, "127.0.4.1", c)
	newSet := stateSet(t, name, "127.0.4.1", c) // same value, the reloaded instance
	other := stateSet(t, name, "127.0.4.2", c)  // another value on the same check

	c.run() // success: no transition
	c.run() // failure
	for _, s := range []*recordSet{oldSet, newSet, other} {
		if len(s.healthyRRs()) != 0 {
			t.Errorf("%s still served after the failure", s.values[0].text)
		}
	}
	for _, ip := range []string{"127.0.4.1", "127.0.4.2"} {
		l := valueLabel{name, "A", ip}
		if got := logs.lines(l.String() + " is now unhealthy: status 503"); len(got) != 1 {
			t.Errorf("%s: logged %d times %q, want once", ip, len(got), got)
		}
		if v, _ := counterValue(t, "coredns_multivalue_transitions_total", map[string]string{"name": name, "value": ip, "to": "unhealthy"}); v != 1 {
			t.Errorf("%s: transitions_total{to=unhealthy} = %v, want 1", ip, v)
		}
	}

	// The old instance goes away; the next transition reaches the new one.
	if _, st := oldSet.unbind(oldSet.values[0]); st != nil {
		defaultEngine.metrics.releaseValue(st)
	}
	c.run() // success
	if len(newSet.healthyRRs()) != 1 {
		t.Errorf("new instance's value not served after recovery")
	}
	l := valueLabel{name, "A", "127.0.4.1"}
	if got := logs.lines(l.String() + " is now healthy"); len(got) != 1 {
		t.Errorf("recovery logged %d times %q, want once", len(got), got)
	}
	if v, _ := counterValue(t, "coredns_multivalue_transitions_total", map[string]string{"name": name, "value": "127.0.4.1", "to": "healthy"}); v != 1 {
		t.Errorf("transitions_total{to=healthy} = %v, want 1", v)
	}
}
