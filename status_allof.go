package multivalue

// newAllOf is the source of a value with several health checks (`health_check
// a b c`): healthy only when every one of them is. Its reason is that of the
// first unhealthy member, in the order the checks were given; when all are
// healthy, that of the member that changed last (the one that made the value
// healthy).
func newAllOf(members []source) *combined {
	return &combined{members: members, decide: func(vs []verdict) (bool, string) {
		last := 0
		for i, v := range vs {
			if !v.healthy {
				return false, v.reason
			}
			if v.since.After(vs[last].since) {
				last = i
			}
		}
		return true, vs[last].reason
	}}
}
