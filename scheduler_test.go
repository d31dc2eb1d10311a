package multivalue

import (
	"bufio"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// probeListener is a TCP listener on 127.0.0.1 that counts and timestamps the
// connections health checks open to it. With hold set it keeps every
// connection open, never answering, until the prober hangs up.
type probeListener struct {
	ln   net.Listener
	addr string
	hold bool

	mu      sync.Mutex
	accepts []time.Time
	wg      sync.WaitGroup
}

func newProbeListener(t *testing.T, hold bool) *probeListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	p := &probeListener{ln: ln, addr: ln.Addr().String(), hold: hold}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *probeListener) serve() {
	defer p.wg.Done()
	for {
		conn, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.accepts = append(p.accepts, time.Now())
		if !p.hold {
			p.mu.Unlock()
			conn.Close()
			continue
		}
		p.mu.Unlock()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			// Read (and ignore) the request until the prober gives up.
			bufio.NewReader(conn).WriteTo(discardWriter{})
			conn.Close()
		}()
	}
}

type discardWriter struct{}

func (discardWriter) Write(b []byte) (int, error) { return len(b), nil }

func (p *probeListener) close() {
	p.ln.Close()
	p.wg.Wait()
}

func (p *probeListener) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.accepts)
}

func (p *probeListener) times() []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.accepts)
}

// testSpec is a check spec as the parser would build it, for addr (ip:port),
// without the parser's rule that timeout < interval.
func testSpec(t *testing.T, protocol, addr string, interval, timeout time.Duration) *checkSpec {
	t.Helper()
	host, ps, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(ps)
	tpl := newCheckTemplate("test", 1)
	tpl.protocol = protocol
	tpl.interval, tpl.timeout = interval, timeout
	tpl.failureThreshold = 1
	return tpl.spec(host, port, 0)
}

// schedulerIdle reports whether no check is registered and no scheduler runs.
func schedulerIdle() bool {
	return defaultEngine.table.len() == 0 && defaultEngine.sched.idle()
}

func TestJitteredBounds(t *testing.T) {
	tests := []struct {
		d          time.Duration
		lo, hi     time.Duration
		spreadBoth bool // both sides of d must be reached in the samples
	}{
		{d: 10 * time.Second, lo: 9 * time.Second, hi: 11 * time.Second, spreadBoth: true},
		{d: 200 * time.Millisecond, lo: 180 * time.Millisecond, hi: 220 * time.Millisecond, spreadBoth: true},
		{d: 10 * time.Millisecond, lo: 9 * time.Millisecond, hi: 11 * time.Millisecond, spreadBoth: true},
		{d: 9 * time.Nanosecond, lo: 9 * time.Nanosecond, hi: 9 * time.Nanosecond}, // a tenth rounds to 0
	}
	for _, tc := range tests {
		t.Run(tc.d.String(), func(t *testing.T) {
			var below, above bool
			for range 2000 {
				got := jittered(tc.d)
				if got < tc.lo || got > tc.hi {
					t.Fatalf("jittered(%v) = %v, want within [%v, %v]", tc.d, got, tc.lo, tc.hi)
				}
				below = below || got < tc.d-tc.d/20
				above = above || got > tc.d+tc.d/20
			}
			if tc.spreadBoth && !(below && above) {
				t.Errorf("jittered(%v) in 2000 samples: below d-5%%: %v, above d+5%%: %v; want jitter both ways", tc.d, below, above)
			}
		})
	}
}

// TestFirstProbesSpread starts many checks at once: their first probes must
// all come within min(interval, 2s) and not in the same instant.
func TestFirstProbesSpread(t *testing.T) {
	slow(t)
	tests := []struct {
		name     string
		interval time.Duration
		window   time.Duration // min(interval, 2s)
	}{
		{"long interval capped at 2s", 30 * time.Second, 2 * time.Second},
		{"short interval", 800 * time.Millisecond, 800 * time.Millisecond},
	}
	const n = 16
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var lns []*probeListener
			var cs []*check
			for range n {
				lns = append(lns, newProbeListener(t, false))
			}
			start := time.Now()
			for _, ln := range lns {
				cs = append(cs, defaultEngine.acquire(testSpec(t, protoTCP, ln.addr, tc.interval, 100*time.Millisecond)))
			}
			defer func() {
				for _, c := range cs {
					defaultEngine.release(c)
				}
			}()
			// Scheduling on a loaded machine adds latency, never removes it.
			const slack = 700 * time.Millisecond
			if !eventually(tc.window+slack, func() bool {
				for _, ln := range lns {
					if ln.count() == 0 {
						return false
					}
				}
				return true
			}) {
				t.Fatalf("not every check probed within %v + %v", tc.window, slack)
			}
			var first, last time.Time
			for i, ln := range lns {
				at := ln.times()[0]
				if i == 0 || at.Before(first) {
					first = at
				}
				if at.After(last) {
					last = at
				}
			}
			if last.Sub(start) > tc.window+slack {
				t.Errorf("last first probe %v after start, want within %v (+%v slack)", last.Sub(start), tc.window, slack)
			}
			// 16 uniform draws over the window span far more than a tenth of it.
			if spread := last.Sub(first); spread < tc.window/10 {
				t.Errorf("first probes spread over %v only, want them spread across %v", spread, tc.window)
			}
			t.Logf("first probes from %v to %v after start", first.Sub(start).Round(time.Millisecond), last.Sub(start).Round(time.Millisecond))
		})
	}
}

