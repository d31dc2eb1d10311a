package multivalue

import (
	"sync"
	"sync/atomic"
	"time"

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
	maxRdlen int      // the longest value's RDATA on the wire: how many fit over UDP

	fallback fallback  // all_unhealthy, for the warning when the last value goes
	opts     selection // how answers are picked

	snap atomic.Pointer[snapshot] // replaced, never changed

	requested atomic.Uint64 // refreshes asked for
	mu        sync.Mutex    // serialises refresh and bind; never taken by a query
	built     uint64        // refreshes a rebuild has covered; under mu
	rebuilds  int           // how many rebuilds ran; under mu
}

func (s *recordSet) label(v *value) valueLabel { return valueLabel{s.name, s.typeName, v.text} }

// value is one RDATA of a set and the source that decides whether it is served.
type value struct {
	rr    dns.RR       // owner = set name, TTL = set TTL; never changed after setup
	text  string       // the RDATA as zone-file text: logs and the value label
	specs []*checkSpec // its health checks, healthy when all are; none: always healthy

	weight int    // 0 to 255: 0 is a standby
	tier   int    // 1 to 255: lower tiers are served first
	drain  bool   // never served; its check runs on
	hash   uint64 // of its canonical RDATA: its place in sticky (rendezvous) answers

	// Guarded by the set's mu.
	src     source      // decides the value's health; nil: alwaysHealthy
	checks  []*check    // the checks the value holds while its instance runs
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
	next := buildSnapshot(s.values, &s.opts, time.Now())
	if old := s.snap.Load(); old != nil {
		s.logChange(old, next)
	}
	s.snap.Store(next)
}

// logChange logs, once per episode, that a set has no healthy value or is in
// panic, and when that ends.
func (s *recordSet) logChange(old, next *snapshot) {
	switch {
	case !old.drained && len(old.cands) > 0 && !next.drained && len(next.cands) == 0:
		log.Warningf("%s %s has no healthy value: all_unhealthy %s applies", s.name, s.typeName, fallbackNames[s.fallback])
	case !old.drained && len(old.cands) == 0 && len(next.cands) > 0:
		log.Infof("%s %s has a healthy value again", s.name, s.typeName)
	}
	switch {
	case !old.panic && next.panic:
		log.Warningf("%s %s: fewer than %d%% of its values are healthy, below panic_threshold: the checks are not trusted, every value is served",
			s.name, s.typeName, s.opts.panicThreshold)
	case old.panic && !next.panic && !next.drained:
		log.Infof("%s %s: enough values are healthy again, panic_threshold no longer applies", s.name, s.typeName)
	}
}

// snapshot returns what a query may pick from.
func (s *recordSet) snapshot() *snapshot { return s.snap.Load() }

// healthyRRs returns the healthy values' RRs, for tests and logs.
func (s *recordSet) healthyRRs() []dns.RR {
	snap := s.snap.Load()
	rrs := make([]dns.RR, len(snap.cands))
	for i, c := range snap.cands {
		rrs[i] = c.rr
	}
	return rrs
}

// bind makes src (nil: alwaysHealthy) decide v's health, with checks the
// checks v holds and st (nil for none) its state, and watches src: each
// change updates the value's state and rebuilds the set. A previous binding's
// watch ends.
func (s *recordSet) bind(v *value, src source, checks []*check, st *valueState) {
	if src == nil {
		src = alwaysHealthy{}
	}
	s.mu.Lock()
	old := v.unwatch
	v.src, v.checks, v.state = src, checks, st
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
func (s *recordSet) unbind(v *value) ([]*check, *valueState) {
	s.mu.Lock()
	unwatch, checks, st := v.unwatch, v.checks, v.state
	v.unwatch, v.checks, v.state = nil, nil, nil
	s.mu.Unlock()
	if unwatch != nil {
		unwatch()
	}
	return checks, st
}
