package multivalue

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestMetricsLint runs Prometheus's linter over every collector. A vector
// without a child exports nothing to lint, so each gets one for the test.
func TestMetricsLint(t *testing.T) {
	tests := []struct {
		name      string
		collector prometheus.Collector
		child     func()   // creates one series
		cleanup   func()   // deletes it again
		metric    []string // the family it exports
	}{
		{
			name:      "healthy",
			collector: defaultEngine.metrics.healthy,
			child:     func() { defaultEngine.metrics.healthy.WithLabelValues("lint.example.org.", "A", "127.0.0.1").Set(1) },
			cleanup:   func() { defaultEngine.metrics.healthy.DeleteLabelValues("lint.example.org.", "A", "127.0.0.1") },
			metric:    []string{"coredns_multivalue_healthy"},
		},
		{
			name:      "checks_total",
			collector: defaultEngine.metrics.checksTotal,
			child: func() {
				defaultEngine.metrics.checksTotal.WithLabelValues("lint.example.org:80", "http", "success").Inc()
			},
			cleanup: func() { defaultEngine.metrics.checksTotal.DeleteLabelValues("lint.example.org:80", "http", "success") },
			metric:  []string{"coredns_multivalue_checks_total"},
		},
		{
			name:      "check_duration_seconds",
			collector: defaultEngine.metrics.checkDuration,
			child: func() {
				defaultEngine.metrics.checkDuration.WithLabelValues("lint.example.org:80", "http").Observe(0.01)
			},
			cleanup: func() { defaultEngine.metrics.checkDuration.DeleteLabelValues("lint.example.org:80", "http") },
			metric:  []string{"coredns_multivalue_check_duration_seconds"},
		},
		{
			name:      "transitions_total",
			collector: defaultEngine.metrics.transitions,
			child: func() {
				defaultEngine.metrics.transitions.WithLabelValues("lint.example.org.", "A", "127.0.0.1", "unhealthy").Inc()
			},
			cleanup: func() {
				defaultEngine.metrics.transitions.DeleteLabelValues("lint.example.org.", "A", "127.0.0.1", "unhealthy")
			},
			metric: []string{"coredns_multivalue_transitions_total"},
		},
		{
			name:      "responses_total",
			collector: defaultEngine.metrics.responses,
			child: func() {
				defaultEngine.metrics.responses.WithLabelValues("dns://lint:53", "lint.example.org.", "", "healthy").Inc()
			},
			cleanup: func() {
				defaultEngine.metrics.responses.DeleteLabelValues("dns://lint:53", "lint.example.org.", "", "healthy")
			},
			metric: []string{"coredns_multivalue_responses_total"},
		},
		{
			name:      "overrides",
			collector: defaultEngine.metrics.overrides,
			child:     func() { defaultEngine.metrics.overrides.WithLabelValues("lint").Set(0) },
			cleanup:   func() { defaultEngine.metrics.overrides.DeleteLabelValues("lint") },
			metric:    []string{"coredns_multivalue_overrides"},
		},
		{
			name:      "last_transition_timestamp_seconds",
			collector: defaultEngine.metrics.lastChange,
			child: func() {
				defaultEngine.metrics.lastChange.WithLabelValues("lint.example.org.", "A", "127.0.0.1").Set(1e9)
			},
			cleanup: func() { defaultEngine.metrics.lastChange.DeleteLabelValues("lint.example.org.", "A", "127.0.0.1") },
			metric:  []string{"coredns_multivalue_last_transition_timestamp_seconds"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.child()
			defer tc.cleanup()
			if n := testutil.CollectAndCount(tc.collector, tc.metric...); n == 0 {
				t.Fatalf("collector exports no %v series to lint", tc.metric)
			}
			problems, err := testutil.CollectAndLint(tc.collector, tc.metric...)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range problems {
				t.Errorf("%s: %s", p.Metric, p.Text)
			}
		})
	}
}

