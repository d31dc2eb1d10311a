package multivalue

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"
)

var stickyOpts = selection{sticky: true, v4Prefix: 24, v6Prefix: 56}

// randomClient is a client prefix as a sticky set sees it: an IPv4 /24 or,
// one time in four, an IPv6 /56.
func randomClient(rng *rand.Rand) netip.Prefix {
	if rng.IntN(4) == 0 {
		var a [16]byte
		for i := range a {
			a[i] = byte(rng.Uint32())
		}
		return netip.PrefixFrom(netip.AddrFrom16(a), 56).Masked()
	}
	var a [4]byte
	for i := range a {
		a[i] = byte(rng.Uint32())
	}
	return netip.PrefixFrom(netip.AddrFrom4(a), 24).Masked()
}

// Sticky answers depend on nothing but the client and the values, so these
// tests are deterministic: the clients come from a seeded generator. The
// chi-square bounds still sit at p < 1e-6, so a change of hash that is
// still correct passes them too.

// TestStickyFirstPositionUniformAcrossClients: with equal weights, over many
// client prefixes every value comes first, and is in the answer, equally
// often.
func TestStickyFirstPositionUniformAcrossClients(t *testing.T) {
	const n, k, clients = 12, 3, 24000
	values := testValues(weightedSpecs(slices.Repeat([]int{5}, n)...))
	snap := buildSnapshot(values, &stickyOpts, testNow)
	if kind := selectorKind(snap.sel); kind != "sticky" {
		t.Fatalf("selector %s, want sticky", kind)
	}
	idx := indexOf(values)
	rng := rand.New(rand.NewPCG(1, 1))
	first, in := map[int]int{}, map[int]int{}
	probs := map[int]float64{}
	for i := range n {
		probs[i] = 1.0 / n
	}
	for range clients {
		got := pickValues(values, idx, snap.sel, snap.cands, query{client: randomClient(rng)}, k)
		if len(got) != k {
			t.Fatalf("%d values, want %d", len(got), k)
		}
		first[got[0]]++
		for _, v := range got {
			in[v]++
		}
	}
	b := boundFor(t, n)
	if x2 := chiSquareProbs(first, probs, clients); x2 > b {
		t.Errorf("first position not uniform across clients: chi-square %.1f > %.1f; %v", x2, b, first)
	}
	// k inclusions per answer are not independent, which only lowers the
	// statistic.
	if x2 := chiSquareProbs(in, probs, clients*k); x2 > b {
		t.Errorf("inclusion not uniform across clients: chi-square %.1f > %.1f; %v", x2, b, in)
	}
}

// TestStickySpreadProportionalToWeight: over many clients, the first value
// goes to each value in proportion to its weight, and the first two are a
// then b as often as an ordered weighted sample would have them
// (w_a/W · w_b/(W − w_a)): weighted rendezvous keys are Efraimidis–Spirakis
// keys.
func TestStickySpreadProportionalToWeight(t *testing.T) {
	for _, tc := range []struct {
		weights []int
		k       int
		clients int
	}{
		{weights: []int{1, 2, 3, 5, 10, 30}, k: 3, clients: 30000},
		{weights: []int{1, 1, 1, 1, 255}, k: 2, clients: 30000},
		{weights: []int{1, 2, 5}, k: 2, clients: 30000},
		{weights: []int{40, 1, 3, 6}, k: 3, clients: 40000},
	} {
		t.Run(fmt.Sprintf("%v_k%d", tc.weights, tc.k), func(t *testing.T) {
			values := testValues(weightedSpecs(tc.weights...))
			snap := buildSnapshot(values, &stickyOpts, testNow)
			if kind := selectorKind(snap.sel); kind != "sticky weighted" {
				t.Fatalf("selector %s, want sticky weighted", kind)
			}
			idx := indexOf(values)
			total := 0
			for _, w := range tc.weights {
				total += w
			}
			firstP := map[int]float64{}
			pairP := map[[2]int]float64{}
			for a, wa := range tc.weights {
				firstP[a] = float64(wa) / float64(total)
				for b, wb := range tc.weights {
					if a != b {
						pairP[[2]int{a, b}] = float64(wa) / float64(total) * float64(wb) / float64(total-wa)
					}
				}
			}
			rng := rand.New(rand.NewPCG(2, uint64(len(tc.weights))))
			first, pairs := map[int]int{}, map[[2]int]int{}
			for range tc.clients {
				got := pickValues(values, idx, snap.sel, snap.cands, query{client: randomClient(rng)}, tc.k)
				if len(got) != min(tc.k, len(values)) {
					t.Fatalf("%d values, want %d", len(got), min(tc.k, len(values)))
				}
				first[got[0]]++
				pairs[[2]int{got[0], got[1]}]++
			}
			if x2, b := chiSquareProbs(first, firstP, tc.clients), boundFor(t, len(firstP)); x2 > b {
				t.Errorf("first position not proportional to weight: chi-square %.1f > %.1f; %v", x2, b, first)
			}
			if len(pairP) <= 12 {
				if x2, b := chiSquareProbs(pairs, pairP, tc.clients), boundFor(t, len(pairP)); x2 > b {
					t.Errorf("ordered pairs off w_a/W · w_b/(W−w_a): chi-square %.1f > %.1f; %v", x2, b, pairs)
				}
			}
		})
	}
}

