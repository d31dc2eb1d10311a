package multivalue

import (
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestTwoEnginesInOneProcess runs two replicas of the same Corefile in one
// process, each with its own engine: its own check table, scheduler, metrics
// registry and dialer. Replica "broken" cannot reach the backend (its dialer
// refuses every address, as a replica whose own network is down), replica
// "fine" can: each decides alone, and stopping one leaves the other probing.
func TestTwoEnginesInOneProcess(t *testing.T) {
	b := newBackend(t, "127.0.0.1")
	corefile := fmt.Sprintf(`multivalue {
    health_check web {
        port %s
        interval 100ms
        timeout 50ms
        failure_threshold 1
    }
    records www A {
        health_check web
        127.0.0.1
    }
}`, b.port())
	errBroken := errors.New("replica's network is down")
	replica := func(broken bool) (*Multivalue, *engine, *prometheus.Registry) {
		reg := prometheus.NewRegistry()
		e := newEngine(reg)
		e.dialer = defaultEngine.dialer // the test binary's loopback guard
		if broken {
			e.dialer.Control = func(string, string, syscall.RawConn) error { return errBroken }
		}
		c := caddy.NewTestController("dns", corefile)
		c.ServerBlockKeys = []string{"example.org."}
		cfg, err := parse(c)
		if err != nil {
			t.Fatal(err)
		}
		m := newMultivalue(cfg, e)
		if err := m.start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.stop() })
		return m, e, reg
	}
	fine, fineEngine, fineReg := replica(false)
	broken, brokenEngine, brokenReg := replica(true)

	if !eventually(5*time.Second, func() bool { return fine.Ready() && broken.Ready() }) {
		t.Fatal("replicas not ready after 5s")
	}
	set := func(m *Multivalue) *recordSet { return m.nodes["www.example.org."].set(1) }
	if got := len(set(fine).healthyRRs()); got != 1 {
		t.Errorf("replica that reaches the backend serves %d healthy values, want 1", got)
	}
	if got := len(set(broken).healthyRRs()); got != 0 {
		t.Errorf("replica that cannot reach it serves %d healthy values, want 0", got)
	}
	if fineEngine.table.len() != 1 || brokenEngine.table.len() != 1 {
		t.Errorf("checks running: %d and %d, want one each", fineEngine.table.len(), brokenEngine.table.len())
	}
	healthy := func(reg *prometheus.Registry) float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "coredns_multivalue_healthy" && len(mf.Metric) == 1 {
				return mf.Metric[0].GetGauge().GetValue()
			}
		}
		t.Fatal("no single coredns_multivalue_healthy series in the replica's registry")
		return -1
	}
	if h, b := healthy(fineReg), healthy(brokenReg); h != 1 || b != 0 {
		t.Errorf("healthy gauge: %v in the fine replica, %v in the broken one; want 1 and 0", h, b)
	}

	// Stopping one replica stops its checks only.
	broken.stop()
	if !brokenEngine.sched.idle() || brokenEngine.table.len() != 0 {
		t.Error("the stopped replica's engine still has checks or a scheduler")
	}
	if n := testutil.CollectAndCount(brokenEngine.metrics.checksTotal); n != 0 {
		t.Errorf("the stopped replica still exports %d checks_total series", n)
	}
	before := testutil.ToFloat64(fineEngine.metrics.checksTotal.WithLabelValues(b.addr, "http", "success"))
	if !eventually(5*time.Second, func() bool {
		return testutil.ToFloat64(fineEngine.metrics.checksTotal.WithLabelValues(b.addr, "http", "success")) > before
	}) {
		t.Error("the other replica stopped probing")
	}
}
