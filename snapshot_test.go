package multivalue

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
)

// tv is a value as the tables of these tests spell it.
type tv struct {
	w, tier int
	down    bool          // unhealthy
	drain   bool          // drained
	ramp    time.Duration // > 0: turned healthy (after having been unhealthy) this long before now
}

// testNow is the fixed "now" of tests that build snapshots directly: slow
// start depends on it, never on the wall clock.
var testNow = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

// testValue is value i of a test set: A 127.1.x.y (i < 65536), weight w,
// tier tier, always healthy until a test gives it a source.
func testValue(i, w, tier int) *value {
	rr := &dns.A{
		Hdr: dns.RR_Header{Name: "www.example.org.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
		A:   net.IPv4(127, 1, byte(i>>8), byte(i)).To4(),
	}
	return &value{rr: rr, text: rdataText(rr), weight: w, tier: tier, hash: hashBytes(canonicalRdata(rr))}
}

// testValues builds the values of specs, each with a fixedSource that says
// what its spec says, as of testNow.
func testValues(specs []tv) []*value {
	out := make([]*value, len(specs))
	for i, s := range specs {
		v := testValue(i, s.w, s.tier)
		v.drain = s.drain
		vd := verdict{healthy: !s.down, known: true}
		if s.ramp > 0 {
			vd.since = testNow.Add(-s.ramp)
		}
		v.src = &fixedSource{v: vd}
		out[i] = v
	}
	return out
}

// indexOf maps each value's RR to its index: selectors return candidates,
// tests speak of values.
func indexOf(values []*value) map[dns.RR]int {
	m := make(map[dns.RR]int, len(values))
	for i, v := range values {
		m[v.rr] = i
	}
	return m
}

// candIndices returns the values (indices) the candidates stand for, in order.
func candIndices(values []*value, cands []candidate) []int {
	idx := indexOf(values)
	var out []int
	for _, c := range cands {
		out = append(out, idx[c.rr])
	}
	return out
}

// selectorKind names a selector for table tests.
func selectorKind(s selector) string {
	switch s := s.(type) {
	case nil:
		return "none"
	case uniform:
		return "uniform"
	case *weighted:
		return "weighted"
	case *sticky:
		if s.weighted {
			return "sticky weighted"
		}
		return "sticky"
	}
	return fmt.Sprintf("%T", s)
}

// pickValues runs sel over from for q and returns the values (indices into
// values) it picked, in answer order.
func pickValues(values []*value, idx map[dns.RR]int, sel selector, from []candidate, q query, k int) []int {
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	picked := sel.pick(q, from, k, sc)
	out := make([]int, len(picked))
	for i, p := range picked {
		out[i] = idx[from[p].rr]
	}
	return out
}

// snapCase is one row of the buildSnapshot tables.
type snapCase struct {
	name     string
	vals     []tv
	opts     selection
	cands    []int // the values that are candidates, in set order
	fallback []int // what all_unhealthy serve picks from
	panic    bool
}

func runSnapCases(t *testing.T, cases []snapCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			values := testValues(tc.vals)
			snap := buildSnapshot(values, &tc.opts, testNow)
			if snap.drained {
				t.Fatalf("drained snapshot, want candidates %v", tc.cands)
			}
			if got := candIndices(values, snap.cands); !slices.Equal(got, tc.cands) {
				t.Errorf("candidates %v, want %v", got, tc.cands)
			}
			if got := candIndices(values, snap.fallback); !slices.Equal(got, tc.fallback) {
				t.Errorf("all_unhealthy candidates %v, want %v", got, tc.fallback)
			}
			if snap.panic != tc.panic {
				t.Errorf("panic %v, want %v", snap.panic, tc.panic)
			}
			for _, i := range candIndices(values, snap.cands) {
				if tc.vals[i].drain {
					t.Errorf("drained value %d is a candidate", i)
				}
			}
		})
	}
}

