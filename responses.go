package multivalue

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/coredns/coredns/plugin/metrics"

	"github.com/prometheus/client_golang/prometheus"
)

// result is the outcome of a query, the result label of responses_total.
type result int

const (
	resultHealthy      result = iota // answered with healthy values
	resultAllUnhealthy               // no healthy value: all_unhealthy decided
	resultNodata
	resultNXDomain
	resultFallthrough
	resultPanic // answered from every value: too few healthy to trust the checks (panic_threshold)
	numResults
)

var resultNames = [numResults]string{"healthy", "all_unhealthy", "nodata", "nxdomain", "fallthrough", "panic"}

// responseCounters caches the responses_total counters per server, so a
// query pays an atomic load, a short scan and an add, not a label lookup. A
// handler serves every listener of its server block (`dns://.:53` and
// `tls://.:853` share it), hence a small list rather than one entry.
type responseCounters struct {
	vec   *prometheus.CounterVec
	zones []string
	mu    sync.Mutex                        // serialises additions
	cache atomic.Pointer[[]*serverCounters] // copy on write
}

type serverCounters struct {
	server   string
	view     string
	counters [][numResults]prometheus.Counter // [zone][result]
}

func (rc *responseCounters) inc(ctx context.Context, zone int, res result) {
	rc.forServer(metrics.WithServer(ctx), metrics.WithView(ctx)).counters[zone][res].Inc()
}

func (rc *responseCounters) forServer(server, view string) *serverCounters {
	if list := rc.cache.Load(); list != nil {
		for _, sc := range *list {
			if sc.server == server && sc.view == view {
				return sc
			}
		}
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var list []*serverCounters
	if old := rc.cache.Load(); old != nil {
		for _, sc := range *old {
			if sc.server == server && sc.view == view {
				return sc
			}
		}
		list = append(list, *old...)
	}
	sc := &serverCounters{server: server, view: view, counters: make([][numResults]prometheus.Counter, len(rc.zones))}
	for z, name := range rc.zones {
		for r := range numResults {
			sc.counters[z][r] = rc.vec.WithLabelValues(server, name, view, resultNames[r])
		}
	}
	list = append(list, sc)
	rc.cache.Store(&list)
	return sc
}