// TestProbeInterval counts the probes of one TCP check with interval 200ms.
func TestProbeInterval(t *testing.T) {
	slow(t)
	ln := newProbeListener(t, false)
	c := defaultEngine.acquire(testSpec(t, protoTCP, ln.addr, 200*time.Millisecond, 100*time.Millisecond))
	defer defaultEngine.release(c)
	if !eventually(3*time.Second, func() bool { return ln.count() > 0 }) {
		t.Fatal("no first probe after 3s")
	}
	const window = 3 * time.Second
	before := ln.count()
	time.Sleep(window)
	n := ln.count() - before
	times := ln.times()
	var gaps []time.Duration
	for i := 1; i < len(times); i++ {
		gaps = append(gaps, times[i].Sub(times[i-1]))
	}
	slices.Sort(gaps)
	median := gaps[len(gaps)/2]
	t.Logf("%d probes in %v; gaps min %v median %v max %v", n, window, gaps[0].Round(time.Millisecond), median.Round(time.Millisecond), gaps[len(gaps)-1].Round(time.Millisecond))
	// 3s / 200ms = 15; jitter is ±10%; a loaded machine can only delay.
	if n < 8 || n > 18 {
		t.Errorf("%d probes in %v at interval 200ms, want about 15 (8 to 18)", n, window)
	}
	if median < 160*time.Millisecond || median > 260*time.Millisecond {
		t.Errorf("median gap between probes %v, want about 200ms", median)
	}
}

// TestOneProbeInFlight probes a target that accepts and never answers, with a
// timeout five times the interval: the next probe must wait for the last to
// time out, so probes start at least a timeout apart, not an interval.
func TestOneProbeInFlight(t *testing.T) {
	ln := newProbeListener(t, true)
	const interval, timeout = 100 * time.Millisecond, 500 * time.Millisecond
	c := defaultEngine.acquire(testSpec(t, protoHTTP, ln.addr, interval, timeout))
	if !eventually(5*time.Second, func() bool { return ln.count() >= 4 }) {
		defaultEngine.release(c)
		t.Fatalf("only %d probes in 5s", ln.count())
	}
	defaultEngine.release(c)
	times := ln.times()
	var gaps []time.Duration
	for i := 1; i < len(times); i++ {
		gaps = append(gaps, times[i].Sub(times[i-1]).Round(time.Millisecond))
	}
	// A probe's connection opens a little after it starts (dial latency on a
	// loaded machine); two probes in flight at once would start an interval
	// (100ms) apart.
	if slices.Min(gaps) < timeout*7/10 {
		t.Errorf("probes of a hanging target started %v apart, want at least the timeout (%v) apart: one probe in flight at a time", gaps, timeout)
	}
	if c.hasResult() && c.isHealthy() {
		t.Errorf("a target that never answers is healthy")
	}
}

// TestSharedCheckProbesOnce gives many values the same check, through two
// server blocks of a real CoreDNS: the target sees one probe per interval.
func TestSharedCheckProbesOnce(t *testing.T) {
	slow(t)
	ln := newProbeListener(t, false)
	block := func(zone string) string {
		s := zone + `:0 {
    bind 127.0.0.1
    multivalue {
        health_check a {
            protocol tcp
            interval 200ms
            timeout 100ms
        }
        health_check b {
            protocol tcp
            interval 200ms
            timeout 100ms
        }
        records www A {
            health_check a
`
		for i := 1; i <= 20; i++ {
			s += "            127.0.1." + strconv.Itoa(i) + " { target " + ln.addr + " }\n"
		}
		s += `        }
        records api A {
            health_check b
            127.0.2.1 { target ` + ln.addr + ` }
            127.0.2.2 { target ` + ln.addr + ` }
        }
    }
}
`
		return s
	}
	startCoreDNS(t, block("example.org")+block("example.net"))
	running := defaultEngine.table.len()
	if running != 1 {
		t.Errorf("%d checks running for one target and settings, want 1", running)
	}
	if !eventually(3*time.Second, func() bool { return ln.count() > 0 }) {
		t.Fatal("no first probe after 3s")
	}
	const window = 3 * time.Second
	before := ln.count()
	time.Sleep(window)
	n := ln.count() - before
	t.Logf("%d probes in %v for 44 values sharing one check", n, window)
	if n < 8 || n > 18 {
		t.Errorf("%d probes in %v at interval 200ms, want about 15 (8 to 18): one check, not one per value", n, window)
	}
}

