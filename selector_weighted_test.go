package multivalue

import (
	"fmt"
	"testing"
)

// chiSquareProbs returns Pearson's statistic of counts (n draws in all)
// against the probabilities probs; a category never observed counts fully.
func chiSquareProbs[K comparable](counts map[K]int, probs map[K]float64, n int) float64 {
	var x2 float64
	for k, p := range probs {
		e := p * float64(n)
		d := float64(counts[k]) - e
		x2 += d * d / e
	}
	return x2
}

// chi2Bound is the chi-square statistic that a correct sampler exceeds with
// probability 1e-6, by degrees of freedom (computed with the regularized
// incomplete gamma function): far enough in the tail that the statistical
// tests never flake, near enough that a biased draw fails them.
var chi2Bound = map[int]float64{1: 23.9, 2: 27.6, 3: 30.7, 4: 33.4, 5: 35.9, 7: 40.5, 9: 44.8, 11: 48.9, 19: 63.7, 29: 80.4}

func boundFor(t *testing.T, categories int) float64 {
	t.Helper()
	b, ok := chi2Bound[categories-1]
	if !ok {
		t.Fatalf("no chi-square bound for %d degrees of freedom", categories-1)
	}
	return b
}

// weightedSpecs is a healthy tier-1 set with these weights.
func weightedSpecs(weights ...int) []tv {
	out := make([]tv, len(weights))
	for i, w := range weights {
		out[i] = tv{w: w, tier: 1}
	}
	return out
}

// TestWeightedFirstPositionProportionalToWeight: the first RR of an answer
// is drawn with probability proportional to weight, whatever k is, the
// rejected draws included (one value far heavier than the others makes most
// draws after the first hit a value already taken).
func TestWeightedFirstPositionProportionalToWeight(t *testing.T) {
	for _, tc := range []struct {
		weights []int
		k       int
		draws   int
	}{
		{weights: []int{1, 2, 3, 5, 10, 30}, k: 3, draws: 30000},
		{weights: []int{1, 1, 1, 1, 255}, k: 2, draws: 30000},
		{weights: []int{255, 1, 1, 1, 1}, k: 5, draws: 30000},
		{weights: []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}, k: 8, draws: 40000},
	} {
		t.Run(fmt.Sprintf("%v_k%d", tc.weights, tc.k), func(t *testing.T) {
			values := testValues(weightedSpecs(tc.weights...))
			snap := buildSnapshot(values, &selection{}, testNow)
			if k := selectorKind(snap.sel); k != "weighted" {
				t.Fatalf("selector %s, want weighted", k)
			}
			idx := indexOf(values)
			total := 0
			for _, w := range tc.weights {
				total += w
			}
			probs := map[int]float64{}
			for i, w := range tc.weights {
				probs[i] = float64(w) / float64(total)
			}
			first := map[int]int{}
			for range tc.draws {
				got := pickValues(values, idx, snap.sel, snap.cands, query{}, tc.k)
				if len(got) != min(tc.k, len(values)) {
					t.Fatalf("%d values picked, want %d", len(got), min(tc.k, len(values)))
				}
				first[got[0]]++
			}
			if x2, b := chiSquareProbs(first, probs, tc.draws), boundFor(t, len(probs)); x2 > b {
				t.Errorf("first position not proportional to weight: chi-square %.1f > %.1f; counts %v", x2, b, first)
			}
		})
	}
}

// TestWeightedOrderedPairsExact: an answer is an ordered weighted sample
// without replacement, so the first two values are a then b with
// probability w_a/W · w_b/(W − w_a), exactly: for a small set every
// ordered pair is counted against it.
func TestWeightedOrderedPairsExact(t *testing.T) {
	for _, tc := range []struct {
		weights []int
		k       int
		draws   int
	}{
		{weights: []int{1, 2, 5}, k: 2, draws: 30000},
		{weights: []int{1, 2, 5}, k: 3, draws: 30000}, // the whole set, in weighted order
		{weights: []int{40, 1, 3, 6}, k: 2, draws: 40000},
		{weights: []int{7, 7, 1, 1}, k: 3, draws: 40000},
	} {
		t.Run(fmt.Sprintf("%v_k%d", tc.weights, tc.k), func(t *testing.T) {
			values := testValues(weightedSpecs(tc.weights...))
			snap := buildSnapshot(values, &selection{}, testNow)
			idx := indexOf(values)
			total := 0
			for _, w := range tc.weights {
				total += w
			}
			probs := map[[2]int]float64{}
			for a, wa := range tc.weights {
				for b, wb := range tc.weights {
					if a != b {
						probs[[2]int{a, b}] = float64(wa) / float64(total) * float64(wb) / float64(total-wa)
					}
				}
			}
			pairs := map[[2]int]int{}
			for range tc.draws {
				got := pickValues(values, idx, snap.sel, snap.cands, query{}, tc.k)
				if len(got) != min(tc.k, len(values)) {
					t.Fatalf("%d values picked, want %d", len(got), min(tc.k, len(values)))
				}
				seen := map[int]bool{}
				for _, v := range got {
					if seen[v] {
						t.Fatalf("value %d twice in %v", v, got)
					}
					seen[v] = true
				}
				pairs[[2]int{got[0], got[1]}]++
			}
			if x2, b := chiSquareProbs(pairs, probs, tc.draws), boundFor(t, len(probs)); x2 > b {
				t.Errorf("ordered pairs off w_a/W · w_b/(W−w_a): chi-square %.1f > %.1f; counts %v", x2, b, pairs)
			}
		})
	}
}

// TestWeightedUsesEveryValueWhenKIsLarge: with k at least the number of
// candidates, every candidate is in every answer once.
func TestWeightedUsesEveryValueWhenKIsLarge(t *testing.T) {
	values := testValues(weightedSpecs(1, 255, 3, 255, 1, 9))
	snap := buildSnapshot(values, &selection{}, testNow)
	idx := indexOf(values)
	for range 1000 {
		got := pickValues(values, idx, snap.sel, snap.cands, query{}, 8)
		seen := map[int]bool{}
		for _, v := range got {
			seen[v] = true
		}
		if len(got) != len(values) || len(seen) != len(values) {
			t.Fatalf("answer %v, want each of the %d values once", got, len(values))
		}
	}
}