// TestSnapshotDrainedValuesNeverCandidates: a drained value is out before
// anything else is decided: never a candidate, not under all_unhealthy
// serve, not in panic; it holds off no standby, makes no tier and counts
// for no threshold.
func TestSnapshotDrainedValuesNeverCandidates(t *testing.T) {
	runSnapCases(t, []snapCase{
		{name: "healthy drained value left out",
			vals:  []tv{{w: 1, tier: 1}, {w: 1, tier: 1, drain: true}, {w: 1, tier: 1}},
			cands: []int{0, 2}, fallback: []int{0, 2}},
		{name: "not under all_unhealthy serve",
			vals:  []tv{{w: 1, tier: 1, down: true}, {w: 1, tier: 1, drain: true}, {w: 1, tier: 1, down: true}},
			cands: nil, fallback: []int{0, 2}},
		{name: "not in panic",
			vals:  []tv{{w: 1, tier: 1}, {w: 1, tier: 1, down: true}, {w: 1, tier: 1, drain: true}, {w: 1, tier: 1, down: true}},
			opts:  selection{panicThreshold: 50},
			cands: []int{0, 1, 3}, fallback: []int{0, 1, 3}, panic: true},
		{name: "a drained weighted value holds off no standby",
			vals:  []tv{{w: 5, tier: 1, drain: true}, {w: 0, tier: 1}},
			cands: []int{1}, fallback: []int{1}},
		{name: "a tier of drained values is no tier",
			vals:  []tv{{w: 1, tier: 1, drain: true}, {w: 1, tier: 2}, {w: 1, tier: 2}},
			cands: []int{1, 2}, fallback: []int{1, 2}},
		{name: "all_unhealthy applies to the lowest tier with a value not drained",
			vals:  []tv{{w: 1, tier: 1, drain: true}, {w: 1, tier: 2, down: true}, {w: 1, tier: 3, down: true}},
			cands: nil, fallback: []int{1}},
		{name: "drained values do not count for min_healthy",
			vals: []tv{{w: 1, tier: 1}, {w: 1, tier: 1, drain: true}, {w: 1, tier: 2}, {w: 1, tier: 2}},
			opts: selection{minHealthy: 2}, cands: []int{2, 3}, fallback: []int{0}},
		{name: "drained values do not count for panic_threshold",
			// 1 of 3 healthy (33%) is panic at 50; counting the two
			// drained healthy values, 3 of 5 (60%) would not be.
			vals: []tv{{w: 1, tier: 1}, {w: 1, tier: 1, down: true}, {w: 1, tier: 1, down: true}, {w: 1, tier: 1, drain: true}, {w: 1, tier: 1, drain: true}},
			opts: selection{panicThreshold: 50}, cands: []int{0, 1, 2}, fallback: []int{0, 1, 2}, panic: true},
	})
}

// TestSnapshotAllDrainedIsDrained: when every value is drained, healthy or
// not, the snapshot says drained and has nothing to pick from, whatever the
// options.
func TestSnapshotAllDrainedIsDrained(t *testing.T) {
	for _, tc := range []struct {
		name string
		vals []tv
		opts selection
	}{
		{"healthy", []tv{{w: 1, tier: 1, drain: true}, {w: 1, tier: 1, drain: true}}, selection{}},
		{"unhealthy", []tv{{w: 1, tier: 1, drain: true, down: true}, {w: 3, tier: 2, drain: true, down: true}}, selection{}},
		{"with panic_threshold", []tv{{w: 1, tier: 1, drain: true, down: true}}, selection{panicThreshold: 100}},
		{"standbys", []tv{{w: 0, tier: 1, drain: true}, {w: 0, tier: 1, drain: true}}, selection{sticky: true, v4Prefix: 24, v6Prefix: 56}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snap := buildSnapshot(testValues(tc.vals), &tc.opts, testNow)
			if !snap.drained || len(snap.cands) != 0 || len(snap.fallback) != 0 || snap.panic {
				t.Errorf("drained %v, %d candidates, %d fallback, panic %v; want drained and nothing to pick", snap.drained, len(snap.cands), len(snap.fallback), snap.panic)
			}
		})
	}
	values := testValues([]tv{{w: 1, tier: 1, drain: true}, {w: 1, tier: 1}})
	if snap := buildSnapshot(values, &selection{}, testNow); snap.drained {
		t.Error("one value not drained: snapshot drained")
	}
}

