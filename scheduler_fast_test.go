package multivalue

import (
	"context"
	"sync"
	"testing"
	"time"
)

// timedProber returns scripted results (then successes) and notes when each
// probe began.
type timedProber struct {
	mu      sync.Mutex
	results []bool
	times   []time.Time
}

func (p *timedProber) probe(context.Context) (bool, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ok := true
	if i := len(p.times); i < len(p.results) {
		ok = p.results[i]
	}
	p.times = append(p.times, time.Now())
	if ok {
		return true, "connected"
	}
	return false, "connection refused"
}

func (p *timedProber) began() []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Time(nil), p.times...)
}

// TestFastInterval: once a result contradicts the status, the next probe
// comes fast_interval later (±10 %), and so on until the status changes or a
// result agrees again; every other probe comes at the interval.
func TestFastInterval(t *testing.T) {
	const (
		interval = 300 * time.Millisecond
		fast     = 30 * time.Millisecond
		// Scheduling on a loaded machine under -race: a probe may start
		// late, and the next one, due an interval after the time the late
		// one was due, then comes as much sooner. The two paces stay far
		// apart even so.
		late = 80 * time.Millisecond
	)
	tpl := newCheckTemplate("fast", 1)
	tpl.protocol, tpl.port = protoTCP, 1
	tpl.interval, tpl.fastInterval, tpl.timeout = interval, fast, 10*time.Millisecond
	tpl.failureThreshold, tpl.successThreshold = 3, 2
	spec := tpl.spec("127.0.0.1", 0, 0)
	const T, F = true, false
	results := []bool{
		T, T,
		F, T, T, // a failure, then one that agrees: back to the interval
		F, F, F, // failure_threshold 3: unhealthy on the third
		F,    // agrees with unhealthy
		T, T, // success_threshold 2: healthy on the second
		T, T,
	}
	// Whether a transition is pending after each result, as the threshold
	// machine has it.
	var machine thresholds
	pending := make([]bool, len(results))
	for i, ok := range results {
		machine.observe(ok, spec.failureThreshold, spec.successThreshold)
		pending[i] = machine.streak > 0
	}

	c := newTestCheck(t, spec)
	p := &timedProber{results: results}
	c.prober = p
	s := &scheduler{}
	s.add(c)
	done := eventually(10*time.Second, func() bool { return len(p.began()) > len(results) })
	s.remove(c)
	if !done {
		t.Fatalf("%d probes in 10s, want %d", len(p.began()), len(results)+1)
	}
	times := p.began()
	// The gap after the first probe is the spread of second probes.
	for i := 1; i < len(results); i++ {
		gap := times[i+1].Sub(times[i])
		want := interval
		if pending[i] {
			want = fast
		}
		lo, hi := want-want/10, want+want/10+late
		if !pending[i] {
			lo -= late
		}
		t.Logf("after result %d (%v, pending %v): next probe %v later", i+1, results[i], pending[i], gap.Round(time.Millisecond))
		if gap < lo || gap > hi {
			t.Errorf("after result %d (%v, pending %v): next probe %v later, want %v (%v to %v)", i+1, results[i], pending[i], gap, want, lo, hi)
		}
	}
	if !c.hasResult() || !c.isHealthy() {
		t.Error("the check must end healthy")
	}
}

// TestFastIntervalUnset: without fast_interval a pending transition changes
// nothing: every probe comes at the interval.
func TestFastIntervalUnset(t *testing.T) {
	const interval = 150 * time.Millisecond
	tpl := newCheckTemplate("slow", 1)
	tpl.protocol, tpl.port = protoTCP, 1
	tpl.interval, tpl.timeout = interval, 10*time.Millisecond
	tpl.failureThreshold = 3
	c := newTestCheck(t, tpl.spec("127.0.0.1", 0, 0))
	p := &timedProber{results: []bool{true, true, false, false, false}}
	c.prober = p
	s := &scheduler{}
	s.add(c)
	done := eventually(10*time.Second, func() bool { return len(p.began()) >= 5 })
	s.remove(c)
	if !done {
		t.Fatal("fewer than 5 probes in 10s")
	}
	times := p.began()
	for i := 1; i < 4; i++ {
		// Not hurried (a late probe may make the next one look early).
		if gap := times[i+1].Sub(times[i]); gap < interval/2 {
			t.Errorf("probe %d came %v after the one before, want the interval %v", i+2, gap, interval)
		}
	}
}
