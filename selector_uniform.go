package multivalue

import "math/rand/v2"

// uniform is Route 53's choice: up to k values, uniformly at random, in random
// order.
type uniform struct{}

func (uniform) pick(_ query, from []candidate, k int, sc *scratch) []int32 {
	n := len(from)
	idx := sc.idx[:0]
	if n <= k {
		for i := range n {
			idx = append(idx, int32(i))
		}
	} else {
		// Floyd's algorithm: a uniform k-subset in k draws, whatever n is;
		// the bitmap makes each draw O(1), so a large k costs what it sends.
		sc.reset(n)
		for j := n - k; j < n; j++ {
			t := int32(rand.IntN(j + 1))
			if !sc.take(t) {
				t = int32(j)
				sc.take(t)
			}
			idx = append(idx, t)
		}
	}
	rand.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
	return idx
}