// TestReleaseStopsProbes releases the last reference: no probe after that,
// and neither the scheduler nor a probe goroutine is left.
func TestReleaseStopsProbes(t *testing.T) {
	ln := newProbeListener(t, false)
	idle := goleak.IgnoreCurrent()
	spec := testSpec(t, protoTCP, ln.addr, 50*time.Millisecond, 20*time.Millisecond)
	c1 := defaultEngine.acquire(spec)
	c2 := defaultEngine.acquire(spec) // a second user, e.g. the new instance of a reload
	if c1 != c2 {
		t.Fatal("the same spec acquired twice gave two checks")
	}
	if !eventually(3*time.Second, func() bool { return ln.count() >= 2 }) {
		t.Fatal("fewer than 2 probes after 3s")
	}
	defaultEngine.release(c1)
	before := ln.count()
	time.Sleep(300 * time.Millisecond)
	if ln.count() == before {
		t.Errorf("no probe in 300ms after releasing one of two users: the check must keep running")
	}
	defaultEngine.release(c2)
	if !schedulerIdle() {
		t.Errorf("check or scheduler still registered after the last release")
	}
	stopped := ln.count()
	time.Sleep(300 * time.Millisecond)
	if n := ln.count() - stopped; n > 0 {
		t.Errorf("%d probes after the last release, want none", n)
	}
	goleak.VerifyNone(t, idle)
}

// TestAcquireReleaseNoDeadlock acquires and releases checks in quick
// succession, so that release often runs while the scheduler has just woken
// up: release must not wait for the scheduler while holding the lock it
// needs.
func TestAcquireReleaseNoDeadlock(t *testing.T) {
	ln := newProbeListener(t, false)
	var rounds atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 300 {
			spec := testSpec(t, protoTCP, ln.addr, 10*time.Millisecond, 5*time.Millisecond)
			spec.failureThreshold = 1 + i%10 // a new check now and then
			c := defaultEngine.acquire(spec)
			if i%3 == 0 {
				time.Sleep(time.Duration(i%7) * time.Millisecond)
			}
			defaultEngine.release(c)
			rounds.Add(1)
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("acquire/release stuck after %d of 300 rounds: deadlock between release and the scheduler", rounds.Load())
	}
	if !schedulerIdle() {
		t.Errorf("check or scheduler still registered after every release")
	}
}

// TestSecondProbesSpreadOverInterval: first probes all fall within 2 s; the
// second ones spread over the whole interval, so that many checks started
// together settle into an even rate instead of bursts every interval.
func TestSecondProbesSpreadOverInterval(t *testing.T) {
	slow(t)
	const n = 24
	const interval = 6 * time.Second
	var lns []*probeListener
	var cs []*check
	for range n {
		lns = append(lns, newProbeListener(t, false))
	}
	start := time.Now()
	for _, ln := range lns {
		cs = append(cs, defaultEngine.acquire(testSpec(t, protoTCP, ln.addr, interval, 100*time.Millisecond)))
	}
	defer func() {
		for _, c := range cs {
			defaultEngine.release(c)
		}
	}()
	// Without the spread every second probe would come 5.4 s to 8.6 s after
	// start; with it, about half of them come between 2.5 s and 5 s.
	time.Sleep(5 * time.Second)
	early := 0
	for _, ln := range lns {
		for _, at := range ln.times() {
			if d := at.Sub(start); d > 2500*time.Millisecond && d < 5*time.Second {
				early++
			}
		}
	}
	if early < n/6 {
		t.Errorf("%d of %d second probes between 2.5 s and 5 s, want them spread over the interval", early, n)
	}
	t.Logf("%d of %d checks probed a second time between 2.5 s and 5 s", early, n)
}

// TestStatusInheritedWhileAnySiblingRuns: checks with the same probe but other
// timing hand their status on to a new one as long as any of them runs, not
// only the last one acquired.
func TestStatusInheritedWhileAnySiblingRuns(t *testing.T) {
	ln := newProbeListener(t, true) // accepts, never answers: no probe result
	acquire := func(interval time.Duration) *check {
		return defaultEngine.acquire(testSpec(t, protoHTTP, ln.addr, interval, 20*time.Second))
	}
	c1 := acquire(30 * time.Second)
	defer defaultEngine.release(c1)
	c1.record(false, "status 503")
	c2 := acquire(40 * time.Second)
	if c2.isHealthy() {
		t.Fatal("c2 did not start from c1's status")
	}
	defaultEngine.release(c2) // c1 still runs
	c3 := acquire(50 * time.Second)
	defer defaultEngine.release(c3)
	if c3.isHealthy() || !c3.hasResult() {
		t.Error("c3 started as healthy with no result, although c1 with the same probe is down")
	}
}
