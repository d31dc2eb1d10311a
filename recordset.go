package multivalue

import (
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"
)

// recordSet is one `records NAME TYPE` block: its values, fixed at setup, and
// an immutable snapshot of what a query may pick from, which queries read
// without a lock.
type recordSet struct {
	name     string // fully qualified, lower case
	zone     string // the zone of ZONES the name lies in
	qtype    uint16
	typeName string
	values   []*value // canonical (RFC 4034 section 6.3) order
	all      []dns.RR // every value's RR, canonical order; read only

	fallback fallback // all_unhealthy, for the warning when the last value goes
	selector selector // how an answer is picked from the snapshot

	snap atomic.Pointer[snapshot] // replaced, never changed

	requested atomic.Uint64 // refreshes asked for
	mu        sync.Mutex    // serialises refresh and bind; never taken by a query
	built     uint64        // refreshes a rebuild has covered; under mu
	rebuilds  int           // how many rebuilds ran; under mu
}

// snapshot is what a query reads of a set: the candidates for an answer, with
// everything a selector needs computed when health changed, not per query.
type snapshot struct {
	healthy  []candidate // the healthy values, canonical order
	fallback []candidate // what all_unhealthy serve picks from: every value
}

func (s *recordSet) label(v *value) valueLabel { return valueLabel{s.name, s.typeName, v.text} }

// value is one RDATA of a set and the source that decides whether it is served.
type value struct {
	rr   dns.RR     // owner = set name, TTL = set TTL; never changed after setup
	text string     // the RDATA as zone-file text: logs and the value label
	spec *checkSpec // nil: no health check, always healthy

	// Guarded by the set's mu.
	src     source      // decides the value's health; nil: alwaysHealthy
	check   *check      // the check the value holds while its instance runs
	state   *valueState // its gauge, transitions and logs while its instance runs
	unwatch func()
}

// verdict is the value's effective verdict.
func (v *value) verdict() verdict {
	if v.src == nil {
		return alwaysHealthy{}.verdict()
	}
	return v.src.verdict()
}

// refresh rebuilds the snapshot. Called on every transition of any of the
// set's values, and when values are bound at start. When it returns, the
// snapshot reflects every status set before the call.
//
// Rebuilds are batched: when 10,000 checks of one set fail at once, the calls
// queue on mu, and a rebuild that began after a call was made covers it, so
// the set is rebuilt a few times rather than once per transition (which cost
// O(values²)).
func (s *recordSet) refresh() {
	want := s.requested.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.built >= want {
		return
	}
	s.built = s.requested.Load() // statuses are read below, after this
	s.rebuilds++
	next := &snapshot{healthy: make([]candidate, 0, len(s.values))}
	if old := s.snap.Load(); old != nil {
		next.fallback = old.fallback
	} else {
		next.fallback = make([]candidate, len(s.values))
		for i, v := range s.values {
			next.fallback[i] = candidate{rr: v.rr}
		}
	}
	for _, v := range s.values {
		if vd := v.verdict(); vd.healthy {
			next.healthy = append(next.healthy, candidate{rr: v.rr, since: vd.since})
		}
	}
	if old := s.snap.Load(); old != nil && len(old.healthy) > 0 && len(next.healthy) == 0 {
		log.Warningf("%s %s has no healthy value: all_unhealthy %s applies", s.name, s.typeName, fallbackNames[s.fallback])
	} else if old != nil && len(old.healthy) == 0 && len(next.healthy) > 0 {
		log.Infof("%s %s has a healthy value again", s.name, s.typeName)
	}
	s.snap.Store(next)
}

// snapshot returns what a query may pick from.
func (s *recordSet) snapshot() *snapshot { return s.snap.Load() }

// healthyRRs returns the healthy values' RRs, for tests and logs.
func (s *recordSet) healthyRRs() []dns.RR {
	snap := s.snap.Load()
	rrs := make([]dns.RR, len(snap.healthy))
	for i, c := range snap.healthy {
		rrs[i] = c.rr
	}
	return rrs
}

// bind makes src (nil: alwaysHealthy) decide v's health, with c the check v
// holds (nil for none) and st (nil for none) its state, and watches src: each
// change updates the value's state and rebuilds the set. A previous binding's
// watch ends.
func (s *recordSet) bind(v *value, src source, c *check, st *valueState) {
	if src == nil {
		src = alwaysHealthy{}
	}
	s.mu.Lock()
	old := v.unwatch
	v.src, v.check, v.state = src, c, st
	v.unwatch = src.watch(func() {
		if st != nil {
			st.update(src)
		}
		s.refresh()
	})
	s.mu.Unlock()
	if old != nil {
		old()
	}
	if st != nil {
		st.update(src)
	}
}

// unbind ends v's binding and returns what it held, for the caller to release.
func (s *recordSet) unbind(v *value) (*check, *valueState) {
	s.mu.Lock()
	unwatch, c, st := v.unwatch, v.check, v.state
	v.unwatch, v.check, v.state = nil, nil, nil
	s.mu.Unlock()
	if unwatch != nil {
		unwatch()
	}
	return c, st
}
