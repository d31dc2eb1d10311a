package multivalue

import "math/rand/v2"

// weighted is an ordered weighted sample without replacement: the first value
// is drawn with probability proportional to weight, the second among the
// rest, and so on; the answer keeps that order. Values in slow start are left
// out with probability 1 - f and, when in, weigh f of their weight (when all
// of them ramp and none is in, none is left out).
//
// A draw is a binary search of the snapshot's prefix sums; a value already
// taken, or a slow-start value that the thinning refuses, is drawn again.
// Both rejections keep the draw exact (it is then a draw from the remaining
// values, in proportion to their effective weights). When rejections pile up
// (the values left weigh little) the draw falls back to a linear scan of what
// is left, which is exact too.
type weighted struct {
	total uint64 // the candidates' weights together: the last prefix sum
	ramp  ramp
}

// maxRejections bounds the binary-search draws tried before the linear scan.
const maxRejections = 8

func (w *weighted) pick(q query, from []candidate, k int, sc *scratch) []int32 {
	n := len(from)
	sc.reset(n)
	idx := sc.idx[:0]
	ramping := w.ramp.active(q.now)
	left := n
	if ramping {
		// Slow start, part one: each ramping value is in this answer with
		// probability f; those left out are marked taken.
		for i := range from {
			if f := w.ramp.factor(&from[i], q.now); f < 1 && rand.Float64() >= f {
				sc.take(int32(i))
				left--
			}
		}
		if left == 0 {
			// Every candidate ramps and none is in: an empty answer
			// would hide healthy values (a whole set back from an
			// outage). They share this one by their scaled weights.
			sc.reset(n)
			left = n
		}
	}
	for len(idx) < min(k, left) {
		i := w.draw(q, from, sc, ramping)
		if i < 0 {
			i = w.scan(q, from, sc, ramping)
		}
		if i < 0 {
			break
		}
		sc.take(i)
		idx = append(idx, i)
	}
	return idx
}

// draw tries a few draws over all candidates and returns the first that is
// free (and, in slow start, passes the thinning), or -1.
func (w *weighted) draw(q query, from []candidate, sc *scratch, ramping bool) int32 {
	for range maxRejections {
		r := rand.Uint64N(w.total)
		// The first candidate whose prefix sum exceeds r.
		lo, hi := 0, len(from)
		for lo < hi {
			mid := int(uint(lo+hi) >> 1)
			if from[mid].cum <= r {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		i := int32(lo)
		if sc.isTaken(i) {
			continue
		}
		// Slow start, part two: a ramping value weighs f of its weight.
		if ramping && rand.Float64() >= w.ramp.factor(&from[i], q.now) {
			continue
		}
		return i
	}
	return -1
}

// scan draws among the free candidates by their effective weights, or
// returns -1 when none is left.
func (w *weighted) scan(q query, from []candidate, sc *scratch, ramping bool) int32 {
	eff := func(i int) float64 {
		e := float64(from[i].weight)
		if ramping {
			e *= w.ramp.factor(&from[i], q.now)
		}
		return e
	}
	var sum float64
	last := int32(-1)
	for i := range from {
		if !sc.isTaken(int32(i)) {
			if e := eff(i); e > 0 {
				sum += e
				last = int32(i)
			}
		}
	}
	if last < 0 {
		return -1
	}
	r := rand.Float64() * sum
	for i := range from {
		if sc.isTaken(int32(i)) {
			continue
		}
		if r -= eff(i); r < 0 {
			return int32(i)
		}
	}
	return last // rounding
}
