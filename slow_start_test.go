package multivalue

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
)

// within6Sigma reports whether count successes of n trials fit a binomial
// of probability p: at most 6 standard deviations off (two-sided p < 2e-9),
// far enough in the tail that a test never flakes. p of 0 or 1 allow no
// deviation.
func within6Sigma(count, n int, p float64) bool {
	return math.Abs(float64(count)-float64(n)*p) <= 6*math.Sqrt(float64(n)*p*(1-p))
}

// TestRampFactor: a value in slow start counts for t/DURATION, t the time
// since it turned healthy: nothing at t <= 0, fully from DURATION on, and
// fully when it never ramped (since zero).
func TestRampFactor(t *testing.T) {
	const d = 100 * time.Second
	since := testNow
	r := ramp{duration: d, until: since.Add(d)}
	for _, tc := range []struct {
		name  string
		since time.Time
		now   time.Time
		want  float64
	}{
		{"no slow start", time.Time{}, since, 1},
		{"before it turned healthy", since, since.Add(-time.Second), 0},
		{"the instant it turned healthy", since, since, 0},
		{"a quarter in", since, since.Add(d / 4), 0.25},
		{"almost through", since, since.Add(d - time.Nanosecond), 1 - 1e-11},
		{"at DURATION", since, since.Add(d), 1},
		{"after DURATION", since, since.Add(2 * d), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := r.factor(&candidate{since: tc.since}, tc.now); math.Abs(got-tc.want) > 1e-12 {
				t.Errorf("factor %v, want %v", got, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		until, now time.Time
		want       bool
	}{
		{time.Time{}, since, false},
		{since.Add(d), since, true},
		{since.Add(d), since.Add(d - 1), true},
		{since.Add(d), since.Add(d), false},
	} {
		if got := (ramp{duration: d, until: tc.until}).active(tc.now); got != tc.want {
			t.Errorf("ramp until %v active at %v: %v, want %v", tc.until, tc.now, got, tc.want)
		}
	}
}

// rampSet is four healthy values (weights 3, 1, 2, 5 when weighted, else 1),
// the first turned healthy at testNow - at, with slow start d.
func rampSet(weighted bool, at, d time.Duration, opts selection) ([]*value, *snapshot) {
	specs := weightedSpecs(3, 1, 2, 5)
	if !weighted {
		specs = weightedSpecs(1, 1, 1, 1)
	}
	specs[0].ramp = at
	values := testValues(specs)
	opts.slowStart = d
	return values, buildSnapshot(values, &opts, testNow)
}

// TestSlowStartInclusionRate: a value t into its slow start of DURATION is
// in an answer with probability t/DURATION: per query for weighted answers,
// per client for sticky ones. k covers the set, so only slow start leaves it
// out. Queries run at fixed times: no wall clock matters.
func TestSlowStartInclusionRate(t *testing.T) {
	const d = time.Minute
	for _, mode := range []string{"weighted", "sticky"} {
		for _, weighted := range []bool{false, true} {
			for _, f := range []float64{0, 0.05, 0.3, 0.5, 0.9, 1} {
				t.Run(fmt.Sprintf("%s/weights_differ=%v/f=%v", mode, weighted, f), func(t *testing.T) {
					opts := selection{}
					if mode == "sticky" {
						opts = stickyOpts
					}
					// The value turned healthy d/2 before testNow; the
					// query runs f·d after that.
					values, snap := rampSet(weighted, d/2, d, opts)
					want := map[string]string{"weighted": "weighted", "sticky": "sticky"}[mode]
					if mode == "sticky" && weighted {
						want = "sticky weighted"
					}
					if kind := selectorKind(snap.sel); kind != want {
						t.Fatalf("selector %s, want %s", kind, want)
					}
					now := testNow.Add(-d / 2).Add(time.Duration(f * float64(d)))
					idx := indexOf(values)
					rng := rand.New(rand.NewPCG(5, uint64(f*100)))
					const queries = 10000
					in := 0
					for range queries {
						q := query{now: now}
						if mode == "sticky" {
							q.client = randomClient(rng)
						}
						got := pickValues(values, idx, snap.sel, snap.cands, q, 8)
						if len(got) < 3 {
							t.Fatalf("answer %v: the values not ramping must all be in it", got)
						}
						for _, v := range got {
							if v == 0 {
								in++
							}
						}
					}
					if !within6Sigma(in, queries, f) {
						t.Errorf("ramping value in %d of %d answers at t/DURATION = %v, want about %.0f", in, queries, f, f*queries)
					}
				})
			}
		}
	}
}

// TestSlowStartScalesWeight: a ramping value is not only left out with
// probability 1 - f: when in, it weighs f of its weight. It then comes first
// with probability f · f·w0 / (f·w0 + the others' weights).
func TestSlowStartScalesWeight(t *testing.T) {
	const d = time.Minute
	for _, mode := range []string{"weighted", "sticky"} {
		for _, f := range []float64{0.25, 0.5, 0.8} {
			t.Run(fmt.Sprintf("%s/f=%v", mode, f), func(t *testing.T) {
				opts := selection{}
				if mode == "sticky" {
					opts = stickyOpts
				}
				values, snap := rampSet(true, d/2, d, opts)
				now := testNow.Add(-d / 2).Add(time.Duration(f * float64(d)))
				idx := indexOf(values)
				p := f * (f * 3) / (f*3 + 1 + 2 + 5)
				rng := rand.New(rand.NewPCG(6, uint64(f*100)))
				const queries = 30000
				first := 0
				for range queries {
					q := query{now: now}
					if mode == "sticky" {
						q.client = randomClient(rng)
					}
					if got := pickValues(values, idx, snap.sel, snap.cands, q, 2); got[0] == 0 {
						first++
					}
				}
				if !within6Sigma(first, queries, p) {
					t.Errorf("ramping value first in %d of %d answers, want about %.0f (p %.4f)", first, queries, p*queries, p)
				}
			})
		}
	}
}

// TestStickySlowStartAddsClientsNeverDrops: as a sticky value ramps up, the
// clients whose answer holds it only grow in number, none is dropped, and at
// the end of the ramp every client has it (k covers the set).
func TestStickySlowStartAddsClientsNeverDrops(t *testing.T) {
	const d = time.Minute
	values, snap := rampSet(true, d/2, d, stickyOpts)
	idx := indexOf(values)
	rng := rand.New(rand.NewPCG(7, 7))
	clients := make([]query, 3000)
	for i := range clients {
		clients[i].client = randomClient(rng)
	}
	had := make([]bool, len(clients))
	since := testNow.Add(-d / 2)
	for step := 0; step <= 10; step++ {
		count := 0
		for i := range clients {
			q := clients[i]
			q.now = since.Add(time.Duration(step) * d / 10)
			has := false
			for _, v := range pickValues(values, idx, snap.sel, snap.cands, q, 8) {
				has = has || v == 0
			}
			if had[i] && !has {
				t.Fatalf("at %d/10 of the ramp, client %v lost the value", step, q.client)
			}
			had[i] = has
			if has {
				count++
			}
		}
		if step == 10 && count != len(clients) {
			t.Errorf("at the end of the ramp %d of %d clients have the value", count, len(clients))
		}
	}
}

// TestSlowStartOnlyAfterUnhealthy: with a real check as the source, a first
// healthy result ramps nothing (nothing ramps at start-up); a value that
// turns healthy again after having been unhealthy does.
func TestSlowStartOnlyAfterUnhealthy(t *testing.T) {
	spec := hcSpec("127.0.0.1", 1)
	spec.failureThreshold, spec.successThreshold = 1, 1
	c := newTestCheck(t, spec)
	values := testValues(weightedSpecs(1, 1))
	values[0].src = c
	opts := &selection{slowStart: time.Hour}
	c.record(true, "first result")
	if snap := buildSnapshot(values, opts, time.Now()); !snap.rampUntil.IsZero() || selectorKind(snap.sel) != "uniform" {
		t.Errorf("a first healthy result ramps: rampUntil %v, selector %s", snap.rampUntil, selectorKind(snap.sel))
	}
	c.record(false, "down")
	c.record(true, "up again")
	snap := buildSnapshot(values, opts, time.Now())
	if snap.rampUntil.IsZero() || selectorKind(snap.sel) != "weighted" {
		t.Errorf("a value back from unhealthy does not ramp: rampUntil %v, selector %s", snap.rampUntil, selectorKind(snap.sel))
	}
}

// TestServeDNSSlowStart: through ServeDNS, a value half way through its
// slow start is in about half the answers; one past it in all. (The wall
// clock moves by milliseconds against a ramp of an hour: it does not
// matter.)
func TestServeDNSSlowStart(t *testing.T) {
	m := newTestHandler(t, "multivalue {\n records www A 127.0.0.1 127.0.0.2 127.0.0.3\n}", nil)
	set := handlerSet(t, m)
	now := time.Now()
	tune(set, func(set *recordSet) {
		set.opts.slowStart = time.Hour
		for _, v := range set.values {
			v.weight, v.tier = 1, 1
			vd := verdict{healthy: true, known: true}
			switch v.text {
			case "127.0.0.1":
				vd.since = now.Add(-30 * time.Minute)
			case "127.0.0.2":
				vd.since = now.Add(-2 * time.Hour)
			}
			v.src = &fixedSource{v: vd}
		}
	})
	const queries = 2000
	in := map[string]int{}
	for range queries {
		resp, _ := serve(t, m, (&test.Case{Qname: "www.example.org.", Qtype: dns.TypeA}).Msg())
		for _, v := range answerValues(resp) {
			in[v]++
		}
	}
	if !within6Sigma(in["127.0.0.1"], queries, 0.5) {
		t.Errorf("value half way through slow start in %d of %d answers, want about half", in["127.0.0.1"], queries)
	}
	if in["127.0.0.2"] != queries || in["127.0.0.3"] != queries {
		t.Errorf("values not ramping in %d and %d of %d answers, want all", in["127.0.0.2"], in["127.0.0.3"], queries)
	}
}

// TestSlowStartNeverEmptiesAnAnswer: when every candidate is in slow start
// (a whole set back from an outage), the thinning must not leave an answer
// with no value while healthy values exist: such an answer would be a
// NOERROR with nothing in it (no SOA either), worse than the outage, when
// all_unhealthy serve still answered. The ramping values then share the
// answers by their scaled weights.
func TestSlowStartNeverEmptiesAnAnswer(t *testing.T) {
	const d = time.Minute
	for _, mode := range []string{"weighted", "sticky"} {
		for _, n := range []int{1, 3} {
			t.Run(fmt.Sprintf("%s/%d_values", mode, n), func(t *testing.T) {
				opts := selection{slowStart: d}
				if mode == "sticky" {
					opts.sticky, opts.v4Prefix, opts.v6Prefix = true, 24, 56
				}
				specs := weightedSpecs(slices.Repeat([]int{2}, n)...)
				specs[0].w = 5
				for i := range specs {
					specs[i].ramp = d / 100 // f = 0.01
				}
				values := testValues(specs)
				snap := buildSnapshot(values, &opts, testNow)
				idx := indexOf(values)
				rng := rand.New(rand.NewPCG(8, uint64(n)))
				for range 2000 {
					q := query{now: testNow, client: randomClient(rng)}
					if got := pickValues(values, idx, snap.sel, snap.cands, q, 8); len(got) == 0 {
						t.Fatalf("empty answer from %d healthy values in slow start (client %v)", n, q.client)
					}
				}
			})
		}
	}
}
