package multivalue

import (
	"container/heap"
	"math/rand/v2"
	"sync"
	"time"
)

// maxFirstDelay bounds the random delay of a new check's first probe, so that
// thousands of checks configured at once do not fire in the same instant.
const maxFirstDelay = 2 * time.Second

// registry holds every running check of the process, shared by all server
// blocks and all CoreDNS instances. CoreDNS starts a reloaded instance before
// it shuts down the old one, so checks are counted: a check both use lives on
// with its status, a check only the old one used stops when it shuts down.
//
// One scheduler goroutine walks a heap of due times and hands each probe to
// an idle worker goroutine, or starts a new worker when none is idle; with at
// most one probe in flight per check, the number of workers is bounded by the
// number of distinct checks (and in practice by probes per second times probe
// latency, plus those idle for less than workerIdle).
type registry struct {
	mu     sync.Mutex
	checks map[checkKey]*check
	queue  checkHeap
	sched  *scheduler // nil when no check runs

	// The running checks by what their probe does (checkKey without timing
	// and thresholds), so that a check replaced by a reload that only
	// changed those starts from the status its predecessor knew.
	byProbe map[checkKey]map[*check]bool

	// Running checks per (target, protocol): the labels of checks_total and
	// check_duration_seconds, which checks differing in other settings
	// share; the series go with the last of them.
	series map[[2]string]int
}

// scheduler is one life of the scheduling goroutine, from the first check
// acquired to the last one released. A new life may begin (a check acquired)
// while the last one is still ending; each has its own channels and probes,
// and an ending one dispatches nothing more.
type scheduler struct {
	wake   chan struct{}  // a check was added: recompute the next due time
	stop   chan struct{}  // closed, under the registry's mu, to end the goroutine
	done   chan struct{}  // closed when the goroutine has ended
	work   chan *check    // a probe for an idle worker
	probes sync.WaitGroup // the workers
}

// workerIdle is how long a probe worker waits for its next probe before it
// ends.
const workerIdle = 5 * time.Second

var checks = &registry{checks: map[checkKey]*check{}, byProbe: map[checkKey]map[*check]bool{}, series: map[[2]string]int{}}

// probeKey is k without the settings that change when a check probes and how
// many results it takes to turn, but not what one probe finds.
func probeKey(k checkKey) checkKey {
	k.interval, k.timeout, k.failureThreshold, k.successThreshold = 0, 0, 0, 0
	return k
}

// lookup returns the running check for a key, else a running check with the
// same probe that has a result (its status is what a new check for k will
// start from), or nil. It starts nothing.
func (r *registry) lookup(k checkKey) *check {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.checks[k]; c != nil {
		return c
	}
	return r.sibling(k)
}

// sibling returns a running check with k's probe and a result, or nil.
func (r *registry) sibling(k checkKey) *check {
	for o := range r.byProbe[probeKey(k)] {
		if o.hasResult.Load() {
			return o
		}
	}
	return nil
}

// allHaveResults reports whether every running check has a first result.
func (r *registry) allHaveResults() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.checks {
		if !c.hasResult.Load() {
			return false
		}
	}
	return true
}

// acquire returns the running check for spec, starting it if it is new.
func (r *registry) acquire(s *checkSpec) *check {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := s.key()
	c := r.checks[k]
	if c == nil {
		c = newCheck(s)
		// A reload that changed only the interval, timeout or thresholds
		// of a check starts a new one while the old still runs: take over
		// its status rather than serve a value known to be down until the
		// first probe.
		if o := r.sibling(k); o != nil {
			c.healthy.Store(o.isHealthy())
			c.hasResult.Store(true)
		}
		r.checks[k] = c
		pk := probeKey(k)
		if r.byProbe[pk] == nil {
			r.byProbe[pk] = map[*check]bool{}
		}
		r.byProbe[pk][c] = true
		r.series[[2]string{c.target, s.protocol}]++
		first := min(s.interval, maxFirstDelay)
		c.next = time.Now().Add(rand.N(first))
		heap.Push(&r.queue, c)
		if r.sched == nil {
			r.sched = &scheduler{
				wake: make(chan struct{}, 1),
				stop: make(chan struct{}),
				done: make(chan struct{}),
				work: make(chan *check),
			}
			go r.schedule(r.sched)
		}
		// Wake the scheduler only when c is due before the check it sleeps
		// for: starting thousands of checks then costs a few wake-ups, not
		// a lock round trip with the scheduler for every check.
		if r.queue[0] == c {
			select {
			case r.sched.wake <- struct{}{}:
			default:
			}
		}
	}
	c.refs++
	return c
}

