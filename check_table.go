package multivalue

import "sync"

// checkTable holds the running checks of one engine by key, counted: every
// value with the same target and settings, in any server block, shares one
// check. CoreDNS starts a reloaded instance before it shuts down the old one,
// so a check both use lives on with its status, and a check only the old one
// used stops when it shuts down.
type checkTable struct {
	mu     sync.Mutex
	checks map[checkKey]*check

	// The running checks by what their probe does (probeKey: the key without
	// timing and thresholds), so that a check replaced by a reload that only
	// changed those starts from the status its predecessor knew.
	byProbe map[checkKey]map[*check]bool
}

func newCheckTable() *checkTable {
	return &checkTable{checks: map[checkKey]*check{}, byProbe: map[checkKey]map[*check]bool{}}
}

// lookup returns the running check for a key, else a running check with the
// same probe that has a result (its status is what a new check for k will
// start from), or nil. It starts nothing.
func (t *checkTable) lookup(k checkKey) *check {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c := t.checks[k]; c != nil {
		return c
	}
	return t.sibling(k)
}

// sibling returns a running check with k's probe and a result, or nil.
func (t *checkTable) sibling(k checkKey) *check {
	for o := range t.byProbe[probeKey(k)] {
		if o.hasResult() {
			return o
		}
	}
	return nil
}

// acquire returns the check for s, counting the use. A new one is built by
// build, seeded from a sibling's status, and reported as created: the caller
// schedules it.
func (t *checkTable) acquire(s *checkSpec, build func() *check) (c *check, created bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := s.key()
	if c = t.checks[k]; c == nil {
		c, created = build(), true
		// A reload that changed only the interval, timeout or thresholds
		// of a check starts a new one while the old still runs: take over
		// its status rather than serve a value known to be down until the
		// first probe.
		if o := t.sibling(k); o != nil {
			c.seed(o.verdict())
		}
		t.checks[k] = c
		pk := probeKey(k)
		if t.byProbe[pk] == nil {
			t.byProbe[pk] = map[*check]bool{}
		}
		t.byProbe[pk][c] = true
	}
	c.refs++
	return c, created
}

// release drops one use of c and reports whether it was the last: the caller
// then stops it. left is how many checks still run.
func (t *checkTable) release(c *check) (last bool, left int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c.refs--; c.refs > 0 {
		return false, len(t.checks)
	}
	k := c.spec.key()
	delete(t.checks, k)
	pk := probeKey(k)
	if delete(t.byProbe[pk], c); len(t.byProbe[pk]) == 0 {
		delete(t.byProbe, pk)
	}
	return true, len(t.checks)
}

// allHaveResults reports whether every running check has a first result.
func (t *checkTable) allHaveResults() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.checks {
		if !c.hasResult() {
			return false
		}
	}
	return true
}

// len is how many checks run.
func (t *checkTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.checks)
}

// each calls fn for every running check, under the table's lock.
func (t *checkTable) each(fn func(*check)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.checks {
		fn(c)
	}
}

// probeKey is k without the settings that change when a check probes and how
// many results it takes to turn, but not what one probe finds.
func probeKey(k checkKey) checkKey {
	k.interval, k.fastInterval, k.timeout, k.failureThreshold, k.successThreshold = 0, 0, 0, 0, 0
	return k
}