// TestSnapshotStandbysOnlyWhenNoWeightedValueOfTheirTierIsHealthy: weight-0
// values are candidates only when no value of weight > 0 in their tier is
// healthy, and are then drawn uniformly (at weight 1 each).
func TestSnapshotStandbysOnlyWhenNoWeightedValueOfTheirTierIsHealthy(t *testing.T) {
	runSnapCases(t, []snapCase{
		{name: "standbys wait while a weighted value is healthy",
			vals:  []tv{{w: 3, tier: 1}, {w: 0, tier: 1}, {w: 0, tier: 1}},
			cands: []int{0}, fallback: []int{0}},
		{name: "standbys serve when no weighted value of the tier is healthy",
			vals:  []tv{{w: 3, tier: 1, down: true}, {w: 0, tier: 1}, {w: 0, tier: 1}},
			cands: []int{1, 2}, fallback: []int{0}},
		{name: "an unhealthy standby is no candidate",
			vals:  []tv{{w: 3, tier: 1, down: true}, {w: 0, tier: 1}, {w: 0, tier: 1, down: true}},
			cands: []int{1}, fallback: []int{0}},
		{name: "a healthy weighted value of another tier does not hold them off",
			vals:  []tv{{w: 3, tier: 1, down: true}, {w: 0, tier: 1}, {w: 5, tier: 2}},
			cands: []int{1}, fallback: []int{0}},
		{name: "a set of standbys only",
			vals:  []tv{{w: 0, tier: 1}, {w: 0, tier: 1, down: true}, {w: 0, tier: 1}},
			cands: []int{0, 2}, fallback: []int{0, 1, 2}},
	})
	// Drawn uniformly: at weight 1 each, with the uniform selector, whatever
	// the weights of the values they stand in for.
	values := testValues([]tv{{w: 2, tier: 1, down: true}, {w: 9, tier: 1, down: true}, {w: 0, tier: 1}, {w: 0, tier: 1}, {w: 0, tier: 1}})
	snap := buildSnapshot(values, &selection{}, testNow)
	if got := candIndices(values, snap.cands); !slices.Equal(got, []int{2, 3, 4}) {
		t.Fatalf("candidates %v, want the three standbys", got)
	}
	for _, c := range snap.cands {
		if c.weight != 1 {
			t.Errorf("standby at weight %d, want 1", c.weight)
		}
	}
	if k := selectorKind(snap.sel); k != "uniform" {
		t.Errorf("standbys drawn by the %s selector, want uniform", k)
	}
	idx := indexOf(values)
	first := map[int]int{}
	const draws = 9000
	for range draws {
		first[pickValues(values, idx, snap.sel, snap.cands, query{}, 2)[0]]++
	}
	probs := map[int]float64{2: 1.0 / 3, 3: 1.0 / 3, 4: 1.0 / 3}
	if x2, b := chiSquareProbs(first, probs, draws), boundFor(t, 3); x2 > b {
		t.Errorf("standbys not drawn uniformly: chi-square %.1f > %.1f; %v", x2, b, first)
	}
}

// TestSnapshotLowestTierWithMinHealthy: the answer holds the lowest tier with
// at least min_healthy healthy values; else the lowest tier with any healthy
// value; else nothing, and all_unhealthy applies to the lowest tier's values.
func TestSnapshotLowestTierWithMinHealthy(t *testing.T) {
	runSnapCases(t, []snapCase{
		{name: "the lowest tier",
			vals:  []tv{{w: 1, tier: 1}, {w: 1, tier: 2}, {w: 1, tier: 1}},
			cands: []int{0, 2}, fallback: []int{0, 2}},
		{name: "the next tier when the lowest has no healthy value",
			vals:  []tv{{w: 1, tier: 1, down: true}, {w: 1, tier: 2}, {w: 1, tier: 2}},
			cands: []int{1, 2}, fallback: []int{0}},
		{name: "only the healthy values of the tier",
			vals:  []tv{{w: 1, tier: 1}, {w: 1, tier: 1, down: true}, {w: 1, tier: 2}},
			cands: []int{0}, fallback: []int{0, 1}},
		{name: "tier numbers need not be contiguous or in order",
			vals:  []tv{{w: 1, tier: 7}, {w: 1, tier: 3, down: true}, {w: 1, tier: 5}, {w: 1, tier: 200}},
			cands: []int{2}, fallback: []int{1}},
		{name: "min_healthy skips a tier short of healthy values",
			vals: []tv{{w: 1, tier: 1}, {w: 1, tier: 1, down: true}, {w: 1, tier: 2}, {w: 1, tier: 2}},
			opts: selection{minHealthy: 2}, cands: []int{2, 3}, fallback: []int{0, 1}},
		{name: "the lowest tier with enough, not the one with most",
			vals: []tv{{w: 1, tier: 1}, {w: 1, tier: 2}, {w: 1, tier: 2}, {w: 1, tier: 3}, {w: 1, tier: 3}, {w: 1, tier: 3}},
			opts: selection{minHealthy: 2}, cands: []int{1, 2}, fallback: []int{0}},
		{name: "no tier has enough: the lowest with any healthy value",
			vals: []tv{{w: 1, tier: 1, down: true}, {w: 1, tier: 2}, {w: 1, tier: 3}, {w: 1, tier: 3}},
			opts: selection{minHealthy: 3}, cands: []int{1}, fallback: []int{0}},
		{name: "min_healthy 0 counts as 1",
			vals:  []tv{{w: 1, tier: 1}, {w: 1, tier: 2}, {w: 1, tier: 2}},
			cands: []int{0}, fallback: []int{0}},
		{name: "min_healthy counts healthy standbys",
			vals: []tv{{w: 1, tier: 1, down: true}, {w: 0, tier: 1}, {w: 0, tier: 1}, {w: 1, tier: 2}, {w: 1, tier: 2}},
			opts: selection{minHealthy: 2}, cands: []int{1, 2}, fallback: []int{0}},
		{name: "min_healthy counts what a tier would answer with: standbys stay out while a weighted value is up",
			vals: []tv{{w: 1, tier: 1}, {w: 0, tier: 1}, {w: 1, tier: 2}, {w: 1, tier: 2}},
			opts: selection{minHealthy: 2}, cands: []int{2, 3}, fallback: []int{0}},
		{name: "none healthy: all_unhealthy applies to the lowest tier",
			vals:  []tv{{w: 1, tier: 2, down: true}, {w: 1, tier: 1, down: true}, {w: 1, tier: 1, down: true}, {w: 1, tier: 3, down: true}},
			cands: nil, fallback: []int{1, 2}},
		{name: "none healthy with min_healthy",
			vals: []tv{{w: 1, tier: 4, down: true}, {w: 1, tier: 9, down: true}},
			opts: selection{minHealthy: 5}, cands: nil, fallback: []int{0}},
	})
}

