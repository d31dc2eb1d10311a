package multivalue

import (
	"sync"
	"time"
)

// combined is a source that decides from other sources, its members: all of
// a value's checks (allOf) or a calculated check's children. It probes
// nothing. While nobody watches it, it keeps nothing either: its verdict is
// computed from its members' whenever it is read. Once watched (a value is
// bound to it) it watches its members, so that it changes, and tells its own
// watchers, as soon as they do, and it keeps the time of its last change.
//
// A value builds its own combined sources (they are cheap); the checks they
// combine are the shared ones of the engine.
type combined struct {
	members []source
	// decide judges the members' verdicts, in members' order.
	decide func(vs []verdict) (healthy bool, reason string)
	// fixed: the verdict does not depend on the members' results (a
	// calculated check whose healthy_threshold is 0 or above its number of
	// children), so it is known from the start.
	fixed bool

	mu        sync.Mutex
	listeners int      // watchers
	unwatch   []func() // the members' watches, while watched
	healthy   bool     // the verdict's healthy, while watched
	since     time.Time

	w watchers
}

// verdict implements source.
func (c *combined) verdict() verdict {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.compute(c.listeners > 0)
}

// compute judges the members' verdicts now. With kept (watched), since is the
// time of the last change this source saw; else, or when the members have
// changed in a way not seen yet, the time of the members' latest change.
// Under mu.
func (c *combined) compute(kept bool) verdict {
	vs := make([]verdict, len(c.members))
	known := true
	var latest time.Time
	for i, m := range c.members {
		vs[i] = m.verdict()
		known = known && vs[i].known
		if vs[i].since.After(latest) {
			latest = vs[i].since
		}
	}
	healthy, reason := c.decide(vs)
	v := verdict{healthy: healthy, known: known || c.fixed, since: latest, reason: reason}
	if kept && healthy == c.healthy {
		v.since = c.since
	}
	return v
}

// watch implements source. The first watcher makes c watch its members; when
// the last one leaves, c stops watching them.
func (c *combined) watch(fn func()) (unwatch func()) {
	remove := c.w.add(fn)
	c.mu.Lock()
	c.listeners++
	if c.listeners == 1 {
		// Watch first, then read: a change after the read is seen by
		// update (which waits for mu), one before it by the read.
		for _, m := range c.members {
			c.unwatch = append(c.unwatch, m.watch(c.update))
		}
		v := c.compute(false)
		c.healthy, c.since = v.healthy, v.since
	}
	c.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			remove()
			c.mu.Lock()
			c.listeners--
			var members []func()
			if c.listeners == 0 {
				members, c.unwatch = c.unwatch, nil
			}
			c.mu.Unlock()
			for _, u := range members {
				u()
			}
		})
	}
}

// update runs when a member's verdict changed: when c's changes too, it
// records when and tells c's watchers.
func (c *combined) update() {
	c.mu.Lock()
	if c.listeners == 0 {
		c.mu.Unlock()
		return
	}
	v := c.compute(true)
	changed := v.healthy != c.healthy
	if changed {
		c.healthy, c.since = v.healthy, time.Now()
	}
	c.mu.Unlock()
	if changed {
		c.w.notify()
	}
}
