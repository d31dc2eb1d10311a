package multivalue

import (
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// recordSet is one `records NAME TYPE` block: its values, fixed at setup, and
// an immutable snapshot of the healthy ones that queries read without a lock.
type recordSet struct {
	name     string // fully qualified, lower case
	zone     string // the zone of ZONES the name lies in
	qtype    uint16
	typeName string
	values   []*value                 // canonical (RFC 4034 section 6.3) order
	all      []dns.RR                 // every value's RR, canonical order; read only
	healthy  atomic.Pointer[[]dns.RR] // healthy values' RRs, canonical order; replaced, never changed

	fallback fallback // all_unhealthy, for the warning when the last value goes

	requested atomic.Uint64 // refreshes asked for
	mu        sync.Mutex    // serialises refresh and bind; never taken by a query
	built     uint64        // refreshes a rebuild has covered; under mu
	rebuilds  int           // how many rebuilds ran; under mu
}

func (s *recordSet) label(v *value) valueLabel { return valueLabel{s.name, s.typeName, v.text} }

// value is one RDATA of a set and the check that decides whether it is served.
type value struct {
	rr   dns.RR     // owner = set name, TTL = set TTL; never changed after setup
	text string     // the RDATA as zone-file text: logs and the value label
	spec *checkSpec // nil: no health check, always healthy

	// Guarded by the set's mu.
	check *check           // the running check, nil before start or without a check
	gauge prometheus.Gauge // coredns_multivalue_healthy for this value, nil before start
}

// healthy reports the value's status; a value counts as healthy until its
// check has a first result.
func (v *value) healthy() bool { return v.check == nil || v.check.isHealthy() }

// refresh rebuilds the healthy snapshot. Called on every transition of any of
// the set's checks, and when checks are bound at start. When it returns, the
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
	healthy := make([]dns.RR, 0, len(s.values))
	for _, v := range s.values {
		ok := v.healthy()
		if ok {
			healthy = append(healthy, v.rr)
		}
		if v.gauge != nil {
			v.gauge.Set(boolFloat(ok))
		}
	}
	if old := s.healthy.Load(); old != nil && len(*old) > 0 && len(healthy) == 0 {
		log.Warningf("%s %s has no healthy value: all_unhealthy %s applies", s.name, s.typeName, fallbackNames[s.fallback])
	} else if old != nil && len(*old) == 0 && len(healthy) > 0 {
		log.Infof("%s %s has a healthy value again", s.name, s.typeName)
	}
	s.healthy.Store(&healthy)
}

// healthyRRs returns the healthy values' RRs, empty when none is healthy.
func (s *recordSet) healthyRRs() []dns.RR { return *s.healthy.Load() }

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