// TestSnapshotPanicThreshold: when fewer than panic_threshold % of the
// values not drained, all tiers together, are healthy, every value counts
// as healthy (tiers and standbys then apply as usual); exactly the
// threshold is not panic; 0 is off.
func TestSnapshotPanicThreshold(t *testing.T) {
	down := tv{w: 1, tier: 1, down: true}
	up := tv{w: 1, tier: 1}
	runSnapCases(t, []snapCase{
		{name: "off at 0",
			vals:  []tv{down, down, down},
			cands: nil, fallback: []int{0, 1, 2}},
		{name: "fewer than P% healthy: every value",
			vals:  []tv{up, down, down, down},
			opts:  selection{panicThreshold: 50},
			cands: []int{0, 1, 2, 3}, fallback: []int{0, 1, 2, 3}, panic: true},
		{name: "exactly P% healthy is no panic",
			vals:  []tv{up, down, up, down},
			opts:  selection{panicThreshold: 50},
			cands: []int{0, 2}, fallback: []int{0, 1, 2, 3}},
		{name: "no healthy value at all: panic, not all_unhealthy",
			vals:  []tv{down, down},
			opts:  selection{panicThreshold: 1},
			cands: []int{0, 1}, fallback: []int{0, 1}, panic: true},
		{name: "100: any unhealthy value",
			vals:  []tv{up, up, up, down},
			opts:  selection{panicThreshold: 100},
			cands: []int{0, 1, 2, 3}, fallback: []int{0, 1, 2, 3}, panic: true},
		{name: "100 with every value healthy is no panic",
			vals:  []tv{up, up},
			opts:  selection{panicThreshold: 100},
			cands: []int{0, 1}, fallback: []int{0, 1}},
		{name: "all tiers together, then the lowest tier",
			// 1 of 4 healthy: panic; every value counts as healthy, so
			// tier 1 is served whole.
			vals: []tv{{w: 1, tier: 2, down: true}, {w: 1, tier: 1}, {w: 1, tier: 1, down: true}, {w: 1, tier: 2, down: true}},
			opts: selection{panicThreshold: 50}, cands: []int{1, 2}, fallback: []int{1, 2}, panic: true},
		{name: "all tiers together, not tier by tier",
			// Tier 1 has no healthy value, but 2 of 4 are: no panic.
			vals: []tv{{w: 1, tier: 1, down: true}, {w: 1, tier: 1, down: true}, {w: 1, tier: 2}, {w: 1, tier: 2}},
			opts: selection{panicThreshold: 50}, cands: []int{2, 3}, fallback: []int{0, 1}},
		{name: "in panic, standbys wait for the weighted values",
			vals: []tv{{w: 3, tier: 1, down: true}, {w: 0, tier: 1}, {w: 3, tier: 1, down: true}},
			opts: selection{panicThreshold: 50}, cands: []int{0, 2}, fallback: []int{0, 2}, panic: true},
	})
}

