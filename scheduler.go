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

// scheduler runs the probes of an engine's checks: one goroutine walks a heap
// of due times and hands each probe to an idle worker goroutine, or starts a
// new worker when none is idle; with at most one probe in flight per check,
// the number of workers is bounded by the number of distinct checks (and in
// practice by probes per second times probe latency, plus those idle for less
// than workerIdle). The goroutine runs while the heap holds a check: it starts
// with the first check added and ends with the last one removed.
type scheduler struct {
	mu    sync.Mutex
	queue checkHeap
	life  *schedulerLife // nil when no check is scheduled
}

// schedulerLife is one life of the scheduling goroutine, from the first check
// added to the last one removed. A new life may begin (a check added) while
// the last one is still ending; each has its own channels and probes, and an
// ending one dispatches nothing more.
type schedulerLife struct {
	sched  *scheduler
	wake   chan struct{}  // a check was added or hurried: recompute the next due time
	stop   chan struct{}  // closed, under the scheduler's mu, to end the goroutine
	done   chan struct{}  // closed when the goroutine has ended
	work   chan *check    // a probe for an idle worker
	probes sync.WaitGroup // the workers
}

// workerIdle is how long a probe worker waits for its next probe before it
// ends.
const workerIdle = 5 * time.Second

// add schedules c's first probe at a random moment within its interval (2 s
// at most), so that thousands of checks configured at once do not fire in
// the same instant.
func (s *scheduler) add(c *check) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.next = time.Now().Add(rand.N(min(c.spec.interval, maxFirstDelay)))
	heap.Push(&s.queue, c)
	if s.life == nil {
		s.life = &schedulerLife{
			sched: s,
			wake:  make(chan struct{}, 1),
			stop:  make(chan struct{}),
			done:  make(chan struct{}),
			work:  make(chan *check),
		}
		go s.schedule(s.life)
	}
	// Wake the goroutine only when c is due before the check it sleeps for:
	// starting thousands of checks then costs a few wake-ups, not a lock
	// round trip with the goroutine for every check.
	if s.queue[0] == c {
		select {
		case s.life.wake <- struct{}{}:
		default:
		}
	}
}

// hurry brings c's next probe forward to fast_interval after its last one
// began (started), with the same ±10 % jitter, when that is sooner than the
// probe dispatch planned: a result contradicted c's status and a transition
// is pending (HAProxy's fastinter). The next result that agrees, or the
// transition, ends it: dispatch plans every probe at the interval, and only
// a pending result hurries the one after it.
func (s *scheduler) hurry(c *check, started time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.index < 0 || s.life == nil {
		return // removed meanwhile
	}
	next := started.Add(jittered(c.spec.fastInterval))
	if !next.Before(c.next) {
		return
	}
	c.next = next
	heap.Fix(&s.queue, c.index)
	if s.queue[0] == c {
		select {
		case s.life.wake <- struct{}{}:
		default:
		}
	}
}

// remove unschedules c and cancels a probe of it in flight. With the last
// check the goroutine ends, and remove waits for it and for every probe
// worker, so a shutdown leaves none behind.
func (s *scheduler) remove(c *check) {
	s.mu.Lock()
	if c.index >= 0 {
		heap.Remove(&s.queue, c.index)
	}
	c.cancel()
	life := s.life
	if len(s.queue) > 0 || life == nil {
		s.mu.Unlock()
		return
	}
	close(life.stop)
	s.life = nil
	// Wait without the lock: the goroutine may be about to take it in
	// dispatch, where it will see stop closed and return.
	s.mu.Unlock()
	<-life.done
	// No probe of life starts after stop is closed (dispatch checks it under
	// the lock), the running ones have their contexts cancelled, so they end
	// promptly, and idle workers end on stop.
	life.probes.Wait()
}

// idle reports whether no check is scheduled and no goroutine runs.
func (s *scheduler) idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue) == 0 && s.life == nil
}

func (s *scheduler) schedule(life *schedulerLife) {
	defer close(life.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wait, stopped := s.dispatch(life, time.Now())
		if stopped {
			return
		}
		timer.Reset(wait)
		select {
		case <-life.stop:
			return
		case <-life.wake:
		case <-timer.C:
		}
	}
}

// dispatch starts every due probe and returns how long to sleep until the
// next one is due, or stopped when life has been told to end.
func (s *scheduler) dispatch(life *schedulerLife, now time.Time) (wait time.Duration, stopped bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-life.stop:
		return 0, true
	default:
	}
	for len(s.queue) > 0 {
		c := s.queue[0]
		if c.next.After(now) {
			return c.next.Sub(now), false
		}
		// A probe still in flight (only when the machine is overloaded:
		// timeout < interval) makes this round skip; never two at once.
		if c.inflight.CompareAndSwap(false, true) {
			select {
			case life.work <- c: // an idle worker takes it
			default:
				life.probes.Add(1)
				go life.worker(c)
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
		heap.Fix(&s.queue, 0)
	}
	return time.Hour, false
}

// worker runs c's probe, then the probes dispatch hands it, until it has been
// idle for workerIdle or the scheduler ends. Workers are reused rather than
// one goroutine started per probe because a dial needs a deeper stack than a
// new goroutine has: with a fresh goroutine every probe grew and copied its
// stack. The number of workers follows the number of probes in flight.
func (sc *schedulerLife) worker(c *check) {
	defer sc.probes.Done()
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		started := time.Now()
		if c.run() && c.spec.fastInterval > 0 {
			sc.sched.hurry(c, started)
		}
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
	c.index = -1
	*h = old[:len(old)-1]
	return c
}
