package multivalue

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestLastTransitionSeries: a value's last transition time is exported once
// it has one (a status kept from before, as a restored one, included), moves
// with each transition, and goes with the value's last user.
func TestLastTransitionSeries(t *testing.T) {
	const family = "coredns_multivalue_last_transition_timestamp_seconds"
	l := valueLabel{"lt.example.org.", "A", "127.0.0.1"}
	series := labels{"name": l.name, "type": l.typ, "value": l.value}
	src := &fixedSource{v: verdict{healthy: true}} // no result yet
	st := defaultEngine.metrics.acquireValue(l, src.verdict())
	if _, ok := scrape(t, family).one(series); ok {
		t.Error("exported before any transition")
	}
	before := time.Now()
	src.set(false)
	st.update(src)
	got, ok := scrape(t, family).one(series)
	if !ok || got < unixSeconds(before) || got > unixSeconds(time.Now()) {
		t.Errorf("after a transition: %v (exported %v), want about %v", got, ok, unixSeconds(before))
	}
	defaultEngine.metrics.releaseValue(st)
	if _, ok := scrape(t, family).one(series); ok {
		t.Error("still exported after the last release")
	}

	since := time.Unix(1_700_000_000, 0)
	st = defaultEngine.metrics.acquireValue(l, verdict{healthy: false, known: true, since: since})
	defer defaultEngine.metrics.releaseValue(st)
	if got, ok := scrape(t, family).one(series); !ok || got != 1_700_000_000 {
		t.Errorf("a value whose status changed before: %v (exported %v), want its since", got, ok)
	}
}

// TestOverridesGauge: coredns_multivalue_overrides counts values, not
// overrides: one target override over three values counts three; a value's
// own override replaces its target's in the count; a value held by two
// server blocks (or two instances across a reload) counts once.
func TestOverridesGauge(t *testing.T) {
	e := testEngine()
	gauge := func(state string) float64 { return testutil.ToFloat64(e.metrics.overrides.WithLabelValues(state)) }
	testInstance(t, e, `multivalue example.org {
    health_check web {
        protocol tcp
        port 1
        interval 10s
        timeout 1s
    }
    records www A {
        health_check web
        127.0.0.1
        127.0.0.2 { target 127.0.0.1 }
    }
    records api A {
        health_check web
        127.0.0.3 { target 127.0.0.1 }
        127.0.0.4
    }
}`)
	testInstance(t, e, `multivalue example.org {
    health_check web {
        protocol tcp
        port 1
        interval 10s
        timeout 1s
    }
    records www A {
        health_check web
        127.0.0.1
    }
}`)
	for _, st := range overrideStates {
		if g := gauge(st); g != 0 {
			t.Errorf("%s: %v before any override", st, g)
		}
	}
	now := time.Now()
	if vals := e.ops.set(&override{key: overrideKey{host: "127.0.0.1"}, state: overrideDrain, created: now}); len(vals) != 3 {
		t.Fatalf("target 127.0.0.1 selects %v, want three values", vals)
	}
	if g := gauge(overrideDrain); g != 3 {
		t.Errorf("drain: %v, want 3 (one target override over three values)", g)
	}
	own, _ := (&overrideRequest{Name: "api.example.org.", Type: "A", Value: "127.0.0.3", State: "up"}).override(now)
	e.ops.set(own)
	if gd, gu := gauge(overrideDrain), gauge(overrideUp); gd != 2 || gu != 1 {
		t.Errorf("drain %v and up %v, want 2 and 1", gd, gu)
	}
	e.ops.remove(overrideKey{host: "127.0.0.1"})
	if gd, gu := gauge(overrideDrain), gauge(overrideUp); gd != 0 || gu != 1 {
		t.Errorf("after removing the target override: drain %v and up %v, want 0 and 1", gd, gu)
	}
}