// TestSnapshotSelectorChoice: uniform when the candidates' weights are equal
// and none is in slow start; weighted when they differ or one ramps; sticky
// whenever sticky is on. The all_unhealthy candidates get theirs by the same
// rule.
func TestSnapshotSelectorChoice(t *testing.T) {
	const d = time.Minute
	stickyOpts := selection{sticky: true, v4Prefix: 24, v6Prefix: 56}
	for _, tc := range []struct {
		name      string
		vals      []tv
		opts      selection
		sel       string
		fallback  string
		rampUntil time.Time
	}{
		{name: "equal weights", vals: []tv{{w: 1, tier: 1}, {w: 1, tier: 1}}, sel: "uniform", fallback: "uniform"},
		{name: "equal weights above 1", vals: []tv{{w: 7, tier: 1}, {w: 7, tier: 1}}, sel: "uniform", fallback: "uniform"},
		{name: "a single value", vals: []tv{{w: 200, tier: 1}}, sel: "uniform", fallback: "uniform"},
		{name: "unequal weights", vals: []tv{{w: 1, tier: 1}, {w: 2, tier: 1}}, sel: "weighted", fallback: "weighted"},
		{name: "unequal weights, the heavier down", vals: []tv{{w: 1, tier: 1}, {w: 1, tier: 1}, {w: 2, tier: 1, down: true}}, sel: "uniform", fallback: "weighted"},
		{name: "standbys only", vals: []tv{{w: 4, tier: 1, down: true}, {w: 0, tier: 1}, {w: 0, tier: 1}}, sel: "uniform", fallback: "uniform"},
		{name: "no healthy value", vals: []tv{{w: 1, tier: 1, down: true}}, sel: "none", fallback: "uniform"},
		{name: "slow start, nothing ramps", vals: []tv{{w: 1, tier: 1}, {w: 1, tier: 1}},
			opts: selection{slowStart: d}, sel: "uniform", fallback: "uniform"},
		{name: "slow start, a value ramps", vals: []tv{{w: 1, tier: 1, ramp: d / 4}, {w: 1, tier: 1}},
			opts: selection{slowStart: d}, sel: "weighted", fallback: "uniform", rampUntil: testNow.Add(d - d/4)},
		{name: "slow start, the last ramp ends last", vals: []tv{{w: 1, tier: 1, ramp: d / 4}, {w: 1, tier: 1, ramp: d / 2}},
			opts: selection{slowStart: d}, sel: "weighted", fallback: "uniform", rampUntil: testNow.Add(d - d/4)},
		{name: "slow start, the ramp is over", vals: []tv{{w: 1, tier: 1, ramp: d}, {w: 1, tier: 1}},
			opts: selection{slowStart: d}, sel: "uniform", fallback: "uniform"},
		{name: "slow start, the ramping value is down again", vals: []tv{{w: 1, tier: 1, ramp: d / 4, down: true}, {w: 1, tier: 1}},
			opts: selection{slowStart: d}, sel: "uniform", fallback: "uniform"},
		{name: "slow start off", vals: []tv{{w: 1, tier: 1, ramp: d / 4}, {w: 1, tier: 1}}, sel: "uniform", fallback: "uniform"},
		{name: "sticky", vals: []tv{{w: 1, tier: 1}, {w: 1, tier: 1}}, opts: stickyOpts, sel: "sticky", fallback: "sticky"},
		{name: "sticky, unequal weights", vals: []tv{{w: 1, tier: 1}, {w: 3, tier: 1}}, opts: stickyOpts, sel: "sticky weighted", fallback: "sticky weighted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			values := testValues(tc.vals)
			snap := buildSnapshot(values, &tc.opts, testNow)
			if k := selectorKind(snap.sel); len(snap.cands) > 0 && k != tc.sel || len(snap.cands) == 0 && tc.sel != "none" {
				t.Errorf("selector %s with %d candidates, want %s", k, len(snap.cands), tc.sel)
			}
			if k := selectorKind(snap.fallbackSel); k != tc.fallback {
				t.Errorf("all_unhealthy selector %s, want %s", k, tc.fallback)
			}
			if !snap.rampUntil.Equal(tc.rampUntil) {
				t.Errorf("rampUntil %v, want %v", snap.rampUntil, tc.rampUntil)
			}
			switch s := snap.sel.(type) {
			case *weighted:
				var total uint64
				for _, c := range snap.cands {
					total += uint64(c.weight)
				}
				if s.total != total || snap.cands[len(snap.cands)-1].cum != total {
					t.Errorf("weighted total %d, last prefix sum %d, want %d", s.total, snap.cands[len(snap.cands)-1].cum, total)
				}
			case *sticky:
				var maxW uint32
				for _, c := range snap.cands {
					maxW = max(maxW, c.weight)
				}
				if s.maxW != maxW {
					t.Errorf("sticky maxW %d, want %d", s.maxW, maxW)
				}
			}
		})
	}
}

// handlerSet returns the set www.example.org. A of a test handler.
func handlerSet(t testing.TB, m *Multivalue) *recordSet {
	t.Helper()
	n := m.nodes["www.example.org."]
	if n == nil || n.set(dns.TypeA) == nil {
		t.Fatal("no set www.example.org. A")
	}
	return n.set(dns.TypeA)
}

