package multivalue

import (
	"sync"

	"github.com/miekg/dns"
)

// lifecycle is what an instance holds while it runs: the checks it acquired.
type lifecycle struct {
	mu      sync.Mutex
	started bool
	stopped bool
	checks  []*check // distinct, for Ready
}

// newMultivalue builds the handler from a parsed config. It starts nothing,
// but it reads the registry so that a reloaded instance serves the status its
// predecessor's checks already know from its first query on.
func newMultivalue(cfg *config) *Multivalue {
	m := &Multivalue{
		zones:      cfg.zones,
		nodes:      map[string]*node{},
		maxAnswers: cfg.maxAnswers,
		policy:     cfg.allUnhealthy,
		fall:       cfg.fall,
		sets:       cfg.sets,
		soa:        make([]soaCache, len(cfg.zones)),
	}
	m.responses.zones = cfg.zones
	for _, z := range cfg.zones {
		m.nodes[z] = &node{} // the apex exists
	}
	for _, s := range cfg.sets {
		s.policy = cfg.allUnhealthy
		// The name and every empty non-terminal between it and its zone exist.
		for name := s.name; ; {
			if m.nodes[name] == nil {
				m.nodes[name] = &node{}
			}
			if name == s.zone {
				break
			}
			off, _ := dns.NextLabel(name, 0)
			name = name[off:]
		}
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

// start acquires the instance's checks (starting those that are new) and binds
// its values to them. Runs in OnStartup, before the servers accept queries.
func (m *Multivalue) start() error {
	m.life.mu.Lock()
	defer m.life.mu.Unlock()
	if m.life.started {
		return nil
	}
	m.life.started = true
	seen := map[*check]bool{}
	for _, s := range m.sets {
		for _, v := range s.values {
			l := s.label(v)
			gauge := acquireValueSeries(l)
			var c *check
			if v.spec != nil {
				c = checks.acquire(v.spec)
				c.subscribe(s, l)
				if !seen[c] {
					seen[c] = true
					m.life.checks = append(m.life.checks, c)
				}
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

// Ready implements ready.Readiness: ready once every check has a first result.
func (m *Multivalue) Ready() bool {
	m.life.mu.Lock()
	defer m.life.mu.Unlock()
	if !m.life.started || m.life.stopped {
		return false
	}
	for _, c := range m.life.checks {
		if !c.hasResult.Load() {
			return false
		}
	}
	return true
}
