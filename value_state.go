package multivalue

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// valueLabel names a value in logs and metrics.
type valueLabel struct{ name, typ, value string }

func (l valueLabel) String() string { return l.name + " " + l.typ + " " + l.value }

// valueState is what the process says about one value (name, type, RDATA):
// its healthy gauge, its transitions and their log lines. Every instance and
// server block holding the value shares it (metricSet counts the uses), so a
// change is logged and counted once however many of them see it.
type valueState struct {
	label valueLabel
	ms    *metricSet
	gauge prometheus.Gauge
	refs  int // under ms.mu

	mu       sync.Mutex
	healthy  bool // the last status logged
	released bool // the series are gone: count nothing more
}

// update reads the value's verdict from src and, when it changed, logs and
// counts the transition. Reading under the lock keeps the order of two
// updates racing from different sources.
func (st *valueState) update(src source) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.released {
		// A probe that finished while the last instance using the value
		// shut down must not bring back the series releaseValue deleted.
		return
	}
	v := src.verdict()
	st.gauge.Set(boolFloat(v.healthy))
	if v.healthy == st.healthy {
		return
	}
	st.healthy = v.healthy
	st.ms.lastChange.WithLabelValues(st.label.name, st.label.typ, st.label.value).Set(unixSeconds(time.Now()))
	to := statusName(v.healthy)
	log.Infof("%s is now %s: %s", st.label, to, v.reason)
	st.ms.transitions.WithLabelValues(st.label.name, st.label.typ, st.label.value, to).Inc()
}