// TestMetricsScrape runs a real CoreDNS against real backends and reads every
// series from the default registry, where the prometheus plugin scrapes them.
func TestMetricsScrape(t *testing.T) {
	slow(t)
	b1 := newBackend(t, "127.0.0.1")
	b2 := newBackend(t, "127.0.0.2")
	dead := closedAddr(t, "127.0.0.3")
	port := freeTCPPort(t)
	server := "dns://127.0.0.1:" + port

	s := startCoreDNS(t, fmt.Sprintf(`example.org:%s {
    bind 127.0.0.1
    multivalue {
        fallthrough sub.example.org.
        health_check web {
            interval 1s
            timeout 900ms
            failure_threshold 2
            success_threshold 2
        }
        health_check port {
            protocol tcp
            interval 1s
            timeout 900ms
        }
        records web A {
            health_check web
            127.0.0.1 {
                target %s
            }
            127.0.0.2 {
                target %s
            }
        }
        records down A {
            health_check web
            127.0.0.3 {
                target %s
            }
        }
        records web TXT {
            "metrics test" {
                health_check port
                target %s
            }
        }
    }
    whoami
}`, port, b1.addr, b2.addr, dead, b1.addr))
	waitFirstResults(t)

	healthy := func(name, typ, value string) labels {
		return labels{"name": name, "type": typ, "value": value}
	}
	// Values and their status after the first results.
	for _, tc := range []struct {
		labels labels
		want   float64
	}{
		{healthy("web.example.org.", "A", "127.0.0.1"), 1},
		{healthy("web.example.org.", "A", "127.0.0.2"), 1},
		{healthy("down.example.org.", "A", "127.0.0.3"), 0},
		{healthy("web.example.org.", "TXT", `"metrics test"`), 1},
	} {
		waitValue(t, "coredns_multivalue_healthy", tc.labels, tc.want)
	}
	// A first result that differs from the assumed healthy is a transition;
	// one that confirms it is not.
	waitValue(t, "coredns_multivalue_transitions_total", labels{"name": "down.example.org.", "type": "A", "value": "127.0.0.3", "to": "unhealthy"}, 1)
	if got := scrape(t, "coredns_multivalue_transitions_total").match(labels{"name": "web.example.org."}); len(got) != 0 {
		t.Errorf("transitions of values that stayed healthy: %v", got)
	}

	// Probes count up by target and protocol; the histogram sees each one.
	for _, tc := range []struct {
		target, protocol, result string
		never                    string // a result this target cannot have
	}{
		{b1.addr, "http", "success", ""},
		{b2.addr, "http", "success", ""},
		{dead, "http", "failure", "success"},
		{b1.addr, "tcp", "success", ""},
	} {
		l := labels{"target": tc.target, "protocol": tc.protocol, "result": tc.result}
		first := seriesValue(t, "coredns_multivalue_checks_total", l)
		if first < 1 {
			t.Fatalf("checks_total%v = %v after the first results, want >= 1", l, first)
		}
		if !eventually(10*time.Second, func() bool { return seriesValue(t, "coredns_multivalue_checks_total", l) > first }) {
			t.Errorf("checks_total%v stuck at %v", l, first)
		}
		if tc.never != "" {
			if got := scrape(t, "coredns_multivalue_checks_total").match(labels{"target": tc.target, "protocol": tc.protocol, "result": tc.never}); len(got) != 0 && got[0].value != 0 {
				t.Errorf("checks_total{%s,%s,%s} = %v, want 0", tc.target, tc.protocol, tc.never, got[0].value)
			}
		}
		count := seriesValue(t, "coredns_multivalue_check_duration_seconds", labels{"target": tc.target, "protocol": tc.protocol})
		if count < 1 {
			t.Errorf("check_duration_seconds{%s,%s} has no observation", tc.target, tc.protocol)
		}
	}

	// Every outcome of a query, counted once per query.
	for _, tc := range []struct {
		qname   string
		qtype   uint16
		rcode   int
		answers int // in the answer section
		extra   bool
		result  string
	}{
		{"WeB.Example.ORG.", dns.TypeA, dns.RcodeSuccess, 2, false, "healthy"},
		{"down.example.org.", dns.TypeA, dns.RcodeSuccess, 1, false, "all_unhealthy"}, // all_unhealthy serve
		{"web.example.org.", dns.TypeAAAA, dns.RcodeSuccess, 0, false, "nodata"},
		{"nope.example.org.", dns.TypeA, dns.RcodeNameError, 0, false, "nxdomain"},
		{"x.sub.example.org.", dns.TypeA, dns.RcodeSuccess, 0, true, "fallthrough"}, // whoami answers in the extra section
	} {
		r := s.query(t, "udp", tc.qname, tc.qtype)
		if r.Rcode != tc.rcode || len(r.Answer) != tc.answers || (len(r.Extra) > 0) != tc.extra {
			t.Errorf("%s %s: rcode %s with %d answers and %d extra, want %s with %d answers and extra %v", tc.qname, dns.TypeToString[tc.qtype],
				dns.RcodeToString[r.Rcode], len(r.Answer), len(r.Extra), dns.RcodeToString[tc.rcode], tc.answers, tc.extra)
		}
		l := labels{"server": server, "zone": "example.org.", "result": tc.result}
		if got := seriesValue(t, "coredns_multivalue_responses_total", l); got != 1 {
			t.Errorf("after one %s query: responses_total%v = %v, want 1", tc.result, l, got)
		}
	}

	// A backend dies: its value turns unhealthy, once; it comes back: healthy, once.
	v2 := healthy("web.example.org.", "A", "127.0.0.2")
	to := func(status string) labels {
		return labels{"name": "web.example.org.", "type": "A", "value": "127.0.0.2", "to": status}
	}
	b2.kill()
	waitValue(t, "coredns_multivalue_healthy", v2, 0)
	waitValue(t, "coredns_multivalue_transitions_total", to("unhealthy"), 1)
	if got := seriesValue(t, "coredns_multivalue_checks_total", labels{"target": b2.addr, "protocol": "http", "result": "failure"}); got < 2 {
		t.Errorf("checks_total failures of the dead backend = %v, want >= failure_threshold (2)", got)
	}
	b2.revive()
	waitValue(t, "coredns_multivalue_healthy", v2, 1)
	waitValue(t, "coredns_multivalue_transitions_total", to("healthy"), 1)
	if got := seriesValue(t, "coredns_multivalue_transitions_total", to("unhealthy")); got != 1 {
		t.Errorf("transitions to unhealthy = %v after recovery, want still 1", got)
	}

	// With the last instance gone, so are the series of its values and checks.
	s.stop()
	for _, tc := range []struct {
		metric string
		labels labels
	}{
		{"coredns_multivalue_healthy", labels{"name": "web.example.org."}},
		{"coredns_multivalue_healthy", labels{"name": "down.example.org."}},
		{"coredns_multivalue_transitions_total", labels{"name": "web.example.org."}},
		{"coredns_multivalue_transitions_total", labels{"name": "down.example.org."}},
		{"coredns_multivalue_checks_total", labels{"target": b1.addr}},
		{"coredns_multivalue_checks_total", labels{"target": b2.addr}},
		{"coredns_multivalue_checks_total", labels{"target": dead}},
		{"coredns_multivalue_check_duration_seconds", labels{"target": b1.addr}},
		{"coredns_multivalue_check_duration_seconds", labels{"target": dead}},
	} {
		if got := scrape(t, tc.metric).match(tc.labels); len(got) != 0 {
			t.Errorf("after shutdown %s still has %v", tc.metric, got)
		}
	}
}

