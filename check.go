package multivalue

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// check is one running health check, shared by every value (of every server
// block, and of both instances alive across a reload) with the same target and
// settings. It is a source: its verdict is its threshold machine's status.
type check struct {
	spec   *checkSpec
	target string
	prober prober

	inflight atomic.Bool // at most one probe at a time

	ctx    context.Context // cancelled when the last user releases the check
	cancel context.CancelFunc

	// Owned by the scheduler, under its mu.
	next   time.Time
	probed bool // its first probe has been dispatched
	index  int  // in the scheduler's heap; -1 when not in it

	// Owned by the check table, under its mu.
	refs int

	mu     sync.Mutex
	status thresholds
	since  time.Time // last change of status
	reason string    // the last result's reason, with the check's description

	lastProbe time.Time // when the last result came (for a restored check, the saved one's); zero before the first
	lastOK    bool      // the last result, after invert
	restored  bool      // the status comes from the state file and no probe has answered since

	watchers watchers

	successes, failures prometheus.Counter
	duration            prometheus.Observer
}

// newCheck builds a check that is not scheduled yet; its metrics series come
// from ms.
func newCheck(s *checkSpec, p prober, ms *metricSet) *check {
	c := &check{
		spec:   s,
		target: s.target(),
		prober: p,
		index:  -1,
		status: thresholds{healthy: true},
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.successes, c.failures, c.duration = ms.checkSeries(c.target, s.protocol)
	return c
}

// verdict implements source.
func (c *check) verdict() verdict {
	c.mu.Lock()
	defer c.mu.Unlock()
	return verdict{healthy: c.status.healthy, known: c.status.known, since: c.since, reason: c.reason}
}

// watch implements source.
func (c *check) watch(fn func()) (unwatch func()) { return c.watchers.add(fn) }

// isHealthy and hasResult are the verdict's two flags.
func (c *check) isHealthy() bool { return c.verdict().healthy }
func (c *check) hasResult() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status.known && !c.restored // a status restored from the state file is not a result
}

// seed starts a new check from the status another check with the same probe
// knows (a reload that changed only timing or thresholds).
func (c *check) seed(v verdict) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.status = thresholds{healthy: v.healthy, known: v.known}
	c.since, c.reason = v.since, v.reason
}

// run does one probe and records its result, and reports whether a
// transition is now pending: the result contradicted the status without
// changing it yet (the scheduler then probes every fast_interval). The
// scheduler has set inflight.
func (c *check) run() (pending bool) {
	defer c.inflight.Store(false)
	ctx, cancel := context.WithTimeout(c.ctx, c.spec.timeout)
	start := time.Now()
	ok, reason := c.prober.probe(ctx)
	elapsed := time.Since(start)
	cancel()
	if c.ctx.Err() != nil {
		return false // the check was removed while probing: the result belongs to no one
	}
	c.duration.Observe(elapsed.Seconds())
	if ok {
		c.successes.Inc()
	} else {
		c.failures.Inc()
	}
	if c.spec.invert {
		ok, reason = !ok, "inverted: "+reason
	}
	return c.record(ok, reason)
}

// record feeds one result to the threshold machine and, when the status
// changes, tells the watchers. It reports whether a transition is pending.
func (c *check) record(ok bool, reason string) (pending bool) {
	c.mu.Lock()
	c.reason = reason + " (" + c.spec.describe() + ")"
	c.lastProbe, c.lastOK, c.restored = time.Now(), ok, false
	changed := c.status.observe(ok, c.spec.failureThreshold, c.spec.successThreshold)
	if changed {
		c.since = time.Now()
	}
	pending = c.status.streak > 0
	c.mu.Unlock()
	if changed {
		c.watchers.notify()
	}
	return pending
}