// TestStickySameClientSameAnswer: a client gets the same answer, same order,
// on every query while the values stay the same, and a new snapshot of the
// same values (a rebuild) changes nothing.
func TestStickySameClientSameAnswer(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	weights := make([]int, 30)
	for i := range weights {
		weights[i] = 1 + rng.IntN(255)
	}
	values := testValues(weightedSpecs(weights...))
	idx := indexOf(values)
	snap := buildSnapshot(values, &stickyOpts, testNow)
	again := buildSnapshot(values, &stickyOpts, testNow.Add(time.Hour))
	for range 2000 {
		q := query{client: randomClient(rng)}
		want := pickValues(values, idx, snap.sel, snap.cands, q, 8)
		for range 3 {
			if got := pickValues(values, idx, snap.sel, snap.cands, q, 8); !slices.Equal(got, want) {
				t.Fatalf("client %v: %v, then %v", q.client, want, got)
			}
		}
		if got := pickValues(values, idx, again.sel, again.cands, q, 8); !slices.Equal(got, want) {
			t.Fatalf("client %v: %v, after a rebuild %v", q.client, want, got)
		}
	}
}

// TestStickyChurnOnlyAnswersHoldingTheValue is a property test of weighted
// rendezvous hashing. For random sets (2 to 60 values; weights equal,
// random, or equal but for the value that leaves), random k and many
// clients: when one value leaves (down or drained), an answer that did not
// hold it is unchanged; one that held it is the old answer without it, in
// the same order, plus at most one new value at the end (exactly one when
// enough values are left).
func TestStickyChurnOnlyAnswersHoldingTheValue(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	changed, unchanged := 0, 0
	for trial := range 400 {
		n := 2 + rng.IntN(59)
		k := 1 + rng.IntN(min(n+1, 20))
		gone := rng.IntN(n)
		specs := make([]tv, n)
		mode := trial % 3
		w := 1 + rng.IntN(255)
		for i := range specs {
			specs[i] = tv{w: w, tier: 1}
			if mode == 1 {
				specs[i].w = 1 + rng.IntN(255)
			}
		}
		if mode == 2 {
			specs[gone].w = 1 + (w+rng.IntN(254))%255 // the only different weight
		}
		values := testValues(specs)
		idx := indexOf(values)
		before := buildSnapshot(values, &stickyOpts, testNow)
		if trial%2 == 0 {
			values[gone].src = &fixedSource{v: verdict{healthy: false, known: true}}
		} else {
			values[gone].drain = true
		}
		after := buildSnapshot(values, &stickyOpts, testNow)
		if len(after.cands) != n-1 {
			t.Fatalf("trial %d: %d candidates after one left, want %d", trial, len(after.cands), n-1)
		}
		for range 50 {
			q := query{client: randomClient(rng)}
			old := pickValues(values, idx, before.sel, before.cands, q, k)
			if again := pickValues(values, idx, before.sel, before.cands, q, k); !slices.Equal(again, old) {
				t.Fatalf("trial %d, client %v: %v, then %v", trial, q.client, old, again)
			}
			got := pickValues(values, idx, after.sel, after.cands, q, k)
			desc := func() string {
				return fmt.Sprintf("trial %d (n %d, k %d, weights %v, value %d leaves), client %v: %v became %v", trial, n, k, specs, gone, q.client, old, got)
			}
			if !slices.Contains(old, gone) {
				unchanged++
				if !slices.Equal(got, old) {
					t.Fatalf("%s: an answer without the value changed", desc())
				}
				continue
			}
			changed++
			kept := slices.DeleteFunc(slices.Clone(old), func(v int) bool { return v == gone })
			if len(got) < len(kept) || !slices.Equal(got[:len(kept)], kept) {
				t.Fatalf("%s: the others must keep their order", desc())
			}
			wantLen := len(kept)
			if n-1 > len(kept) {
				wantLen++ // a value was left to take its place
			}
			if len(got) != wantLen {
				t.Fatalf("%s: %d values, want %d", desc(), len(got), wantLen)
			}
			if len(got) > len(kept) && (slices.Contains(old, got[len(got)-1]) || got[len(got)-1] == gone) {
				t.Fatalf("%s: the new value must be new", desc())
			}
		}
	}
	if changed < 1000 || unchanged < 1000 {
		t.Errorf("%d answers held the value, %d did not: the property was not exercised", changed, unchanged)
	}
}

// TestStickyMemoAnswersAsComputed: the remembered answers of recent clients
// are the answers the full pass computes, for many clients sharing few
// memo slots (so slots are taken over again and again), asked in turns and
// again, with equal and unequal weights and several k.
func TestStickyMemoAnswersAsComputed(t *testing.T) {
	for _, weighted := range []bool{false, true} {
		specs := make([]tv, 300)
		for i := range specs {
			specs[i] = tv{w: 1}
			if weighted {
				specs[i].w = 1 + i%5
			}
		}
		snap := buildSnapshot(testValues(specs), &selection{sticky: true, v4Prefix: 24, v6Prefix: 56}, testNow)
		s, ok := snap.sel.(*sticky)
		if !ok {
			t.Fatalf("selector %T, want sticky", snap.sel)
		}
		sc := scratchPool.Get().(*scratch)
		clients := make([]netip.Prefix, 3*stickyMemoSlots)
		for i := range clients {
			clients[i] = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24)
		}
		for round := range 3 {
			for i, c := range clients {
				k := 1 + (i+round)%8
				want := slices.Clone(s.pickSteady(clientHash(c), snap.cands, k, sc))
				got := slices.Clone(s.pick(query{client: c}, snap.cands, k, sc))
				again := s.pick(query{client: c}, snap.cands, k, sc)
				if !slices.Equal(got, want) || !slices.Equal(again, want) {
					t.Fatalf("weighted %v, client %v, k %d, round %d: picked %v then %v, the full pass gives %v", weighted, c, k, round, got, again, want)
				}
			}
		}
		scratchPool.Put(sc)
	}
}