// tune changes a handler's set as an operator's config would (weights, tiers,
// drains, sources, options) and rebuilds its snapshot.
func tune(set *recordSet, fn func(set *recordSet)) {
	set.mu.Lock()
	fn(set)
	set.mu.Unlock()
	set.refresh()
}

// serveFrom serves req with a server label of its own, so responses_total
// counts only this test's queries.
func serveFrom(t testing.TB, m *Multivalue, server string, w dns.ResponseWriter, req *dns.Msg) (*dns.Msg, int) {
	t.Helper()
	ctx := context.WithValue(context.Background(), dnsserver.Key{}, &dnsserver.Server{Addr: server})
	rec := dnstest.NewRecorder(w)
	rc, err := m.ServeDNS(ctx, rec, req)
	if err != nil {
		t.Fatalf("ServeDNS: %v", err)
	}
	return rec.Msg, rc
}

func responses(t *testing.T, server, result string) float64 {
	t.Helper()
	v, _ := counterValue(t, "coredns_multivalue_responses_total", map[string]string{"server": server, "zone": "example.org.", "result": result})
	return v
}

func dropResponses(t *testing.T, server string) {
	t.Cleanup(func() { defaultEngine.metrics.responses.DeletePartialMatch(map[string]string{"server": server}) })
}

// TestServeDNSAllDrainedIsNodata: a set whose values are all drained answers
// NODATA with the zone's SOA, whatever all_unhealthy says and whether they
// are healthy or not; counted as nodata.
func TestServeDNSAllDrainedIsNodata(t *testing.T) {
	for _, policy := range []string{"serve", "nodata", "fallthrough"} {
		for _, healthy := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/healthy=%v", policy, healthy), func(t *testing.T) {
				server := "dns://drained-" + policy + fmt.Sprint(healthy) + ":53"
				dropResponses(t, server)
				m := newTestHandler(t, "multivalue {\n all_unhealthy "+policy+"\n records www A 127.0.0.1 127.0.0.2\n}", &zoneHandler{})
				set := handlerSet(t, m)
				tune(set, func(set *recordSet) {
					for _, v := range set.values {
						v.weight, v.tier, v.drain = 1, 1, true
						v.src = &fixedSource{v: verdict{healthy: healthy, known: true}}
					}
				})
				tc := test.Case{Qname: "www.example.org.", Qtype: dns.TypeA, Authoritative: true, Ns: []dns.RR{negSOA}}
				resp, rc := serveFrom(t, m, server, &test.ResponseWriter{}, tc.Msg())
				if rc != dns.RcodeSuccess {
					t.Errorf("rc %d, want NOERROR", rc)
				}
				if err := test.SortAndCheck(resp, tc); err != nil {
					t.Error(err)
				}
				if n := responses(t, server, "nodata"); n != 1 {
					t.Errorf("responses_total{result=nodata} %v, want 1", n)
				}
			})
		}
	}
}

// TestServeDNSDrainedNeverServedUnderAllUnhealthyServe: with every value down,
// all_unhealthy serve answers from the values not drained, never a drained
// one.
func TestServeDNSDrainedNeverServedUnderAllUnhealthyServe(t *testing.T) {
	m := newTestHandler(t, "multivalue {\n records www A 127.0.0.1 127.0.0.2 127.0.0.3 127.0.0.4\n}", nil)
	set := handlerSet(t, m)
	tune(set, func(set *recordSet) {
		for _, v := range set.values {
			v.weight, v.tier = 1, 1
			v.drain = v.text == "127.0.0.2" || v.text == "127.0.0.4"
			v.src = &fixedSource{v: verdict{healthy: false, known: true}}
		}
	})
	req := new(dns.Msg)
	req.SetQuestion("www.example.org.", dns.TypeA)
	for range 100 {
		resp, _ := serve(t, m, req)
		if got := answerValues(resp); !sameSet(got, []string{"127.0.0.1", "127.0.0.3"}) {
			t.Fatalf("answer %v, want 127.0.0.1 and 127.0.0.3 (the others are drained)", got)
		}
	}
}

