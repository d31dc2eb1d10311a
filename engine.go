package multivalue

import (
	"net"

	"github.com/prometheus/client_golang/prometheus"
)

// engine is the health checking that multivalue instances share: the check
// table, the scheduler that probes its checks, the metrics, and how probes
// dial. An instance is handed one; the process has defaultEngine, shared by
// every server block and kept across reloads. A test builds its own, with its
// own dialer and registry, to run two replicas in one process.
type engine struct {
	table   *checkTable
	sched   *scheduler
	metrics *metricSet
	// dialer is copied by every new check's prober: its Resolver resolves
	// host-name targets at probe time (nil: the system's), its Control vets
	// every address a probe connects to (nil in production; the tests refuse
	// anything outside loopback).
	dialer net.Dialer

	ops     *operations // overrides, the state file, the running instances (operations.go)
	cluster clusterHub  // the etcd members of instances with `cluster`
}

// defaultEngine is the process's: its metrics are where CoreDNS's prometheus
// plugin exports from.
var defaultEngine = newEngine(prometheus.DefaultRegisterer)

func newEngine(reg prometheus.Registerer) *engine {
	e := &engine{table: newCheckTable(), sched: &scheduler{}, metrics: newMetricSet(reg)}
	e.ops = newOperations(e)
	return e
}

// acquire returns the running check for s, starting it if it is new.
func (e *engine) acquire(s *checkSpec) *check {
	c, created := e.table.acquire(s, func() *check {
		c := newCheck(s, newProber(s, e.dialer), e.metrics)
		e.ops.restore(c) // its saved status, if the state file has one
		return c
	})
	if created {
		c.watch(e.ops.changed) // the state file saves every change of status
		e.sched.add(c)
	}
	return c
}

// release drops one use of c; the last one stops it and drops its series.
// Releasing the last check of the engine waits for the scheduler and every
// probe to end.
func (e *engine) release(c *check) {
	if last, _ := e.table.release(c); !last {
		return
	}
	e.sched.remove(c)
	e.metrics.releaseCheck(c.target, c.spec.protocol)
}
