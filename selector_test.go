package multivalue

import (
	"fmt"
	"testing"

	"github.com/miekg/dns"
)

// TestPickUniform: every value is served equally often, and comes first
// equally often. The bounds are far in the tail (p < 1e-6) so the test does
// not flake, yet a biased pick (say, one value at 1.3x) fails it.
func TestPickUniform(t *testing.T) {
	for _, tc := range []struct {
		values, max, queries int
		bound                float64 // chi-square bound for values-1 degrees of freedom
	}{
		{values: 12, max: 8, queries: 6000, bound: 50},
		{values: 3, max: 8, queries: 3000, bound: 30},
		{values: 1000, max: 8, queries: 25000, bound: 1300},
	} {
		t.Run(fmt.Sprintf("%d_of_%d", tc.max, tc.values), func(t *testing.T) {
			m := newTestHandler(t, setBlock(tc.values, tc.max), nil)
			in := map[string]int{}
			first := map[string]int{}
			req := new(dns.Msg)
			req.SetQuestion("www.example.org.", dns.TypeA)
			for i := 0; i < tc.queries; i++ {
				resp, _ := serve(t, m, req)
				vals := answerValues(resp)
				if want := min(tc.values, tc.max); len(vals) != want {
					t.Fatalf("%d answers, want %d", len(vals), want)
				}
				for _, v := range vals {
					in[v]++
				}
				first[vals[0]]++
			}
			k := float64(min(tc.values, tc.max))
			if tc.values > tc.max {
				x2 := chiSquare(in, tc.values, float64(tc.queries)*k/float64(tc.values))
				// Inclusions within one answer are not independent (exactly k
				// per answer), which only lowers the statistic.
				if x2 > tc.bound {
					t.Errorf("inclusion counts not uniform: chi-square %.1f > %.1f", x2, tc.bound)
				}
			}
			if x2 := chiSquare(first, tc.values, float64(tc.queries)/float64(tc.values)); x2 > tc.bound {
				t.Errorf("first position not uniform: chi-square %.1f > %.1f", x2, tc.bound)
			}
		})
	}
}

// TestPickUniformWithUnhealthy: the choice is uniform over the healthy values.
func TestPickUniformWithUnhealthy(t *testing.T) {
	m := newTestHandler(t, setBlock(12, 4), nil)
	setHealth(t, m, "www.example.org.", dns.TypeA, false, "127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4")
	in := map[string]int{}
	req := new(dns.Msg)
	req.SetQuestion("www.example.org.", dns.TypeA)
	const queries = 4000
	for i := 0; i < queries; i++ {
		resp, _ := serve(t, m, req)
		for _, v := range answerValues(resp) {
			in[v]++
		}
	}
	for _, v := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"} {
		if in[v] > 0 {
			t.Fatalf("unhealthy %s served %d times", v, in[v])
		}
	}
	if x2 := chiSquare(in, 8, queries*4.0/8); x2 > 45 {
		t.Errorf("not uniform over the healthy values: chi-square %.1f", x2)
	}
}
