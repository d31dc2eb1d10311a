package multivalue

import (
	"context"
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
	numResults
)

var resultNames = [numResults]string{"healthy", "all_unhealthy", "nodata", "nxdomain", "fallthrough"}

// responseCounters caches the responses_total counters of one server, so a
// query pays an atomic load and an add, not a label lookup. A handler belongs
// to one server block; should it serve several listeners, the cache follows
// the last one seen.
type responseCounters struct {
	zones []string
	cache atomic.Pointer[serverCounters]
}

type serverCounters struct {
	server   string
	counters [][numResults]prometheus.Counter // [zone][result]
}

func (rc *responseCounters) inc(ctx context.Context, zone int, res result) {
	server := metrics.WithServer(ctx)
	sc := rc.cache.Load()
	if sc == nil || sc.server != server {
		sc = &serverCounters{server: server, counters: make([][numResults]prometheus.Counter, len(rc.zones))}
		for z, name := range rc.zones {
			for r := range numResults {
				sc.counters[z][r] = responsesTotal.WithLabelValues(server, name, resultNames[r])
			}
		}
		rc.cache.Store(sc)
	}
	sc.counters[zone][res].Inc()
}