// release drops one use of c; the last one stops it. When no check is left,
// the scheduler ends and release waits for it and for every probe goroutine,
// so a shutdown leaves none behind.
func (r *registry) release(c *check) {
	r.mu.Lock()
	if c.refs--; c.refs > 0 {
		r.mu.Unlock()
		return
	}
	k := c.spec.key()
	delete(r.checks, k)
	pk := probeKey(k)
	if delete(r.byProbe[pk], c); len(r.byProbe[pk]) == 0 {
		delete(r.byProbe, pk)
	}
	heap.Remove(&r.queue, c.index)
	c.cancel()
	sk := [2]string{c.target, c.spec.protocol}
	if r.series[sk]--; r.series[sk] <= 0 {
		delete(r.series, sk)
		deleteCheckMetrics(c)
	}
	sc := r.sched
	if len(r.checks) > 0 || sc == nil {
		r.mu.Unlock()
		return
	}
	close(sc.stop)
	r.sched = nil
	// Wait without the lock: the scheduler may be about to take it in
	// dispatch, where it will see stop closed and return.
	r.mu.Unlock()
	<-sc.done
	// No probe of sc starts after stop is closed (dispatch checks it under
	// the lock), the running ones have their contexts cancelled, so they
	// end promptly, and idle workers end on stop.
	sc.probes.Wait()
}

func (r *registry) schedule(sc *scheduler) {
	defer close(sc.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wait, stopped := r.dispatch(sc, time.Now())
		if stopped {
			return
		}
		timer.Reset(wait)
		select {
		case <-sc.stop:
			return
		case <-sc.wake:
		case <-timer.C:
		}
	}
}

// dispatch starts every due probe and returns how long to sleep until the
// next one is due, or stopped when sc has been told to end.
func (r *registry) dispatch(sc *scheduler, now time.Time) (wait time.Duration, stopped bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-sc.stop:
		return 0, true
	default:
	}
	for len(r.queue) > 0 {
		c := r.queue[0]
		if c.next.After(now) {
			return c.next.Sub(now), false
		}
		// A probe still in flight (only when the machine is overloaded:
		// timeout < interval) makes this round skip; never two at once.
		if c.inflight.CompareAndSwap(false, true) {
			select {
			case sc.work <- c: // an idle worker takes it
			default:
				sc.probes.Add(1)
				go sc.worker(c)
			}
		}
		gap := jittered(c.spec.interval)
		if !c.probed {
			// The first probes of new checks all fall within 2 s, for a
			// quick first answer. Jitter alone would take many rounds to
			// spread them (10,000 checks at 10 s: bursts of 5,000 probes/s),
			// so the second probe comes at a random point of the interval
			// (never sooner than the timeout), and the checks run evenly
			// from then on.
			c.probed = true
			gap = max(c.spec.timeout, rand.N(c.spec.interval))
		}
		c.next = c.next.Add(gap)
		if c.next.Before(now) { // fell far behind: don't burst to catch up
			c.next = now.Add(jittered(c.spec.interval))
		}
		heap.Fix(&r.queue, 0)
	}
	return time.Hour, false
}

// worker runs c's probe, then the probes dispatch hands it, until it has been
// idle for workerIdle or the scheduler ends. Workers are reused rather than
// one goroutine started per probe because a dial needs a deeper stack than a
// new goroutine has: with a fresh goroutine every probe grew and copied its
// stack. The number of workers follows the number of probes in flight.
func (sc *scheduler) worker(c *check) {
	defer sc.probes.Done()
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		c.run()
		idle.Reset(workerIdle)
		select {
		case c = <-sc.work:
		case <-idle.C:
			return
		case <-sc.stop:
			return
		}
	}
}

// jittered is d plus or minus up to a tenth of d, at random.
func jittered(d time.Duration) time.Duration {
	j := d / 10
	if j <= 0 {
		return d
	}
	return d - j + rand.N(2*j+1)
}

// checkHeap orders checks by their next due time.
type checkHeap []*check

func (h checkHeap) Len() int           { return len(h) }
func (h checkHeap) Less(i, j int) bool { return h[i].next.Before(h[j].next) }
func (h checkHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *checkHeap) Push(x any) {
	c := x.(*check)
	c.index = len(*h)
	*h = append(*h, c)
}
func (h *checkHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return c
}
