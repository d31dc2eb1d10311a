package multivalue

import (
	"sync"

	"github.com/miekg/dns"
)

// lifecycle is whether an instance has started and stopped.
type lifecycle struct {
	mu      sync.Mutex
	started bool
	stopped bool
}

// reloading tracks the instances a reload in progress has started. Caddy
// runs the new instance's OnStartup before it opens the new listeners, and
// when that fails (an address in use) or a later OnStartup does, it discards
// the new instance without running its OnShutdown: what it acquired would
// probe for ever. restartFailed, run from the old instance's OnRestartFailed,
// stops them; the old instance's OnShutdown, which runs only when the reload
// succeeded, forgets them.
var reloading struct {
	sync.Mutex
	active  bool
	started []*Multivalue
}

// restarting runs in the running instance's OnRestart, before the new
// instance is set up: what starts from now on belongs to the new one.
func (m *Multivalue) restarting() error {
	reloading.Lock()
	defer reloading.Unlock()
	reloading.active, reloading.started = true, nil
	return nil
}

// restartFailed runs in the running instance's OnRestartFailed: the new
// instance is discarded, so stop what it started. The running instance,
// started before the reload, is not among them and keeps its checks.
func (m *Multivalue) restartFailed() error {
	reloading.Lock()
	started := reloading.started
	reloading.active, reloading.started = false, nil
	reloading.Unlock()
	for _, n := range started {
		n.stop()
	}
	return nil
}

// newMultivalue builds the handler from a parsed config. It starts nothing,
// but it reads the registry so that a reloaded instance serves the status its
// predecessor's checks already know from its first query on.
func newMultivalue(cfg *config) *Multivalue {
	m := &Multivalue{
		zones:      cfg.zones,
		nodes:      map[string]*node{},
		maxAnswers: cfg.maxAnswers,
		fallback:   cfg.allUnhealthy,
		fall:       cfg.fall,
		sets:       cfg.sets,
		soa:        make([]soaCache, len(cfg.zones)),
	}
	m.responses.zones = cfg.zones
	for _, z := range cfg.zones {
		m.addName(z) // the apex exists
	}
	for _, s := range cfg.sets {
		s.fallback = cfg.allUnhealthy
		m.addName(s.name)
		n := m.nodes[s.name]
		n.sets = append(n.sets, s)
		for _, v := range s.values {
			if v.spec != nil {
				v.check = checks.lookup(v.spec.key())
			}
		}
		s.refresh()
	}
	return m
}

// addName makes name exist here, and every name between it and the top of
// the zones it lies in: the empty non-terminals, also between two nested
// zones (b.example.org. for x.a.b.example.org. with zones example.org. and
// a.b.example.org.).
func (m *Multivalue) addName(name string) {
	top := ""
	for _, z := range m.zones {
		if inZone(name, z) && (top == "" || len(z) < len(top)) {
			top = z
		}
	}
	for {
		if m.nodes[name] == nil {
			m.nodes[name] = &node{}
		}
		if name == top {
			return
		}
		// Up one label; below the root the last step ends the string.
		off, end := dns.NextLabel(name, 0)
		if end {
			name = "."
		} else {
			name = name[off:]
		}
	}
}

// start acquires the instance's checks (starting those that are new) and binds
// its values to them. Runs in OnStartup, before the servers accept queries.
func (m *Multivalue) start() error {
	m.life.mu.Lock()
	defer m.life.mu.Unlock()
	if m.life.started {
		return nil
	}
	m.life.started = true
	reloading.Lock()
	if reloading.active {
		reloading.started = append(reloading.started, m)
	}
	reloading.Unlock()
	for _, s := range m.sets {
		for _, v := range s.values {
			l := s.label(v)
			gauge := acquireValueSeries(l)
			var c *check
			if v.spec != nil {
				c = checks.acquire(v.spec)
				c.subscribe(s, l)
			}
			s.mu.Lock()
			v.check, v.gauge = c, gauge
			s.mu.Unlock()
		}
		s.refresh()
	}
	return nil
}

// stop releases the instance's checks; those no other instance uses stop, and
// with the last one the scheduler ends. Runs in OnShutdown, which on a reload
// comes after the new instance's start.
func (m *Multivalue) stop() error {
	m.life.mu.Lock()
	defer m.life.mu.Unlock()
	if !m.life.started || m.life.stopped {
		return nil
	}
	m.life.stopped = true
	// Shutting down after a reload means the reload succeeded: what it
	// started is the running instance now. (A shutdown by restartFailed
	// finds reloading already cleared.)
	reloading.Lock()
	reloading.active, reloading.started = false, nil
	reloading.Unlock()
	for _, s := range m.sets {
		for _, v := range s.values {
			l := s.label(v)
			s.mu.Lock()
			c := v.check
			v.gauge = nil
			s.mu.Unlock()
			if c != nil && v.spec != nil {
				c.unsubscribe(s, l)
				checks.release(c)
			}
			releaseValueSeries(l)
		}
	}
	return nil
}

// Ready implements ready.Readiness: ready once every running check, of every
// server block, has a first result. The ready plugin keeps one Readiness per
// plugin name, so with multivalue in several server blocks it asks only one
// of them: each must answer for all.
func (m *Multivalue) Ready() bool {
	m.life.mu.Lock()
	running := m.life.started && !m.life.stopped
	m.life.mu.Unlock()
	if !running {
		return false
	}
	return checks.allHaveResults()
}
