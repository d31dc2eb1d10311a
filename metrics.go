package multivalue

import (
	"sync"
	"time"

	"github.com/coredns/coredns/plugin"

	"github.com/prometheus/client_golang/prometheus"
)

// metricSet is the plugin's collectors and the reference counts that decide
// when their series go. The process has one (defaultEngine's), registered
// where CoreDNS's prometheus plugin exports from; a test can build its own on
// a registry of its own.
//
// Series are shared and counted: on a reload the old instance shuts down
// after the new one started, and must not delete the series the new one
// still owns.
type metricSet struct {
	healthy       *prometheus.GaugeVec
	checksTotal   *prometheus.CounterVec
	checkDuration *prometheus.HistogramVec
	transitions   *prometheus.CounterVec
	responses     *prometheus.CounterVec
	overrides     *prometheus.GaugeVec // values under an override, by state
	lastChange    *prometheus.GaugeVec // last transition of a value, unix seconds

	// The cluster's (cluster_metrics.go): no series without a cluster.
	clusterUp, clusterReplicas, clusterDisagreements *prometheus.GaugeVec

	mu     sync.Mutex
	values map[valueLabel]*valueState
	// Running checks per (target, protocol): the labels of checks_total and
	// check_duration_seconds, which checks differing in other settings
	// share; the series go with the last of them.
	checks map[[2]string]int
}

func newMetricSet(reg prometheus.Registerer) *metricSet {
	ms := &metricSet{
		healthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: plugin.Namespace,
			Subsystem: "multivalue",
			Name:      "healthy",
			Help:      "Whether a value is served: 1 healthy, 0 unhealthy.",
		}, []string{"name", "type", "value"}),
		checksTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: plugin.Namespace,
			Subsystem: "multivalue",
			Name:      "checks_total",
			Help:      "Counter of health-check probes by target, protocol and result (success or failure).",
		}, []string{"target", "protocol", "result"}),
		checkDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: plugin.Namespace,
			Subsystem: "multivalue",
			Name:      "check_duration_seconds",
			Buckets:   plugin.TimeBuckets,
			Help:      "Histogram of the time health-check probes took.",
		}, []string{"target", "protocol"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: plugin.Namespace,
			Subsystem: "multivalue",
			Name:      "transitions_total",
			Help:      "Counter of health status changes of a value, by the status it changed to.",
		}, []string{"name", "type", "value", "to"}),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: plugin.Namespace,
			Subsystem: "multivalue",
			Name:      "responses_total",
			Help:      "Counter of queries for the plugin's zones by outcome: healthy, all_unhealthy, nodata, nxdomain, fallthrough, panic.",
		}, []string{"server", "zone", "view", "result"}),
		overrides: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: plugin.Namespace,
			Subsystem: "multivalue",
			Name:      "overrides",
			Help:      "How many values are under an override set through the admin API, by state: up, down, drain.",
		}, []string{"state"}),
		lastChange: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: plugin.Namespace,
			Subsystem: "multivalue",
			Name:      "last_transition_timestamp_seconds",
			Help:      "When a value last changed between healthy and unhealthy, in seconds since the epoch.",
		}, []string{"name", "type", "value"}),
		values: map[valueLabel]*valueState{},
		checks: map[[2]string]int{},
	}
	reg.MustRegister(ms.healthy, ms.checksTotal, ms.checkDuration, ms.transitions, ms.responses, ms.overrides, ms.lastChange)
	ms.registerCluster(reg)
	return ms
}

// checkSeries returns the series of a check, counting the use; releaseCheck
// drops it.
func (ms *metricSet) checkSeries(target, protocol string) (successes, failures prometheus.Counter, duration prometheus.Observer) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ms.checks[[2]string{target, protocol}]++
	return ms.checksTotal.WithLabelValues(target, protocol, "success"),
		ms.checksTotal.WithLabelValues(target, protocol, "failure"),
		ms.checkDuration.WithLabelValues(target, protocol)
}

// releaseCheck drops one use of a check's series; the last one deletes them.
func (ms *metricSet) releaseCheck(target, protocol string) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	k := [2]string{target, protocol}
	if ms.checks[k]--; ms.checks[k] > 0 {
		return
	}
	delete(ms.checks, k)
	for _, res := range []string{"success", "failure"} {
		ms.checksTotal.DeleteLabelValues(target, protocol, res)
	}
	ms.checkDuration.DeleteLabelValues(target, protocol)
}

// acquireValue returns the shared state of a value, counting the use. A new
// one starts from v, without counting a transition: the value's status is
// what its source already knows.
func (ms *metricSet) acquireValue(l valueLabel, v verdict) *valueState {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	st := ms.values[l]
	if st == nil {
		st = &valueState{label: l, ms: ms, healthy: v.healthy, gauge: ms.healthy.WithLabelValues(l.name, l.typ, l.value)}
		st.gauge.Set(boolFloat(v.healthy))
		if !v.since.IsZero() {
			ms.lastChange.WithLabelValues(l.name, l.typ, l.value).Set(unixSeconds(v.since))
		}
		ms.values[l] = st
	}
	st.refs++
	return st
}

// releaseValue drops one use; the last one deletes the value's series.
func (ms *metricSet) releaseValue(st *valueState) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if st.refs--; st.refs > 0 {
		return
	}
	delete(ms.values, st.label)
	st.mu.Lock()
	st.released = true
	st.mu.Unlock()
	l := st.label
	ms.healthy.DeleteLabelValues(l.name, l.typ, l.value)
	ms.lastChange.DeleteLabelValues(l.name, l.typ, l.value)
	// Exact deletes: DeletePartialMatch scans every series, which made
	// releasing 10,000 values quadratic.
	for _, to := range []string{"healthy", "unhealthy"} {
		ms.transitions.DeleteLabelValues(l.name, l.typ, l.value, to)
	}
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
