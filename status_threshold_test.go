package multivalue

import "testing"

// TestThresholds drives the threshold machine alone, result by result: the
// first result sets the status, then failure_threshold failures in a row turn
// it unhealthy and success_threshold successes in a row turn it back.
func TestThresholds(t *testing.T) {
	const H, U = true, false
	for _, tc := range []struct {
		name     string
		fth, sth int
		results  []bool
		want     []bool // status after each result
		changed  []bool // whether that result changed it
	}{
		{"first failure sets unhealthy", 3, 3, []bool{U}, []bool{U}, []bool{true}},
		{"first success keeps healthy, no change", 3, 3, []bool{H}, []bool{H}, []bool{false}},
		{"failures in a row", 2, 2, []bool{H, U, U}, []bool{H, H, U}, []bool{false, false, true}},
		{"a success resets the streak", 2, 2, []bool{H, U, H, U, H}, []bool{H, H, H, H, H}, []bool{false, false, false, false, false}},
		{"success threshold on the way back", 1, 3, []bool{U, H, H, U, H, H, H}, []bool{U, U, U, U, U, U, H},
			[]bool{true, false, false, false, false, false, true}},
		{"thresholds 1 follow every result", 1, 1, []bool{H, U, H}, []bool{H, U, H}, []bool{false, true, true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			th := thresholds{healthy: true}
			for i, ok := range tc.results {
				changed := th.observe(ok, tc.fth, tc.sth)
				if th.healthy != tc.want[i] || changed != tc.changed[i] || !th.known {
					t.Fatalf("after %v: healthy %v changed %v known %v, want %v %v true",
						tc.results[:i+1], th.healthy, changed, th.known, tc.want[i], tc.changed[i])
				}
			}
		})
	}
}