// TestMetricsReload checks that a reload drops the series of the values and
// checks it removes and keeps, unchanged, those of the values it keeps, even
// though the old instance shuts down after the new one started.
func TestMetricsReload(t *testing.T) {
	b1 := newBackend(t, "127.0.0.1")
	b4 := newBackend(t, "127.0.0.4")
	b4.fail.Store(true)
	dead := closedAddr(t, "127.0.0.2")

	const checkTemplates = `
        health_check a {
            path /a
            interval 1s
            timeout 900ms
        }
        health_check b {
            path /b
            interval 1s
            timeout 900ms
        }`
	// 127.0.0.3 has a different check (path /b) on the same target and
	// protocol as 127.0.0.1: the two share the checks_total series.
	before := fmt.Sprintf(`example.org:0 {
    bind 127.0.0.1
    multivalue {%s
        records rl A {
            health_check a
            127.0.0.1 {
                target %s
            }
            127.0.0.2 {
                target %s
            }
            127.0.0.3 {
                health_check b
                target %s
            }
            127.0.0.4 {
                target %s
            }
        }
    }
}`, checkTemplates, b1.addr, dead, b1.addr, b4.addr)
	after := fmt.Sprintf(`example.org:0 {
    bind 127.0.0.1
    multivalue {%s
        records rl A {
            health_check a
            127.0.0.1 {
                target %s
            }
            127.0.0.4 {
                target %s
            }
        }
    }
}`, checkTemplates, b1.addr, b4.addr)

	s := startCoreDNS(t, before)
	waitFirstResults(t)
	rl := func(value string) labels { return labels{"name": "rl.example.org.", "type": "A", "value": value} }
	waitValue(t, "coredns_multivalue_healthy", rl("127.0.0.2"), 0)
	waitValue(t, "coredns_multivalue_healthy", rl("127.0.0.4"), 0)
	down4 := labels{"name": "rl.example.org.", "type": "A", "value": "127.0.0.4", "to": "unhealthy"}
	waitValue(t, "coredns_multivalue_transitions_total", down4, 1)
	fail4 := labels{"target": b4.addr, "protocol": "http", "result": "failure"}
	failuresBefore := seriesValue(t, "coredns_multivalue_checks_total", fail4)

	if err := s.reload(after); err != nil {
		t.Fatalf("reload: %v", err)
	}

	// Series of the dropped values and of the check only they used are gone.
	for _, tc := range []struct {
		metric string
		labels labels
	}{
		{"coredns_multivalue_healthy", rl("127.0.0.2")},
		{"coredns_multivalue_healthy", rl("127.0.0.3")},
		{"coredns_multivalue_transitions_total", rl("127.0.0.2")},
		{"coredns_multivalue_checks_total", labels{"target": dead}},
		{"coredns_multivalue_check_duration_seconds", labels{"target": dead}},
	} {
		if got := scrape(t, tc.metric).match(tc.labels); len(got) != 0 {
			t.Errorf("after the reload dropped it, %s still has %v", tc.metric, got)
		}
	}
	// Series of the kept values survive with their state.
	for _, tc := range []struct {
		metric string
		labels labels
		want   float64
	}{
		{"coredns_multivalue_healthy", rl("127.0.0.1"), 1},
		{"coredns_multivalue_healthy", rl("127.0.0.4"), 0},
		{"coredns_multivalue_transitions_total", down4, 1},
	} {
		if got, ok := scrape(t, tc.metric).one(tc.labels); !ok || got != tc.want {
			t.Errorf("after the reload %s%v = %v (present %v), want %v", tc.metric, tc.labels, got, ok, tc.want)
		}
	}
	if got := seriesValue(t, "coredns_multivalue_checks_total", fail4); got < failuresBefore {
		t.Errorf("checks_total%v went from %v to %v across the reload", fail4, failuresBefore, got)
	}
	// The check on path /a still feeds the series it shared with the dropped
	// check on path /b.
	ok1 := labels{"target": b1.addr, "protocol": "http", "result": "success"}
	n, present := scrape(t, "coredns_multivalue_checks_total").one(ok1)
	if !present {
		t.Fatalf("checks_total%v deleted with the dropped check on the same target", ok1)
	}
	if !eventually(10*time.Second, func() bool { v, _ := scrape(t, "coredns_multivalue_checks_total").one(ok1); return v > n }) {
		t.Errorf("checks_total%v stuck at %v after the reload", ok1, n)
	}
	if _, present := scrape(t, "coredns_multivalue_check_duration_seconds").one(labels{"target": b1.addr, "protocol": "http"}); !present {
		t.Errorf("check_duration_seconds of %s deleted with the dropped check on the same target", b1.addr)
	}

	s.stop()
	for _, metric := range []string{"coredns_multivalue_checks_total", "coredns_multivalue_check_duration_seconds"} {
		for _, target := range []string{b1.addr, b4.addr} {
			if got := scrape(t, metric).match(labels{"target": target}); len(got) != 0 {
				t.Errorf("after the last instance stopped, %s still has %v", metric, got)
			}
		}
	}
	for _, metric := range []string{"coredns_multivalue_healthy", "coredns_multivalue_transitions_total"} {
		if got := scrape(t, metric).match(labels{"name": "rl.example.org."}); len(got) != 0 {
			t.Errorf("after the last instance stopped, %s still has %v", metric, got)
		}
	}
}

