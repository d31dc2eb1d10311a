package multivalue

import (
	"sync"

	"github.com/coredns/coredns/plugin"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	healthyGauge = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: "multivalue",
		Name:      "healthy",
		Help:      "Whether a value is served: 1 healthy, 0 unhealthy.",
	}, []string{"name", "type", "value"})

	checksTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: "multivalue",
		Name:      "checks_total",
		Help:      "Counter of health-check probes by target, protocol and result (success or failure).",
	}, []string{"target", "protocol", "result"})

	checkDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: plugin.Namespace,
		Subsystem: "multivalue",
		Name:      "check_duration_seconds",
		Buckets:   plugin.TimeBuckets,
		Help:      "Histogram of the time health-check probes took.",
	}, []string{"target", "protocol"})

	transitionsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: "multivalue",
		Name:      "transitions_total",
		Help:      "Counter of health status changes of a value, by the status it changed to.",
	}, []string{"name", "type", "value", "to"})

	responsesTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: "multivalue",
		Name:      "responses_total",
		Help:      "Counter of queries for the plugin's zones by outcome: healthy, all_unhealthy, nodata, nxdomain, fallthrough.",
	}, []string{"server", "zone", "result"})
)

// valueSeries counts, per value, the instances that export its series: on a
// reload the old instance shuts down after the new one started, and must not
// delete the series the new one still owns.
var valueSeries = struct {
	sync.Mutex
	refs map[valueLabel]int
}{refs: map[valueLabel]int{}}

// acquireValueSeries returns the healthy gauge of a value, counting the use.
func acquireValueSeries(l valueLabel) prometheus.Gauge {
	valueSeries.Lock()
	defer valueSeries.Unlock()
	valueSeries.refs[l]++
	return healthyGauge.WithLabelValues(l.name, l.typ, l.value)
}

// releaseValueSeries drops one use; the last one deletes the value's series.
func releaseValueSeries(l valueLabel) {
	valueSeries.Lock()
	defer valueSeries.Unlock()
	if valueSeries.refs[l]--; valueSeries.refs[l] > 0 {
		return
	}
	delete(valueSeries.refs, l)
	healthyGauge.DeleteLabelValues(l.name, l.typ, l.value)
	// Exact deletes: DeletePartialMatch scans every series, which made
	// releasing 10,000 values quadratic.
	for _, to := range []string{"healthy", "unhealthy"} {
		transitionsTotal.DeleteLabelValues(l.name, l.typ, l.value, to)
	}
}

// countTransition counts a change of status of a value, unless its series
// are gone: a probe that finishes while the last instance using the value
// shuts down must not bring back the series releaseValueSeries deleted.
func countTransition(l valueLabel, to string) {
	valueSeries.Lock()
	defer valueSeries.Unlock()
	if valueSeries.refs[l] > 0 {
		transitionsTotal.WithLabelValues(l.name, l.typ, l.value, to).Inc()
	}
}

// deleteCheckMetrics drops the series of a check's target and protocol. The
// registry calls it when the last running check with that pair is released
// (checks that differ in other settings share the series).
func deleteCheckMetrics(c *check) {
	for _, res := range []string{"success", "failure"} {
		checksTotal.DeleteLabelValues(c.target, c.spec.protocol, res)
	}
	checkDuration.DeleteLabelValues(c.target, c.spec.protocol)
}