// TestServeDNSPanicServesEveryValue: below panic_threshold every value not
// drained is served, counted as result "panic"; one WARNING per episode and
// one INFO when it ends.
func TestServeDNSPanicServesEveryValue(t *testing.T) {
	logs := captureLog(t)
	const server = "dns://panic:53"
	dropResponses(t, server)
	m := newTestHandler(t, "multivalue {\n all_unhealthy nodata\n records www A 127.0.0.1 127.0.0.2 127.0.0.3 127.0.0.4 127.0.0.5\n}", nil)
	set := handlerSet(t, m)
	src := map[string]*fixedSource{}
	tune(set, func(set *recordSet) {
		set.opts.panicThreshold = 50
		for _, v := range set.values {
			v.weight, v.tier = 1, 1
			v.drain = v.text == "127.0.0.5"
			src[v.text] = &fixedSource{v: verdict{healthy: true, known: true}}
			v.src = src[v.text]
		}
	})
	setDown := func(down ...string) {
		for text, s := range src {
			s.set(!slices.Contains(down, text))
		}
		set.refresh()
	}
	query := func() []string {
		req := new(dns.Msg)
		req.SetQuestion("www.example.org.", dns.TypeA)
		resp, _ := serveFrom(t, m, server, &test.ResponseWriter{}, req)
		return answerValues(resp)
	}
	panicWarn := func() []string {
		return logs.lines("[WARNING]", "www.example.org. A: fewer than 50% of its values are healthy")
	}
	panicEnd := func() []string { return logs.lines("[INFO]", "www.example.org. A: enough values are healthy again") }

	setDown("127.0.0.1", "127.0.0.2") // 2 of 4 healthy: 50% is enough
	if got := query(); !sameSet(got, []string{"127.0.0.3", "127.0.0.4"}) {
		t.Fatalf("at 50%% healthy: answer %v, want the healthy values", got)
	}
	setDown("127.0.0.1", "127.0.0.2", "127.0.0.3") // 1 of 4: panic
	for range 10 {
		if got := query(); !sameSet(got, []string{"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"}) {
			t.Fatalf("in panic: answer %v, want every value not drained", got)
		}
	}
	setDown("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4") // still panic: same episode
	if got := query(); len(got) != 4 {
		t.Fatalf("in panic with no healthy value: answer %v, want every value not drained", got)
	}
	if n := responses(t, server, "panic"); n != 11 {
		t.Errorf("responses_total{result=panic} %v, want 11", n)
	}
	if n := responses(t, server, "all_unhealthy"); n != 0 {
		t.Errorf("responses_total{result=all_unhealthy} %v in panic, want 0", n)
	}
	if w := panicWarn(); len(w) != 1 {
		t.Errorf("%d panic warnings in one episode, want 1: %v", len(w), w)
	}
	if n := len(panicEnd()); n != 0 {
		t.Errorf("%d end-of-panic lines during the episode", n)
	}
	setDown("127.0.0.1") // 3 of 4: the episode ends
	if got := query(); !sameSet(got, []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}) {
		t.Fatalf("after panic: answer %v, want the healthy values", got)
	}
	if n := len(panicEnd()); n != 1 {
		t.Errorf("%d end-of-panic lines, want 1", n)
	}
	if n := responses(t, server, "healthy"); n != 2 {
		t.Errorf("responses_total{result=healthy} %v, want 2", n)
	}
	setDown("127.0.0.1", "127.0.0.2", "127.0.0.3") // a second episode
	if w := panicWarn(); len(w) != 2 {
		t.Errorf("%d panic warnings after two episodes, want 2", len(w))
	}
	if w := logs.lines("has no healthy value"); len(w) != 0 {
		t.Errorf("all_unhealthy warned during panic: %v", w)
	}
}