// waitValue waits until the only series of name matching l has value want.
func waitValue(t *testing.T, name string, l labels, want float64) {
	t.Helper()
	if !eventually(10*time.Second, func() bool { v, ok := scrape(t, name).one(l); return ok && v == want }) {
		t.Fatalf("%s%v: want %v, have %v", name, l, want, scrape(t, name).match(l))
	}
}

// closedAddr returns ip:port where nothing listens: probes get connection
// refused.
func closedAddr(t *testing.T, ip string) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestCountTransition: a transition counts while an instance exports the
// value, and does not bring back the series of a value no instance has.
func TestCountTransition(t *testing.T) {
	l := valueLabel{"late.example.org.", "A", "127.0.0.1"}
	series := labels{"name": l.name, "type": l.typ, "value": l.value, "to": "unhealthy"}
	src := &fixedSource{}
	src.set(true)
	st := defaultEngine.metrics.acquireValue(l, src.verdict())
	src.set(false)
	st.update(src)
	if got, ok := scrape(t, "coredns_multivalue_transitions_total").one(series); !ok || got != 1 {
		t.Fatalf("transition of a live value: %v (present %v), want 1", got, ok)
	}
	defaultEngine.metrics.releaseValue(st)
	src.set(true)
	st.update(src) // a probe that ended after the shutdown
	if got := scrape(t, "coredns_multivalue_transitions_total").match(labels{"name": l.name}); len(got) != 0 {
		t.Errorf("a late transition brought back %v", got)
	}
	if got := scrape(t, "coredns_multivalue_healthy").match(labels{"name": l.name}); len(got) != 0 {
		t.Errorf("released value still has %v", got)
	}
}
