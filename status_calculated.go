package multivalue

import (
	"fmt"
	"strings"
)

// newCalculated is the source of a calculated check (Route 53's calculated
// health checks) of a value: healthy when at least healthy_threshold of its
// children, instantiated for the value, are healthy. It has no probes or
// thresholds of its own: it changes as soon as its children do. A child
// without a first result counts as healthy, as a value does before its
// check's first result, so a threshold above the number of children is
// unhealthy from the start and 0 always healthy.
//
// Its reason says how many children are healthy and which are not:
// "2 of 3 children healthy, 3 needed (calculated check all3); unhealthy:
// connection refused (tcp check db of 127.0.0.1:5432)".
func newCalculated(s *checkSpec, children []source) *combined {
	n, need := len(children), s.healthyThreshold
	return &combined{members: children, fixed: need == 0 || need > n, decide: func(vs []verdict) (bool, string) {
		up := 0
		var down []string
		for _, v := range vs {
			if v.healthy {
				up++
			} else {
				down = append(down, v.reason)
			}
		}
		ok := up >= need
		reason := fmt.Sprintf("%d of %d children healthy, %d needed (%s)", up, n, need, s.describe())
		if len(down) > 0 {
			reason += "; unhealthy: " + strings.Join(down, "; ")
		}
		if s.invert {
			ok, reason = !ok, "inverted: "+reason
		}
		return ok, reason
	}}
}