// TestSelectionUnderChangingHealth races queries against transitions
// (fixedSource.set through the set's watch), values turning healthy into
// slow start, and drains. Every answer must be valid: no duplicates, only
// values of the set, never a value drained throughout, never more than
// max_answers. Run it with -race.
func TestSelectionUnderChangingHealth(t *testing.T) {
	const (
		n          = 40
		maxAnswers = 5
		queriers   = 4
	)
	for _, mode := range []string{"uniform", "weighted", "sticky"} {
		t.Run(mode, func(t *testing.T) {
			m := newTestHandler(t, setBlock(n, maxAnswers), nil)
			set := handlerSet(t, m)
			srcs := make([]*fixedSource, n)
			drainedAlways := map[string]bool{}
			tune(set, func(set *recordSet) {
				set.opts.slowStart = 30 * time.Millisecond
				set.opts.panicThreshold = 10
				set.opts.minHealthy = 2
				if mode == "sticky" {
					set.opts.sticky, set.opts.v4Prefix, set.opts.v6Prefix = true, 24, 56
				}
				for i, v := range set.values {
					v.weight, v.tier = 1, 1+i%3
					if mode != "uniform" {
						v.weight = i % 7 // standbys included
					}
					if i%10 == 9 {
						v.drain = true
						drainedAlways[v.text] = true
					}
					srcs[i] = &fixedSource{v: verdict{healthy: true, known: true}}
				}
			})
			for i, v := range set.values {
				set.bind(v, srcs[i], nil, nil)
			}
			t.Cleanup(func() {
				for _, v := range set.values {
					set.unbind(v)
				}
			})
			valid := map[string]bool{}
			for _, v := range set.values {
				valid[v.text] = !drainedAlways[v.text]
			}

			var stop atomic.Bool
			var wg sync.WaitGroup
			var queries atomic.Int64
			errs := make(chan string, queriers)
			for g := range queriers {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(g), 1))
					for !stop.Load() {
						req := new(dns.Msg)
						req.SetQuestion("www.example.org.", dns.TypeA)
						if rng.IntN(2) == 0 {
							req.SetEdns0(1232, rng.IntN(2) == 0)
							o := req.IsEdns0()
							o.Option = append(o.Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24,
								Address: net.IPv4(192, 0, byte(rng.IntN(256)), 0).To4()})
						}
						w := &test.ResponseWriter{RemoteIP: fmt.Sprintf("10.%d.%d.%d", rng.IntN(256), rng.IntN(256), rng.IntN(256))}
						rec := dnstest.NewRecorder(w)
						if _, err := m.ServeDNS(context.Background(), rec, req); err != nil {
							errs <- err.Error()
							return
						}
						got := answerValues(rec.Msg)
						seen := map[string]bool{}
						bad := len(got) > maxAnswers || rec.Msg.Rcode != dns.RcodeSuccess
						for _, v := range got {
							bad = bad || seen[v] || !valid[v]
							seen[v] = true
						}
						if bad {
							errs <- fmt.Sprintf("invalid answer %v (rcode %s)", got, dns.RcodeToString[rec.Msg.Rcode])
							return
						}
						queries.Add(1)
					}
				})
			}
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(7, 7))
				for !stop.Load() {
					// Health: a few values flip, some back to healthy
					// (slow start: since = now).
					for range 3 {
						srcs[rng.IntN(n)].set(rng.IntN(3) > 0)
					}
					// Drains come and go (never on the values drained
					// throughout).
					i := rng.IntN(n)
					if !drainedAlways[set.values[i].text] {
						tune(set, func(*recordSet) { set.values[i].drain = !set.values[i].drain })
					}
					runtime.Gosched()
				}
			})
			time.Sleep(300 * time.Millisecond)
			stop.Store(true)
			wg.Wait()
			close(errs)
			for e := range errs {
				t.Error(e)
			}
			if queries.Load() < 100 {
				t.Errorf("only %d queries ran", queries.Load())
			}
			t.Logf("%d queries, %d rebuilds", queries.Load(), set.rebuilds)
		})
	}
}

// TestMaxAnswers255Of1000: max_answers 255 over 1,000 values answers 255
// distinct values of the set, uniform, weighted and sticky alike.
func TestMaxAnswers255Of1000(t *testing.T) {
	m := newTestHandler(t, setBlock(1000, 255), nil)
	set := handlerSet(t, m)
	all := map[string]bool{}
	for _, v := range set.values {
		all[v.text] = true
	}
	for _, mode := range []string{"uniform", "weighted", "sticky"} {
		t.Run(mode, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			tune(set, func(set *recordSet) {
				set.opts = selection{}
				if mode == "sticky" {
					set.opts = selection{sticky: true, v4Prefix: 24, v6Prefix: 56}
				}
				for _, v := range set.values {
					v.weight, v.tier = 1, 1
					if mode != "uniform" {
						v.weight = 1 + rng.IntN(255)
					}
				}
			})
			if k := selectorKind(set.snapshot().sel); k != map[string]string{"uniform": "uniform", "weighted": "weighted", "sticky": "sticky weighted"}[mode] {
				t.Fatalf("selector %s", k)
			}
			for i := range 20 {
				req := new(dns.Msg)
				req.SetQuestion("www.example.org.", dns.TypeA)
				req.SetEdns0(65535, i%2 == 0)
				resp, _ := serveFrom(t, m, "dns://large:53", &test.ResponseWriter{RemoteIP: fmt.Sprintf("10.0.%d.1", i)}, req)
				got := answerValues(resp)
				seen := map[string]bool{}
				for _, v := range got {
					if seen[v] || !all[v] {
						t.Fatalf("duplicate or unknown %s", v)
					}
					seen[v] = true
				}
				if len(got) != 255 {
					t.Fatalf("%d answers, want 255", len(got))
				}
				// With DO, the chosen values go out in canonical order.
				canonical := slices.IsSortedFunc(resp.Answer, func(a, b dns.RR) int { return bytes.Compare(canonicalRdata(a), canonicalRdata(b)) })
				if do := i%2 == 0; do && !canonical {
					t.Fatalf("DO answer not in canonical order")
				} else if !do && canonical {
					t.Fatalf("answer without DO in canonical order: not in the selector's order")
				}
			}
		})
	}
	dropResponses(t, "dns://large:53")
}
